/**
 * The headers of a call (PROTOCOL.md section 17.2): named opaque values, in order, names may
 * repeat. {@link RpcHeaders} is what a handler reads; {@link RpcHeadersInit} is what a caller
 * may pass.
 *
 * @module
 */

import { toBytes, type BytesLike } from "./channel.js";

/**
 * Headers a caller sends: pairs in order (names may repeat), or an object (one value per
 * name). A string value is sent as its UTF-8 bytes.
 *
 * @example
 * const a: RpcHeadersInit = { trace: "ab", token: new Uint8Array([1, 2]) };
 * const b: RpcHeadersInit = [["a", "1"], ["a", "2"]];
 */
export type RpcHeadersInit =
  | Iterable<readonly [string, string | BytesLike]>
  | Readonly<Record<string, string | BytesLike>>;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The headers of a call, read-only, in the order they came. Names are compared exactly (the
 * spec asks senders for lowercase ASCII but does not fold case).
 *
 * @example
 * router.unary("whoami", (_req, ctx) => ctx.headers.getText("user") ?? "nobody");
 */
export class RpcHeaders implements Iterable<[string, Uint8Array]> {
  readonly #entries: ReadonlyArray<[string, Uint8Array]>;

  /** Headers from pairs (in order) or from an object. */
  constructor(init: RpcHeadersInit = []) {
    const pairs: Iterable<readonly [string, string | BytesLike]> =
      Symbol.iterator in init
        ? (init as Iterable<readonly [string, string | BytesLike]>)
        : Object.entries(init as Record<string, string | BytesLike>);
    const entries: Array<[string, Uint8Array]> = [];
    for (const [name, value] of pairs) {
      entries.push([name, typeof value === "string" ? encoder.encode(value) : toBytes(value)]);
    }
    this.#entries = entries;
  }

  /** The value of the first header called `name`, or undefined. */
  get(name: string): Uint8Array | undefined {
    return this.#entries.find(([n]) => n === name)?.[1];
  }

  /**
   * The value of the first header called `name` as UTF-8 text, or undefined (also when it is
   * not valid UTF-8).
   */
  getText(name: string): string | undefined {
    const value = this.get(name);
    if (value === undefined) return undefined;
    try {
      return decoder.decode(value);
    } catch {
      return undefined;
    }
  }

  /** Every value of the headers called `name`, in order. */
  getAll(name: string): Uint8Array[] {
    return this.#entries.filter(([n]) => n === name).map(([, v]) => v);
  }

  /** Whether a header called `name` is present. */
  has(name: string): boolean {
    return this.#entries.some(([n]) => n === name);
  }

  /** Number of headers (repeats counted). */
  get size(): number {
    return this.#entries.length;
  }

  /** The headers as `[name, value]` pairs, in order. */
  entries(): Array<[string, Uint8Array]> {
    return this.#entries.map(([n, v]) => [n, v]);
  }

  /** Iterates the `[name, value]` pairs in order. */
  [Symbol.iterator](): Iterator<[string, Uint8Array]> {
    return this.entries()[Symbol.iterator]();
  }
}
