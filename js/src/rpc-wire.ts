/**
 * The bytes of the RPC profile (PROTOCOL.md section 17): status codes, the call header (the
 * OPEN's metadata, 17.2) and the call messages with their kind byte (17.3), plus the
 * {@link RpcError} a failed call reports.
 *
 * Pure encoding and decoding: this module never touches a channel. Decoding validates as it
 * goes and throws an {@link RpcError} with the code the receiver answers with: a call header
 * that does not parse is INVALID_ARGUMENT (17.2), a message that does not parse is a broken
 * call, INTERNAL (17.3).
 *
 * @module
 */

import { toBytes, type BytesLike } from "./channel.js";
import { utf8Truncated } from "./frame.js";

/** Status codes of section 17.4 (gRPC's numbers and meanings). Any other u16 is kept as it is. */
export const StatusCode = {
  /** Success. */
  OK: 0,
  /** The caller cancelled the call. */
  CANCELLED: 1,
  /** An error without a better code. */
  UNKNOWN: 2,
  /** The request is malformed: its value or the call header did not decode. */
  INVALID_ARGUMENT: 3,
  /** The deadline passed. */
  DEADLINE_EXCEEDED: 4,
  /** Something the request names does not exist. */
  NOT_FOUND: 5,
  /** Something the request would create exists. */
  ALREADY_EXISTS: 6,
  /** The caller may not do this. */
  PERMISSION_DENIED: 7,
  /** A limit was reached (for example calls in flight). */
  RESOURCE_EXHAUSTED: 8,
  /** The system is not in the state the call needs. */
  FAILED_PRECONDITION: 9,
  /** Aborted, for example by a conflict. */
  ABORTED: 10,
  /** A value is out of range. */
  OUT_OF_RANGE: 11,
  /** The callee has no such method. */
  UNIMPLEMENTED: 12,
  /** An internal error (including a broken call, section 17.3). */
  INTERNAL: 13,
  /** The callee or the connection is unavailable; the call may be retried. */
  UNAVAILABLE: 14,
  /** Data was lost. */
  DATA_LOSS: 15,
  /** The caller is not authenticated. */
  UNAUTHENTICATED: 16,
} as const;

const STATUS_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(StatusCode).map(([name, value]) => [value, name]),
);

/**
 * The name of a status code: `"NOT_FOUND"`, `"application 0x1234"` (256–65535),
 * `"reserved 17"` (17–255).
 *
 * @example
 * statusName(4) // "DEADLINE_EXCEEDED"
 */
export function statusName(code: number): string {
  const name = STATUS_NAMES[code];
  if (name !== undefined) return name;
  return code >= 0x100 ? `application 0x${code.toString(16).padStart(4, "0")}` : `reserved ${code}`;
}

/** Most headers in one call header (section 17.2). */
export const MAX_HEADERS = 64;
/** Longest STATUS text a sender sends, in bytes; longer text is cut at a character boundary. */
export const MAX_STATUS_TEXT = 1024;
/** Largest `timeout_ms` of a call header: u32, about 49.7 days. */
export const MAX_TIMEOUT_MS = 0xffffffff;

/**
 * A failed call, as the caller sees it and as a handler throws it to choose the STATUS.
 * `code` is the status code (section 17.4, a u16, kept as it is when unknown), `text` the
 * STATUS text (human-readable, may be empty).
 *
 * @example
 * router.unary("kv.get", (key) => {
 *   throw new RpcError(StatusCode.NOT_FOUND, `no key ${key}`);
 * });
 * try { await client.unary("kv.get", "k"); }
 * catch (e) { if (e instanceof RpcError && e.code === StatusCode.NOT_FOUND) ... }
 */
export class RpcError extends Error {
  /** The status code (section 17.4). */
  readonly code: number;
  /** The STATUS text (may be empty). */
  readonly text: string;

  /** @throws {RangeError} when `code` is not a u16. */
  constructor(code: number, text = "", options?: { cause?: unknown }) {
    if (!Number.isInteger(code) || code < 0 || code > 0xffff) throw new RangeError(`status code ${code} is not a u16`);
    super(text ? `${statusName(code)}: ${text}` : statusName(code), options);
    this.name = "RpcError";
    this.code = code;
    this.text = text;
  }

  /** The name of the code, as {@link statusName} gives it (`"DEADLINE_EXCEEDED"`). */
  get codeName(): string {
    return statusName(this.code);
  }
}

/** A decoded call header (section 17.2): the deadline and the headers, in order. */
export interface CallHeader {
  /** Milliseconds the callee has, from when the OPEN arrives; 0 = no deadline. */
  timeoutMs: number;
  /** Header names (UTF-8, 1–255 bytes) and values (opaque, 0–65535 bytes), in order; names may repeat. */
  headers: Array<[string, Uint8Array]>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The metadata bytes of a call header. No deadline and no headers give empty metadata.
 *
 * @throws {RangeError} for a timeout that is not a u32, a name of 0 or more than 255 bytes, a
 *   value over 65535 bytes, or more than 64 headers.
 *
 * @example
 * encodeCallHeader({ timeoutMs: 250, headers: [["trace", new Uint8Array([0x61, 0x62])]] })
 * // 000000fa 05 7472616365 0002 6162
 */
export function encodeCallHeader(header: CallHeader): Uint8Array {
  const { timeoutMs, headers } = header;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_TIMEOUT_MS) {
    throw new RangeError(`timeout_ms ${timeoutMs} is not a u32`);
  }
  if (headers.length > MAX_HEADERS) throw new RangeError(`${headers.length} headers: at most ${MAX_HEADERS}`);
  if (timeoutMs === 0 && headers.length === 0) return new Uint8Array(0);
  const parts: Array<[Uint8Array, Uint8Array]> = headers.map(([name, value]) => {
    const n = encoder.encode(name);
    if (n.length < 1 || n.length > 255) throw new RangeError(`header name of ${n.length} bytes: 1 to 255`);
    if (value.length > 0xffff) throw new RangeError(`header ${name}: a value of ${value.length} bytes, at most 65535`);
    return [n, value];
  });
  const size = parts.reduce((sum, [n, v]) => sum + 1 + n.length + 2 + v.length, 4);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, timeoutMs, false);
  let pos = 4;
  for (const [n, v] of parts) {
    out[pos] = n.length;
    out.set(n, pos + 1);
    pos += 1 + n.length;
    view.setUint16(pos, v.length, false);
    out.set(v, pos + 2);
    pos += 2 + v.length;
  }
  return out;
}

/**
 * Parses a call header. Empty metadata is no deadline and no headers. Values are views into
 * `metadata` (no copy).
 *
 * @throws {RpcError} INVALID_ARGUMENT for metadata that does not parse: truncated fields, an
 *   empty name, a name that is not UTF-8, more than 64 headers (section 17.2).
 */
export function decodeCallHeader(metadata: Uint8Array): CallHeader {
  if (metadata.length === 0) return { timeoutMs: 0, headers: [] };
  const bad = (why: string): RpcError => new RpcError(StatusCode.INVALID_ARGUMENT, `call header: ${why}`);
  if (metadata.length < 4) throw bad("truncated timeout_ms");
  const view = new DataView(metadata.buffer, metadata.byteOffset, metadata.byteLength);
  const timeoutMs = view.getUint32(0, false);
  const headers: Array<[string, Uint8Array]> = [];
  let pos = 4;
  while (pos < metadata.length) {
    if (headers.length === MAX_HEADERS) throw bad(`more than ${MAX_HEADERS} headers`);
    const n = metadata[pos] ?? 0;
    if (n === 0) throw bad("empty header name");
    if (pos + 1 + n > metadata.length) throw bad("truncated header name");
    let name: string;
    try {
      name = decoder.decode(metadata.subarray(pos + 1, pos + 1 + n));
    } catch {
      throw bad("header name is not UTF-8");
    }
    pos += 1 + n;
    if (pos + 2 > metadata.length) throw bad(`header ${name}: truncated value length`);
    const v = view.getUint16(pos, false);
    if (pos + 2 + v > metadata.length) throw bad(`header ${name}: truncated value`);
    headers.push([name, metadata.subarray(pos + 2, pos + 2 + v)]);
    pos += 2 + v;
  }
  return { timeoutMs, headers };
}

/** Kind bytes of call messages (section 17.3). */
export const MessageKind = { DATA: 0x00, STATUS: 0x01 } as const;

/** A call message: a value (DATA) or the outcome (STATUS). */
export type RpcMessage =
  | { kind: "data"; value: Uint8Array }
  | { kind: "status"; code: number; text: string };

/**
 * The bytes of a call message: the kind byte, then the value (DATA) or the code and text
 * (STATUS, text cut to 1024 bytes at a character boundary).
 *
 * @throws {RangeError} for a status code that is not a u16.
 *
 * @example
 * encodeRpcMessage({ kind: "status", code: 5, text: "no such key" }) // 01 0005 6e6f...
 */
export function encodeRpcMessage(message: RpcMessage): Uint8Array {
  if (message.kind === "data") {
    const out = new Uint8Array(1 + message.value.length);
    out[0] = MessageKind.DATA;
    out.set(message.value, 1);
    return out;
  }
  const { code } = message;
  if (!Number.isInteger(code) || code < 0 || code > 0xffff) throw new RangeError(`status code ${code} is not a u16`);
  const text = utf8Truncated(message.text, MAX_STATUS_TEXT);
  const out = new Uint8Array(3 + text.length);
  out[0] = MessageKind.STATUS;
  out[1] = code >> 8;
  out[2] = code & 0xff;
  out.set(text, 3);
  return out;
}

/**
 * Parses a call message. A DATA value is a view into `bytes` (no copy). A STATUS text longer
 * than 1024 bytes is accepted.
 *
 * @throws {RpcError} INTERNAL for a broken call (section 17.3): an empty message, another
 *   kind byte, a truncated STATUS code, a STATUS text that is not UTF-8.
 */
export function decodeRpcMessage(bytes: BytesLike): RpcMessage {
  const b = toBytes(bytes);
  const broken = (why: string): RpcError => new RpcError(StatusCode.INTERNAL, `broken call: ${why}`);
  if (b.length === 0) throw broken("an empty message");
  const kind = b[0];
  if (kind === MessageKind.DATA) return { kind: "data", value: b.subarray(1) };
  if (kind !== MessageKind.STATUS) throw broken(`message kind ${kind}`);
  if (b.length < 3) throw broken("a truncated STATUS code");
  const code = ((b[1] ?? 0) << 8) | (b[2] ?? 0);
  let text: string;
  try {
    text = decoder.decode(b.subarray(3));
  } catch {
    throw broken("a STATUS text that is not UTF-8");
  }
  return { kind: "status", code, text };
}
