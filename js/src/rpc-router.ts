/**
 * The callee's API of the RPC profile (PROTOCOL.md section 17): a {@link Router} of methods,
 * served on a session with {@link Router.serve}. Either end of a session may serve. The
 * engine of one call is `rpc-serve.ts`.
 *
 * @module
 */

import type { Channel } from "./channel.js";
import { json, type Codec } from "./codec.js";
import type { CallShape } from "./rpc-call.js";
import { RpcHeaders } from "./rpc-headers.js";
import { ServerCall, answerStatus, type AnyHandler, type CallContext } from "./rpc-serve.js";
import type { RpcSession } from "./rpc-util.js";
import { RpcError, StatusCode, decodeCallHeader } from "./rpc-wire.js";

export type { CallContext } from "./rpc-serve.js";

/** A unary handler: the request, then the answer (or a promise of it). Throw an {@link RpcError} to fail the call with its code. */
export type UnaryHandler<Req, Res> = (request: Req, context: CallContext) => Res | Promise<Res>;
/** A server-streaming handler: the request, then the answers as an (async) iterable, an async generator for example. */
export type ServerStreamingHandler<Req, Res> = (
  request: Req,
  context: CallContext,
) => AsyncIterable<Res> | Iterable<Res> | Promise<AsyncIterable<Res> | Iterable<Res>>;
/** A client-streaming handler: the requests as an async iterable (to the caller's FIN), then the answer. */
export type ClientStreamingHandler<Req, Res> = (requests: AsyncIterable<Req>, context: CallContext) => Res | Promise<Res>;
/** A bidirectional handler: the requests as an async iterable, the answers as an (async) iterable. */
export type BidiHandler<Req, Res> = (
  requests: AsyncIterable<Req>,
  context: CallContext,
) => AsyncIterable<Res> | Iterable<Res> | Promise<AsyncIterable<Res> | Iterable<Res>>;

/** Options of a {@link Router}. */
export interface RouterOptions {
  /** The codec of request and answer values. Default {@link json}. */
  codec?: Codec<unknown>;
  /**
   * Calls one session runs at once; past it a new call is answered RESOURCE_EXHAUSTED at once,
   * without running (section 17.5). Default 256, the reference's MAX_CHANNELS, so that by
   * default the channel limit binds first.
   */
  maxConcurrentCalls?: number;
}

/** Options of one method's registration. */
export interface MethodOptions {
  /** The codec of this method's values, instead of the router's. */
  codec?: Codec<unknown>;
}

/** Options of {@link Router.serve}. */
export interface ServeOptions {
  /**
   * Takes the channels whose route is no method of the router (they are then not calls).
   * Without it they are calls of an unknown method: accepted and answered UNIMPLEMENTED
   * (section 17.5).
   */
  fallback?: (channel: Channel) => void;
}

interface Method {
  shape: CallShape;
  handler: AnyHandler;
  codec: Codec<unknown> | undefined;
}

const encoder = new TextEncoder();

/**
 * Methods served on a session, by name. Handlers get the decoded request(s) and a
 * {@link CallContext} (headers, deadline, an AbortSignal for cancellation and the deadline).
 * A handler's {@link RpcError} becomes the STATUS with its code and text; any other error
 * becomes UNKNOWN with the error's message.
 *
 * @example
 * const router = new Router()
 *   .unary("math.add", ([a, b]: [number, number]) => a + b)
 *   .serverStreaming("count", async function* (n: number, ctx) {
 *     for (let i = 0; i < n && !ctx.signal.aborted; i++) yield i;
 *   });
 * router.serve(session);
 */
export class Router {
  readonly #methods = new Map<string, Method>();
  readonly #codec: Codec<unknown>;
  readonly #maxConcurrent: number;

  /** An empty router. @throws {RangeError} for a `maxConcurrentCalls` below 1. */
  constructor(options: RouterOptions = {}) {
    this.#codec = options.codec ?? json;
    this.#maxConcurrent = options.maxConcurrentCalls ?? 256;
    if (!(this.#maxConcurrent >= 1)) throw new RangeError("maxConcurrentCalls must be at least 1");
  }

  /** Registers a unary method. @throws {Error} when `method` is registered already or is not 1–255 UTF-8 bytes. */
  unary<Req = unknown, Res = unknown>(method: string, handler: UnaryHandler<Req, Res>, options: MethodOptions = {}): this {
    return this.#add(method, "unary", handler as AnyHandler, options);
  }

  /** Registers a server-streaming method. @throws {Error} as {@link unary} does. */
  serverStreaming<Req = unknown, Res = unknown>(method: string, handler: ServerStreamingHandler<Req, Res>, options: MethodOptions = {}): this {
    return this.#add(method, "server_streaming", handler as AnyHandler, options);
  }

  /** Registers a client-streaming method. @throws {Error} as {@link unary} does. */
  clientStreaming<Req = unknown, Res = unknown>(method: string, handler: ClientStreamingHandler<Req, Res>, options: MethodOptions = {}): this {
    return this.#add(method, "client_streaming", handler as AnyHandler, options);
  }

  /** Registers a bidirectional method. @throws {Error} as {@link unary} does. */
  bidi<Req = unknown, Res = unknown>(method: string, handler: BidiHandler<Req, Res>, options: MethodOptions = {}): this {
    return this.#add(method, "bidi", handler as AnyHandler, options);
  }

  /** The names of the registered methods. */
  get methods(): string[] {
    return [...this.#methods.keys()];
  }

  /**
   * Serves the calls the peer opens on `session` until its `incoming` ends (GOAWAY, the
   * session's end). Takes every incoming channel: give `fallback` for routes that are not
   * methods. Resolves when no more calls can come (never rejects); calls in flight go on.
   *
   * @example
   * void router.serve(session);
   */
  async serve(session: RpcSession, options: ServeOptions = {}): Promise<void> {
    const inFlight = { count: 0 };
    const peerLimit = (): number | undefined => session.stats?.().peerSettings.maxMessageSize;
    const incoming = session.incoming;
    try {
      if ("getReader" in incoming) {
        const reader = incoming.getReader();
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) return;
            this.#dispatch(value, inFlight, peerLimit, options);
          }
        } finally {
          reader.releaseLock();
        }
      } else {
        for await (const ch of incoming) this.#dispatch(ch, inFlight, peerLimit, options);
      }
    } catch {
      // The session ended with an error: no more calls, and the calls in flight learn it
      // from their channels.
    }
  }

  #add(method: string, shape: CallShape, handler: AnyHandler, options: MethodOptions): this {
    const length = encoder.encode(method).length;
    if (length < 1 || length > 255) throw new RangeError(`method name of ${length} bytes: 1 to 255`);
    if (this.#methods.has(method)) throw new Error(`method ${method} is registered already`);
    if (typeof handler !== "function") throw new TypeError(`the handler of ${method} is not a function`);
    this.#methods.set(method, { shape, handler, codec: options.codec });
    return this;
  }

  #dispatch(ch: Channel, inFlight: { count: number }, peerLimit: () => number | undefined, options: ServeOptions): void {
    const method = this.#methods.get(ch.route);
    if (method === undefined) {
      if (options.fallback !== undefined) options.fallback(ch);
      else answerStatus(ch.accept(), StatusCode.UNIMPLEMENTED, `no method ${ch.route}`);
      return;
    }
    let header;
    try {
      header = decodeCallHeader(ch.metadata);
    } catch (e) {
      answerStatus(ch.accept(), StatusCode.INVALID_ARGUMENT, (e as RpcError).text);
      return;
    }
    if (inFlight.count >= this.#maxConcurrent) {
      answerStatus(ch.accept(), StatusCode.RESOURCE_EXHAUSTED, `more than ${this.#maxConcurrent} calls in flight`);
      return;
    }
    inFlight.count++;
    const call = new ServerCall(ch, method.shape, method.handler, method.codec ?? this.#codec, new RpcHeaders(header.headers), header.timeoutMs, peerLimit);
    void call.run().finally(() => inFlight.count--);
  }
}
