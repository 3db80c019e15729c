/**
 * Small pieces both ends of a call share: the session shape RPC needs, timers that can wait
 * the largest `timeout_ms`, a watch for a channel reset the application would not see, and
 * the mapping of channel errors to status codes (section 17.5).
 *
 * @module
 */

import type { Channel } from "./channel.js";
import { ErrorCode, InvalidStateError, MessageTooLargeError, ResetError, SessionError, StopError, codeName } from "./errors.js";
import { RpcError, StatusCode } from "./rpc-wire.js";

/** What the OPEN of a call carries: `Session.open`'s options that RPC uses. */
export interface RpcOpenOptions {
  /** The call header. */
  metadata?: Uint8Array;
  /** A first message, sent in the OPEN itself. */
  message?: Uint8Array;
  /** FIN in the OPEN (after `message`). */
  finish?: boolean;
}

/**
 * The parts of a {@link Session} that RPC uses: opening channels (as a caller) and the
 * channels the peer opens (as a callee). A `Session` is one, of either role.
 */
export interface RpcSession {
  /** Opens a channel; synchronous, throws when the session can open no more. */
  open(route: string, options?: RpcOpenOptions): Channel;
  /** The channels the peer opens. */
  readonly incoming: ReadableStream<Channel> | AsyncIterable<Channel>;
  /**
   * The peer's SETTINGS, if the session tells them: a callee then answers RESOURCE_EXHAUSTED
   * instead of an answer larger than the caller's MAX_MESSAGE_SIZE (section 5).
   */
  stats?(): { peerSettings: { maxMessageSize: number } };
}

// setTimeout holds at most 2^31 - 1 ms (Node and browsers fire at once beyond it); a u32
// timeout_ms reaches 2^32 - 1, so longer waits are chained.
const MAX_TIMER = 0x7fffffff;

/** Calls `fn` after `ms` (any u32), chaining timers beyond setTimeout's range; returns the cancel. */
export function longTimeout(ms: number, fn: () => void): () => void {
  let handle: ReturnType<typeof setTimeout>;
  const arm = (left: number): void => {
    handle = setTimeout(() => (left > MAX_TIMER ? arm(left - MAX_TIMER) : fn()), Math.min(left, MAX_TIMER));
    // A deadline alone never keeps a Node process alive (the session's socket does).
    (handle as { unref?: () => void }).unref?.();
  };
  arm(ms);
  return () => clearTimeout(handle);
}

/**
 * Calls `onEnd` once the channel fails: reset by either end, its sending direction stopped, or
 * the session's end (`Channel.closed` rejects). A channel whose peer has finished shows a
 * later RESET only to a send (section 9.2), so a handler that only computes, or a caller that
 * only waits for its answer, learns of it here. Returns the function that stops watching.
 */
export function watchReset(ch: Channel, onEnd: () => void): () => void {
  let watching = true;
  ch.closed.catch(() => {
    if (watching) onEnd();
  });
  return () => {
    watching = false;
  };
}

/**
 * The status a caller reports for an error of its channel or session (section 17.5): a reset
 * by the callee gives CANCELLED (CANCEL), UNAVAILABLE (REFUSED), UNIMPLEMENTED (NOT_FOUND) or
 * UNKNOWN (any other code); the loss of the session gives UNAVAILABLE.
 */
export function statusOfChannelError(error: unknown): RpcError {
  if (error instanceof RpcError) return error;
  const cause = { cause: error };
  if (error instanceof ResetError) {
    const what = `${codeName(error.code)}${error.reason ? `: ${error.reason}` : ""}`;
    if (error.origin === "local") {
      // This end's session reset the channel for a reason of its own (not a cancellation,
      // which sets the call's status before it resets): an answer over its message limit,
      // or the peer broke the channel's rules.
      const code = error.code === ErrorCode.LIMIT ? StatusCode.RESOURCE_EXHAUSTED : StatusCode.INTERNAL;
      return new RpcError(code, `channel reset locally with ${what}`, cause);
    }
    const code =
      error.code === ErrorCode.CANCEL
        ? StatusCode.CANCELLED
        : error.code === ErrorCode.REFUSED
          ? StatusCode.UNAVAILABLE
          : error.code === ErrorCode.NOT_FOUND
            ? StatusCode.UNIMPLEMENTED
            : StatusCode.UNKNOWN;
    return new RpcError(code, `channel reset by the peer with ${what}`, cause);
  }
  if (error instanceof StopError) {
    return new RpcError(StatusCode.UNKNOWN, `the peer stopped reading with ${codeName(error.code)}`, cause);
  }
  if (error instanceof SessionError) return new RpcError(StatusCode.UNAVAILABLE, error.message, cause);
  if (error instanceof MessageTooLargeError) return new RpcError(StatusCode.RESOURCE_EXHAUSTED, error.message, cause);
  if (error instanceof InvalidStateError) return new RpcError(StatusCode.UNAVAILABLE, error.message, cause);
  return new RpcError(StatusCode.INTERNAL, error instanceof Error ? error.message : String(error), cause);
}

/** A promise with its settle functions; its rejection never goes unhandled. */
export class Deferred<T> {
  readonly promise: Promise<T>;
  resolve!: (value: T) => void;
  reject!: (error: unknown) => void;

  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.promise.catch(() => undefined);
  }
}
