/**
 * The frame codec: every frame type of PROTOCOL.md section 4, PACK included, encoded and
 * decoded byte for byte, in the order of checks of section 13.1.
 *
 * This module owns bytes only. It knows nothing of sessions, credit or state: a frame that
 * decodes can still be a session error (a VERSION other than 1, DATA for a channel never
 * opened); that is `core.ts`'s business.
 *
 * @module
 */

import { FrameDecodeError } from "./errors.js";

/** Frame type octets (section 4). */
export const FrameType = {
  DATA: 0x00,
  OPEN: 0x01,
  WINDOW: 0x02,
  RESET: 0x03,
  PING: 0x04,
  GOAWAY: 0x05,
  SETTINGS: 0x06,
  PACK: 0x07,
  STOP: 0x08,
} as const;

/** Flag bits (section 4): FIN and EOM for DATA and OPEN, ACK for PING. */
export const Flag = { FIN: 0x01, EOM: 0x02, ACK: 0x01 } as const;

/** Length of the fixed header of every frame. */
export const HEADER_LEN = 6;
/** Entries of a PACK are at most this long (a u16 length). */
export const MAX_PACK_ENTRY = 0xffff;
/** The largest u32, the bound of every credit (section 8). */
export const MAX_U32 = 0xffffffff;

/** Setting ids (section 6). */
export const SettingId = {
  VERSION: 0x01,
  INITIAL_WINDOW: 0x02,
  MAX_FRAME_PAYLOAD: 0x03,
  MAX_MESSAGE_SIZE: 0x04,
  MAX_CHANNELS: 0x05,
  SESSION_WINDOW: 0x06,
} as const;

/** What one end announces in its SETTINGS (section 6). */
export interface Settings {
  /** Protocol version; 1. */
  version: number;
  /** Credit each channel starts with for the peer's sending, bytes. */
  initialWindow: number;
  /** Largest DATA payload / OPEN data part the end accepts. */
  maxFramePayload: number;
  /** Largest reassembled message the end accepts. */
  maxMessageSize: number;
  /** Most peer-opened channels the end keeps open at once. */
  maxChannels: number;
  /** Credit the session starts with for the peer's sending, all channels together. */
  sessionWindow: number;
}

/** The spec defaults, which are also the minimums (except MAX_CHANNELS). They hold for the
 * peer until its SETTINGS arrive. */
export const SPEC_DEFAULTS: Readonly<Settings> = Object.freeze({
  version: 1,
  initialWindow: 65536,
  maxFramePayload: 16384,
  maxMessageSize: 1048576,
  maxChannels: 100,
  sessionWindow: 65536,
});

/** DATA (0x00): a part of a message, and/or the end of a direction. */
export interface DataFrame {
  type: "DATA";
  id: number;
  fin: boolean;
  eom: boolean;
  payload: Uint8Array;
}
/** OPEN (0x01): a new channel, with route, metadata and a data part like DATA. */
export interface OpenFrame {
  type: "OPEN";
  id: number;
  fin: boolean;
  eom: boolean;
  route: string;
  metadata: Uint8Array;
  payload: Uint8Array;
}
/** WINDOW (0x02): credit for a channel, or for the session on id 0. */
export interface WindowFrame {
  type: "WINDOW";
  id: number;
  increment: number;
}
/** RESET (0x03): abort both directions of a channel. */
export interface ResetFrame {
  type: "RESET";
  id: number;
  code: number;
  reason: string;
}
/** STOP (0x08): the sender no longer reads the channel. */
export interface StopFrame {
  type: "STOP";
  id: number;
  code: number;
  reason: string;
}
/** PING (0x04): keepalive and RTT; `ack` marks the answer. */
export interface PingFrame {
  type: "PING";
  ack: boolean;
  /** Exactly 8 opaque bytes. */
  data: Uint8Array;
}
/** GOAWAY (0x05): the sender ends the session. */
export interface GoawayFrame {
  type: "GOAWAY";
  lastId: number;
  code: number;
  reason: string;
}
/** SETTINGS (0x06): the values in force after decoding (spec defaults for absent entries). */
export interface SettingsFrame {
  type: "SETTINGS";
  settings: Settings;
}
/** A frame of type 0x80–0xFF, which a receiver that does not know the type ignores. */
export interface ExtensionFrame {
  type: "EXTENSION";
  kind: number;
  flags: number;
  id: number;
  payload: Uint8Array;
}

/** Any frame but PACK (a PACK is a container, see {@link encodePack} and {@link splitPack}). */
export type Frame =
  | DataFrame
  | OpenFrame
  | WindowFrame
  | ResetFrame
  | StopFrame
  | PingFrame
  | GoawayFrame
  | SettingsFrame
  | ExtensionFrame;

const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/** UTF-8 bytes of a string (lone surrogates become U+FFFD, as TextEncoder does). */
export function utf8(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/**
 * The UTF-8 bytes of `text`, cut to at most `max` bytes at a character boundary (section 4.4:
 * a sender truncates longer reasons).
 */
export function utf8Truncated(text: string, max: number): Uint8Array {
  const bytes = utf8Encoder.encode(text);
  if (bytes.length <= max) return bytes;
  let end = max;
  // Back up over continuation bytes (10xxxxxx) so that no character is cut in two.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/** Reads fields of one frame in order, checking each against the bytes left (section 13.1). */
class Reader {
  private pos = HEADER_LEN;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly view: DataView,
    private readonly what: string,
  ) {}

  private need(n: number, field: string): void {
    if (this.bytes.length - this.pos < n) {
      throw new FrameDecodeError("Truncated", `${this.what}: ${field} runs past the end of the frame`);
    }
  }
  u8(field: string): number {
    this.need(1, field);
    return this.view.getUint8(this.pos++);
  }
  u16(field: string): number {
    this.need(2, field);
    const v = this.view.getUint16(this.pos, false);
    this.pos += 2;
    return v;
  }
  u32(field: string): number {
    this.need(4, field);
    const v = this.view.getUint32(this.pos, false);
    this.pos += 4;
    return v;
  }
  bytesOf(n: number, field: string): Uint8Array {
    this.need(n, field);
    const b = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  string(n: number, field: string): string {
    const b = this.bytesOf(n, field);
    try {
      return utf8Decoder.decode(b);
    } catch {
      throw new FrameDecodeError("NotUtf8", `${this.what}: ${field} is not UTF-8`);
    }
  }
  rest(): Uint8Array {
    const b = this.bytes.subarray(this.pos);
    this.pos = this.bytes.length;
    return b;
  }
  end(): void {
    if (this.pos !== this.bytes.length) {
      throw new FrameDecodeError(
        "Trailing",
        `${this.what}: ${this.bytes.length - this.pos} bytes after the last field`,
      );
    }
  }
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function needsChannel(type: number): boolean {
  return (
    type === FrameType.DATA || type === FrameType.OPEN || type === FrameType.RESET || type === FrameType.STOP
  );
}

/**
 * Decodes one frame (one WebSocket message that is not a PACK, or one entry of a PACK).
 *
 * Payloads, routes' bytes and metadata are views into `bytes`, not copies.
 *
 * @param inPack true for an entry of a PACK, where a PACK is `BadPack`.
 * @throws {FrameDecodeError} with the class of the first defect, in the order of section 13.1.
 * @example
 * decodeFrame(hex("0002000000036869")) // { type: "DATA", id: 3, eom: true, fin: false, payload: "hi" }
 */
export function decodeFrame(bytes: Uint8Array, inPack = false): Frame {
  if (bytes.length < HEADER_LEN) {
    throw new FrameDecodeError("Truncated", `a frame needs 6 bytes of header, got ${bytes.length}`);
  }
  const view = viewOf(bytes);
  const type = view.getUint8(0);
  const flags = view.getUint8(1);
  const id = view.getUint32(2, false);
  if (type >= 0x80) {
    return { type: "EXTENSION", kind: type, flags, id, payload: bytes.subarray(HEADER_LEN) };
  }
  if (type > FrameType.STOP) {
    throw new FrameDecodeError("ReservedType", `frame type 0x${type.toString(16).padStart(2, "0")} is reserved`);
  }
  if (type === FrameType.PACK) {
    if (inPack) throw new FrameDecodeError("BadPack", "a PACK inside a PACK");
    throw new FrameDecodeError("BadPack", "a PACK is a container: split it with splitPack");
  }
  if (needsChannel(type) ? id === 0 : type !== FrameType.WINDOW && id !== 0) {
    throw new FrameDecodeError(
      "WrongChannel",
      needsChannel(type) ? `frame type ${type} needs a channel id` : `frame type ${type} must be on id 0, not ${id}`,
    );
  }
  switch (type) {
    case FrameType.DATA:
      return {
        type: "DATA",
        id,
        fin: (flags & Flag.FIN) !== 0,
        eom: (flags & Flag.EOM) !== 0,
        payload: bytes.subarray(HEADER_LEN),
      };
    case FrameType.OPEN: {
      const r = new Reader(bytes, view, "OPEN");
      const route = r.string(r.u8("route length"), "route");
      const metadata = r.bytesOf(r.u16("metadata length"), "metadata");
      return {
        type: "OPEN",
        id,
        fin: (flags & Flag.FIN) !== 0,
        eom: (flags & Flag.EOM) !== 0,
        route,
        metadata,
        payload: r.rest(),
      };
    }
    case FrameType.WINDOW: {
      const r = new Reader(bytes, view, "WINDOW");
      const increment = r.u32("increment");
      r.end();
      if (increment === 0) throw new FrameDecodeError("ZeroIncrement", "WINDOW increment of 0");
      return { type: "WINDOW", id, increment };
    }
    case FrameType.RESET:
    case FrameType.STOP: {
      const name = type === FrameType.RESET ? "RESET" : "STOP";
      const r = new Reader(bytes, view, name);
      const code = r.u32("code");
      const reason = r.string(r.u8("reason length"), "reason");
      r.end();
      return { type: name, id, code, reason };
    }
    case FrameType.PING: {
      const r = new Reader(bytes, view, "PING");
      const data = r.bytesOf(8, "opaque data");
      r.end();
      return { type: "PING", ack: (flags & Flag.ACK) !== 0, data };
    }
    case FrameType.GOAWAY: {
      const r = new Reader(bytes, view, "GOAWAY");
      const lastId = r.u32("last_id");
      const code = r.u32("code");
      const reason = r.string(r.u8("reason length"), "reason");
      r.end();
      return { type: "GOAWAY", lastId, code, reason };
    }
    default: {
      // SETTINGS: the only type left below PACK.
      const len = bytes.length - HEADER_LEN;
      if (len % 6 !== 0) {
        throw new FrameDecodeError("BadSettings", `SETTINGS payload of ${len} bytes is not a multiple of 6`);
      }
      const settings: Settings = { ...SPEC_DEFAULTS };
      let sawVersion = false;
      for (let pos = HEADER_LEN; pos < bytes.length; pos += 6) {
        const sid = view.getUint16(pos, false);
        const value = view.getUint32(pos + 2, false);
        switch (sid) {
          case SettingId.VERSION:
            settings.version = value;
            sawVersion = true;
            break;
          case SettingId.INITIAL_WINDOW:
            settings.initialWindow = value;
            break;
          case SettingId.MAX_FRAME_PAYLOAD:
            settings.maxFramePayload = value;
            break;
          case SettingId.MAX_MESSAGE_SIZE:
            settings.maxMessageSize = value;
            break;
          case SettingId.MAX_CHANNELS:
            settings.maxChannels = value;
            break;
          case SettingId.SESSION_WINDOW:
            settings.sessionWindow = value;
            break;
          default:
            break; // unknown ids are ignored (section 6)
        }
      }
      if (!sawVersion) throw new FrameDecodeError("BadSettings", "SETTINGS without a VERSION entry");
      return { type: "SETTINGS", settings };
    }
  }
}

/**
 * Splits a PACK message into its entries, lazily: entries before a malformed one are yielded
 * before the error is thrown, so that a receiver handles them first (section 4.8).
 *
 * @throws {FrameDecodeError} Truncated (header or an entry cut), WrongChannel (id ≠ 0), BadPack (no entry).
 */
export function* splitPack(bytes: Uint8Array): Generator<Uint8Array, void, undefined> {
  if (bytes.length < HEADER_LEN) {
    throw new FrameDecodeError("Truncated", `a frame needs 6 bytes of header, got ${bytes.length}`);
  }
  const view = viewOf(bytes);
  if (view.getUint32(2, false) !== 0) {
    throw new FrameDecodeError("WrongChannel", `PACK must be on id 0, not ${view.getUint32(2, false)}`);
  }
  if (bytes.length === HEADER_LEN) throw new FrameDecodeError("BadPack", "PACK without entries");
  let pos = HEADER_LEN;
  while (pos < bytes.length) {
    if (bytes.length - pos < 2) throw new FrameDecodeError("Truncated", "PACK entry length cut");
    const len = view.getUint16(pos, false);
    pos += 2;
    if (bytes.length - pos < len) {
      throw new FrameDecodeError("Truncated", `PACK entry of ${len} bytes runs past the end`);
    }
    yield bytes.subarray(pos, pos + len);
    pos += len;
  }
}

/** True when a message is a PACK (its type octet is 0x07). */
export function isPack(message: Uint8Array): boolean {
  return message.length > 0 && message[0] === FrameType.PACK;
}

/**
 * Decodes a whole WebSocket message: one frame, or every frame of a PACK (eagerly).
 *
 * @throws {FrameDecodeError} for the first defect.
 */
export function decodeMessage(message: Uint8Array): Frame[] {
  if (!isPack(message)) return [decodeFrame(message)];
  const frames: Frame[] = [];
  for (const entry of splitPack(message)) frames.push(decodeFrame(entry, true));
  return frames;
}

function header(type: number, flags: number, id: number, payloadLen: number): { out: Uint8Array; view: DataView } {
  const out = new Uint8Array(HEADER_LEN + payloadLen);
  const view = viewOf(out);
  view.setUint8(0, type);
  view.setUint8(1, flags);
  view.setUint32(2, id, false);
  return { out, view };
}

function dataFlags(f: { fin: boolean; eom: boolean }): number {
  return (f.fin ? Flag.FIN : 0) | (f.eom ? Flag.EOM : 0);
}

function checkU32(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > MAX_U32) {
    throw new RangeError(`${what} must be an integer in 0..2^32-1, got ${value}`);
  }
}

function encodeCoded(type: number, id: number, code: number, reason: string): Uint8Array {
  checkU32(code, "code");
  const text = utf8Truncated(reason, 255);
  const { out, view } = header(type, 0, id, 5 + text.length);
  view.setUint32(6, code, false);
  view.setUint8(10, text.length);
  out.set(text, 11);
  return out;
}

/**
 * Encodes one frame into a new buffer (payloads are copied in).
 *
 * Reasons longer than 255 bytes are cut at a character boundary.
 *
 * @throws {RangeError} for a field out of its range (a route over 255 bytes, metadata over
 * 65535 bytes, an id or code beyond u32, PING data not of 8 bytes).
 * @example
 * encodeFrame({ type: "WINDOW", id: 1, increment: 65536 }) // 02 00 00000001 00010000
 */
export function encodeFrame(frame: Frame): Uint8Array {
  switch (frame.type) {
    case "DATA": {
      checkU32(frame.id, "channel id");
      const { out } = header(FrameType.DATA, dataFlags(frame), frame.id, frame.payload.length);
      out.set(frame.payload, HEADER_LEN);
      return out;
    }
    case "OPEN": {
      checkU32(frame.id, "channel id");
      const route = utf8(frame.route);
      if (route.length > 255) throw new RangeError(`route of ${route.length} bytes is over 255`);
      if (frame.metadata.length > 0xffff) {
        throw new RangeError(`metadata of ${frame.metadata.length} bytes is over 65535`);
      }
      const len = 1 + route.length + 2 + frame.metadata.length + frame.payload.length;
      const { out, view } = header(FrameType.OPEN, dataFlags(frame), frame.id, len);
      let pos = HEADER_LEN;
      view.setUint8(pos++, route.length);
      out.set(route, pos);
      pos += route.length;
      view.setUint16(pos, frame.metadata.length, false);
      pos += 2;
      out.set(frame.metadata, pos);
      pos += frame.metadata.length;
      out.set(frame.payload, pos);
      return out;
    }
    case "WINDOW": {
      checkU32(frame.id, "channel id");
      checkU32(frame.increment, "increment");
      const { out, view } = header(FrameType.WINDOW, 0, frame.id, 4);
      view.setUint32(6, frame.increment, false);
      return out;
    }
    case "RESET":
      checkU32(frame.id, "channel id");
      return encodeCoded(FrameType.RESET, frame.id, frame.code, frame.reason);
    case "STOP":
      checkU32(frame.id, "channel id");
      return encodeCoded(FrameType.STOP, frame.id, frame.code, frame.reason);
    case "PING": {
      if (frame.data.length !== 8) throw new RangeError("PING data must be 8 bytes");
      const { out } = header(FrameType.PING, frame.ack ? Flag.ACK : 0, 0, 8);
      out.set(frame.data, HEADER_LEN);
      return out;
    }
    case "GOAWAY": {
      checkU32(frame.lastId, "last_id");
      checkU32(frame.code, "code");
      const text = utf8Truncated(frame.reason, 255);
      const { out, view } = header(FrameType.GOAWAY, 0, 0, 9 + text.length);
      view.setUint32(6, frame.lastId, false);
      view.setUint32(10, frame.code, false);
      view.setUint8(14, text.length);
      out.set(text, 15);
      return out;
    }
    case "SETTINGS": {
      const s = frame.settings;
      const entries: Array<[number, number]> = [
        [SettingId.VERSION, s.version],
        [SettingId.INITIAL_WINDOW, s.initialWindow],
        [SettingId.MAX_FRAME_PAYLOAD, s.maxFramePayload],
        [SettingId.MAX_MESSAGE_SIZE, s.maxMessageSize],
        [SettingId.MAX_CHANNELS, s.maxChannels],
        [SettingId.SESSION_WINDOW, s.sessionWindow],
      ];
      const { out, view } = header(FrameType.SETTINGS, 0, 0, entries.length * 6);
      let pos = HEADER_LEN;
      for (const [sid, value] of entries) {
        checkU32(value, `setting ${sid}`);
        view.setUint16(pos, sid, false);
        view.setUint32(pos + 2, value, false);
        pos += 6;
      }
      return out;
    }
    case "EXTENSION": {
      if (frame.kind < 0x80 || frame.kind > 0xff) throw new RangeError("extension types are 0x80-0xFF");
      checkU32(frame.id, "channel id");
      const { out } = header(frame.kind, frame.flags & 0xff, frame.id, frame.payload.length);
      out.set(frame.payload, HEADER_LEN);
      return out;
    }
  }
}

/**
 * Packs encoded frames into one PACK message (section 4.8).
 *
 * @throws {RangeError} for no frame, a frame over 65535 bytes, a frame shorter than 6 bytes, or a PACK.
 */
export function encodePack(frames: readonly Uint8Array[]): Uint8Array {
  if (frames.length === 0) throw new RangeError("a PACK needs at least one frame");
  let len = HEADER_LEN;
  for (const f of frames) {
    if (f.length < HEADER_LEN || f.length > MAX_PACK_ENTRY) {
      throw new RangeError(`a frame of ${f.length} bytes cannot be packed`);
    }
    if (f[0] === FrameType.PACK) throw new RangeError("a PACK cannot hold a PACK");
    len += 2 + f.length;
  }
  const out = new Uint8Array(len);
  const view = viewOf(out);
  out[0] = FrameType.PACK;
  let pos = HEADER_LEN;
  for (const f of frames) {
    view.setUint16(pos, f.length, false);
    out.set(f, pos + 2);
    pos += 2 + f.length;
  }
  return out;
}
