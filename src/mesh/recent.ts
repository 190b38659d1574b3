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

interface Written {
  topic: string;
  count: number;
  topic2: string | undefined;
  count2: number;
}

/**
 * Exactly once on the wire: which message ids this node recently wrote to which topic, and to how
 * many connections. Keyed by the message id alone (a flat string from the decoder: no key to
 * build); a message goes to at most two topics (its recipient, its sender's other devices).
 */
export class WrittenMessages {
  private readonly recent: RecentMap<Written>;

  /** @param capacity - message ids remembered (see {@link RecentMap}). */
  constructor(capacity: number) {
    this.recent = new RecentMap(capacity);
  }

  /** How many connections `msg` was written to for `topic` here, if it was. */
  seen(topic: string, msg: string): number | undefined {
    const rec = this.recent.get(msg);
    if (rec === undefined) return undefined;
    return rec.topic === topic ? rec.count : rec.topic2 === topic ? rec.count2 : undefined;
  }

  /** `msg` was written to `count` (≥ 1) connections of `topic`. */
  record(topic: string, msg: string, count: number): void {
    const rec = this.recent.get(msg);
    if (rec === undefined) this.recent.set(msg, { topic, count, topic2: undefined, count2: 0 });
    else {
      rec.topic2 = topic;
      rec.count2 = count;
    }
  }
}
