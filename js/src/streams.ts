/**
 * WHATWG stream views of a channel (DESIGN.md section 10): a ReadableStream of the incoming
 * messages and a WritableStream of the outgoing ones, one chunk per message.
 *
 * Backpressure is the channel's credit, with no buffer of its own in between: the readable
 * has a high-water mark of 0, so a message is taken from the channel (and its credit returned
 * to the peer, section 8) only when the application reads; a write resolves only when its
 * message is written to the WebSocket, which waits for credit.
 *
 * @module
 */

import type { Channel } from "./channel.js";
import { codeOf } from "./channel.js";

/** The text for a RESET or STOP reason from a stream's cancel/abort reason. */
export function reasonText(reason: unknown): string {
  if (typeof reason === "string") return reason;
  if (reason instanceof Error) return reason.message;
  if (typeof reason === "object" && reason !== null && "reason" in reason) {
    const r = (reason as { reason: unknown }).reason;
    if (typeof r === "string") return r;
  }
  return "";
}

/**
 * The channel's incoming messages as a ReadableStream. It closes at the peer's FIN (a clean
 * end) and errors with the channel's error ({@link ResetError}, the {@link SessionError}).
 * `cancel(reason)` sends STOP with the reason's code (a number, or an object's `code`;
 * CANCEL otherwise): the peer stops sending, this end's sending direction goes on.
 */
export function channelReadable(channel: Channel): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller): Promise<void> {
        const message = await channel.recv();
        if (message === null) controller.close();
        else controller.enqueue(message);
      },
      cancel(reason): void {
        channel.stopReceiving(codeOf(reason), reasonText(reason));
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * The channel's outgoing messages as a WritableStream: each chunk is one message. A write
 * settles as `Channel.send` does; `close()` finishes (FIN, resolving when it is written);
 * `abort(reason)` resets the channel with the reason's code (CANCEL by default).
 */
export function channelWritable(channel: Channel): WritableStream<Uint8Array> {
  return new WritableStream<Uint8Array>(
    {
      write(chunk): Promise<void> {
        return channel.send(chunk);
      },
      close(): Promise<void> {
        return channel.finish();
      },
      abort(reason): void {
        channel.reset(codeOf(reason), reasonText(reason));
      },
    },
    { highWaterMark: 1 },
  );
}
