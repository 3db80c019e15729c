/**
 * The RPC profile of wsmux (PROTOCOL.md section 17): request/response calls over channels, in
 * four shapes (unary, server streaming, client streaming, bidirectional), with deadlines,
 * headers, cancellation and status codes. Either end of a session may call
 * ({@link RpcClient}) and serve ({@link Router}).
 *
 * - `rpc-wire.ts`: status codes, call header, call messages, {@link RpcError}
 * - `rpc-headers.ts`: {@link RpcHeaders}
 * - `rpc-client.ts` (over `rpc-call.ts`): the caller
 * - `rpc-router.ts` (over `rpc-serve.ts`): the callee
 *
 * @example
 * const router = new Router().unary("greet", (name: string) => `hello ${name}`);
 * void router.serve(serverSession);
 * const client = new RpcClient(clientSession);
 * await client.unary("greet", "ada", { timeout: 1000 }); // "hello ada"
 *
 * @module
 */

export {
  StatusCode,
  statusName,
  RpcError,
  MAX_HEADERS,
  MAX_STATUS_TEXT,
  MAX_TIMEOUT_MS,
  MessageKind,
  encodeCallHeader,
  decodeCallHeader,
  encodeRpcMessage,
  decodeRpcMessage,
  type CallHeader,
  type RpcMessage,
} from "./rpc-wire.js";
export { RpcHeaders, type RpcHeadersInit } from "./rpc-headers.js";
export type { RpcSession, RpcOpenOptions } from "./rpc-util.js";
export {
  RpcClient,
  ServerStreamingCall,
  ClientStreamingCall,
  BidiCall,
  type RpcClientOptions,
  type CallOptions,
} from "./rpc-client.js";
export {
  Router,
  type RouterOptions,
  type MethodOptions,
  type ServeOptions,
  type CallContext,
  type UnaryHandler,
  type ServerStreamingHandler,
  type ClientStreamingHandler,
  type BidiHandler,
} from "./rpc-router.js";
