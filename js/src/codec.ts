/**
 * Codecs: how an RPC value becomes the bytes of a DATA message and back (PROTOCOL.md section
 * 17.3). The codec is not announced on the wire; both ends of a service agree on it.
 *
 * This module only converts values; it never touches a channel.
 *
 * @module
 */

import { toBytes, type BytesLike } from "./channel.js";

/**
 * Turns values into bytes and back. Both methods throw on what they cannot convert: `encode`
 * on a value the codec cannot represent, `decode` on bytes that are not one valid value.
 *
 * @example
 * const text: Codec<string> = {
 *   encode: (s) => new TextEncoder().encode(s),
 *   decode: (b) => new TextDecoder("utf-8", { fatal: true }).decode(b),
 * };
 */
export interface Codec<T> {
  /** The bytes of `value`. Throws (a TypeError, say) when `value` cannot be encoded. */
  encode(value: T): Uint8Array;
  /** The value the bytes encode. Throws when they are not one valid value. */
  decode(bytes: Uint8Array): T;
}

const encoder = new TextEncoder();
// fatal: invalid UTF-8 is an error, not U+FFFD; ignoreBOM: a BOM stays in the text, so that
// JSON.parse rejects it (a JSON text in a DATA message has no BOM).
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * JSON over UTF-8, the default codec: `JSON.stringify` to encode, `JSON.parse` to decode (one
 * JSON text, whitespace around it allowed), as the reference server's JSON methods expect
 * (section 14).
 *
 * `encode` throws a TypeError for what JSON cannot carry (`undefined`, a function, a BigInt,
 * a cycle); `decode` throws a TypeError for invalid UTF-8 and a SyntaxError for invalid JSON.
 *
 * @example
 * json.encode({ a: [1, 2] }) // the bytes of '{"a":[1,2]}'
 * json.decode(new TextEncoder().encode(" [1,2] ")) // [1, 2]
 */
export const json: Codec<unknown> = {
  encode(value: unknown): Uint8Array {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`JSON cannot encode a value of type ${typeof value}`);
    return encoder.encode(text);
  },
  decode(bytes: Uint8Array): unknown {
    return JSON.parse(decoder.decode(bytes)) as unknown;
  },
};

/**
 * Bytes as they are: the value of a DATA message is the bytes themselves, as the reference
 * server's `interop.*` methods use them (section 14). `encode` takes any `BytesLike` (a
 * `Uint8Array`, another view, an `ArrayBuffer`) without copying; `decode` returns the bytes
 * received.
 *
 * @example
 * const client = new RpcClient(session, { codec: raw });
 * const echoed = await client.unary("interop.unary", new TextEncoder().encode("hi"));
 */
export const raw: Codec<Uint8Array> = {
  encode(value: BytesLike): Uint8Array {
    return toBytes(value);
  },
  decode(bytes: Uint8Array): Uint8Array {
    return bytes;
  },
};
