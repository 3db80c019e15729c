/**
 * The scheduler: turns what the core queued into frames and writes them (section 8, last
 * rule): SETTINGS, RESET/STOP/GOAWAY; the PING answer; this end's PING; the session WINDOW;
 * channel WINDOWs; OPENs in id order; then DATA, one frame per channel, round-robin.
 *
 * Frames produced in one run are written together, and consecutive small ones go as one PACK
 * (section 4.8). A run happens in a microtask after whatever made a frame ready, so a lone
 * frame is never held back to wait for company.
 *
 * DATA stops while the WebSocket's `bufferedAmount` is at or above the high-water mark (the
 * browser WebSocket has no backpressure of its own); the core then polls.
 *
 * @module
 */

import type { ChannelState, OutMessage } from "./channel-state.js";
import type { SessionCore } from "./core.js";
import { MIN_CHUNK, PART_CHARGE } from "./credit.js";
import { encodeFrame, Flag, FrameType, HEADER_LEN, MAX_PACK_ENTRY } from "./frame.js";

/** Frames of at most this many bytes are packed: every frame a PACK entry can hold. */
export const PACKABLE = MAX_PACK_ENTRY;
/**
 * A PACK is at most this long: below the smallest WebSocket message limit a receiver may set
 * (82183 bytes, section 12), and room for four full 16 KiB DATA frames. Bulk data then costs
 * one WebSocket message (and, in a browser, one `message` event) per 64 KiB, not per frame.
 */
export const PACK_MAX = 80 * 1024;

/**
 * A DATA frame kept as its 6-byte header and a view of the message's bytes, so that the
 * payload is copied once, straight into the WebSocket message that carries it (alone or in a
 * PACK), instead of into a frame first.
 */
interface SplitFrame {
  head: Uint8Array;
  payload: Uint8Array;
}

/** A frame to write: encoded, or split. */
type OutFrame = Uint8Array | SplitFrame;

function frameLength(f: OutFrame): number {
  return f instanceof Uint8Array ? f.length : f.head.length + f.payload.length;
}

/** Copies `f` into `out` at `pos`; returns the position after it. */
function put(out: Uint8Array, pos: number, f: OutFrame): number {
  if (f instanceof Uint8Array) {
    out.set(f, pos);
    return pos + f.length;
  }
  out.set(f.head, pos);
  out.set(f.payload, pos + f.head.length);
  return pos + f.head.length + f.payload.length;
}

/** The header of a DATA frame (section 4.1). */
function dataHead(id: number, fin: boolean, eom: boolean): Uint8Array {
  const head = new Uint8Array(HEADER_LEN);
  head[0] = FrameType.DATA;
  head[1] = (fin ? Flag.FIN : 0) | (eom ? Flag.EOM : 0);
  new DataView(head.buffer).setUint32(2, id, false);
  return head;
}

/** Frames of one run, written in order, neighbours packed. */
class Batch {
  readonly frames: OutFrame[] = [];
  bytes = 0;
  /** Send promises to resolve once the frames are written. */
  readonly done: Array<() => void> = [];

  add(frame: OutFrame): void {
    this.frames.push(frame);
    this.bytes += frameLength(frame);
  }
}

/**
 * Writes frames at once, bypassing every queue: consecutive frames go as one PACK of at most
 * {@link PACK_MAX} bytes (section 4.8), each payload copied once into it.
 */
export function writeNow(core: SessionCore, frames: readonly OutFrame[]): void {
  let group: OutFrame[] = [];
  let groupLen = HEADER_LEN;
  const send = (message: Uint8Array): void => {
    core.counters.messagesSent++;
    core.counters.bytesSent += message.length;
    core.transport.send(message);
  };
  const emit = (): void => {
    if (group.length === 1) send(whole(group[0] as OutFrame));
    else if (group.length > 1) send(pack(group, groupLen));
    group = [];
    groupLen = HEADER_LEN;
  };
  for (const f of frames) {
    core.counters.framesSent++;
    const len = frameLength(f);
    if (len > PACKABLE) {
      emit();
      send(whole(f));
      continue;
    }
    if (groupLen + 2 + len > PACK_MAX) emit();
    group.push(f);
    groupLen += 2 + len;
  }
  emit();
}

/** One frame as the bytes of a WebSocket message. */
function whole(f: OutFrame): Uint8Array {
  if (f instanceof Uint8Array) return f;
  const out = new Uint8Array(frameLength(f));
  put(out, 0, f);
  return out;
}

/** A PACK of `frames`, `length` bytes in all (header and entry lengths included). */
function pack(frames: readonly OutFrame[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  out[0] = FrameType.PACK; // flags 0, channel 0: the rest of the header stays zero
  const view = new DataView(out.buffer);
  let pos = HEADER_LEN;
  for (const f of frames) {
    view.setUint16(pos, frameLength(f), false);
    pos = put(out, pos + 2, f);
  }
  return out;
}

/**
 * One run of the scheduler. `force` writes every control frame whatever the WebSocket's
 * buffer holds (the last run before a close).
 */
export function flush(core: SessionCore, force = false): void {
  const batch = new Batch();
  const now = core.config.now();
  const room = (): boolean =>
    force || core.transport.bufferedAmount + batch.bytes < core.config.highWaterMark;

  if (!core.settingsSent) {
    batch.add(encodeFrame({ type: "SETTINGS", settings: core.local }));
    core.settingsSent = true;
  }
  while (core.control.length > 0 && room()) {
    const c = core.control.shift();
    if (c === undefined) break;
    if (c.provoked) core.provokedQueued--;
    batch.add(c.bytes);
  }
  if (core.pingAnswer !== null) {
    batch.add(encodeFrame({ type: "PING", ack: true, data: core.pingAnswer }));
    core.pingAnswer = null;
  }
  if (core.ping !== null && core.ping.sentAt === undefined) {
    batch.add(encodeFrame({ type: "PING", ack: false, data: core.ping.data }));
    core.ping.sentAt = now;
  }
  if (core.sessWindowQueued) {
    core.sessWindowQueued = false;
    const grow = core.sessRecv.maybeGrow(now, core.srtt, core.config.maxSessionWindow);
    const increment = core.sessRecv.takeIncrement(grow);
    if (increment > 0) batch.add(encodeFrame({ type: "WINDOW", id: 0, increment }));
  }
  for (const ch of core.windowQueue.splice(0)) {
    ch.windowQueued = false;
    // No channel WINDOW once the peer's direction has ended (section 8).
    if (ch.released || ch.recv !== "open") continue;
    const grow = ch.window.maybeGrow(now, core.srtt, core.config.maxChannelWindow);
    const increment = ch.window.takeIncrement(grow);
    if (increment > 0) batch.add(encodeFrame({ type: "WINDOW", id: ch.id, increment }));
  }

  while (core.pendingOpens.length > 0 && core.canOpenMore() && core.state !== "closed") {
    const ch = core.pendingOpens.shift() as ChannelState;
    emitOpen(core, ch, batch);
  }

  // DATA, one frame per channel in turn; a pass that sends nothing ends the run.
  let idle = 0;
  while (core.ring.length > 0 && idle < core.ring.length && room()) {
    const ch = core.ring.shift() as ChannelState;
    const result = produce(core, ch, batch);
    if (result === "done") {
      core.inRing.delete(ch);
      continue;
    }
    core.ring.push(ch);
    idle = result === "blocked" ? idle + 1 : 0;
  }

  const stoppedByRoom = core.ring.length > 0 && idle < core.ring.length && !room();
  writeNow(core, batch.frames);
  for (const resolve of batch.done) resolve();
  if (stoppedByRoom || core.control.length > 0) {
    // Stopped by the buffer, not by credit: run again once the WebSocket has room. Without
    // a drain event (browsers) that means looking again shortly.
    core.pollLater(core.transport.bufferedAmount < core.config.highWaterMark ? 0 : 2);
  }
}

/** Payload bytes the next part of `msg` may carry now, or -1 while credit is too short. */
function chunkSize(core: SessionCore, ch: ChannelState, msg: OutMessage): number {
  const rest = msg.data.length - msg.offset;
  const credit = Math.min(ch.sendCredit, core.sessSendCredit) - PART_CHARGE;
  if (credit < 0) return -1;
  if (rest === 0) return 0;
  const maxPayload = Math.min(core.peer.maxFramePayload, core.local.maxFramePayload);
  const chunk = Math.min(rest, maxPayload, credit);
  // Minimum chunk (section 8): never a sliver when more is to come.
  return chunk < Math.min(MIN_CHUNK, rest) ? -1 : chunk;
}

/** Emits the next part of the channel's first message, as DATA or as the OPEN's data part. */
function emitPart(core: SessionCore, ch: ChannelState, msg: OutMessage, chunk: number, batch: Batch, open: boolean): void {
  const payload = msg.data.subarray(msg.offset, msg.offset + chunk);
  const eom = msg.offset + chunk === msg.data.length;
  const fin = eom && ch.finRequested && ch.out.length === 1;
  const cost = chunk + PART_CHARGE;
  ch.sendCredit -= cost;
  core.sessSendCredit -= cost;
  msg.offset += chunk;
  ch.outBytes -= chunk;
  batch.add(
    open
      ? encodeFrame({ type: "OPEN", id: ch.id, fin, eom, route: ch.route, metadata: ch.metadata, payload })
      : { head: dataHead(ch.id, fin, eom), payload },
  );
  if (eom) {
    ch.out.shift();
    ch.counters.messagesSent++;
    ch.counters.bytesSent += msg.data.length;
    batch.done.push(msg.resolve);
  }
  if (fin) {
    ch.finished();
    core.maybeRelease(ch);
  }
}

function emitOpen(core: SessionCore, ch: ChannelState, batch: Batch): void {
  ch.openSent = true;
  core.highestOpenSent = ch.id;
  core.localOpen++;
  const msg = ch.out[0];
  const chunk = msg === undefined ? -1 : chunkSize(core, ch, msg);
  if (msg !== undefined && chunk >= 0) {
    emitPart(core, ch, msg, chunk, batch, true);
  } else {
    // No data, or no credit for it yet: a bare OPEN (free), the data follows as DATA.
    const fin = msg === undefined && ch.finRequested;
    batch.add(
      encodeFrame({
        type: "OPEN",
        id: ch.id,
        fin,
        eom: false,
        route: ch.route,
        metadata: ch.metadata,
        payload: new Uint8Array(0),
      }),
    );
    if (fin) ch.finished();
  }
  if (ch.stopAfterOpen !== null) {
    batch.add(encodeFrame({ type: "STOP", id: ch.id, ...ch.stopAfterOpen }));
    ch.stopAfterOpen = null;
  }
  if (ch.out.length > 0 || (ch.finRequested && ch.canSend)) core.addToRing(ch);
  core.maybeRelease(ch);
}

/** One frame of a channel's data: "sent", "blocked" (no credit) or "done" (nothing to send). */
function produce(core: SessionCore, ch: ChannelState, batch: Batch): "sent" | "blocked" | "done" {
  if (!ch.canSend || !ch.openSent) return "done";
  const msg = ch.out[0];
  if (msg === undefined) {
    if (!ch.finRequested) return "done";
    batch.add(encodeFrame({ type: "DATA", id: ch.id, fin: true, eom: false, payload: new Uint8Array(0) }));
    ch.finished();
    core.maybeRelease(ch);
    return "done";
  }
  const chunk = chunkSize(core, ch, msg);
  if (chunk < 0) return "blocked";
  emitPart(core, ch, msg, chunk, batch, false);
  return ch.out.length > 0 || ch.finRequested ? "sent" : "done";
}
