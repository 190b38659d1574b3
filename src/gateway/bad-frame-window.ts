import type { Clock } from '../util/index.js';

/** Options of a `BadFrameWindow`. */
export interface BadFrameWindowOptions {
  /** More than this many events within `windowMs` is a violation. Must be an integer >= 1. */
  readonly max: number;
  /** Length of the sliding window, in ms. Must be > 0. */
  readonly windowMs: number;
  readonly clock: Clock;
}

/**
 * Counts a connection's bad frames over a sliding window: `record()` says whether more than `max`
 * happened within `windowMs`. Keeps the times of the last `max + 1` events in a ring (allocated at
 * the first event, so a well-behaved connection costs nothing). One per connection; not for
 * concurrent use.
 */
export class BadFrameWindow {
  private ring: Float64Array | undefined;
  private next = 0;
  private count = 0;
  private readonly max: number;
  private readonly windowMs: number;
  private readonly clock: Clock;

  constructor(opts: BadFrameWindowOptions) {
    if (!Number.isInteger(opts.max) || opts.max < 1) throw new RangeError('max must be an integer >= 1');
    if (!(opts.windowMs > 0)) throw new RangeError('windowMs must be > 0');
    this.max = opts.max;
    this.windowMs = opts.windowMs;
    this.clock = opts.clock;
  }

  /** Records one event now; true when it is the (max+1)-th within the window, i.e. a violation. */
  record(): boolean {
    const now = this.clock.monotonic();
    // A huge `max` (tests raise it) would make a huge ring: such a window never trips in practice.
    const size = Math.min(this.max + 1, 1 << 16);
    this.ring ??= new Float64Array(size);
    this.ring[this.next] = now;
    this.next = (this.next + 1) % size;
    if (this.count < size) this.count++;
    if (this.count < this.max + 1) return false;
    // The ring is full: `next` now points at the oldest of the last max+1 events.
    return now - this.ring[this.next]! <= this.windowMs;
  }
}
