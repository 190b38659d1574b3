/**
 * One group commit of the LevelDB stream store being prepared: the writes of every queued call
 * (appends, clears, drops, sweeps) collected into one batch, with the trims they cause as deletes in
 * that batch. It reads the database (which no one writes while a draft is open) through an overlay
 * of its own batch, so a later call of the group sees the effects of an earlier one; and it updates
 * the store's in-memory index as it goes (the store reloads the index if the batch is not written).
 * The bounds are applied in the same order as the memory store applies them, call by call, so both
 * stores hold the same entries after the same calls.
 */
import type { StoreLimits, StreamItem } from '../types.js';
import { encodeValue, entryKey, idOfKey, keyEnd, keyPrefix, type StreamDb } from './level-format.js';
import { evictsBefore, expiryBound, type MarkedId, type StreamIndex, type StreamMeta } from './stream-index.js';

/** Ids read ahead of a trim, cached per stream for the next trims; most cached per stream. */
const FRONT_EXTRA = 16;
const FRONT_KEEP = 64;

/** A write of the batch. */
export type BatchOp = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };

/** The writes of one group, built call by call. Single use, one caller at a time. */
export class Draft {
  /** key → value to put, or null to delete (the last call wins). */
  private readonly batch = new Map<string, string | null>();
  /** Whether a key is in the database (as of the start of the group), for the keys looked up. */
  private readonly known = new Map<string, boolean>();
  /** Per stream, ids this group added (still held) and ids it deleted. */
  private readonly inserted = new Map<string, Set<string>>();
  private readonly deleted = new Map<string, Set<string>>();

  constructor(
    private readonly db: StreamDb,
    private readonly index: StreamIndex,
    private readonly limits: StoreLimits,
    private readonly now: () => number,
  ) {}

  /** Number of keys written. */
  get size(): number {
    return this.batch.size;
  }

  /** The batch to write. */
  operations(): BatchOp[] {
    return [...this.batch].map(([key, value]) => (value === null ? { type: 'del', key } : { type: 'put', key, value }));
  }

  /** See `StreamStore.append`. */
  async append(items: readonly StreamItem[]): Promise<void> {
    // Only an id within the span a stream holds (as the inserts of this call widen it) can be held
    // already: only those are looked up, so the usual append of new ids reads nothing.
    const spans = new Map<string, { lo: string; hi: string }>();
    const maybe: string[] = [];
    for (const { stream, entry } of items) {
      const meta = this.index.get(stream);
      const span = spans.get(stream) ?? (meta && { lo: meta.oldest, hi: meta.newest });
      if (span === undefined) {
        spans.set(stream, { lo: entry.id, hi: entry.id });
        continue;
      }
      if (entry.id >= span.lo && entry.id <= span.hi) maybe.push(entryKey('m', stream, entry.id), entryKey('p', stream, entry.id));
      spans.set(stream, { lo: entry.id < span.lo ? entry.id : span.lo, hi: entry.id > span.hi ? entry.id : span.hi });
    }
    await this.lookUp(maybe);
    for (const { stream, entry } of items) {
      const meta = this.index.get(stream);
      const pendingKey = entryKey('p', stream, entry.id);
      if (meta !== undefined && entry.id >= meta.oldest && entry.id <= meta.newest && this.holds(entryKey('m', stream, entry.id))) {
        if (!entry.pending && meta.pending > 0 && this.holds(pendingKey)) {
          this.batch.set(pendingKey, null);
          this.index.cleared(meta, entry.id);
        }
        continue;
      }
      this.batch.set(entryKey('m', stream, entry.id), encodeValue(entry.with, entry.frame));
      if (entry.pending) this.batch.set(pendingKey, '');
      this.setOf(this.inserted, stream).add(entry.id);
      this.index.add(stream, entry.id, entry.pending, entry.frame === 'join');
    }
    // The trims of different streams are independent: their reads run side by side.
    const bound = expiryBound(this.now(), this.limits.ttlMs);
    await Promise.all([...spans.keys()].map((stream) => this.trimStream(stream, bound)));
    await this.applyCap();
  }

  /** See `StreamStore.clearPending`. */
  async clearPending(stream: string, ids: readonly string[]): Promise<void> {
    const meta = this.index.get(stream);
    if (meta === undefined || meta.pending === 0) return;
    await this.lookUp(ids.map((id) => entryKey('p', stream, id)));
    for (const id of ids) {
      const key = entryKey('p', stream, id);
      if (!this.holds(key)) continue;
      this.batch.set(key, null);
      this.index.cleared(meta, id);
    }
  }

  /** See `StreamStore.drop`. */
  async drop(stream: string): Promise<void> {
    const meta = this.index.get(stream);
    if (meta === undefined) return;
    for (const e of await this.oldest(meta, Infinity)) this.delete(stream, e);
    this.index.forget(meta);
  }

  /** See `StreamStore.sweep`. */
  async sweep(nowMs: number): Promise<number> {
    const bound = expiryBound(nowMs, this.limits.ttlMs);
    let dropped = 0;
    for (let top = this.index.oldest(); top !== undefined && top.oldest < bound; top = this.index.oldest()) {
      dropped += await this.expire(top, bound);
    }
    return dropped;
  }

  /** Drops the expired entries of one stream, then all but its newest `maxPerStream`. */
  private async trimStream(stream: string, bound: string): Promise<void> {
    const meta = this.index.get(stream);
    if (meta === undefined) return;
    if (!meta.state && meta.oldest < bound) await this.expire(meta, bound);
    const excess = meta.count - (meta.state ? 1 : this.limits.maxPerStream);
    if (excess > 0) {
      const front = await this.oldest(meta, excess + 1);
      this.remove(meta, front.slice(0, excess), front[excess]?.id);
    }
  }

  /** Drops the expired entries of one stream; resolves with how many. */
  private async expire(meta: StreamMeta, bound: string): Promise<number> {
    const expired = await this.oldest(meta, Infinity, bound);
    if (expired.length === 0) throw new Error(`stream ${meta.stream}: the index says ${meta.oldest} is held, the database has nothing before ${bound}`);
    const next = meta.count > expired.length ? (await this.oldest(meta, expired.length + 1))[expired.length]?.id : undefined;
    this.remove(meta, expired, next);
    return expired.length;
  }

  /** Over `maxMessages`: drops the globally oldest entries, a run of one stream at a time. */
  private async applyCap(): Promise<void> {
    while (this.index.messages > this.limits.maxMessages) {
      const top = this.index.oldest()!;
      const second = this.index.secondOldest();
      const most = Math.min(this.index.messages - this.limits.maxMessages, top.count);
      const front = await this.oldest(top, most + 1);
      let n = 1;
      while (n < most && (second === undefined || evictsBefore(front[n]!.id, top.stream, second.oldest, second.stream))) n++;
      this.remove(top, front.slice(0, n), front[n]?.id);
    }
  }

  /** Removes `entries`, the oldest of a stream, as trimmed; `next` is the oldest id left. */
  private remove(meta: StreamMeta, entries: readonly MarkedId[], next: string | undefined): void {
    let pending = 0;
    for (const e of entries) {
      this.delete(meta.stream, e);
      if (e.pending) pending++;
    }
    this.index.removeOldest(meta, entries.map((e) => e.id), pending, next, true);
  }

  /** Deletes an entry, and its pending mark when it has one. */
  private delete(stream: string, e: MarkedId): void {
    this.batch.set(entryKey('m', stream, e.id), null);
    if (e.pending) this.batch.set(entryKey('p', stream, e.id), null);
    this.inserted.get(stream)?.delete(e.id);
    this.setOf(this.deleted, stream).add(e.id);
  }

  /**
   * The `n` oldest entries a stream holds now (only those below `below` when given), ascending,
   * with their marks: from the stream's cached front when it covers them, else read (with some
   * to spare, which become the cached front for the trims to come).
   */
  private async oldest(meta: StreamMeta, n: number, below?: string): Promise<MarkedId[]> {
    const f = meta.front;
    const covered = f.length > 0 && (f.length >= meta.count || (below === undefined ? f.length >= n : f[f.length - 1]!.id >= below));
    let list = f;
    if (!covered) {
      list = await this.readFront(meta, below === undefined ? n + FRONT_EXTRA : Infinity, below);
      meta.front = list.length <= FRONT_KEEP ? list : list.slice(0, FRONT_KEEP);
    }
    return (below === undefined ? list : list.filter((e) => e.id < below)).slice(0, n);
  }

  /** Reads the `limit` oldest entries of a stream (below `below`), counting this group's writes. */
  private async readFront(meta: StreamMeta, limit: number, below: string | undefined): Promise<MarkedId[]> {
    const stream = meta.stream;
    let ids: string[];
    if (meta.count <= 2) {
      // Known from the digest (a flood of new streams evicts many of these).
      ids = (meta.count === 1 ? [meta.oldest] : [meta.oldest, meta.newest]).filter((id) => below === undefined || id < below);
    } else {
      const deleted = this.deleted.get(stream);
      const skip = deleted?.size ?? 0;
      const keys = await this.db
        .keys({
          gte: keyPrefix('m', stream),
          lt: below === undefined ? keyEnd('m', stream) : entryKey('m', stream, below),
          limit: limit === Infinity ? -1 : limit + skip,
        })
        .all();
      ids = keys.map(idOfKey);
      if (skip > 0) ids = ids.filter((id) => !deleted!.has(id));
      const added = [...(this.inserted.get(stream) ?? [])].filter((id) => below === undefined || id < below);
      // An id this group added is not in the database, or was deleted from it by this group (and
      // stays in `deleted`, so its old copy is filtered out above): no duplicates.
      if (added.length > 0) ids = ids.concat(added).sort();
      if (ids.length > limit) ids.length = limit;
    }
    // Which ones are pending needs a read only when the stream has both kinds.
    if (meta.pending === 0 || meta.pending === meta.count) return ids.map((id) => ({ id, pending: meta.pending > 0 }));
    const keys = ids.map((id) => entryKey('p', stream, id));
    await this.lookUp(keys);
    return ids.map((id, i) => ({ id, pending: this.holds(keys[i]!) }));
  }

  /** Looks up in the database whether these keys exist (those not yet known or written). */
  private async lookUp(keys: readonly string[]): Promise<void> {
    const missing = [...new Set(keys)].filter((k) => !this.batch.has(k) && !this.known.has(k));
    if (missing.length === 0) return;
    const found = await this.db.hasMany(missing);
    missing.forEach((k, i) => this.known.set(k, found[i]!));
  }

  /** Whether a (looked-up or written) key exists, counting this group's writes. */
  private holds(key: string): boolean {
    const written = this.batch.get(key);
    if (written !== undefined) return written !== null;
    const known = this.known.get(key);
    if (known === undefined) throw new Error(`key not looked up: ${JSON.stringify(key)}`);
    return known;
  }

  private setOf(map: Map<string, Set<string>>, stream: string): Set<string> {
    let set = map.get(stream);
    if (set === undefined) map.set(stream, (set = new Set()));
    return set;
  }
}
