/**
 * Session options: every limit with its default and why (PROTOCOL.md sections 6, 10 and 12).
 *
 * The defaults are the reference implementation's, so that this end behaves like it and the
 * session vectors of `proto/vectors/sessions.json` hold for it unchanged.
 *
 * @module
 */

import type { Settings } from "./frame.js";

/** Options of a session, for both roles. Every field is optional. */
export interface SessionOptions {
  /** Credit each channel starts with for the peer's sending. Default 256 KiB: one channel then
   * moves 256 KiB per round trip (13 MB/s at 20 ms). Minimum 65536. */
  initialWindow?: number;
  /** Largest DATA payload accepted. Default 16 KiB (the minimum): small frames interleave
   * channels finely. */
  maxFramePayload?: number;
  /** Largest message accepted, reassembled. Default 16 MiB. Minimum 1 MiB. */
  maxMessageSize?: number;
  /** Most peer-opened channels at once. Default 256. */
  maxChannels?: number;
  /** Session window announced. Default 256 KiB (= initialWindow, as the reference). */
  sessionWindow?: number;
  /** The session window grows (doubling) up to this while the application reads fast.
   * Default 16 MiB; equal to `sessionWindow` turns growth off. */
  maxSessionWindow?: number;
  /** A channel's window grows (doubling) up to this while the application reads a whole
   * window within two round trips: one channel moves one window per round trip. Default
   * `initialWindow` (no growth, as the reference library); `connect()`: 4 MiB. It costs no
   * memory beyond `sessionWindow`'s bound. */
  maxChannelWindow?: number;
  /** Largest OPEN metadata accepted; larger opens are refused with LIMIT. Default 16 KiB. */
  maxMetadata?: number;
  /** Peer-opened channels not yet accepted; more are refused with REFUSED. Default 256. */
  acceptBacklog?: number;
  /** Interval between keepalive PINGs, ms; 0 turns keepalive off. Default 15 000. */
  keepaliveInterval?: number;
  /** A PING unanswered this long after it was due ends the session with TIMEOUT. Default 15 000. */
  keepaliveTimeout?: number;
  /** After GOAWAY, channels still open after this many ms are cut. Default 10 000. */
  drainTimeout?: number;
  /** Remote reset budget (RESET and STOP received): burst. Default 1000. */
  remoteResetBurst?: number;
  /** Remote reset budget: tokens per second. Default 100. */
  remoteResetRefill?: number;
  /** Local reset budget (refusals and resets the peer provoked): burst. Default 1000. */
  localResetBurst?: number;
  /** Local reset budget: tokens per second. Default 100. */
  localResetRefill?: number;
  /** DATA frames in a row that carry nothing, before session error LIMIT. Default 1000. */
  maxEmptyFrames?: number;
  /** Provoked RESET frames waiting to be written, before session error LIMIT. Default 1024. */
  controlQueueLimit?: number;
  /** Bytes of partly reassembled (and handed-on multi-part) messages held per session; a part
   * that passes it resets its channel with LIMIT. Default 32 MiB. */
  maxHeldBytes?: number;
  /** Writing of DATA pauses while the WebSocket's `bufferedAmount` is at or above this.
   * Default 1 MiB. */
  highWaterMark?: number;
  /** Clock in ms (for tests). Default `performance.now()`. */
  now?: () => number;
}

/** Options with every default filled in. */
export type SessionConfig = Required<Omit<SessionOptions, "now">> & { now: () => number };

/** The defaults of {@link SessionOptions}. */
export const DEFAULT_OPTIONS: Readonly<Required<Omit<SessionOptions, "now">>> = Object.freeze({
  initialWindow: 262144,
  maxFramePayload: 16384,
  maxMessageSize: 16777216,
  maxChannels: 256,
  sessionWindow: 262144,
  maxSessionWindow: 16777216,
  maxChannelWindow: 0,
  maxMetadata: 16384,
  acceptBacklog: 256,
  keepaliveInterval: 15000,
  keepaliveTimeout: 15000,
  drainTimeout: 10000,
  remoteResetBurst: 1000,
  remoteResetRefill: 100,
  localResetBurst: 1000,
  localResetRefill: 100,
  maxEmptyFrames: 1000,
  controlQueueLimit: 1024,
  maxHeldBytes: 33554432,
  highWaterMark: 1048576,
});

function defaultNow(): number {
  return globalThis.performance !== undefined ? globalThis.performance.now() : Date.now();
}

/**
 * Fills in defaults and checks the announced values against the spec minimums.
 *
 * @throws {RangeError} for a value below its minimum or beyond u32.
 */
export function resolveConfig(options: SessionOptions = {}): SessionConfig {
  const merged: Record<string, unknown> = { ...DEFAULT_OPTIONS };
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) merged[key] = value;
  }
  const config = merged as unknown as SessionConfig;
  if (options.now === undefined) config.now = defaultNow;
  const minimums: Array<[keyof SessionConfig, number]> = [
    ["initialWindow", 65536],
    ["maxFramePayload", 16384],
    ["maxMessageSize", 1048576],
    ["sessionWindow", 65536],
    ["maxChannels", 0],
  ];
  for (const [key, min] of minimums) {
    const v = config[key] as number;
    if (!Number.isInteger(v) || v < min || v > 0xffffffff) {
      throw new RangeError(`${key} must be an integer in ${min}..2^32-1, got ${v}`);
    }
  }
  if (config.maxSessionWindow < config.sessionWindow) config.maxSessionWindow = config.sessionWindow;
  if (config.maxChannelWindow < config.initialWindow) config.maxChannelWindow = config.initialWindow;
  return config;
}

/** The SETTINGS this end announces. */
export function localSettings(config: SessionConfig): Settings {
  return {
    version: 1,
    initialWindow: config.initialWindow,
    maxFramePayload: config.maxFramePayload,
    maxMessageSize: config.maxMessageSize,
    maxChannels: config.maxChannels,
    sessionWindow: config.sessionWindow,
  };
}

/** The WebSocket message limit of section 12: the largest OPEN this end can receive. */
export function messageLimit(config: SessionConfig): number {
  return 6 + 1 + 255 + 2 + 65535 + config.maxFramePayload;
}
