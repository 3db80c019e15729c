/**
 * The public channel handle: messages in and out, half-close, reset, stop, and WHATWG stream
 * views. A thin layer over the channel's state in the session core.
 *
 * @module
 */

import type { ChannelState } from "./channel-state.js";
import type { SessionCore } from "./core.js";
import { ErrorCode } from "./errors.js";
import { channelReadable, channelWritable } from "./streams.js";

/** Bytes a channel accepts to send: a `Uint8Array`, any other view, or an `ArrayBuffer`. */
export type BytesLike = Uint8Array | ArrayBufferView | ArrayBuffer;

/** What `Channel.stats()` reports. */
export interface ChannelStats {
  /** Channel id (odd: opened by the client, even: by the server). */
  id: number;
  /** State of this end's sending direction. */
  send: "open" | "finishing" | "finished" | "reset" | "stopped";
  /** State of the receiving direction. */
  recv: "open" | "finished" | "reset" | "stopped";
  /** Messages whose last frame was written. */
  messagesSent: number;
  /** Payload bytes of those messages. */
  bytesSent: number;
  /** Whole messages received (read or not). */
  messagesReceived: number;
  /** Payload bytes received (read or not). */
  bytesReceived: number;
  /** Credit this end may still send on the channel (bytes, each part costs 64 more). */
  sendCredit: number;
  /** Credit the peer has left on the channel. */
  peerCredit: number;
  /** Bytes queued to send and not yet written. */
  queuedBytes: number;
  /** Whole messages received and not yet read. */
  unreadMessages: number;
  /** Payload bytes received and not yet read (their credit is not yet returned). */
  unreadBytes: number;
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/** A `Uint8Array` view of the bytes (no copy). */
export function toBytes(data: BytesLike): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError("expected a Uint8Array, an ArrayBufferView or an ArrayBuffer");
}

/** The wire code for a stream's cancel/abort reason: a number, an object's `code`, else CANCEL. */
export function codeOf(reason: unknown): number {
  if (typeof reason === "number" && Number.isInteger(reason) && reason >= 0 && reason <= 0xffffffff) return reason;
  if (typeof reason === "object" && reason !== null && "code" in reason) {
    const code = (reason as { code: unknown }).code;
    if (typeof code === "number" && Number.isInteger(code) && code >= 0 && code <= 0xffffffff) return code;
  }
  return ErrorCode.CANCEL;
}

/**
 * One channel of a session: a pair of message streams, one each way.
 *
 * Messages keep their boundaries: each `send` is one message at the peer, each `recv` returns
 * one whole message. Credit is returned to the peer as messages are read, so a reader that
 * stops reading stops its sender after one channel window.
 *
 * @example
 * const ch = session.open("echo");
 * await ch.sendText("hi");
 * await ch.finish();
 * for await (const msg of ch) console.log(new TextDecoder().decode(msg));
 */
export class Channel implements AsyncIterable<Uint8Array> {
  readonly #s: ChannelState;
  readonly #core: SessionCore;
  #readable: ReadableStream<Uint8Array> | null = null;
  #writable: WritableStream<Uint8Array> | null = null;

  /** @internal */
  constructor(core: SessionCore, state: ChannelState, signal?: AbortSignal) {
    this.#core = core;
    this.#s = state;
    if (signal !== undefined) {
      const onAbort = (): void => this.reset(ErrorCode.CANCEL, "aborted");
      if (signal.aborted) queueMicrotask(onAbort);
      else {
        signal.addEventListener("abort", onAbort, { once: true });
        // A long-lived signal shared by many channels must not keep the ended ones alive.
        const detach = (): void => signal.removeEventListener("abort", onAbort);
        state.closed.then(detach, detach);
      }
    }
  }

  /** The channel id: odd when the client opened it, even when the server did. */
  get id(): number {
    return this.#s.id;
  }
  /** The route the opener asked for (section 4.2). */
  get route(): string {
    return this.#s.route;
  }
  /** The opener's metadata (for example an RPC call header). */
  get metadata(): Uint8Array {
    return this.#s.metadata;
  }
  /** `"local"` when this end opened the channel, `"remote"` when the peer did. */
  get initiator(): "local" | "remote" {
    return this.#s.local ? "local" : "remote";
  }

  /**
   * Accepts a channel the peer opened (there is no accept frame: this takes it out of the
   * accept backlog). Sending or reading accepts too. Returns the channel.
   */
  accept(): this {
    this.#core.acceptChannel(this.#s);
    return this;
  }

  /**
   * Refuses a channel the peer opened: RESET with `code` (default NOT_FOUND, section 7.2).
   * To the opener it is a reset with that code.
   */
  refuse(code: number = ErrorCode.NOT_FOUND, reason = ""): void {
    this.#core.refuseChannel(this.#s, code, reason);
  }

  /**
   * Sends one message. Resolves once its last frame is written to the WebSocket, which waits
   * for channel and session credit and for the WebSocket's buffer to drain below the
   * high-water mark. The bytes must not change until then.
   *
   * Rejects with {@link MessageTooLargeError} for a message over the peer's MAX_MESSAGE_SIZE
   * (the direction then ends with RESET LIMIT, section 5), with a {@link ResetError} or
   * {@link StopError} when the channel was reset or stopped, with the {@link SessionError}
   * when the session ended, and with InvalidStateError after `finish()`.
   */
  send(data: BytesLike): Promise<void> {
    this.accept();
    try {
      return this.#core.enqueueSend(this.#s, toBytes(data));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Sends a string as one UTF-8 message. */
  sendText(text: string): Promise<void> {
    return this.send(encoder.encode(text));
  }

  /**
   * The next whole message, or `null` once the peer finished (a clean end). Rejects with a
   * {@link ResetError} (code and reason) when the channel was reset, or the session's error.
   */
  recv(): Promise<Uint8Array | null> {
    this.accept();
    return this.#s.nextMessage();
  }

  /** The next message decoded as UTF-8 (rejects with a TypeError on invalid UTF-8). */
  async recvText(): Promise<string | null> {
    const m = await this.recv();
    return m === null ? null : decoder.decode(m);
  }

  /**
   * Ends this end's sending direction (FIN, section 9.1) after the messages already queued.
   * Resolves when the FIN is written. The receiving direction goes on.
   */
  finish(): Promise<void> {
    this.accept();
    return this.#core.finishChannel(this.#s);
  }

  /**
   * Aborts the channel in both directions (RESET, section 9.2). Queued messages are dropped;
   * so are unread ones unless the peer had finished. Nothing happens on a channel that is over.
   */
  reset(code: number = ErrorCode.CANCEL, reason = ""): void {
    this.#core.resetChannel(this.#s, code, reason);
  }

  /**
   * Stops reading (STOP, section 4.9): asks the peer to stop sending, drops unread messages.
   * This end's sending direction goes on.
   */
  stopReceiving(code: number = ErrorCode.CANCEL, reason = ""): void {
    this.#core.stopChannel(this.#s, code, reason);
  }

  /**
   * Fulfils once the channel is over cleanly in both directions (this end's FIN sent, the
   * peer's FIN received); rejects with the {@link ResetError}, {@link StopError} or
   * {@link SessionError} as soon as either direction fails: a reset by either end, a STOP,
   * the end of the session. A callee busy with a request learns of a cancellation here.
   */
  get closed(): Promise<void> {
    return this.#s.closed;
  }

  /** Counters and credit of the channel. */
  stats(): ChannelStats {
    const s = this.#s;
    return {
      id: s.id,
      send: s.send,
      recv: s.recv,
      ...s.counters,
      sendCredit: s.sendCredit,
      peerCredit: s.window.available,
      queuedBytes: s.outBytes,
      unreadMessages: s.unreadMessages,
      unreadBytes: s.partsBytes,
    };
  }

  /**
   * The incoming messages as a ReadableStream (one chunk per message). Its backpressure is the
   * credit: messages are read from the channel only as the stream is read. `cancel(code)`
   * sends STOP. Created on first use; do not mix with `recv`.
   */
  get readable(): ReadableStream<Uint8Array> {
    let readable = this.#readable;
    if (readable === null) {
      readable = channelReadable(this);
      this.#readable = readable;
    }
    return readable;
  }

  /**
   * The outgoing messages as a WritableStream (one message per chunk). A write resolves when
   * the message is written, so backpressure is the credit. `close()` finishes, `abort(code)`
   * resets.
   */
  get writable(): WritableStream<Uint8Array> {
    let writable = this.#writable;
    if (writable === null) {
      writable = channelWritable(this);
      this.#writable = writable;
    }
    return writable;
  }

  /** Iterates the incoming messages to the clean end; throws on reset. */
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const m = await this.recv();
      if (m === null) return;
      yield m;
    }
  }
}
