/**
 * The caller's API of the RPC profile (PROTOCOL.md section 17): {@link RpcClient} and the
 * objects of streaming calls. Every call is one channel of the session; the engine is
 * `rpc-call.ts`.
 *
 * @module
 */

import { json, type Codec } from "./codec.js";
import { ClientCall, type CallOptions, type CallShape } from "./rpc-call.js";
import type { RpcSession } from "./rpc-util.js";

export type { CallOptions } from "./rpc-call.js";

/** Options of an {@link RpcClient}. */
export interface RpcClientOptions {
  /** The codec of request and answer values. Default {@link json}. */
  codec?: Codec<unknown>;
}

/**
 * Calls methods on the peer of a session: either end of a session may call (section 17).
 *
 * Failures reject (or throw from the iteration) with an {@link RpcError}: the callee's STATUS
 * code and text, DEADLINE_EXCEEDED when `timeout` passes, CANCELLED when `signal` aborts,
 * UNAVAILABLE when the session is lost, UNIMPLEMENTED when the peer refuses the method's
 * route with NOT_FOUND (section 17.5).
 *
 * @example
 * const client = new RpcClient(session);
 * const { sum } = await client.unary("interop.json.sum", [1, 2, 3], { timeout: 1000 });
 * for await (const n of client.serverStreaming("ticks", { every: 100 })) console.log(n);
 */
export class RpcClient {
  readonly #session: RpcSession;
  readonly #codec: Codec<unknown>;

  /** A client calling over `session` (of either role). */
  constructor(session: RpcSession, options: RpcClientOptions = {}) {
    this.#session = session;
    this.#codec = options.codec ?? json;
  }

  /**
   * A unary call: one request, one answer. The request goes in the OPEN with FIN, one
   * WebSocket message (section 17.1). Rejects with an {@link RpcError} when the call fails,
   * with a RangeError for a bad `timeout` or header, a TypeError when the codec cannot encode.
   */
  async unary<Res = unknown, Req = unknown>(method: string, request: Req, options: CallOptions = {}): Promise<Res> {
    const call = this.#start(method, "unary", options, { value: request });
    return (await readOne(call)) as Res;
  }

  /**
   * A server-streaming call: one request, then the answers as they come. The call starts at
   * once; iterate the result to read the answers (credit is returned as they are read). The
   * iteration ends at the callee's clean end and throws the {@link RpcError} of a failed
   * call. Leaving the loop early (`break`, an exception) cancels the call.
   *
   * @throws {RangeError} for a bad `timeout` or header; a TypeError when the codec cannot
   *   encode the request.
   */
  serverStreaming<Res = unknown, Req = unknown>(method: string, request: Req, options: CallOptions = {}): ServerStreamingCall<Res> {
    return new ServerStreamingCall<Res>(this.#start(method, "server_streaming", options, { value: request }));
  }

  /**
   * A client-streaming call: `send` the requests, then `finish()`, which resolves with the
   * one answer. The call starts at once. The callee may answer before the requests end; then
   * that is the outcome and further sends reject.
   *
   * @throws {RangeError} for a bad `timeout` or header.
   */
  clientStreaming<Res = unknown, Req = unknown>(method: string, options: CallOptions = {}): ClientStreamingCall<Req, Res> {
    return new ClientStreamingCall<Req, Res>(this.#start(method, "client_streaming", options));
  }

  /**
   * A bidirectional call: `send` requests and iterate the answers, independently; `finish()`
   * ends the requests. The call starts at once. Leaving the loop early cancels the call.
   *
   * @throws {RangeError} for a bad `timeout` or header.
   */
  bidi<Res = unknown, Req = unknown>(method: string, options: CallOptions = {}): BidiCall<Req, Res> {
    return new BidiCall<Req, Res>(this.#start(method, "bidi", options));
  }

  #start(method: string, shape: CallShape, options: CallOptions, request?: { value: unknown }): ClientCall {
    return new ClientCall(this.#session, method, shape, options.codec ?? this.#codec, options, request);
  }
}

/** The one answer of a unary or client-streaming call, after the callee's end. */
async function readOne(call: ClientCall): Promise<unknown> {
  const first = await call.next();
  // `next` fails the call when it ends with no answer or a second one.
  await call.next();
  return first.value;
}

/**
 * The answers of a server-streaming or bidirectional call as an async iterator; returning
 * early (leaving a `for await` loop) cancels a call that has not ended.
 */
function answers<Res>(call: ClientCall, taken: { value: boolean }): AsyncIterableIterator<Res> {
  if (taken.value) throw new TypeError("the answers of a call can be iterated once");
  taken.value = true;
  const iterator: AsyncIterableIterator<Res> = {
    next: async () => (await call.next()) as IteratorResult<Res, undefined>,
    return: async () => {
      call.cancel("the answers' iteration was left");
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

/**
 * A server-streaming call in flight: iterate it for the answers.
 *
 * @example
 * for await (const line of client.serverStreaming("logs.tail", { lines: 10 })) console.log(line);
 */
export class ServerStreamingCall<Res> implements AsyncIterable<Res> {
  readonly #call: ClientCall;
  readonly #taken = { value: false };

  /** @internal */
  constructor(call: ClientCall) {
    this.#call = call;
  }

  /** Settles with the outcome: resolves at the callee's clean end, rejects with the {@link RpcError}. */
  get done(): Promise<void> {
    return this.#call.outcome;
  }

  /** Cancels the call (RESET CANCEL, section 17.5); the iteration throws CANCELLED. Nothing happens once it ended. */
  cancel(reason?: unknown): void {
    this.#call.cancel(reason);
  }

  /** The answers; once only. */
  [Symbol.asyncIterator](): AsyncIterator<Res> {
    return answers<Res>(this.#call, this.#taken);
  }
}

/**
 * A client-streaming call in flight.
 *
 * @example
 * const call = client.clientStreaming<Uint8Array>("interop.concat", { codec: raw });
 * await call.send(bytes("ab"));
 * await call.send(bytes("cd"));
 * const joined = await call.finish();
 */
export class ClientStreamingCall<Req, Res> {
  readonly #call: ClientCall;
  /** The answer: resolves with it, or rejects with the call's {@link RpcError}. */
  readonly response: Promise<Res>;

  /** @internal */
  constructor(call: ClientCall) {
    this.#call = call;
    // Read from the start: a callee may answer (or fail) before the requests end.
    this.response = readOne(call) as Promise<Res>;
    this.response.catch(() => undefined);
  }

  /**
   * Sends one request; resolves once written (credit is the backpressure). Rejects with the
   * call's {@link RpcError} once it failed, with an InvalidStateError after `finish()` or
   * once the callee has answered.
   */
  send(value: Req): Promise<void> {
    return this.#call.send(value);
  }

  /** Ends the requests (FIN) and resolves with the answer (the same as {@link response}). */
  finish(): Promise<Res> {
    this.#call.finish().catch(() => undefined); // its failure is the call's, in `response`
    return this.response;
  }

  /** Cancels the call (RESET CANCEL, section 17.5): `response` rejects with CANCELLED. */
  cancel(reason?: unknown): void {
    this.#call.cancel(reason);
  }
}

/**
 * A bidirectional call in flight: send and iterate independently.
 *
 * @example
 * const call = client.bidi<string, string>("chat");
 * const reading = (async () => { for await (const m of call) console.log(m); })();
 * await call.send("hello");
 * await call.finish();
 * await reading;
 */
export class BidiCall<Req, Res> implements AsyncIterable<Res> {
  readonly #call: ClientCall;
  readonly #taken = { value: false };

  /** @internal */
  constructor(call: ClientCall) {
    this.#call = call;
  }

  /**
   * Sends one request; resolves once written. Rejects with the call's {@link RpcError} once it
   * failed, with an InvalidStateError after `finish()` or once the callee has ended the call.
   */
  send(value: Req): Promise<void> {
    return this.#call.send(value);
  }

  /** Ends the requests (FIN); resolves once it is written. The answers go on. */
  finish(): Promise<void> {
    return this.#call.finish();
  }

  /** Settles with the outcome, once the answers have been read to the end. */
  get done(): Promise<void> {
    return this.#call.outcome;
  }

  /** Cancels the call (RESET CANCEL, section 17.5). Nothing happens once it ended. */
  cancel(reason?: unknown): void {
    this.#call.cancel(reason);
  }

  /** The answers; once only. */
  [Symbol.asyncIterator](): AsyncIterator<Res> {
    return answers<Res>(this.#call, this.#taken);
  }
}
