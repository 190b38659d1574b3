/**
 * A bounded "seen recently" map for hot paths: two generations of plain Maps. Lookups check both;
 * inserts go to the current one, which becomes the previous one (dropping the oldest) once it holds
 * `capacity / 2` keys. So the last `capacity / 2` to `capacity` keys are remembered, at the cost of
 * two Map operations per insert — an LRU's bookkeeping was a tenth of a busy node's time.
 */
export class RecentMap<V> {
  private current = new Map<string, V>();
  private previous = new Map<string, V>();
  private readonly half: number;

  /** @param capacity - most keys remembered (at least half of them always are). Integer ≥ 2. */
  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 2) throw new RangeError(`capacity must be an integer >= 2, got ${capacity}`);
    this.half = capacity >> 1;
  }

  get(key: string): V | undefined {
    const v = this.current.get(key);
    return v !== undefined ? v : this.previous.get(key);
  }

  set(key: string, value: V): void {
    this.current.set(key, value);
    if (this.current.size >= this.half) {
      this.previous = this.current;
      this.current = new Map();
    }
  }

  /** Keys held now (between `capacity / 2` and `capacity` once warm). */
  get size(): number {
    return this.current.size + this.previous.size;
  }
}
