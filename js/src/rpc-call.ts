/**
 * The caller's end of one call (PROTOCOL.md section 17): it opens the channel with the call
 * header, sends the requests, reads the answers to the outcome, and enforces the caller's
 * deadline and cancellation (17.5). The public call objects of `rpc-client.ts` are thin
 * shapes over it.
 *
 * A call ends once, with its outcome: OK (the callee's FIN without a STATUS, or STATUS 0) or
 * an {@link RpcError}. The first end wins; what comes later (a STATUS after a cancellation, a
 * reset after the answer) changes nothing. When the call ends with the channel still open,
 * the caller resets it with CANCEL (a failed call, a callee that answered before the caller
 * finished), or with PROTOCOL for a broken call (17.3).
 *
 * @module
 */

import type { Channel } from "./channel.js";
import type { Codec } from "./codec.js";
import { ErrorCode, InvalidStateError, MessageTooLargeError } from "./errors.js";
import { RpcHeaders, type RpcHeadersInit } from "./rpc-headers.js";
import { Deferred, longTimeout, statusOfChannelError, type RpcSession } from "./rpc-util.js";
import {
  MAX_TIMEOUT_MS,
  RpcError,
  StatusCode,
  decodeRpcMessage,
  encodeCallHeader,
  encodeRpcMessage,
} from "./rpc-wire.js";

/** The four call shapes of section 17.1. */
export type CallShape = "unary" | "server_streaming" | "client_streaming" | "bidi";

/** Options of one call. */
export interface CallOptions {
  /**
   * Milliseconds the call may take (a positive number, at most 2^32 − 1). Sent in the call
   * header, rounded up, so the callee stops too; the caller fails the call with
   * DEADLINE_EXCEEDED when it passes, whatever the callee does. Default: no deadline.
   */
  timeout?: number;
  /** Headers of the call (section 17.2): pairs in order, or an object. */
  headers?: RpcHeadersInit;
  /**
   * Cancels the call when aborted: the call fails with CANCELLED (DEADLINE_EXCEEDED when the
   * reason is a `TimeoutError`, as `AbortSignal.timeout()` gives) and the channel is reset
   * with CANCEL. A reason that is an {@link RpcError} is reported as it is.
   */
  signal?: AbortSignal;
  /** The codec of this call's values, instead of the client's. */
  codec?: Codec<unknown>;
}

/** One call in flight, caller side. @internal */
export class ClientCall {
  readonly shape: CallShape;
  readonly codec: Codec<unknown>;
  readonly #outcome = new Deferred<void>();
  #channel: Channel | null = null;
  #failure: RpcError | null = null;
  #ok = false;
  #answers = 0;
  readonly #cleanups: Array<() => void> = [];

  /**
   * Opens the call. `request`, for unary and server-streaming calls, is sent in the OPEN
   * with FIN (one WebSocket message, section 17.1).
   *
   * @throws {RangeError} for a bad timeout or header; {@link TypeError} when the codec cannot
   *   encode the request.
   */
  constructor(session: RpcSession, method: string, shape: CallShape, codec: Codec<unknown>, options: CallOptions, request?: { value: unknown }) {
    this.shape = shape;
    this.codec = codec;
    const { timeout, signal } = options;
    if (timeout !== undefined && timeout !== Infinity && !(timeout > 0 && timeout <= MAX_TIMEOUT_MS)) {
      throw new RangeError(`timeout ${timeout} ms: a positive number of ms, at most 2^32 - 1`);
    }
    const deadline = timeout !== undefined && timeout !== Infinity;
    const metadata = encodeCallHeader({
      // The time left, rounded up, at least 1 (section 17.2).
      timeoutMs: deadline ? Math.max(1, Math.ceil(timeout)) : 0,
      headers: new RpcHeaders(options.headers ?? []).entries(),
    });
    const message = request === undefined ? undefined : encodeRpcMessage({ kind: "data", value: codec.encode(request.value) });
    if (signal?.aborted) {
      this.fail(abortStatus(signal));
      return;
    }
    try {
      this.#channel = session.open(method, message === undefined ? { metadata } : { metadata, message, finish: true });
    } catch (e) {
      if (e instanceof RangeError || e instanceof TypeError) throw e; // a bad method name
      // The session is closed or going away: the call cannot start (section 17.5).
      this.fail(statusOfChannelError(e));
      return;
    }
    if (deadline) {
      this.#cleanups.push(longTimeout(timeout, () => this.fail(new RpcError(StatusCode.DEADLINE_EXCEEDED, "deadline exceeded"))));
    }
    if (signal !== undefined) {
      const onAbort = (): void => this.fail(abortStatus(signal));
      signal.addEventListener("abort", onAbort, { once: true });
      this.#cleanups.push(() => signal.removeEventListener("abort", onAbort));
    }
    // A reset or the session's end settles the call even when nobody reads its answers
    // (`done` of a stream nobody iterates). Once the callee's FIN has arrived, its answers and
    // STATUS stay readable through a later reset (section 9.2): reading decides then.
    const channel = this.#channel;
    channel.closed.catch((e: unknown) => {
      if (channel.stats().recv !== "finished") this.fail(statusOfChannelError(e));
    });
  }

  /** Settles with the outcome: resolves on OK, rejects with the {@link RpcError}. */
  get outcome(): Promise<void> {
    return this.#outcome.promise;
  }

  /** The call has its outcome. */
  get ended(): boolean {
    return this.#ok || this.#failure !== null;
  }

  /** Ends the call with `error` (unless it has ended) and resets the channel with `resetCode`. */
  fail(error: RpcError, resetCode: number = ErrorCode.CANCEL): void {
    if (this.ended) return;
    this.#failure = error;
    this.#end(resetCode, error.text || error.codeName);
    this.#outcome.reject(error);
  }

  /** Cancels the call (section 17.5): CANCELLED, and RESET CANCEL for the channel. */
  cancel(reason?: unknown): void {
    this.fail(new RpcError(StatusCode.CANCELLED, "cancelled by the caller", { cause: reason }));
  }

  #succeed(): void {
    if (this.ended) return;
    this.#ok = true;
    // The callee finished: a sending direction still open has nothing more to say.
    this.#end(ErrorCode.CANCEL, "the call has ended");
    this.#outcome.resolve();
  }

  #end(resetCode: number, reason: string): void {
    for (const cleanup of this.#cleanups.splice(0)) cleanup();
    // Nothing is sent for a channel that is over on the wire (section 9.2).
    this.#channel?.reset(resetCode, reason);
  }

  /**
   * The next answer value, or `done` at the OK end. Throws the call's {@link RpcError}.
   * Unary and client-streaming calls get exactly one value (17.1): none is INTERNAL, a second
   * one too.
   */
  async next(): Promise<IteratorResult<unknown, undefined>> {
    for (;;) {
      if (this.#failure !== null) throw this.#failure;
      if (this.#ok || this.#channel === null) return { done: true, value: undefined };
      let bytes: Uint8Array | null;
      try {
        bytes = await this.#channel.recv();
      } catch (e) {
        this.fail(statusOfChannelError(e));
        continue;
      }
      if (this.ended) continue; // the deadline or a cancellation came first
      const single = this.shape === "unary" || this.shape === "client_streaming";
      if (bytes === null) {
        if (single && this.#answers === 0) this.fail(new RpcError(StatusCode.INTERNAL, "the callee finished without an answer"));
        else this.#succeed();
        continue;
      }
      let message;
      try {
        message = decodeRpcMessage(bytes);
      } catch (e) {
        this.fail(e as RpcError, ErrorCode.PROTOCOL);
        continue;
      }
      if (message.kind === "status") {
        // A caller ignores whatever the callee sends after its STATUS (17.3).
        if (message.code !== StatusCode.OK) this.fail(new RpcError(message.code, message.text));
        else if (single && this.#answers === 0) this.fail(new RpcError(StatusCode.INTERNAL, "the callee sent STATUS OK without an answer"));
        else this.#succeed();
        continue;
      }
      if (single && this.#answers > 0) {
        this.fail(new RpcError(StatusCode.INTERNAL, "the callee sent more than one answer"));
        continue;
      }
      this.#answers++;
      try {
        return { done: false, value: this.codec.decode(message.value) };
      } catch (e) {
        this.fail(new RpcError(StatusCode.INTERNAL, `the answer did not decode: ${errorText(e)}`, { cause: e }));
      }
    }
  }

  /**
   * Sends one request. Resolves once it is written (credit is the backpressure). Rejects with
   * the call's {@link RpcError} once it failed; with an InvalidStateError after `finish()` or
   * once the callee has ended the call (its outcome is then in the answers).
   */
  async send(value: unknown): Promise<void> {
    this.#check();
    const bytes = encodeRpcMessage({ kind: "data", value: this.codec.encode(value) });
    try {
      await (this.#channel as Channel).send(bytes);
    } catch (e) {
      throw await this.#sendError(e);
    }
  }

  /** Ends the requests (FIN). Resolves once the FIN is written; rejects as {@link send} does. */
  async finish(): Promise<void> {
    this.#check();
    try {
      await (this.#channel as Channel).finish();
    } catch (e) {
      throw await this.#sendError(e);
    }
  }

  #check(): void {
    if (this.#failure !== null) throw this.#failure;
    if (this.#ok) throw new InvalidStateError("the call has ended");
  }

  /** What a failed send reports: the call's end if it has one (or will, from unread answers). */
  async #sendError(error: unknown): Promise<unknown> {
    if (!this.ended && error instanceof MessageTooLargeError) {
      this.fail(new RpcError(StatusCode.RESOURCE_EXHAUSTED, error.message, { cause: error }));
    }
    if (!this.ended && this.#channel?.stats().recv === "finished") {
      // The callee finished (and dropped the channel, section 9.2): its outcome is in the
      // answers not read yet. A call that reads its own answer gets it soon.
      if (this.shape === "client_streaming") await this.outcome.catch(() => undefined);
      else return new InvalidStateError("the callee has ended the call: its outcome is in the answers");
    }
    if (!this.ended && !(error instanceof InvalidStateError)) this.fail(statusOfChannelError(error));
    if (this.#failure !== null) return this.#failure;
    if (this.#ok) return new InvalidStateError("the call has ended");
    return error;
  }
}

/** The status of an aborted signal: DEADLINE_EXCEEDED for a TimeoutError, else CANCELLED. */
function abortStatus(signal: AbortSignal): RpcError {
  const reason: unknown = signal.reason;
  if (reason instanceof RpcError) return reason;
  const timeout = typeof reason === "object" && reason !== null && (reason as { name?: unknown }).name === "TimeoutError";
  return timeout
    ? new RpcError(StatusCode.DEADLINE_EXCEEDED, "deadline exceeded (signal)", { cause: reason })
    : new RpcError(StatusCode.CANCELLED, "cancelled by the caller", { cause: reason });
}

/** The message of an error, for a STATUS text. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
