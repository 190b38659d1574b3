import type { Clock } from '../util/index.js';

/** Longest delay one `setTimeout` takes (about 24.8 days); a later expiry re-arms on the way. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The expiry of a connection's token: one timer, re-armed by every accepted `refresh`, that calls
 * `onExpired` once the clock passes the token's `exp`. A connection without a token never expires.
 */
export class TokenExpiry {
  private expiresAtMs: number | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly clock: Clock, private readonly onExpired: () => void) {}

  /** True when the connection signed in with a token (so it expires, and may be refreshed). */
  get hasToken(): boolean {
    return this.expiresAtMs !== undefined;
  }

  /** Sets the token's `exp` (JWT seconds; undefined: never) and arms the timer. */
  arm(exp: number | undefined): void {
    this.stop();
    this.expiresAtMs = exp === undefined ? undefined : exp * 1000;
    if (this.expiresAtMs !== undefined) this.check();
  }

  /** Stops the timer (the connection closed). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    if (this.expiresAtMs === undefined) return;
    const left = this.expiresAtMs - this.clock.now();
    if (left > 0) {
      // Re-checked when it fires: timers and the wall clock drift apart, and a timer is capped.
      this.timer = setTimeout(() => this.check(), Math.min(Math.ceil(left), MAX_TIMER_MS));
      this.timer.unref();
      return;
    }
    this.onExpired();
  }
}
