/**
 * The callee's end of one call (PROTOCOL.md section 17): it reads the requests, runs the
 * handler, writes the answers and the outcome, and runs the callee's deadline and the
 * caller's cancellation (17.5). The registration API is `rpc-router.ts`.
 *
 * A call's end is decided once, by the first of: the handler's answer or error, the deadline
 * (STATUS DEADLINE_EXCEEDED), the caller's reset (nothing more is sent), a request that does
 * not decode (STATUS INVALID_ARGUMENT), a broken call (RESET PROTOCOL, 17.3), the session's
 * end. From then on the handler's results are ignored and its `signal` is aborted (unless it
 * answered). Once the answer's FIN is written, a channel whose caller still sends is reset
 * with CANCEL, as the reference drops a channel (section 9.2): the caller keeps the answer.
 *
 * @module
 */

import type { Channel } from "./channel.js";
import type { Codec } from "./codec.js";
import { ErrorCode, MessageTooLargeError, ResetError } from "./errors.js";
import { errorText } from "./rpc-call.js";
import type { RpcHeaders } from "./rpc-headers.js";
import { Deferred, longTimeout, watchReset } from "./rpc-util.js";
import { RpcError, StatusCode, decodeRpcMessage, encodeRpcMessage } from "./rpc-wire.js";
import type { CallShape } from "./rpc-call.js";

/** What a handler learns about its call besides the request. */
export interface CallContext {
  /** The method called (the channel's route). */
  readonly method: string;
  /** The call's headers (section 17.2). */
  readonly headers: RpcHeaders;
  /** The caller's `timeout_ms` as received; 0 = no deadline. */
  readonly timeoutMs: number;
  /** When the deadline passes, in `Date.now()` milliseconds; undefined without a deadline. */
  readonly deadline: number | undefined;
  /**
   * Aborted when the call ends before the handler did: the deadline passed (reason: an
   * {@link RpcError} DEADLINE_EXCEEDED), the caller cancelled or the session ended
   * (CANCELLED), a request did not decode (INVALID_ARGUMENT), the call broke (INTERNAL).
   */
  readonly signal: AbortSignal;
  /** The call's channel, for what the profile does not cover. */
  readonly channel: Channel;
}

/** A handler of one of the four shapes, with its values decoded. @internal */
export type AnyHandler = (input: unknown, context: CallContext) => unknown;

// Every end announces a MAX_MESSAGE_SIZE of at least 1 MiB (section 6): an answer this small
// can go with its FIN in one frame without risk of being refused as too large.
const ALWAYS_SENDABLE = 1048576;

/**
 * Sends STATUS and FIN (in one frame), then drops the channel: RESET CANCEL once the FIN is
 * written if the caller has not finished (section 9.2).
 */
export function answerStatus(ch: Channel, code: number, text: string): void {
  ch.send(encodeRpcMessage({ kind: "status", code, text })).catch(() => undefined);
  ch.finish().then(
    () => ch.reset(ErrorCode.CANCEL, "the call has ended"),
    () => undefined,
  );
}

function tooLarge(size: number, limit: number): string {
  return `an answer of ${size} bytes exceeds the caller's MAX_MESSAGE_SIZE of ${limit}`;
}

/** One call being served. @internal */
export class ServerCall {
  readonly #ch: Channel;
  readonly #shape: CallShape;
  readonly #handler: AnyHandler;
  readonly #codec: Codec<unknown>;
  readonly #abort = new AbortController();
  readonly #ended = new Deferred<void>();
  readonly #cleanups: Array<() => void> = [];
  /** The call's end is decided: the handler's results no longer count. */
  #over = false;
  readonly context: CallContext;

  readonly #peerLimit: () => number | undefined;

  /** `peerLimit` tells the caller's MAX_MESSAGE_SIZE, when the session knows it. */
  constructor(
    ch: Channel,
    shape: CallShape,
    handler: AnyHandler,
    codec: Codec<unknown>,
    headers: RpcHeaders,
    timeoutMs: number,
    peerLimit: () => number | undefined,
  ) {
    this.#ch = ch;
    this.#peerLimit = peerLimit;
    this.#shape = shape;
    this.#handler = handler;
    this.#codec = codec;
    this.context = {
      method: ch.route,
      headers,
      timeoutMs,
      deadline: timeoutMs > 0 ? Date.now() + timeoutMs : undefined,
      signal: this.#abort.signal,
      channel: ch,
    };
    if (timeoutMs > 0) {
      this.#cleanups.push(
        longTimeout(timeoutMs, () => this.#fail(new RpcError(StatusCode.DEADLINE_EXCEEDED, "deadline exceeded"), "answer")),
      );
    }
    // The caller's RESET may come when nothing reads or writes (a unary handler at work).
    const reset = new RpcError(StatusCode.CANCELLED, "the channel was reset: the caller cancelled, or the session ended");
    this.#cleanups.push(watchReset(ch, () => this.#fail(reset, "silent")));
  }

  /**
   * Runs the call. Its end is decided (answer, STATUS, deadline, cancellation) as soon as it
   * can be; the promise resolves only once the handler has returned too, so that a bound on
   * calls in flight counts the handlers still running (one that ignores its AbortSignal holds
   * its place until it returns: JavaScript cannot stop it).
   */
  async run(): Promise<void> {
    this.#ch.accept();
    const work = this.#work().catch((e: unknown) => this.#handlerFailed(e));
    await Promise.race([work, this.#ended.promise]);
    await work;
  }

  async #work(): Promise<void> {
    const ctx = this.context;
    switch (this.#shape) {
      case "unary":
        return this.#answerOne(await this.#handler(await this.#single(), ctx));
      case "server_streaming":
        return this.#answerMany(await this.#handler(await this.#single(), ctx));
      case "client_streaming":
        return this.#answerOne(await this.#handler(this.#requests(), ctx));
      case "bidi":
        return this.#answerMany(await this.#handler(this.#requests(), ctx));
    }
  }

  /** The one request of a unary or server-streaming call, once the caller's FIN came. */
  async #single(): Promise<unknown> {
    const first = await this.#read();
    if (first === null) throw this.#fail(new RpcError(StatusCode.INVALID_ARGUMENT, "no request"), "answer");
    if ((await this.#read()) !== null) {
      throw this.#fail(new RpcError(StatusCode.INVALID_ARGUMENT, "more than one request"), "answer");
    }
    return first.value;
  }

  /** The requests of a streaming call, to the caller's FIN. */
  async *#requests(): AsyncGenerator<unknown, void, undefined> {
    for (;;) {
      const request = await this.#read();
      if (request === null) return;
      yield request.value;
    }
  }

  /** The next request, or null at the caller's FIN. Throws the call's end. */
  async #read(): Promise<{ value: unknown } | null> {
    this.#throwIfOver();
    let bytes: Uint8Array | null;
    try {
      bytes = await this.#ch.recv();
    } catch (e) {
      const cancelled = e instanceof ResetError && e.origin === "remote";
      const why = cancelled ? "the caller cancelled the call" : `the call's channel failed: ${errorText(e)}`;
      throw this.#fail(new RpcError(cancelled ? StatusCode.CANCELLED : StatusCode.UNAVAILABLE, why, { cause: e }), "silent");
    }
    this.#throwIfOver();
    if (bytes === null) return null;
    let message;
    try {
      message = decodeRpcMessage(bytes);
    } catch (e) {
      throw this.#fail(e as RpcError, "broken");
    }
    if (message.kind === "status") {
      throw this.#fail(new RpcError(StatusCode.INTERNAL, "broken call: a STATUS from the caller"), "broken");
    }
    try {
      return { value: this.#codec.decode(message.value) };
    } catch (e) {
      throw this.#fail(new RpcError(StatusCode.INVALID_ARGUMENT, `the request did not decode: ${errorText(e)}`, { cause: e }), "answer");
    }
  }

  /** The answer of a unary or client-streaming call, with its FIN in the same frame. */
  async #answerOne(value: unknown): Promise<void> {
    this.#throwIfOver();
    const message = this.#encode(value);
    this.#decide();
    const ch = this.#ch;
    const limit = this.#peerLimit();
    if (limit !== undefined && message.length > limit) {
      this.#status(StatusCode.RESOURCE_EXHAUSTED, tooLarge(message.length, limit));
      return;
    }
    if (message.length <= (limit ?? ALWAYS_SENDABLE)) {
      const sent = ch.send(message);
      const finished = ch.finish();
      await Promise.all([sent, finished]).then(this.#drop, () => undefined);
      return;
    }
    try {
      await ch.send(message);
    } catch (e) {
      if (e instanceof MessageTooLargeError) this.#status(StatusCode.RESOURCE_EXHAUSTED, e.message);
      return;
    }
    await ch.finish().then(this.#drop, () => undefined);
  }

  /** The answers of a streaming call as the handler yields them, then FIN. */
  async #answerMany(values: unknown): Promise<void> {
    const iterable = values as AsyncIterable<unknown> | Iterable<unknown>;
    if (iterable === null || typeof iterable !== "object" || !(Symbol.asyncIterator in iterable || Symbol.iterator in iterable)) {
      throw new TypeError("a streaming handler returns an iterable of answers");
    }
    for await (const value of iterable) {
      this.#throwIfOver();
      const message = this.#encode(value);
      const limit = this.#peerLimit();
      if (limit !== undefined && message.length > limit) {
        throw new RpcError(StatusCode.RESOURCE_EXHAUSTED, tooLarge(message.length, limit));
      }
      try {
        await this.#ch.send(message);
      } catch (e) {
        if (e instanceof RpcError) throw e;
        if (e instanceof MessageTooLargeError) throw new RpcError(StatusCode.RESOURCE_EXHAUSTED, e.message, { cause: e });
        // The channel failed under the send: the caller reset it, or the session ended.
        const cancelled = e instanceof ResetError && e.origin === "remote";
        throw this.#fail(new RpcError(cancelled ? StatusCode.CANCELLED : StatusCode.UNAVAILABLE, errorText(e), { cause: e }), "silent");
      }
    }
    this.#throwIfOver();
    this.#decide();
    await this.#ch.finish().then(this.#drop, () => undefined);
  }

  #encode(value: unknown): Uint8Array {
    try {
      return encodeRpcMessage({ kind: "data", value: this.#codec.encode(value) });
    } catch (e) {
      throw new RpcError(StatusCode.INTERNAL, `the answer did not encode: ${errorText(e)}`, { cause: e });
    }
  }

  /** The handler threw (or returned something unusable): its STATUS. */
  #handlerFailed(error: unknown): void {
    if (this.#over) return;
    // An RpcError gives its code; anything else is "an error without a better code".
    const status = error instanceof RpcError ? error : new RpcError(StatusCode.UNKNOWN, errorText(error), { cause: error });
    this.#decide();
    this.#status(status.code, status.text);
  }

  /**
   * Ends the call before the handler answered: `answer` sends STATUS and FIN, `silent` sends
   * nothing (the caller cancelled, the session ended), `broken` resets with PROTOCOL. Aborts
   * the handler's signal with `error`. Returns `error`.
   */
  #fail(error: RpcError, how: "answer" | "silent" | "broken"): RpcError {
    if (this.#over) return error;
    this.#decide();
    this.#abort.abort(error);
    if (how === "answer") this.#status(error.code, error.text);
    else this.#ch.reset(how === "broken" ? ErrorCode.PROTOCOL : ErrorCode.CANCEL, error.text);
    return error;
  }

  #status(code: number, text: string): void {
    answerStatus(this.#ch, code, text);
  }

  /** The end is decided: stop the deadline and the watch, let `run` return. */
  #decide(): void {
    this.#over = true;
    for (const cleanup of this.#cleanups.splice(0)) cleanup();
    this.#ended.resolve();
  }

  #throwIfOver(): void {
    if (this.#over) throw new RpcError(StatusCode.CANCELLED, "the call has ended");
  }

  /** After the answer's FIN: a caller still sending is cut (its sends fail, section 17.5). */
  readonly #drop = (): void => {
    this.#ch.reset(ErrorCode.CANCEL, "the call has ended");
  };
}
