/**
 * wsmux: many flow-controlled, message-oriented channels over one WebSocket (PROTOCOL.md),
 * for browsers and Node ≥ 20, client and server roles.
 *
 * - {@link connect} opens a session as a client; {@link Session.accept} runs the server role
 *   over a WebSocket a Node server upgraded.
 * - {@link Session.open} opens a {@link Channel}; {@link Session.incoming} yields the peer's.
 * - The frame codec (`encodeFrame`, `decodeFrame`, `encodePack`, `splitPack`, ...) is exported
 *   for tests and tools.
 *
 * @module
 */

export { Session, connect, SUBPROTOCOL, CONNECT_DEFAULTS } from "./session.js";
export type {
  ConnectOptions,
  OpenOptions,
  SessionStats,
  IncomingChannels,
  WebSocketConstructor,
} from "./session.js";
export { Channel, toBytes, codeOf } from "./channel.js";
export type { BytesLike, ChannelStats } from "./channel.js";
export {
  ErrorCode,
  codeName,
  WsmuxError,
  SessionError,
  ResetError,
  StopError,
  MessageTooLargeError,
  FrameDecodeError,
  InvalidStateError,
} from "./errors.js";
export type { ErrorCodeValue, DecodeErrorKind, ErrorOrigin } from "./errors.js";
export { DEFAULT_OPTIONS, messageLimit, resolveConfig } from "./config.js";
export type { SessionOptions, SessionConfig } from "./config.js";
export type { Role, SessionState, SessionCounters } from "./core.js";
export type { WebSocketLike } from "./transport.js";
export { standardCloseCode, browserCloseCode } from "./transport.js";
export { channelReadable, channelWritable } from "./streams.js";
export { PART_CHARGE, MIN_CHUNK, partCost } from "./credit.js";
export {
  FrameType,
  Flag,
  SettingId,
  SPEC_DEFAULTS,
  HEADER_LEN,
  MAX_U32,
  decodeFrame,
  decodeMessage,
  encodeFrame,
  encodePack,
  splitPack,
  isPack,
  utf8,
  utf8Truncated,
} from "./frame.js";
export type {
  Frame,
  DataFrame,
  OpenFrame,
  WindowFrame,
  ResetFrame,
  StopFrame,
  PingFrame,
  GoawayFrame,
  SettingsFrame,
  ExtensionFrame,
  Settings,
} from "./frame.js";

// The RPC profile (PROTOCOL.md section 17) and its value codecs.
export * from "./rpc.js";
export * from "./codec.js";
