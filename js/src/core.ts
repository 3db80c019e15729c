/**
 * The session core: one end of a wsmux session, in either role. It handles every frame that
 * arrives (sections 6–13, in the order of checks of section 13.1), keeps the channels, the
 * credit, the budgets, keepalive and the session's end, and queues what must be sent; the
 * scheduler (`scheduler.ts`) writes it.
 *
 * Methods come in three kinds: `handle*`/`on*` for input from the peer, commands from the
 * application (`openChannel`, `enqueueSend`, `resetChannel`, `close`, ...), and the end of
 * the session (`fail`, `endGracefully`, `transportClosed`). Input from the peer never throws:
 * what breaks a rule becomes the spec's channel reset or session error.
 *
 * @module
 */

import { ChannelState } from "./channel-state.js";
import { resolveConfig, localSettings, messageLimit, type SessionConfig, type SessionOptions } from "./config.js";
import { PART_CHARGE, RecvWindow, TokenBucket, addCredit, partCost } from "./credit.js";
import {
  ErrorCode,
  FrameDecodeError,
  InvalidStateError,
  MessageTooLargeError,
  ResetError,
  SessionError,
  StopError,
  codeName,
} from "./errors.js";
import {
  SPEC_DEFAULTS,
  decodeFrame,
  encodeFrame,
  isPack,
  splitPack,
  type Frame,
  type OpenFrame,
  type Settings,
} from "./frame.js";
import { flush, writeNow } from "./scheduler.js";
import type { Transport } from "./transport.js";

/** Which end of the WebSocket this session is. */
export type Role = "client" | "server";

/** Lifecycle of a session: `open`, then `closing` (GOAWAY sent or received, draining), then `closed`. */
export type SessionState = "open" | "closing" | "closed";

/** Callbacks from the core to the public session object. */
export interface CoreHooks {
  /** The peer opened a channel (it is in the accept backlog). */
  incoming(ch: ChannelState): void;
  /** The peer's SETTINGS arrived. */
  ready(): void;
  /** No more incoming channels will come (GOAWAY, or the end). */
  incomingDone(error: unknown): void;
  /** The session ended: null for a clean end. */
  closed(error: SessionError | null): void;
}

interface PingState {
  data: Uint8Array;
  dueAt: number;
  sentAt: number | undefined;
  waiters: Array<{ resolve: (rtt: number) => void; reject: (e: unknown) => void }>;
}

/** Counters reported by `Session.stats()`. */
export interface SessionCounters {
  /** wsmux frames written (each entry of a PACK counts). */
  framesSent: number;
  /** wsmux frames received (each entry of a PACK counts). */
  framesReceived: number;
  /** WebSocket messages written. */
  messagesSent: number;
  /** WebSocket messages received. */
  messagesReceived: number;
  /** Bytes of the WebSocket messages written. */
  bytesSent: number;
  /** Bytes of the WebSocket messages received. */
  bytesReceived: number;
  /** Channels this end opened. */
  channelsOpened: number;
  /** Channels the peer opened that the application accepted. */
  channelsAccepted: number;
}

const LAST_ID = { client: 0xffffffff, server: 0xfffffffe } as const;

/** The session state machine. @internal */
export class SessionCore {
  readonly config: SessionConfig;
  /** What this end announced. */
  readonly local: Settings;
  /** What the peer announced (the spec defaults until its SETTINGS arrive). */
  peer: Settings = { ...SPEC_DEFAULTS };
  peerSettingsReceived = false;
  settingsSent = false;
  state: SessionState = "open";

  readonly channels = new Map<number, ChannelState>();
  private nextLocalId: number;
  /** Highest id of this end's OPENs transmitted. */
  highestOpenSent = 0;
  /** Highest id the peer has opened. */
  highestPeerId = 0;
  /** Channels this end opened that count at the peer (OPEN transmitted, not over). */
  localOpen = 0;
  /** Channels the peer opened that count here. */
  remoteOpen = 0;
  /** Peer-opened channels not yet accepted or refused. */
  backlog = 0;

  /** Credit this end may send on all channels together. */
  sessSendCredit = SPEC_DEFAULTS.sessionWindow;
  readonly sessRecv: RecvWindow;
  sessWindowQueued = false;
  /** Bytes of multi-part messages held for whole-message readers (section 12). */
  held = 0;
  private emptyRun = 0;
  private readonly remoteResets: TokenBucket;
  private readonly localResets: TokenBucket;

  /** RESET, STOP and GOAWAY frames to send, in order. */
  readonly control: Array<{ bytes: Uint8Array; provoked: boolean }> = [];
  provokedQueued = 0;
  /** This end's channels whose OPEN waits (id order). */
  readonly pendingOpens: ChannelState[] = [];
  /** Channels with data or FIN to send, round-robin. */
  readonly ring: ChannelState[] = [];
  readonly inRing = new Set<ChannelState>();
  readonly windowQueue: ChannelState[] = [];
  /** The latest PING to answer (answers are coalesced, section 10). */
  pingAnswer: Uint8Array | null = null;
  ping: PingState | null = null;
  rtt: number | undefined;
  srtt: number | undefined;

  goawaySent = false;
  goawayReceived: { code: number; reason: string; lastId: number } | null = null;
  /** The error the session ended with, once it ended. */
  endError: SessionError | null = null;
  readonly counters: SessionCounters = {
    framesSent: 0,
    framesReceived: 0,
    messagesSent: 0,
    messagesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    channelsOpened: 0,
    channelsAccepted: 0,
  };

  private flushScheduled = false;
  private pollTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private pingTimeout: ReturnType<typeof setTimeout> | null = null;
  /** Bytes of unread parts of channels over on the wire (see `releaseUnread`). */
  private unreadOfEnded = 0;
  /** The timer that sends the next keepalive PING. */
  private keepaliveTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly transport: Transport,
    readonly role: Role,
    options: SessionOptions,
    private readonly hooks: CoreHooks,
  ) {
    this.config = resolveConfig(options);
    this.local = localSettings(this.config);
    this.nextLocalId = role === "client" ? 1 : 2;
    this.sessRecv = new RecvWindow(this.config.sessionWindow);
    const now = this.config.now();
    this.remoteResets = new TokenBucket(this.config.remoteResetBurst, this.config.remoteResetRefill, now);
    this.localResets = new TokenBucket(this.config.localResetBurst, this.config.localResetRefill, now);
  }

  /** The session has ended (a method, so that TypeScript does not narrow `state` across calls). */
  isClosed(): boolean {
    return this.state === "closed";
  }

  /** Starts the session: SETTINGS (and the first keepalive PING) go out at once (section 6). */
  start(): void {
    this.transport.start({
      message: (data) => this.handleMessage(data),
      closed: (code, reason) => this.transportClosed(code, reason),
    });
    if (this.config.keepaliveInterval > 0) this.newPing();
    this.schedule();
  }

  // ---------------------------------------------------------------- scheduling and timers

  /** Makes the scheduler run once the current task's work is done (never delays a frame). */
  schedule(): void {
    if (this.flushScheduled || this.state === "closed") return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      if (this.state !== "closed") flush(this);
    });
  }

  /** The WebSocket's buffer is full: look again shortly (browsers have no drain event). */
  pollLater(ms: number): void {
    if (this.pollTimer !== null || this.state === "closed") return;
    this.pollTimer = this.timer(() => {
      this.pollTimer = null;
      this.schedule();
    }, ms);
  }

  timer(fn: () => void, ms: number): ReturnType<typeof setTimeout> {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, Math.max(0, ms));
    // Node: a session's timers alone never keep the process alive (the socket does).
    (t as { unref?: () => void }).unref?.();
    this.timers.add(t);
    return t;
  }

  private clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.pollTimer = null;
    this.keepaliveTimer = null;
    this.pingTimeout = null;
  }

  addToRing(ch: ChannelState): void {
    if (this.inRing.has(ch)) return;
    this.inRing.add(ch);
    this.ring.push(ch);
  }

  /** Whether another OPEN may go out (section 6: one before the peer's SETTINGS). */
  canOpenMore(): boolean {
    return this.localOpen < (this.peerSettingsReceived ? this.peer.maxChannels : 1);
  }

  // ---------------------------------------------------------------- input

  /** One WebSocket message from the peer. */
  handleMessage(data: Uint8Array | string): void {
    if (this.state === "closed") return;
    if (typeof data === "string") return this.fail(ErrorCode.PROTOCOL, "text WebSocket message");
    this.counters.messagesReceived++;
    this.counters.bytesReceived += data.length;
    if (data.length > messageLimit(this.config)) {
      return this.fail(ErrorCode.LIMIT, `WebSocket message of ${data.length} bytes over the limit`, true);
    }
    try {
      if (isPack(data)) {
        for (const entry of splitPack(data)) {
          this.handleFrame(decodeFrame(entry, true));
          if (this.isClosed()) return;
        }
      } else {
        this.handleFrame(decodeFrame(data));
      }
    } catch (e) {
      if (e instanceof FrameDecodeError) this.fail(ErrorCode.PROTOCOL, e.reason);
      else this.fail(ErrorCode.INTERNAL, `internal error: ${String(e)}`);
    }
  }

  /** One decoded frame. */
  handleFrame(f: Frame): void {
    this.counters.framesReceived++;
    if (!this.peerSettingsReceived && f.type !== "SETTINGS") {
      return this.fail(ErrorCode.PROTOCOL, "first frame is not SETTINGS");
    }
    switch (f.type) {
      case "SETTINGS":
        return this.onSettings(f.settings);
      case "DATA":
        return this.onData(f.id, f.fin, f.eom, f.payload);
      case "OPEN":
        return this.onOpen(f);
      case "WINDOW":
        return this.onWindow(f.id, f.increment);
      case "RESET":
        return this.onReset(f.id, f.code, f.reason);
      case "STOP":
        return this.onStop(f.id, f.code, f.reason);
      case "PING":
        return this.onPing(f.ack, f.data);
      case "GOAWAY":
        return this.onGoaway(f.lastId, f.code, f.reason);
      case "EXTENSION":
        return; // ignored with its payload (section 4)
    }
  }

  private onSettings(s: Settings): void {
    if (this.peerSettingsReceived) return this.fail(ErrorCode.PROTOCOL, "second SETTINGS");
    if (s.version !== 1) return this.fail(ErrorCode.VERSION, `unsupported version ${s.version}`);
    for (const key of ["initialWindow", "maxFramePayload", "maxMessageSize", "sessionWindow"] as const) {
      if (s[key] < SPEC_DEFAULTS[key]) {
        return this.fail(ErrorCode.PROTOCOL, `SETTINGS ${key} ${s[key]} below the minimum ${SPEC_DEFAULTS[key]}`);
      }
    }
    this.peerSettingsReceived = true;
    const channelDelta = s.initialWindow - SPEC_DEFAULTS.initialWindow;
    for (const ch of this.channels.values()) ch.sendCredit += channelDelta;
    this.sessSendCredit += s.sessionWindow - SPEC_DEFAULTS.sessionWindow;
    this.peer = { ...s };
    this.settingsArrived();
    this.hooks.ready();
    this.schedule();
  }

  private isLocalId(id: number): boolean {
    return (id % 2 === 1) === (this.role === "client");
  }

  /**
   * The channel a DATA, WINDOW, RESET or STOP names (section 7.3): the channel, null when the
   * frame is to be dropped, undefined when it was a session error (already raised).
   */
  private lookup(id: number, what: string): ChannelState | null | undefined {
    const ch = this.channels.get(id);
    if (ch !== undefined) {
      if (ch.local && !ch.openSent) {
        this.fail(ErrorCode.PROTOCOL, `${what} for channel ${id}, whose OPEN was not transmitted`);
        return undefined;
      }
      return ch;
    }
    const highest = this.isLocalId(id) ? this.highestOpenSent : this.highestPeerId;
    if (id > highest) {
      this.fail(ErrorCode.PROTOCOL, `${what} for channel ${id}, never opened`);
      return undefined;
    }
    return null;
  }

  private onData(id: number, fin: boolean, eom: boolean, payload: Uint8Array): void {
    if (payload.length > this.local.maxFramePayload) {
      return this.fail(ErrorCode.PROTOCOL, `DATA payload of ${payload.length} bytes over MAX_FRAME_PAYLOAD`);
    }
    const part = payload.length > 0 || eom;
    if (part && !this.sessRecv.consume(partCost(payload.length))) {
      return this.fail(ErrorCode.FLOW_CONTROL, "DATA beyond the session credit");
    }
    if (part) this.sessionMayGrow();
    if (!this.countEmpty(payload.length, eom, fin)) return;
    const ch = this.lookup(id, "DATA");
    if (ch === undefined) return;
    if (ch === null) {
      if (part) this.returnRead(null, partCost(payload.length));
      return;
    }
    this.deliver(ch, fin, eom, payload);
  }

  /** The empty-frame budget (section 12): false when the session failed. */
  private countEmpty(length: number, eom: boolean, fin: boolean): boolean {
    if (length > 0) this.emptyRun = 0;
    else if (!eom && !fin && ++this.emptyRun > this.config.maxEmptyFrames) {
      this.fail(ErrorCode.LIMIT, `more than ${this.config.maxEmptyFrames} empty DATA frames in a row`);
      return false;
    }
    return true;
  }

  /** A DATA payload or OPEN data part for a held channel, from the direction check on. */
  private deliver(ch: ChannelState, fin: boolean, eom: boolean, payload: Uint8Array): void {
    const len = payload.length;
    const part = len > 0 || eom;
    const cost = part ? partCost(len) : 0;
    if (ch.recv !== "open") {
      if (part) this.returnRead(null, cost);
      if (ch.recv === "finished" && !ch.sendOver) {
        this.provokedReset(ch, ErrorCode.STREAM_CLOSED, "DATA after FIN");
      }
      return;
    }
    if (part && !ch.window.consume(cost)) {
      return this.fail(ErrorCode.FLOW_CONTROL, `DATA beyond the credit of channel ${ch.id}`);
    }
    if (ch.incomingLen + len > this.local.maxMessageSize) {
      this.returnRead(null, cost);
      return this.provokedReset(ch, ErrorCode.LIMIT, "message over MAX_MESSAGE_SIZE");
    }
    if (fin && !eom && ch.incomingLen + len > 0) {
      this.returnRead(null, cost);
      return this.provokedReset(ch, ErrorCode.PROTOCOL, "FIN inside a message");
    }
    // Parts wait, credit unreturned, until the application reads (section 8): a reader that
    // stalls stops its sender after one channel window.
    if (part) ch.pushPart({ data: ownBytes(payload), eom, cost });
    if (fin) {
      ch.peerFinished();
      this.maybeRelease(ch);
    }
  }

  /**
   * Hands queued parts to the channel's waiting readers: parts of a message move into its
   * reassembly buffer, which counts as read for credit (section 5), bounded per session by
   * `maxHeldBytes` (section 12: a part that does not fit resets its channel with LIMIT).
   */
  private pump(ch: ChannelState): void {
    while (ch.readers.length > 0) {
      const part = ch.parts[0];
      if (part === undefined) {
        if (ch.recv !== "finished") return;
        ch.readers.shift()?.resolve(null);
        continue;
      }
      const len = part.data.length;
      if (!part.eom && this.held + len > this.config.maxHeldBytes) {
        const reason = "reassembly bound of the session passed";
        this.provokedReset(ch, ErrorCode.LIMIT, reason);
        // A finished direction keeps its data through a reset (section 9.2); this one cannot.
        if (ch.readers.length > 0 || ch.parts.length > 0) {
          this.releaseDropped(ch.failRecv("reset", new ResetError(ErrorCode.LIMIT, reason, "local"), true));
        }
        return;
      }
      ch.parts.shift();
      ch.partsBytes -= len;
      if (ch.heldUnread > 0) {
        ch.heldUnread -= len;
        this.unreadOfEnded -= len;
      }
      if (!part.eom) {
        ch.partial.push(part.data);
        ch.partialLen += len;
        this.held += len;
        this.returnRead(ch, part.cost);
        continue;
      }
      let data = part.data;
      if (ch.partial.length > 0) {
        data = new Uint8Array(ch.partialLen + len);
        let pos = 0;
        for (const p of ch.partial) {
          data.set(p, pos);
          pos += p.length;
        }
        data.set(part.data, pos);
        this.held -= ch.partialLen;
        ch.partial = [];
        ch.partialLen = 0;
      }
      this.returnRead(ch, part.cost);
      ch.readers.shift()?.resolve(data);
    }
  }

  private onOpen(f: OpenFrame): void {
    const len = f.payload.length;
    if (len > this.local.maxFramePayload) {
      return this.fail(ErrorCode.PROTOCOL, `OPEN data part of ${len} bytes over MAX_FRAME_PAYLOAD`);
    }
    if (this.isLocalId(f.id)) return this.fail(ErrorCode.PROTOCOL, `OPEN ${f.id} has this end's parity`);
    if (f.id <= this.highestPeerId) {
      return this.fail(ErrorCode.PROTOCOL, `OPEN ${f.id} not above the highest id ${this.highestPeerId}`);
    }
    this.highestPeerId = f.id;
    const part = len > 0 || f.eom;
    if (part && !this.sessRecv.consume(partCost(len))) {
      return this.fail(ErrorCode.FLOW_CONTROL, "OPEN data beyond the session credit");
    }
    if (part) this.sessionMayGrow();
    let refusal: [number, string] | null = null;
    if (this.state !== "open") refusal = [ErrorCode.REFUSED, "the session is going away"];
    else if (f.metadata.length > this.config.maxMetadata) refusal = [ErrorCode.LIMIT, "metadata over the limit"];
    else if (this.remoteOpen >= this.local.maxChannels) refusal = [ErrorCode.LIMIT, "too many channels"];
    else if (this.backlog >= this.config.acceptBacklog) refusal = [ErrorCode.REFUSED, "accept backlog full"];
    if (refusal !== null) {
      if (part) this.returnRead(null, partCost(len));
      if (!this.localResets.take(this.config.now())) {
        return this.fail(ErrorCode.LIMIT, "local reset budget spent (refused opens)");
      }
      this.queueControl(encodeFrame({ type: "RESET", id: f.id, code: refusal[0], reason: refusal[1] }), true);
      return;
    }
    if (len > 0) this.emptyRun = 0;
    const ch = this.newChannel(f.id, false, f.route, f.metadata.slice(), this.peer.initialWindow);
    ch.inBacklog = true;
    this.backlog++;
    this.remoteOpen++;
    this.deliver(ch, f.fin, f.eom, f.payload);
    if (this.state === "closed" || ch.released || ch.send === "reset") return;
    this.hooks.incoming(ch);
  }

  private onWindow(id: number, increment: number): void {
    if (id === 0) {
      const next = addCredit(this.sessSendCredit, increment);
      if (next < 0) return this.fail(ErrorCode.FLOW_CONTROL, "session credit over 2^32-1");
      this.sessSendCredit = next;
      if (this.ring.length > 0) this.schedule();
      return;
    }
    const ch = this.lookup(id, "WINDOW");
    if (ch === undefined || ch === null) return;
    const next = addCredit(ch.sendCredit, increment);
    if (next < 0) return this.fail(ErrorCode.FLOW_CONTROL, `credit of channel ${id} over 2^32-1`);
    ch.sendCredit = next;
    if (this.inRing.has(ch)) this.schedule();
  }

  private onReset(id: number, code: number, reason: string): void {
    if (!this.remoteResets.take(this.config.now())) {
      return this.fail(ErrorCode.LIMIT, "remote reset budget spent (rapid reset)");
    }
    const ch = this.lookup(id, "RESET");
    if (ch === undefined || ch === null) return;
    if (ch.over || ch.send === "reset" || ch.recv === "reset") return;
    const error = new ResetError(code, reason, "remote");
    ch.failSend("reset", error);
    ch.sendOver = true;
    const dropped = ch.failRecv("reset", error);
    this.releaseDropped(dropped);
    this.maybeRelease(ch);
  }

  private onStop(id: number, code: number, reason: string): void {
    if (!this.remoteResets.take(this.config.now())) {
      return this.fail(ErrorCode.LIMIT, "remote reset budget spent (STOP)");
    }
    const ch = this.lookup(id, "STOP");
    if (ch === undefined || ch === null) return;
    if (!ch.canSend) return; // the direction already ended: ignored (section 4.9)
    ch.failSend("stopped", new StopError(code, reason, "remote"));
    this.maybeRelease(ch);
  }

  private onPing(ack: boolean, data: Uint8Array): void {
    if (!ack) {
      this.pingAnswer = data.slice();
      this.schedule();
      return;
    }
    const p = this.ping;
    if (p === null || p.sentAt === undefined || !sameBytes(p.data, data)) return; // ignored
    const now = this.config.now();
    const rtt = now - p.sentAt;
    this.rtt = rtt;
    this.srtt = this.srtt === undefined ? rtt : (7 * this.srtt) / 8 + rtt / 8;
    this.ping = null;
    if (this.pingTimeout !== null) {
      clearTimeout(this.pingTimeout);
      this.timers.delete(this.pingTimeout);
      this.pingTimeout = null;
    }
    for (const w of p.waiters) w.resolve(rtt);
    if (this.config.keepaliveInterval > 0) {
      // One keepalive timer at a time: an answered ping() re-arms it, never adds a second.
      if (this.keepaliveTimer !== null) {
        clearTimeout(this.keepaliveTimer);
        this.timers.delete(this.keepaliveTimer);
      }
      this.keepaliveTimer = this.timer(() => {
        this.keepaliveTimer = null;
        if (this.ping === null && this.state !== "closed") this.newPing();
      }, p.sentAt + this.config.keepaliveInterval - now);
    }
  }

  private onGoaway(lastId: number, code: number, reason: string): void {
    const first = this.goawayReceived === null;
    this.goawayReceived = { code, reason, lastId };
    if (!first) return; // a later GOAWAY only updates how the session ended
    // This end's channels above last_id were not processed: they fail as refused (section 9.3).
    for (const ch of [...this.channels.values()]) {
      if (ch.local && ch.id > lastId) {
        const error = new ResetError(ErrorCode.REFUSED, "not processed before the peer's GOAWAY", "remote");
        this.dropLocalOpen(ch);
        ch.failSend("reset", error);
        ch.sendOver = true;
        this.releaseDropped(ch.failRecv("reset", error));
        ch.recvOver = true;
        this.maybeRelease(ch);
      }
    }
    this.startDrain();
  }

  // ---------------------------------------------------------------- credit and resets

  /** Credit read (or dropped) on `ch` (null: session credit only), to return with WINDOW. */
  returnRead(ch: ChannelState | null, credit: number): void {
    if (credit <= 0) return;
    if (ch !== null && !ch.released && ch.recv === "open") {
      // Timed (for window growth) only where the window may grow.
      ch.window.read(credit, this.config.maxChannelWindow > ch.window.window ? this.config.now() : undefined);
      if (ch.window.due() && !ch.windowQueued) {
        ch.windowQueued = true;
        this.windowQueue.push(ch);
        this.schedule();
      }
    }
    if (this.state === "closed") return;
    this.sessRecv.read(credit, this.config.now());
    if (this.sessRecv.due() && !this.sessWindowQueued) {
      this.sessWindowQueued = true;
      this.schedule();
    }
  }

  /** The peer is short of session credit: the window may grow at once (section 8). */
  private sessionMayGrow(): void {
    if (this.sessRecv.growIfShort(this.config.maxSessionWindow) && !this.sessWindowQueued) {
      this.sessWindowQueued = true;
      this.schedule();
    }
  }

  private releaseDropped(dropped: { credit: number; held: number }): void {
    this.held -= dropped.held;
    this.returnRead(null, dropped.credit);
  }

  queueControl(bytes: Uint8Array, provoked: boolean): void {
    this.control.push({ bytes, provoked });
    if (provoked && ++this.provokedQueued > this.config.controlQueueLimit) {
      return this.fail(ErrorCode.LIMIT, "control queue full: the peer does not read");
    }
    this.schedule();
  }

  /** Channel reset caused by the peer: counts against the local reset budget. */
  private provokedReset(ch: ChannelState, code: number, reason: string): void {
    if (!this.localResets.take(this.config.now())) {
      return this.fail(ErrorCode.LIMIT, "local reset budget spent");
    }
    this.resetChannel(ch, code, reason, true);
  }

  /**
   * Resets a channel from this end (section 9.2): RESET goes out unless the OPEN never did;
   * unsent data is dropped, and unread data unless the peer's direction had finished.
   */
  resetChannel(ch: ChannelState, code: number, reason: string, provoked = false): void {
    if (ch.over || this.state === "closed") return;
    const error = new ResetError(code, reason, "local");
    if (ch.local && !ch.openSent) {
      this.dropLocalOpen(ch);
    } else {
      this.queueControl(encodeFrame({ type: "RESET", id: ch.id, code, reason }), provoked);
      if (this.isClosed()) return;
    }
    ch.failSend("reset", error);
    ch.sendOver = true;
    this.releaseDropped(ch.failRecv("reset", error));
    ch.recvOver = true;
    if (ch.inBacklog) {
      ch.inBacklog = false;
      this.backlog--;
    }
    this.maybeRelease(ch);
  }

  /**
   * The application refuses a channel the peer opened (section 7.2). Counts against the local
   * reset budget and the control queue like every refusal the peer provokes (section 12).
   */
  refuseChannel(ch: ChannelState, code: number, reason: string): void {
    if (ch.local) return this.resetChannel(ch, code, reason);
    this.provokedReset(ch, code, reason);
  }

  /** STOP: this end no longer reads the channel (section 4.9). */
  stopChannel(ch: ChannelState, code: number, reason: string): void {
    if (ch.recv !== "open" || this.state === "closed") return;
    const error = new StopError(code, reason, "local");
    if (ch.local && !ch.openSent) ch.stopAfterOpen = { code, reason };
    else this.queueControl(encodeFrame({ type: "STOP", id: ch.id, code, reason }), false);
    this.releaseDropped(ch.failRecv("stopped", error));
    this.maybeRelease(ch);
  }

  private dropLocalOpen(ch: ChannelState): void {
    const i = this.pendingOpens.indexOf(ch);
    if (i >= 0) this.pendingOpens.splice(i, 1);
  }

  /** Frees a channel both of whose directions are over on the wire. */
  maybeRelease(ch: ChannelState): void {
    if (ch.released) return;
    if (!ch.over) return;
    ch.released = true;
    this.channels.delete(ch.id);
    this.inRing.delete(ch);
    if (ch.local) {
      if (ch.openSent) this.localOpen--;
    } else {
      this.remoteOpen--;
      // One reset before the application took it has nothing to hand on: it leaves the
      // backlog (the session skips it). One with a whole request to read (a STOP after it,
      // say) stays counted until handed on: the backlog's bound keeps a peer from piling
      // such channels up.
      if (ch.recv === "reset" || ch.recv === "stopped") this.leaveBacklog(ch);
    }
    if (ch.parts.length > 0) this.releaseUnread(ch);
    if (this.pendingOpens.length > 0) this.schedule();
    this.checkDrained();
  }

  /**
   * A channel over on the wire still holds unread parts (data before the peer's FIN stays
   * readable, section 9.2): their session credit goes back now (section 8), or the peer's
   * other channels would wait for a read that may never come. They stay readable, bounded by
   * `maxHeldBytes` for all such channels together; past it they are dropped (a read then
   * rejects with LIMIT).
   */
  private releaseUnread(ch: ChannelState): void {
    let credit = 0;
    for (const p of ch.parts) {
      credit += p.cost;
      p.cost = 0;
    }
    if (this.unreadOfEnded + ch.partsBytes > this.config.maxHeldBytes) {
      const error = new ResetError(ErrorCode.LIMIT, "unread data of an ended channel dropped: the session holds too much", "local");
      this.releaseDropped(ch.failRecv("reset", error, true));
    } else {
      ch.heldUnread = ch.partsBytes;
      this.unreadOfEnded += ch.partsBytes;
    }
    this.returnRead(null, credit);
  }

  private newChannel(id: number, local: boolean, route: string, metadata: Uint8Array, credit: number): ChannelState {
    const ch = new ChannelState(id, local, route, metadata, credit, this.local.initialWindow);
    ch.pump = () => this.pump(ch);
    this.channels.set(id, ch);
    return ch;
  }

  // ---------------------------------------------------------------- application commands

  /** Opens a channel; its OPEN goes out when the peer's MAX_CHANNELS allows (section 7.2). */
  openChannel(route: string, metadata: Uint8Array): ChannelState {
    if (this.state !== "open") throw new InvalidStateError("the session is going away: no new channels");
    if (new TextEncoder().encode(route).length > 255) throw new RangeError("a route is at most 255 bytes of UTF-8");
    if (metadata.length > 0xffff) throw new RangeError("metadata is at most 65535 bytes");
    const id = this.nextLocalId;
    if (id > LAST_ID[this.role]) throw new InvalidStateError("channel ids are used up");
    this.nextLocalId += 2;
    const ch = this.newChannel(id, true, route, metadata, this.peer.initialWindow);
    this.pendingOpens.push(ch);
    this.counters.channelsOpened++;
    this.schedule();
    return ch;
  }

  /** Queues a message; the promise settles when its last frame is written to the WebSocket. */
  async enqueueSend(ch: ChannelState, data: Uint8Array): Promise<void> {
    if (!ch.canSend || ch.finRequested) {
      throw ch.sendError ?? new InvalidStateError("the channel's sending direction is finished");
    }
    if (!this.peerSettingsReceived && (data.length > this.peer.maxMessageSize || ch.sendsWaiting > 0)) {
      // The limit that counts is the peer's announced one: wait for it (one message at most).
      // Later sends and finish() of the channel wait too, so that the order is kept.
      ch.sendsWaiting++;
      try {
        await this.waitSettings();
      } finally {
        ch.sendsWaiting--;
      }
      if (!ch.canSend) throw ch.sendError ?? new InvalidStateError("the session closed");
    }
    if (data.length > this.peer.maxMessageSize) {
      ch.poisoned = true;
      throw new MessageTooLargeError(data.length, this.peer.maxMessageSize);
    }
    return new Promise<void>((resolve, reject) => {
      ch.out.push({ data, offset: 0, resolve, reject });
      ch.outBytes += data.length;
      if (ch.openSent) this.addToRing(ch);
      this.schedule();
    });
  }

  private settingsWaiters: Array<() => void> = [];
  private waitSettings(): Promise<void> {
    if (this.peerSettingsReceived || this.state === "closed") return Promise.resolve();
    return new Promise((resolve) => this.settingsWaiters.push(resolve));
  }
  /** The peer's SETTINGS arrived: sends that waited for its MAX_MESSAGE_SIZE go on, in order. */
  private settingsArrived(): void {
    for (const w of this.settingsWaiters.splice(0)) w();
  }

  /** Ends the sending direction: FIN after the queued messages (or RESET LIMIT, section 5). */
  finishChannel(ch: ChannelState): Promise<void> {
    if (ch.sendsWaiting > 0 && !this.peerSettingsReceived) {
      // Sends queued before this finish() wait for the peer's SETTINGS: the FIN goes after them.
      return this.waitSettings().then(() => this.finishChannel(ch));
    }
    if (ch.canSend && !ch.finRequested) {
      if (ch.poisoned) {
        this.resetChannel(ch, ErrorCode.LIMIT, "a message over the peer's MAX_MESSAGE_SIZE was not sent");
      } else {
        ch.finRequested = true;
        ch.send = "finishing";
        if (ch.openSent) this.addToRing(ch);
        this.schedule();
      }
    }
    return ch.waitFinished();
  }

  /** The application accepted a peer-opened channel (it leaves the backlog if still in it). */
  acceptChannel(ch: ChannelState): void {
    if (!ch.accepted) {
      ch.accepted = true;
      this.counters.channelsAccepted++;
    }
    this.leaveBacklog(ch);
  }

  /** A peer-opened channel was handed to the application, or dropped before it could be. */
  leaveBacklog(ch: ChannelState): void {
    if (ch.inBacklog) {
      ch.inBacklog = false;
      this.backlog--;
    }
  }

  /** Asks for a PING now (or joins the one outstanding); resolves with the RTT in ms. */
  pingNow(): Promise<number> {
    if (this.state === "closed") return Promise.reject(this.endError ?? new InvalidStateError("session closed"));
    if (this.ping === null) this.newPing();
    const p = this.ping as PingState | null;
    if (p === null) return Promise.reject(new InvalidStateError("session closed"));
    return new Promise((resolve, reject) => p.waiters.push({ resolve, reject }));
  }

  private newPing(): void {
    const data = new Uint8Array(8);
    globalThis.crypto.getRandomValues(data);
    const now = this.config.now();
    this.ping = { data, dueAt: now, sentAt: undefined, waiters: [] };
    // The timeout runs from when the PING was due, sent or not (section 10).
    if (this.config.keepaliveTimeout > 0) {
      const p = this.ping;
      this.pingTimeout = this.timer(() => {
        if (this.ping === p) this.fail(ErrorCode.TIMEOUT, "keepalive PING unanswered");
      }, this.config.keepaliveTimeout);
    }
    this.schedule();
  }

  // ---------------------------------------------------------------- the end of the session

  /**
   * Ends the session. NO_ERROR: GOAWAY and drain (section 9.3); any other code: a session error
   * with that code at once (section 9.4).
   */
  close(code: number, reason: string): void {
    if (this.state === "closed") return;
    if (code !== ErrorCode.NO_ERROR) return this.fail(code, reason);
    if (this.goawaySent) return;
    // OPENs the peer's MAX_CHANNELS allows go out before the GOAWAY (they only waited for the
    // scheduler's next run); those that wait for room fail (section 9.3).
    flush(this);
    this.goawaySent = true;
    this.queueControl(
      encodeFrame({ type: "GOAWAY", lastId: this.highestPeerId, code: ErrorCode.NO_ERROR, reason }),
      false,
    );
    const closedError = new SessionError(ErrorCode.NO_ERROR, "the session closed before the channel opened", "local");
    for (const ch of [...this.pendingOpens]) {
      this.dropLocalOpen(ch);
      ch.failSend("reset", closedError);
      ch.sendOver = true;
      ch.failRecv("reset", closedError);
      ch.recvOver = true;
      this.maybeRelease(ch);
    }
    for (const ch of [...this.channels.values()]) {
      if (ch.inBacklog) this.resetChannel(ch, ErrorCode.REFUSED, "the session is going away");
    }
    this.startDrain();
  }

  private startDrain(): void {
    if (this.state !== "open") {
      this.checkDrained();
      return;
    }
    this.state = "closing";
    this.hooks.incomingDone(null);
    this.timer(() => {
      if (this.state !== "closing") return;
      const error = new SessionError(ErrorCode.NO_ERROR, "drain deadline passed before the channel ended", "local");
      this.failChannels(error);
      this.endGracefully();
    }, this.config.drainTimeout);
    this.checkDrained();
  }

  private drainCheckQueued = false;

  /**
   * Ends the session once draining and no channel is left. Deferred to a microtask: it is
   * reached from inside a scheduler run (the last FIN), whose frames must be written first.
   */
  private checkDrained(): void {
    if (this.state !== "closing" || this.channels.size > 0 || this.drainCheckQueued) return;
    this.drainCheckQueued = true;
    queueMicrotask(() => {
      this.drainCheckQueued = false;
      if (this.state === "closing" && this.channels.size === 0) this.endGracefully();
    });
  }

  /** Drained: writes what is queued, closes the WebSocket with 1000 (section 9.3). */
  private endGracefully(): void {
    if (this.state === "closed") return;
    flush(this, true);
    this.state = "closed";
    const peerCode = this.goawayReceived?.code ?? ErrorCode.NO_ERROR;
    this.transport.close(ErrorCode.NO_ERROR, "");
    this.finish(
      peerCode === ErrorCode.NO_ERROR
        ? null
        : new SessionError(peerCode, this.goawayReceived?.reason ?? "", "remote"),
    );
  }

  /** Session error (section 9.4): GOAWAY, drop everything queued, fail every channel, close. */
  fail(code: number, reason: string, overLimit = false): void {
    if (this.state === "closed") return;
    this.state = "closed";
    const frames: Uint8Array[] = [];
    if (!this.settingsSent) {
      frames.push(encodeFrame({ type: "SETTINGS", settings: this.local }));
      this.settingsSent = true;
    }
    frames.push(encodeFrame({ type: "GOAWAY", lastId: this.highestPeerId, code, reason }));
    this.control.length = 0;
    writeNow(this, frames);
    this.transport.close(code, reason || codeName(code), overLimit);
    const error = new SessionError(code, reason, "local");
    this.failChannels(error);
    this.finish(error);
  }

  /** The WebSocket closed: the end of the session unless it had ended already. */
  transportClosed(closeCode: number, closeReason: string): void {
    if (this.endError !== null) this.endError.closeCode ??= closeCode;
    if (this.state === "closed") return;
    this.state = "closed";
    const g = this.goawayReceived;
    let result: SessionError | null;
    if (g !== null) {
      result = g.code === ErrorCode.NO_ERROR ? null : new SessionError(g.code, g.reason, "remote", closeCode);
    } else if (this.goawaySent && closeCode === 1000) {
      result = null;
    } else {
      result = new SessionError(ErrorCode.INTERNAL, closeReason, "transport", closeCode);
    }
    this.failChannels(result ?? new SessionError(ErrorCode.INTERNAL, closeReason, "transport", closeCode));
    this.finish(result);
  }

  /** Every channel direction not finished fails with `error` (section 9.4). */
  private failChannels(error: SessionError): void {
    for (const ch of this.channels.values()) {
      ch.failSend("reset", error);
      ch.sendOver = true;
      ch.failRecv("reset", error);
      ch.recvOver = true;
      ch.released = true;
    }
    this.channels.clear();
    this.pendingOpens.length = 0;
    this.ring.length = 0;
    this.inRing.clear();
    const p = this.ping;
    this.ping = null;
    if (p !== null) for (const w of p.waiters) w.reject(error);
  }

  private finish(error: SessionError | null): void {
    this.endError = error;
    this.clearTimers();
    for (const w of this.settingsWaiters.splice(0)) w();
    this.hooks.incomingDone(error);
    this.hooks.closed(error);
  }
}

/**
 * The payload to keep until the application reads it. A view into the WebSocket message is
 * kept as it is when it is a good part of that message (a frame alone, or one of the few bulk
 * frames of a PACK: no copy); a small frame out of a PACK is copied, so that it does not hold
 * the whole PACK (at most 8 times the bytes are held).
 */
function ownBytes(payload: Uint8Array): Uint8Array {
  return payload.length * 8 >= payload.buffer.byteLength ? payload : payload.slice();
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The credit one part of `length` bytes takes, re-exported for the scheduler. */
export { PART_CHARGE };
