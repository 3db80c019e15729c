/**
 * Error codes of PROTOCOL.md section 11 and the error classes the library throws.
 *
 * Every error that comes from the protocol carries the wire `code` (a u32) as a field, never
 * only as text. Unknown codes are kept as they are (section 11: a receiver passes them on).
 *
 * @module
 */

/** Error codes carried in RESET, STOP and GOAWAY (PROTOCOL.md section 11). */
export const ErrorCode = {
  /** Graceful end, no error. */
  NO_ERROR: 0x00,
  /** The peer broke a rule of the protocol. */
  PROTOCOL: 0x01,
  /** The peer exceeded its credit, or credit overflowed. */
  FLOW_CONTROL: 0x02,
  /** Open refused; it may be retried (backlog full, going away, not processed before GOAWAY). */
  REFUSED: 0x03,
  /** No handler for the open's route. */
  NOT_FOUND: 0x04,
  /** The application no longer wants the channel. */
  CANCEL: 0x05,
  /** A limit was exceeded (channels, message size, metadata size, abuse budget). */
  LIMIT: 0x06,
  /** A timeout expired (keepalive, stall). */
  TIMEOUT: 0x07,
  /** Internal error of the implementation. */
  INTERNAL: 0x08,
  /** The peer speaks another protocol version. */
  VERSION: 0x09,
  /** Data on a direction the peer had already finished. */
  STREAM_CLOSED: 0x0a,
} as const;

/** A wire error code: one of {@link ErrorCode} or any other u32 (application codes ≥ 0x100). */
export type ErrorCodeValue = number;

const CODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(ErrorCode).map(([name, value]) => [value, name]),
);

/**
 * The name of a code, for messages: `"PROTOCOL"`, `"application 0x1234"`, `"reserved 0x0b"`.
 *
 * @example
 * codeName(4) // "NOT_FOUND"
 */
export function codeName(code: number): string {
  const name = CODE_NAMES[code];
  if (name !== undefined) return name;
  const hex = `0x${code.toString(16).padStart(2, "0")}`;
  return code >= 0x100 ? `application ${hex}` : `reserved ${hex}`;
}

/** Base class of every error with a wire code. */
export class WsmuxError extends Error {
  /** The wire error code (section 11). */
  readonly code: number;
  /** The human-readable reason that came with the code (may be empty). */
  readonly reason: string;

  constructor(code: number, reason: string, message?: string) {
    super(message ?? (reason ? `${codeName(code)}: ${reason}` : codeName(code)));
    this.name = "WsmuxError";
    this.code = code;
    this.reason = reason;
  }
}

/** The classes of decoding errors named by `vectors/invalid.json` (PROTOCOL.md section 16). */
export type DecodeErrorKind =
  | "Truncated"
  | "Trailing"
  | "ReservedType"
  | "WrongChannel"
  | "ZeroIncrement"
  | "NotUtf8"
  | "BadSettings"
  | "BadPack";

/**
 * A message that is not a well-formed frame (or PACK). Its code is always PROTOCOL: a
 * session that receives it ends with session error PROTOCOL (section 13).
 */
export class FrameDecodeError extends WsmuxError {
  /** Which rule the bytes broke. */
  readonly kind: DecodeErrorKind;

  constructor(kind: DecodeErrorKind, detail: string) {
    super(ErrorCode.PROTOCOL, `${kind}: ${detail}`);
    this.name = "FrameDecodeError";
    this.kind = kind;
  }
}

/** Who ended a session or channel: this end, the peer, or the transport (connection lost). */
export type ErrorOrigin = "local" | "remote" | "transport";

/**
 * The session ended with an error. `code` is the GOAWAY code that describes the end: the one
 * this end sent (`origin: "local"`), the one the peer sent (`"remote"`), or, when the
 * WebSocket closed without a GOAWAY, INTERNAL with `origin: "transport"` (connection lost).
 */
export class SessionError extends WsmuxError {
  /** Who ended the session. */
  readonly origin: ErrorOrigin;
  /** The WebSocket close code, once known. */
  closeCode: number | undefined;

  constructor(code: number, reason: string, origin: ErrorOrigin, closeCode?: number) {
    super(
      code,
      reason,
      origin === "transport"
        ? `connection lost${closeCode !== undefined ? ` (WebSocket close ${closeCode})` : ""}${reason ? `: ${reason}` : ""}`
        : `session ${origin === "local" ? "closed" : "closed by the peer"} with ${codeName(code)}${reason ? `: ${reason}` : ""}`,
    );
    this.name = "SessionError";
    this.origin = origin;
    this.closeCode = closeCode;
  }
}

/**
 * The channel was reset (RESET, section 9.2), in both directions. A refused open is a reset
 * too (REFUSED, NOT_FOUND, LIMIT, section 7.2). `origin` says which end reset it.
 */
export class ResetError extends WsmuxError {
  /** `"remote"`: the peer sent RESET; `"local"`: this end reset the channel. */
  readonly origin: "local" | "remote";

  constructor(code: number, reason: string, origin: "local" | "remote") {
    super(
      code,
      reason,
      `channel reset ${origin === "remote" ? "by the peer" : "locally"} with ${codeName(code)}${reason ? `: ${reason}` : ""}`,
    );
    this.name = "ResetError";
    this.origin = origin;
  }
}

/**
 * One direction of the channel was stopped with STOP (section 4.9): `origin: "remote"` on the
 * sending side means the peer no longer reads; `"local"` on the receiving side means this end
 * called `stopReceiving`.
 */
export class StopError extends WsmuxError {
  /** Which end stopped the direction. */
  readonly origin: "local" | "remote";

  constructor(code: number, reason: string, origin: "local" | "remote") {
    super(
      code,
      reason,
      `channel direction stopped ${origin === "remote" ? "by the peer" : "locally"} with ${codeName(code)}${reason ? `: ${reason}` : ""}`,
    );
    this.name = "StopError";
    this.origin = origin;
  }
}

/**
 * A message larger than the peer's MAX_MESSAGE_SIZE was refused locally (section 5). From then
 * on the channel's sending direction ends with RESET LIMIT instead of FIN.
 */
export class MessageTooLargeError extends WsmuxError {
  /** Size of the refused message in bytes. */
  readonly size: number;
  /** The peer's MAX_MESSAGE_SIZE. */
  readonly limit: number;

  constructor(size: number, limit: number) {
    super(ErrorCode.LIMIT, `message of ${size} bytes exceeds the peer's MAX_MESSAGE_SIZE of ${limit}`);
    this.name = "MessageTooLargeError";
    this.size = size;
    this.limit = limit;
  }
}

/**
 * A call that the state does not allow: sending after `finish()`, opening on a closed
 * session. A usage error of this end's application, never caused by the peer.
 */
export class InvalidStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidStateError";
  }
}

/** Marks a promise as handled so that an unobserved rejection never crashes Node. */
export function quiet<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}
