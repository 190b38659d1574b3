import type { Clock } from './clock.js';

/** Options of a token bucket. */
export interface TokenBucketOptions {
  /** Tokens added per second (sustained rate). Must be > 0. */
  readonly ratePerSec: number;
  /** Bucket capacity (largest burst). Must be >= 1. Starts full. */
  readonly burst: number;
  readonly clock: Clock;
}

/**
 * A token bucket. `take()` spends one token if there is one. Not shared between connections; not
 * meant for concurrent use (single-threaded JS makes that moot).
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly rate: number;
  private readonly burst: number;
  private readonly clock: Clock;

  constructor(opts: TokenBucketOptions) {
    if (!(opts.ratePerSec > 0)) throw new RangeError('ratePerSec must be > 0');
    if (!(opts.burst >= 1)) throw new RangeError('burst must be >= 1');
    this.rate = opts.ratePerSec / 1000;
    this.burst = opts.burst;
    this.clock = opts.clock;
    this.tokens = opts.burst;
    this.last = opts.clock.monotonic();
  }

  /** Spends `n` tokens (default 1); false (and nothing spent) when there are not enough. */
  take(n = 1): boolean {
    const now = this.clock.monotonic();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.rate);
    this.last = now;
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /** Milliseconds until `n` tokens (default 1) will be available; 0 when they are now. */
  msUntil(n = 1): number {
    const missing = n - this.available();
    return missing <= 0 ? 0 : missing / this.rate;
  }

  /** Tokens available now (fractional). */
  available(): number {
    const now = this.clock.monotonic();
    return Math.min(this.burst, this.tokens + (now - this.last) * this.rate);
  }
}
