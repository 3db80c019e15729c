/**
 * The WebSocket under a session, behind a small interface so that tests can drive a session
 * with scripted bytes and the same session runs over a browser `WebSocket`, Node's global one,
 * or the `ws` package's.
 *
 * Owns the close-code mapping of section 9.4, including what browsers may send.
 *
 * @module
 */

import { ErrorCode } from "./errors.js";

/** What a session needs from its transport. */
export interface Transport {
  /** Writes one WebSocket binary message. */
  send(message: Uint8Array): void;
  /** Closes the WebSocket with the close code for a session that ended with `goawayCode`. */
  close(goawayCode: number, reason: string, overLimit?: boolean): void;
  /** Bytes written and not yet sent (`WebSocket.bufferedAmount`). */
  readonly bufferedAmount: number;
  /** Installs the receive callbacks; called once by the session. */
  start(handlers: TransportHandlers): void;
}

/** Callbacks from a transport to its session. */
export interface TransportHandlers {
  /** A whole WebSocket message: bytes for binary, a string for text. */
  message(data: Uint8Array | string): void;
  /** The WebSocket is closed (`code` 1006 when it was lost). */
  closed(code: number, reason: string): void;
}

/**
 * The parts of a WebSocket this library uses: the browser's, Node ≥ 22's global one and the
 * `ws` package's all fit (the listener's event is typed loosely so that each one's own event
 * types are accepted).
 */
export interface WebSocketLike {
  binaryType: string;
  readonly bufferedAmount: number;
  readonly readyState: number;
  readonly protocol: string;
  send(data: Uint8Array<ArrayBuffer>): void;
  close(code?: number, reason?: string): void;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  addEventListener(type: string, listener: (event: any) => void): void;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  removeEventListener(type: string, listener: (event: any) => void): void;
}

/**
 * Binary messages as ArrayBuffers (browsers), or as Node Buffers on a socket of the \`ws\`
 * package, whose default binaryType "nodebuffer" spares a copy of every message. A socket
 * that starts with any other type is set to "arraybuffer" (a browser would warn about
 * "nodebuffer", so it is never assigned).
 */
export function useFastestBinaryType(socket: WebSocketLike): void {
  if (socket.binaryType !== "nodebuffer") socket.binaryType = "arraybuffer";
}

/** WebSocket close code for a session that ended with a GOAWAY code (section 9.4). */
export function standardCloseCode(goawayCode: number, overLimit = false): number {
  switch (goawayCode) {
    case ErrorCode.NO_ERROR:
      return 1000;
    case ErrorCode.PROTOCOL:
    case ErrorCode.FLOW_CONTROL:
    case ErrorCode.VERSION:
      return 1002;
    case ErrorCode.LIMIT:
      return overLimit ? 1009 : 1008;
    default:
      return 1011;
  }
}

/** The close code a browser sends instead (it may only send 1000 and 3000–4999, section 9.4). */
export function browserCloseCode(goawayCode: number): number {
  if (goawayCode === ErrorCode.NO_ERROR) return 1000;
  return goawayCode <= 0xff ? 4000 + goawayCode : 4000;
}

const encoder = new TextEncoder();

function ignoreError(): void {
  // the close event that follows carries what the session needs
}

/** A close reason cut to the 123 bytes a Close frame holds, at a character boundary. */
function closeReason(reason: string): string {
  let r = reason;
  while (encoder.encode(r).length > 123) r = r.slice(0, -1);
  return r;
}

/**
 * Adapts a WebSocket (already open, or opening) to {@link Transport}. It listens from the
 * start and keeps what arrives until the session starts, so no message is lost between the
 * `open` event and the session.
 */
export class WebSocketTransport implements Transport {
  private handlers: TransportHandlers | null = null;
  private early: Array<Uint8Array | string> = [];
  private earlyClose: { code: number; reason: string } | null = null;
  private closedSeen = false;

  constructor(readonly socket: WebSocketLike) {
    useFastestBinaryType(socket);
    const onMessage = (event: { data?: unknown }): void => {
      const data = event.data;
      let message: Uint8Array | string;
      if (typeof data === "string") message = data;
      else if (data instanceof ArrayBuffer) message = new Uint8Array(data);
      else if (ArrayBuffer.isView(data)) message = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      // A Blob or anything else means binaryType was changed behind our back: not a frame.
      else message = "";
      if (this.handlers !== null) this.handlers.message(message);
      else this.early.push(message);
    };
    const onClose = (event: { code?: number; reason?: string }): void => {
      if (this.closedSeen) return;
      this.closedSeen = true;
      socket.removeEventListener("message", onMessage);
      socket.removeEventListener("close", onClose);
      const info = { code: event.code ?? 1006, reason: event.reason ?? "" };
      if (this.handlers !== null) this.handlers.closed(info.code, info.reason);
      else this.earlyClose = info;
    };
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", onClose);
    // A close event follows every error; listening keeps the `ws` package (an EventEmitter)
    // from throwing an unhandled 'error'. Never removed, for errors after the close.
    socket.addEventListener("error", ignoreError);
    // 3 = CLOSED: the socket was closed before we saw it.
    if (socket.readyState === 3) onClose({ code: 1006, reason: "" });
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  start(handlers: TransportHandlers): void {
    this.handlers = handlers;
    for (const m of this.early.splice(0)) handlers.message(m);
    if (this.earlyClose !== null) handlers.closed(this.earlyClose.code, this.earlyClose.reason);
  }

  send(message: Uint8Array): void {
    // 1 = OPEN; a send on a closing socket would only be dropped (or throw in some versions).
    if (this.socket.readyState === 1) this.socket.send(message as Uint8Array<ArrayBuffer>);
  }

  close(goawayCode: number, reason: string, overLimit = false): void {
    if (this.socket.readyState >= 2) return;
    const text = closeReason(reason);
    try {
      this.socket.close(standardCloseCode(goawayCode, overLimit), text);
    } catch {
      // Browsers refuse 1002, 1008, 1009 and 1011 (InvalidAccessError): section 9.4.
      try {
        this.socket.close(browserCloseCode(goawayCode), text);
      } catch {
        this.socket.close();
      }
    }
  }
}
