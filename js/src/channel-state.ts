/**
 * The state of one channel, as the session core sees it: its two directions, the messages
 * queued to send, the messages received and not yet read, and its credit.
 *
 * This module keeps queues and settles promises; it never writes a frame. The core
 * (`core.ts`) handles what arrives, the scheduler (`scheduler.ts`) turns queued messages into
 * frames.
 *
 * Sending direction (section 7.4):
 *
 * ```
 *          finish               FIN transmitted
 *   open ----------> finishing -----------------> finished
 *     |                  |
 *     +------------------+--- RESET sent or received, session error ---> reset
 *     +------------------+--- STOP received ------------------------------> stopped
 * ```
 *
 * Receiving direction:
 *
 * ```
 *          FIN received
 *   open --------------> finished
 *     |
 *     +--- RESET sent or received, session error ---> reset
 *     +--- STOP sent --------------------------------> stopped
 * ```
 *
 * @module
 */

import { RecvWindow } from "./credit.js";
import { quiet } from "./errors.js";

/** State of the sending direction. */
export type SendState = "open" | "finishing" | "finished" | "reset" | "stopped";
/** State of the receiving direction. */
export type RecvState = "open" | "finished" | "reset" | "stopped";

/** A message queued for sending. */
export interface OutMessage {
  data: Uint8Array;
  /** Bytes of `data` already transmitted. */
  offset: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** A received message part (a DATA payload or OPEN data part) waiting to be read. */
export interface InPart {
  /** The payload, copied out of the WebSocket message. */
  data: Uint8Array;
  /** It ends a message. */
  eom: boolean;
  /** Its credit (payload + 64), channel and session, returned when it is read. */
  cost: number;
}

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

/** Per-channel counters reported by `Channel.stats()`. */
export interface ChannelCounters {
  messagesSent: number;
  bytesSent: number;
  messagesReceived: number;
  bytesReceived: number;
}

/** The state of one channel. @internal */
export class ChannelState {
  send: SendState = "open";
  recv: RecvState = "open";
  /** The frame ending each direction on the wire was sent or received (section 7.4). */
  sendOver = false;
  recvOver = false;
  /** OPEN transmitted (always true for channels the peer opened). */
  openSent: boolean;
  /** For channels the peer opened: waiting in the accept backlog. */
  inBacklog = false;
  /** For channels the peer opened: the application accepted it (counted once). */
  accepted = false;
  /** No longer in the session's map of channels. */
  released = false;

  /** Credit this end may still send on the channel. */
  sendCredit: number;
  readonly out: OutMessage[] = [];
  /** Queued bytes not yet transmitted. */
  outBytes = 0;
  /** Sends waiting for the peer's SETTINGS before they can be queued (see `enqueueSend`). */
  sendsWaiting = 0;
  /** FIN requested by `finish()`. */
  finRequested = false;
  /** A message was refused as too large: the direction ends with RESET LIMIT (section 5). */
  poisoned = false;
  /** STOP to transmit right after this channel's OPEN. */
  stopAfterOpen: { code: number; reason: string } | null = null;
  private finWaiters: Array<Waiter<void>> = [];
  /** Error that ends the sending direction (reset, stop, session end). */
  sendError: unknown = null;

  readonly window: RecvWindow;
  /** A channel WINDOW is queued in the scheduler. */
  windowQueued = false;
  /** Parts received and not yet read: their credit is still the peer's to wait for (section 8). */
  readonly parts: InPart[] = [];
  /** Payload bytes in `parts`. */
  partsBytes = 0;
  /** Bytes of unread parts whose session credit went back when the channel ended on the
   * wire (they stay readable, counted against the session's held bytes instead). */
  heldUnread = 0;
  /** Bytes of the incoming message so far (queued and reassembled): MAX_MESSAGE_SIZE and
   * "FIN inside a message" are judged on it (section 5). */
  incomingLen = 0;
  /** Parts of the message being reassembled for a waiting reader (their credit returned). */
  partial: Uint8Array[] = [];
  partialLen = 0;
  /** Readers waiting for the next message. */
  readonly readers: Array<Waiter<Uint8Array | null>> = [];
  /** Error that ends the receiving direction (reset, stop, session end). */
  recvError: unknown = null;
  /** Moves queued parts to waiting readers (installed by the core, which owns the credit). */
  pump: () => void = () => undefined;

  readonly counters: ChannelCounters = { messagesSent: 0, bytesSent: 0, messagesReceived: 0, bytesReceived: 0 };

  /** Settles once the channel is over: see {@link ChannelState.closed}. */
  private closedSettled = false;
  private closedResolve: () => void = () => undefined;
  private closedReject: (error: unknown) => void = () => undefined;
  /**
   * Fulfils once both directions have ended cleanly (FIN sent and FIN received); rejects with
   * the error as soon as either direction fails (reset, stopped, or the session's end).
   */
  readonly closed: Promise<void> = quiet(
    new Promise<void>((resolve, reject) => {
      this.closedResolve = resolve;
      this.closedReject = reject;
    }),
  );

  constructor(
    readonly id: number,
    readonly local: boolean,
    readonly route: string,
    readonly metadata: Uint8Array,
    sendCredit: number,
    recvWindow: number,
  ) {
    this.openSent = !local;
    this.sendCredit = sendCredit;
    this.window = new RecvWindow(recvWindow);
  }

  /** Both directions have ended on the wire: the channel no longer counts (section 7.4). */
  get over(): boolean {
    return this.sendOver && this.recvOver;
  }

  /** The sending direction can still carry data. */
  get canSend(): boolean {
    return this.send === "open" || this.send === "finishing";
  }

  /** Waits for the FIN to be transmitted. */
  waitFinished(): Promise<void> {
    if (this.send === "finished") return Promise.resolve();
    if (this.sendError !== null) return Promise.reject(this.sendError);
    return new Promise((resolve, reject) => this.finWaiters.push({ resolve, reject }));
  }

  /** The FIN went out. */
  finished(): void {
    this.send = "finished";
    this.sendOver = true;
    for (const w of this.finWaiters.splice(0)) w.resolve();
    this.settleClosed(null);
  }

  /** Settles `closed`: rejects on the first error, fulfils once both directions ended cleanly. */
  private settleClosed(error: unknown): void {
    if (this.closedSettled) return;
    if (error !== null) {
      this.closedSettled = true;
      this.closedReject(error);
    } else if (this.send === "finished" && this.recv === "finished") {
      this.closedSettled = true;
      this.closedResolve();
    }
  }

  /** Ends the sending direction with an error: queued messages and `finish()` reject. */
  failSend(state: "reset" | "stopped", error: unknown): void {
    if (!this.canSend) return;
    this.send = state;
    this.sendError = error;
    this.sendOver = true;
    this.outBytes = 0;
    for (const m of this.out.splice(0)) m.reject(error);
    for (const w of this.finWaiters.splice(0)) w.reject(error);
    this.settleClosed(error);
  }

  /**
   * Ends the receiving direction with an error, dropping unread parts and the partial message,
   * unless the peer had finished (then its data stays readable, section 9.2) and `force` is
   * false. Returns the session credit of the dropped parts and the held bytes freed.
   */
  failRecv(state: "reset" | "stopped", error: unknown, force = false): { credit: number; held: number } {
    const dropped = { credit: 0, held: 0 };
    if (this.recv === "finished" && !force) return dropped;
    if (this.recv === "open" || this.recv === "finished") {
      for (const p of this.parts.splice(0)) dropped.credit += p.cost;
      this.partsBytes = 0;
      dropped.held = this.partialLen;
      this.partial = [];
      this.partialLen = 0;
      this.recv = state;
      this.recvError = error;
      this.settleClosed(error);
    }
    this.recvOver = true;
    for (const r of this.readers.splice(0)) r.reject(error);
    return dropped;
  }

  /** A part arrived. */
  pushPart(part: InPart): void {
    this.parts.push(part);
    this.partsBytes += part.data.length;
    this.counters.bytesReceived += part.data.length;
    this.incomingLen = part.eom ? 0 : this.incomingLen + part.data.length;
    if (part.eom) this.counters.messagesReceived++;
    if (this.readers.length > 0) this.pump();
  }

  /** The peer's FIN arrived. */
  peerFinished(): void {
    this.recv = "finished";
    this.recvOver = true;
    if (this.readers.length > 0) this.pump();
    this.settleClosed(null);
  }

  /** Whole messages received and not read yet. */
  get unreadMessages(): number {
    let n = 0;
    for (const p of this.parts) if (p.eom) n++;
    return n;
  }

  /** The next message, or null at a clean end; rejects once the direction failed. */
  nextMessage(): Promise<Uint8Array | null> {
    if (this.recv === "reset" || this.recv === "stopped") return Promise.reject(this.recvError);
    const promise = new Promise<Uint8Array | null>((resolve, reject) => this.readers.push({ resolve, reject }));
    this.pump();
    return promise;
  }
}
