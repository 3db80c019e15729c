/**
 * Credit accounting (PROTOCOL.md section 8) and the token buckets of the abuse budgets
 * (section 12). Pure bookkeeping: no frames, no timers; time comes in as a parameter.
 *
 * @module
 */

import { MAX_U32 } from "./frame.js";

/** What keeping one message part costs a receiver, charged on top of its payload bytes. */
export const PART_CHARGE = 64;

/** The smallest DATA payload worth sending when the rest of the message is larger
 * (section 8, "minimum chunk", CVE-2019-9511). */
export const MIN_CHUNK = 1024;

/** The credit a part of `payloadLength` bytes takes. */
export function partCost(payloadLength: number): number {
  return payloadLength + PART_CHARGE;
}

/**
 * One receive window (a channel's or the session's), as the receiver counts it.
 *
 * ```
 *   granted ──────────────────────────────────────────────▶ (announced window + WINDOWs sent)
 *   used    ───────────────────▶                             (parts received: bytes + 64 each)
 *   read    ─────────────▶                                   (returned or waiting to be)
 * ```
 *
 * The peer may send `granted − used` more. `unreturned` is credit read by the application (or
 * dropped, or moved into a reassembly buffer) and not yet given back with WINDOW. `granted`
 * grows only when a WINDOW is *transmitted* ({@link RecvWindow.takeIncrement}), never when one
 * is queued: the peer cannot use credit it has not been sent.
 */
export class RecvWindow {
  /** Total credit given to the peer so far. */
  private granted: number;
  /** Total credit the peer's parts took. */
  private used = 0;
  /** Credit read and not yet returned. */
  unreturned = 0;
  /** Current window size; the session's may grow. */
  window: number;
  // Window growth (session only): reads within the current measuring epoch.
  private epochStart = -1;
  private epochRead = 0;
  /** Growth not yet sent as credit. */
  private grown = 0;

  constructor(window: number) {
    this.window = window;
    this.granted = window;
  }

  /** Credit the peer has left. */
  get available(): number {
    return this.granted - this.used;
  }

  /** Charges a received part. False (nothing charged) when it exceeds the credit: FLOW_CONTROL. */
  consume(cost: number): boolean {
    if (cost > this.granted - this.used) return false;
    this.used += cost;
    return true;
  }

  /** Records credit as read (or dropped), to be returned. */
  read(cost: number, now?: number): void {
    this.unreturned += cost;
    if (now !== undefined) {
      // The first read starts the first epoch: how long its bytes took is not known.
      if (this.epochStart < 0) this.epochStart = now;
      else this.epochRead += cost;
    }
  }

  /**
   * Whether a WINDOW is due: a quarter of the window read and unreturned (the reference's
   * batching), which is always below the spec's latest point, window − 1088 (section 8).
   */
  due(): boolean {
    return this.unreturned > 0 && this.unreturned >= Math.max(1, Math.floor(this.window / 4));
  }

  /**
   * Session window growth (section 8), first case: the peer has less than a quarter of the
   * window left (a few channels hold unread data and the others need room). Doubles the
   * window, up to `max`; true when it grew (a session WINDOW is then due, for the growth).
   */
  growIfShort(max: number): boolean {
    if (this.available + this.grown >= this.window / 4) return false;
    return this.double(max) > 0;
  }

  /**
   * Session window growth (section 8), second case: the application read a whole window in
   * less than two smoothed round trips (the window, not the reader, limits the peer). Returns
   * the bytes the window grew by, in both cases since the last call (to add to the increment).
   */
  maybeGrow(now: number, srtt: number | undefined, max: number): number {
    if (this.epochStart >= 0 && this.epochRead >= this.window) {
      const fast = srtt !== undefined && now - this.epochStart < 2 * Math.max(srtt, 1);
      this.epochStart = now;
      this.epochRead = 0;
      if (fast) this.double(max);
    }
    const grown = this.grown;
    this.grown = 0;
    return grown;
  }

  /** Doubles the window up to `max`; returns the growth (kept for the next increment). */
  private double(max: number): number {
    if (this.window >= max) return 0;
    const delta = Math.min(this.window, max - this.window);
    this.window += delta;
    this.grown += delta;
    return delta;
  }

  /**
   * Takes the increment of the WINDOW being transmitted now (unreturned credit plus `extra`
   * growth), capped so that the peer's credit never passes 2^32−1. Zero: send nothing.
   */
  takeIncrement(extra = 0): number {
    const cap = MAX_U32 - (this.granted - this.used);
    const inc = Math.min(this.unreturned + extra, cap);
    if (inc <= 0) return 0;
    // What the cap held back stays owed, for a later WINDOW.
    this.unreturned = this.unreturned + extra - inc;
    this.granted += inc;
    return inc;
  }
}

/**
 * Adds a WINDOW increment to a send credit with the overflow check of section 8.
 * Returns the new credit, or -1 when it would pass 2^32−1 (session error FLOW_CONTROL).
 */
export function addCredit(credit: number, increment: number): number {
  const next = credit + increment;
  return next > MAX_U32 ? -1 : next;
}

/**
 * A token bucket (section 12): `burst` tokens at the start, `refill` whole tokens per second
 * added back, never more than `burst`.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly burst: number,
    private readonly refill: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes one token; false when the budget is spent. */
  take(now: number): boolean {
    if (this.refill > 0 && now > this.last) {
      const whole = Math.floor(((now - this.last) * this.refill) / 1000);
      if (whole > 0) {
        this.tokens = Math.min(this.burst, this.tokens + whole);
        // Keep the fraction of a token already earned.
        this.last += (whole * 1000) / this.refill;
        if (this.tokens === this.burst) this.last = now;
      }
    }
    if (this.tokens <= 0) return false;
    this.tokens -= 1;
    return true;
  }
}
