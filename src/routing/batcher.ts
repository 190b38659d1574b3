/**
 * A coalescing batcher for peer links: whatever is pushed during one event-loop turn leaves in as
 * few batches as `maxBatch` allows, because per-message gRPC overhead is the main cost of a link.
 * The queue is bounded so an unreachable peer never costs unbounded memory.
 */

/** Options of {@link Batcher}. */
export interface BatcherOptions<T> {
  /** Max items per `flush` call. Integer ≥ 1. */
  readonly maxBatch: number;
  /** Max items waiting; `push` refuses beyond it. Integer ≥ 1. */
  readonly maxQueued: number;
  /**
   * Receives each batch, in FIFO order; the array is the callee's to keep. Called synchronously
   * from the scheduled callback or from {@link Batcher.flushNow}. It may call `push` (those items
   * leave in a later turn); it should not throw (see {@link Batcher.flushNow}).
   */
  readonly flush: (items: T[]) => void;
  /**
   * Runs `fn` later, once. Default `setImmediate`: after the current turn's I/O callbacks, so
   * items pushed from many socket callbacks of one turn share a batch (`queueMicrotask` would
   * coalesce only one synchronous call stack). Tests pass a manual scheduler.
   */
  readonly schedule?: (fn: () => void) => void;
}

/** Default of {@link BatcherOptions.schedule}. */
export function scheduleImmediate(fn: () => void): void {
  setImmediate(fn);
}

/**
 * A bounded FIFO that flushes in batches once per scheduled turn. Not thread-safe (one event
 * loop); every method is synchronous.
 *
 * @example
 * ```ts
 * const b = new Batcher<Delta>({ maxBatch: 256, maxQueued: 10_000, flush: (xs) => link.write(xs) });
 * if (!b.push(delta)) answer('unavailable');
 * ```
 */
export class Batcher<T> {
  readonly maxBatch: number;
  readonly maxQueued: number;
  readonly #flush: (items: T[]) => void;
  readonly #schedule: (fn: () => void) => void;
  #queue: T[] = [];
  /** Index of the oldest queued item in `#queue`; slots before it are already sent. */
  #head = 0;
  #scheduled = false;

  /** @throws RangeError when `maxBatch` or `maxQueued` is not an integer ≥ 1. */
  constructor(options: BatcherOptions<T>) {
    for (const key of ['maxBatch', 'maxQueued'] as const) {
      const v = options[key];
      if (!Number.isSafeInteger(v) || v < 1) {
        throw new RangeError(`${key} must be an integer >= 1, got ${v}`);
      }
    }
    this.maxBatch = options.maxBatch;
    this.maxQueued = options.maxQueued;
    this.#flush = options.flush;
    this.#schedule = options.schedule ?? scheduleImmediate;
  }

  /** Items waiting to be flushed. */
  get size(): number {
    return this.#queue.length - this.#head;
  }

  /**
   * Queues `item` and makes sure a flush is scheduled.
   *
   * @returns false, leaving the queue unchanged, when `maxQueued` items are already waiting:
   * the caller answers `unavailable`.
   */
  push(item: T): boolean {
    if (this.size >= this.maxQueued) return false;
    this.#queue.push(item);
    if (!this.#scheduled) {
      this.#scheduled = true;
      this.#schedule(() => this.#onScheduled());
    }
    return true;
  }

  /**
   * Flushes what is queued now, synchronously, in batches of at most `maxBatch`. Items pushed
   * by `flush` itself wait for the next turn. If `flush` throws, the batch it was given is gone,
   * the rest stays queued with a flush scheduled, and the error propagates.
   */
  flushNow(): void {
    let left = this.size;
    try {
      while (left > 0) {
        const n = Math.min(left, this.maxBatch);
        left -= n;
        this.#flush(this.#take(n));
      }
    } finally {
      if (this.size > 0 && !this.#scheduled) {
        this.#scheduled = true;
        this.#schedule(() => this.#onScheduled());
      }
    }
  }

  /**
   * Empties the queue without flushing (e.g. the link closed) and returns the items, oldest
   * first, so the caller can fail them. A scheduled flush then finds nothing to do.
   */
  clear(): T[] {
    return this.#take(this.size);
  }

  #onScheduled(): void {
    this.#scheduled = false;
    this.flushNow();
  }

  /** Removes and returns the `n` oldest items. */
  #take(n: number): T[] {
    const start = this.#head;
    const items = this.#queue.slice(start, start + n);
    this.#head = start + n;
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
      // Reclaim the sent prefix once it is most of the array (amortised O(1) per item).
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return items;
  }
}
