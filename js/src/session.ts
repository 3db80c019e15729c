/**
 * The public session: `connect()` for the client role, `Session.accept()` for the server role
 * over a WebSocket a Node server already upgraded, and the `Session` object both return.
 *
 * A session is a thin shell over the core (`core.ts`): it turns the core's callbacks into the
 * `ready` and `closed` promises and the `incoming` stream, and wraps channel states in
 * {@link Channel} handles.
 *
 * @module
 */

import { Channel, toBytes, type BytesLike } from "./channel.js";
import type { ChannelState } from "./channel-state.js";
import { resolveConfig, type SessionOptions } from "./config.js";
import { SessionCore, type Role, type SessionCounters, type SessionState } from "./core.js";
import { ErrorCode, InvalidStateError, SessionError, quiet } from "./errors.js";
import type { Settings } from "./frame.js";
import { WebSocketTransport, useFastestBinaryType, type WebSocketLike } from "./transport.js";

/** The subprotocol a client offers and a server selects (PROTOCOL.md section 2). */
export const SUBPROTOCOL = "wsmux.v1";

/** A WebSocket constructor: the browser's, Node ≥ 22's global one, or the `ws` package's. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** Options of {@link connect}: the session's options, plus how to open the WebSocket. */
/**
 * What {@link connect} changes from the reference defaults of {@link SessionOptions}: a page
 * has one session, so it grants more credit than a server can for each of its thousands.
 * One channel moves one window per round trip: 1 MiB is 20 MB/s at 50 ms (256 KiB: 5 MB/s),
 * and it took Chromium's download from the reference server on loopback from 80 to 105 MB/s
 * (medians of 3); a window read fast grows up to 4 MiB. What the application has not read
 * stays bounded by the session window.
 */
export const CONNECT_DEFAULTS: Readonly<SessionOptions> = Object.freeze({
  initialWindow: 1 << 20,
  sessionWindow: 4 << 20,
  maxChannelWindow: 4 << 20,
});

/**
 * Options of {@link connect}: the session's (with {@link CONNECT_DEFAULTS} for the windows)
 * and the WebSocket's.
 */
export interface ConnectOptions extends SessionOptions {
  /** The WebSocket constructor. Default `globalThis.WebSocket` (Node 20 has none: pass the
   * `ws` package's `WebSocket`). */
  WebSocket?: WebSocketConstructor;
  /** Subprotocols offered. Default `["wsmux.v1"]`; it must contain `wsmux.v1` (section 2). */
  protocols?: string[];
  /** Aborts the connection attempt (before the session is established). */
  signal?: AbortSignal;
}

/** Options of {@link Session.open}. */
export interface OpenOptions {
  /** Metadata for the acceptor (at most 65535 bytes; the reference accepts 16 KiB). */
  metadata?: BytesLike;
  /** A first message, sent in the OPEN frame itself when credit allows. */
  message?: BytesLike;
  /** Finish the sending direction at once (after `message`, if any): with a message, a unary
   * request in one frame (section 5). */
  finish?: boolean;
  /** Aborting it resets the channel with CANCEL. */
  signal?: AbortSignal;
}

/** What {@link Session.stats} reports. */
export interface SessionStats extends SessionCounters {
  /** `open`, `closing` (GOAWAY sent or received, draining) or `closed`. */
  state: SessionState;
  /** Channels held (both sides' opens that have not ended on the wire). */
  channels: number;
  /** The latest round-trip time measured with PING, ms (undefined before the first answer). */
  rtt: number | undefined;
  /** The smoothed round-trip time (7/8 old + 1/8 new, section 10), ms. */
  srtt: number | undefined;
  /** Session credit this end may still send on all channels together, bytes. */
  sendCredit: number;
  /** Session credit the peer has left for sending to this end, bytes. */
  peerCredit: number;
  /** This end's current session window (grows while the application reads fast, section 8). */
  sessionWindow: number;
  /** The peer's SETTINGS (the spec defaults until they arrive). */
  peerSettings: Settings;
}

/** The incoming channels: a ReadableStream that is also async-iterable in every runtime. */
export type IncomingChannels = ReadableStream<Channel> & AsyncIterable<Channel>;

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Gives a ReadableStream an async iterator where the runtime lacks one (older browsers),
 * with the standard's behaviour: leaving the loop early cancels the stream. */
function asyncIterable<T>(stream: ReadableStream<T>): ReadableStream<T> & AsyncIterable<T> {
  const s = stream as unknown as { [Symbol.asyncIterator]?: unknown };
  if (typeof s[Symbol.asyncIterator] !== "function") {
    s[Symbol.asyncIterator] = async function* (): AsyncGenerator<T, void, undefined> {
      const reader = stream.getReader();
      let done = false;
      try {
        for (;;) {
          const r = await reader.read();
          if (r.done) {
            done = true;
            return;
          }
          yield r.value;
        }
      } finally {
        if (!done) await reader.cancel();
        reader.releaseLock();
      }
    };
  }
  return stream as ReadableStream<T> & AsyncIterable<T>;
}

/**
 * One end of a wsmux session over one WebSocket, in the client or the server role: many
 * flow-controlled message channels, opened by either end.
 *
 * Create one with {@link connect} (client) or {@link Session.accept} (server).
 *
 * @example
 * const session = await connect("ws://127.0.0.1:9000/mux", { WebSocket });
 * const ch = session.open("echo", { message: new TextEncoder().encode("hi"), finish: true });
 * console.log(await ch.recvText()); // "hi"
 * await session.close();
 */
export class Session {
  readonly #core: SessionCore;
  readonly #socket: WebSocketLike;
  readonly #ready = deferred<void>();
  readonly #closed = deferred<void>();
  #incomingController: ReadableStreamDefaultController<Channel> | null = null;
  #incomingOpen = true;
  #incomingEnded = false;
  #incomingClosed = false;
  /** Channels the peer opened, not yet handed to the application (the stream pulls). */
  #pending: ChannelState[] = [];
  #pullWaiting = false;

  /** Resolves once the peer's SETTINGS arrived (section 6); rejects if the session ends first. */
  readonly ready: Promise<void>;
  /**
   * Fulfils when the session ended cleanly (GOAWAY NO_ERROR and drain, section 9.3); rejects
   * with a {@link SessionError} otherwise: its `code` is the GOAWAY code that describes the end
   * (this end's, or the peer's), or INTERNAL with `origin: "transport"` when the WebSocket
   * closed without a GOAWAY (connection lost).
   */
  readonly closed: Promise<void>;
  /**
   * Channels the peer opens, in order. Each waits in the accept backlog until the application
   * accepts it (`ch.accept()`, or by reading or sending on it) or refuses it
   * (`ch.refuse(code, reason)`); past the backlog (default 256) new opens are refused with
   * REFUSED. The stream closes when no more can come (GOAWAY, or the end of the session; the
   * session's error is in {@link Session.closed}). Cancelling it refuses every later open.
   */
  readonly incoming: IncomingChannels;
  /** `"client"` (it sent the upgrade request; odd channel ids) or `"server"` (even ids). */
  readonly role: Role;

  private constructor(socket: WebSocketLike, role: Role, options: SessionOptions = {}) {
    const transport = new WebSocketTransport(socket);
    this.#socket = socket;
    this.role = role;
    this.ready = quiet(this.#ready.promise);
    this.closed = quiet(this.#closed.promise);
    this.incoming = asyncIterable(
      // Pulled, not pushed: a channel is handed on only when the application asks, so one
      // the peer opened and ended before that is dropped, not kept in the stream's queue.
      new ReadableStream<Channel>(
        {
          start: (controller) => {
            this.#incomingController = controller;
          },
          pull: () => {
            this.#pullWaiting = true;
            this.#deliver();
          },
          cancel: () => {
            this.#incomingOpen = false;
            this.#incomingEnded = true;
            this.#incomingClosed = true;
          },
        },
        { highWaterMark: 0 },
      ),
    );
    this.#core = new SessionCore(transport, role, options, {
      incoming: (ch) => this.#onIncoming(ch),
      ready: () => this.#ready.resolve(),
      incomingDone: () => this.#endIncoming(),
      closed: (error) => this.#onClosed(error),
    });
    this.#core.start();
  }

  /**
   * Runs the server role over a WebSocket a server already upgraded (for example a `ws`
   * WebSocketServer's connection, whose `handleProtocols` selected `wsmux.v1`). SETTINGS go
   * out at once (section 6).
   *
   * For the section 12 message limit, configure the server's WebSocket layer to refuse
   * messages over 82183 bytes (`maxPayload` in `ws`) with the default MAX_FRAME_PAYLOAD.
   *
   * @throws {Error} when the socket's negotiated subprotocol is not `wsmux.v1` (the socket is
   * then closed with 1002), or it is not open.
   */
  static accept(socket: WebSocketLike, options?: SessionOptions): Session {
    Session.#checkSocket(socket, "server");
    return new Session(socket, "server", options);
  }

  /**
   * Runs the client role over a WebSocket the application opened itself (offering
   * `wsmux.v1`) and that is already open. {@link connect} does this for you.
   *
   * @throws {Error} when the server selected a subprotocol other than `wsmux.v1`, or none
   * (the socket is then closed with 1002), or the socket is not open.
   */
  static client(socket: WebSocketLike, options?: SessionOptions): Session {
    Session.#checkSocket(socket, "client");
    return new Session(socket, "client", options);
  }

  static #checkSocket(socket: WebSocketLike, role: Role): void {
    if (socket.readyState !== 1) {
      throw new Error(`the WebSocket is not open (readyState ${socket.readyState})`);
    }
    if (socket.protocol !== SUBPROTOCOL) {
      try {
        socket.close(1002, "wsmux.v1 not negotiated");
      } catch {
        socket.close();
      }
      const who = role === "client" ? "the server selected" : "the connection negotiated";
      throw new Error(
        `${who} subprotocol ${socket.protocol ? JSON.stringify(socket.protocol) : "none"}, not ${SUBPROTOCOL}`,
      );
    }
  }

  /** The negotiated subprotocol (always `wsmux.v1`). */
  get protocol(): string {
    return this.#socket.protocol;
  }

  /** The WebSocket under the session. Do not send on it or change its listeners. */
  get socket(): WebSocketLike {
    return this.#socket;
  }

  /**
   * Opens a channel to `route` and returns it at once. The OPEN goes out when the peer's
   * MAX_CHANNELS allows (section 7.2; before the peer's SETTINGS arrive, one channel at a
   * time); data sent before then waits with it. The peer may refuse it: the channel's reads
   * and sends then fail with a {@link ResetError} carrying REFUSED, NOT_FOUND or LIMIT.
   *
   * @throws {InvalidStateError} once the session is going away (GOAWAY sent or received) or
   * closed, or its channel ids are used up.
   * @throws {RangeError} for a route over 255 bytes of UTF-8 or metadata over 65535 bytes.
   */
  open(route: string, options: OpenOptions = {}): Channel {
    const metadata = options.metadata === undefined ? new Uint8Array(0) : toBytes(options.metadata).slice();
    const state = this.#core.openChannel(route, metadata);
    const channel = new Channel(this.#core, state, options.signal);
    // Errors of these show on the channel itself (its reads and later sends), so they are
    // marked handled here.
    if (options.message !== undefined) quiet(channel.send(options.message));
    if (options.finish === true) quiet(channel.finish());
    return channel;
  }

  /**
   * Measures the round-trip time with a PING (section 10), joining the one outstanding if
   * any. Resolves with the RTT in ms; rejects with the session's error if it ends first.
   */
  ping(): Promise<number> {
    return this.#core.pingNow();
  }

  /**
   * Ends the session. With NO_ERROR (the default): GOAWAY, then the channels already open
   * finish normally (the drain, section 9.3), channels not accepted yet are refused, and the
   * WebSocket closes with 1000 once none is left or at the drain deadline. With any other code:
   * a session error at once (GOAWAY with that code, every channel fails, section 9.4).
   *
   * Resolves when the session has ended, however it ended (see {@link Session.closed}).
   */
  close(code: number = ErrorCode.NO_ERROR, reason = ""): Promise<void> {
    this.#core.close(code, reason);
    return this.closed.then(
      () => undefined,
      () => undefined,
    );
  }

  /** Counters, round-trip times and session credit. */
  stats(): SessionStats {
    const c = this.#core;
    return {
      ...c.counters,
      state: c.state,
      channels: c.channels.size,
      rtt: c.rtt,
      srtt: c.srtt,
      sendCredit: c.sessSendCredit,
      peerCredit: c.sessRecv.available,
      sessionWindow: c.sessRecv.window,
      peerSettings: { ...c.peer },
    };
  }

  #onIncoming(state: ChannelState): void {
    if (!this.#incomingOpen || this.#incomingController === null) {
      this.#core.refuseChannel(state, ErrorCode.REFUSED, "the application accepts no more channels");
      return;
    }
    // Channels reset while waiting leave the queue (the backlog no longer counts them).
    if (this.#pending.length >= 64) this.#pending = this.#pending.filter((p) => !this.#dropIfReset(p));
    this.#pending.push(state);
    this.#deliver();
  }

  /** Hands the next waiting channel to a pending read of `incoming`; closes it at the end. */
  #deliver(): void {
    const controller = this.#incomingController;
    if (controller === null || this.#incomingClosed) return;
    while (this.#pullWaiting && this.#pending.length > 0) {
      const state = this.#pending.shift() as ChannelState;
      if (this.#dropIfReset(state)) continue; // reset before anyone asked: nothing to hand on
      this.#pullWaiting = false;
      this.#core.leaveBacklog(state); // the application has it now
      controller.enqueue(new Channel(this.#core, state));
    }
    if (this.#incomingEnded && this.#pending.length === 0) {
      this.#incomingClosed = true;
      controller.close();
    }
  }

  /** Drops a waiting channel that was reset before the application took it; true if so. */
  #dropIfReset(state: ChannelState): boolean {
    if (!resetBeforeTaken(state)) return false;
    this.#core.leaveBacklog(state);
    return true;
  }

  #endIncoming(): void {
    if (this.#incomingEnded) return;
    this.#incomingEnded = true;
    this.#incomingOpen = false;
    this.#deliver(); // closes once what arrived before the end is handed on
  }

  #onClosed(error: SessionError | null): void {
    const readyError = error ?? new SessionError(ErrorCode.NO_ERROR, "the session ended before the peer's SETTINGS", "local");
    this.#ready.reject(readyError); // no effect once resolved
    if (error === null) this.#closed.resolve();
    else this.#closed.reject(error);
  }
}

/**
 * Opens a WebSocket to `url`, offering `wsmux.v1`, and runs the client role of a session over
 * it. Resolves once the WebSocket is open and the server selected `wsmux.v1`; this end's
 * SETTINGS are then the first frame on the wire (section 6). The peer's SETTINGS may still be
 * on their way: await {@link Session.ready} for them (nothing needs to wait for them).
 *
 * @example
 * import { WebSocket } from "ws"; // Node 20; browsers and Node ≥ 22 have a global one
 * const session = await connect("ws://127.0.0.1:9000/mux", { WebSocket });
 *
 * @throws {TypeError} (rejects) when there is no WebSocket constructor, or `protocols` lacks `wsmux.v1`.
 * @throws {Error} (rejects) when the connection fails or closes before it opens, or the
 * server selected another subprotocol or none (the socket is closed with 1002).
 * @throws the signal's reason (rejects) when `signal` aborts first.
 */
export function connect(url: string, options: ConnectOptions = {}): Promise<Session> {
  const { WebSocket: Ctor, protocols, signal, ...sessionOptions } = options;
  const WS = Ctor ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (WS === undefined) {
    return Promise.reject(
      new TypeError("no WebSocket constructor: pass one as options.WebSocket (in Node 20, the ws package's)"),
    );
  }
  const offered = protocols ?? [SUBPROTOCOL];
  if (!offered.includes(SUBPROTOCOL)) {
    return Promise.reject(new TypeError(`options.protocols must offer ${SUBPROTOCOL}`));
  }
  if (signal?.aborted) return Promise.reject(signal.reason);
  try {
    resolveConfig({ ...CONNECT_DEFAULTS, ...sessionOptions }); // a bad option fails here, before a socket is opened
  } catch (e) {
    return Promise.reject(e);
  }
  return new Promise<Session>((resolve, reject) => {
    let socket: WebSocketLike;
    try {
      socket = new WS(url, offered);
    } catch (e) {
      reject(e);
      return;
    }
    useFastestBinaryType(socket);
    const cleanup = (): void => {
      socket.removeEventListener("open", onOpen);
      socket.removeEventListener("error", onError);
      socket.removeEventListener("close", onClose);
      signal?.removeEventListener("abort", onAbort);
    };
    const onOpen = (): void => {
      cleanup();
      try {
        resolve(Session.client(socket, { ...CONNECT_DEFAULTS, ...sessionOptions }));
      } catch (e) {
        reject(e);
      }
    };
    const onError = (event: { message?: string; error?: unknown }): void => {
      cleanup();
      const detail = event.message ?? (event.error instanceof Error ? event.error.message : "");
      reject(new Error(`WebSocket connection to ${url} failed${detail ? `: ${detail}` : ""}`));
    };
    const onClose = (event: { code?: number; reason?: string }): void => {
      cleanup();
      reject(new Error(`WebSocket to ${url} closed before it opened (code ${event.code ?? 1006})`));
    };
    const onAbort = (): void => {
      cleanup();
      // Closing a connecting socket fires an error event (and `ws` throws one nobody hears).
      socket.addEventListener("error", () => undefined);
      try {
        socket.close();
      } catch {
        // closing a socket that is still connecting may throw in some implementations
      }
      reject(signal?.reason ?? new InvalidStateError("aborted"));
    };
    socket.addEventListener("open", onOpen);
    socket.addEventListener("error", onError);
    socket.addEventListener("close", onClose);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * A channel the peer opened and that was over before the application took it, with nothing to
 * read: reset or stopped (one that arrived complete stays acceptable and readable, section 9.3).
 */
function resetBeforeTaken(state: ChannelState): boolean {
  return state.released && (state.recv === "reset" || state.recv === "stopped");
}
