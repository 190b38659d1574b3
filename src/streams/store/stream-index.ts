/**
 * What both stores keep in memory about every stream: its digest (count, pending, oldest, newest,
 * XOR hash of the ids), maintained incrementally, and a heap of streams by oldest id for the
 * store-wide cap and the TTL sweep. Also the argument checks both stores share, so that they
 * accept and reject the same calls.
 */
import { idAtTime, isMessageId } from '../ids.js';
import { isStateStream, streamGroup } from '../types.js';
import type { RangeQuery, StoreLimits, StoreTotals, StreamDigest, StreamItem } from '../types.js';
import { OldestHeap, type HeapItem } from './oldest-heap.js';

/** Largest `limit` of a range read. */
export const MAX_RANGE_LIMIT = 10_000;

/** 32-bit FNV-1a of an id (ASCII), the per-id term of {@link StreamDigest.hash}. */
export function idHash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** An id with its pending mark. */
export interface MarkedId {
  readonly id: string;
  pending: boolean;
}

/** The digest of one stream, mutable, as the index keeps it. */
export class StreamMeta implements HeapItem {
  count = 0;
  pending = 0;
  oldest = '';
  newest = '';
  hash = 0;
  heapIndex = -1;
  /**
   * Optional cache of the stream's oldest ids with their marks, for a store that does not hold its
   * ids in memory (the disk store fills it; trims then need no read): when not empty, exactly the
   * `front.length` smallest ids held, ascending. Kept so by the index on add, clear and remove.
   */
  front: MarkedId[] = [];
  /** A state stream: outside the heap (never evicted by age or cap), its entries counted apart. */
  readonly state: boolean;
  /** A state stream whose newest entry is a `join` (counted in its group's {@link StreamIndex.groupCount}). */
  joined = false;
  constructor(readonly stream: string) {
    this.state = isStateStream(stream);
  }

  /** An immutable copy. */
  digest(): StreamDigest {
    return { count: this.count, pending: this.pending, oldest: this.oldest, newest: this.newest, hash: this.hash };
  }
}

/**
 * The in-memory digests of a store's streams. A stream is known while it holds an entry and
 * forgotten when its last entry goes. Synchronous, one owner; callers keep it in step with the
 * entries they hold and tell it which entries they removed (always the oldest of a stream).
 */
export class StreamIndex {
  private readonly metas = new Map<string, StreamMeta>();
  private readonly heap = new OldestHeap<StreamMeta>();
  /** The state streams of each group (see `isStateStream`). */
  private readonly groups = new Map<string, Set<string>>();
  /** Per group, how many of its state streams' newest entry is a `join`. */
  private readonly joins = new Map<string, number>();
  /** Entries held in state streams. */
  states = 0;
  /** Entries held in message streams, pending entries held, entries dropped by the bounds since construction. */
  messages = 0;
  pending = 0;
  trimmed = 0;

  get(stream: string): StreamMeta | undefined {
    return this.metas.get(stream);
  }

  /**
   * Records a new entry `id` of `stream` (one it did not hold); `joined`: the entry is a `join`
   * (state streams; see {@link groupCount}).
   */
  add(stream: string, id: string, pending: boolean, joined = false): StreamMeta {
    let meta = this.metas.get(stream);
    if (meta?.state && id > meta.newest) this.setJoined(meta, joined);
    if (meta === undefined) {
      meta = new StreamMeta(stream);
      meta.oldest = meta.newest = id;
      this.metas.set(stream, meta);
      if (meta.state) {
        const group = streamGroup(stream);
        let set = this.groups.get(group);
        if (set === undefined) this.groups.set(group, (set = new Set()));
        set.add(stream);
        this.setJoined(meta, joined);
      } else {
        this.heap.update(meta);
      }
    } else {
      if (id < meta.oldest) {
        meta.oldest = id;
        if (!meta.state) this.heap.update(meta);
      } else if (id > meta.newest) {
        meta.newest = id;
      }
      const front = meta.front;
      if (front.length > 0 && id < front[front.length - 1]!.id) {
        let i = front.length - 1;
        while (i > 0 && front[i - 1]!.id > id) i--;
        front.splice(i, 0, { id, pending });
      }
    }
    meta.count++;
    meta.hash = (meta.hash ^ idHash(id)) >>> 0;
    if (meta.state) this.states++;
    else this.messages++;
    if (pending) {
      meta.pending++;
      this.pending++;
    }
    return meta;
  }

  /**
   * Sets whether the newest entry of state stream `meta` is a `join` (a store that loads its index
   * without reading entries sets it afterwards).
   */
  setJoined(meta: StreamMeta, joined: boolean): void {
    if (meta.joined === joined) return;
    meta.joined = joined;
    const group = streamGroup(meta.stream);
    const n = (this.joins.get(group) ?? 0) + (joined ? 1 : -1);
    if (n === 0) this.joins.delete(group);
    else this.joins.set(group, n);
  }

  /** How many state streams of `group` hold a `join` as their newest entry (a room's members). */
  groupCount(group: string): number {
    return this.joins.get(group) ?? 0;
  }

  /** Records that one held entry of `meta` is pending (loading a store: its entries come first). */
  markPending(meta: StreamMeta): void {
    meta.pending++;
    this.pending++;
  }

  /** Records that entry `id` of `meta` lost its pending mark. */
  cleared(meta: StreamMeta, id: string): void {
    meta.pending--;
    this.pending--;
    const held = meta.front.find((m) => m.id === id);
    if (held !== undefined) held.pending = false;
  }

  /**
   * Records the removal of the oldest entries of a stream: `ids` (of which `pendingRemoved` were
   * pending), `nextOldest` the oldest id left (unused when none is left). `trim`: removed by a
   * bound, counted in {@link StoreTotals.trimmed}. A stream left empty is forgotten.
   */
  removeOldest(meta: StreamMeta, ids: readonly string[], pendingRemoved: number, nextOldest: string | undefined, trim: boolean): void {
    if (ids.length === 0) return;
    for (const id of ids) meta.hash = (meta.hash ^ idHash(id)) >>> 0;
    meta.count -= ids.length;
    meta.pending -= pendingRemoved;
    if (meta.state) this.states -= ids.length;
    else this.messages -= ids.length;
    this.pending -= pendingRemoved;
    if (trim) this.trimmed += ids.length;
    if (meta.front.length >= ids.length) meta.front.splice(0, ids.length);
    else meta.front = [];
    if (meta.count <= 0) {
      this.forgetMeta(meta);
    } else if (nextOldest === undefined) {
      throw new Error(`stream ${meta.stream}: ${meta.count} entries left but no oldest id given`);
    } else {
      meta.oldest = nextOldest;
      if (!meta.state) this.heap.update(meta);
    }
  }

  /** Forgets a whole stream (a drop; not counted as trimmed). */
  forget(meta: StreamMeta): void {
    if (meta.state) this.states -= meta.count;
    else this.messages -= meta.count;
    this.pending -= meta.pending;
    this.forgetMeta(meta);
  }

  /** The stream holding the globally oldest entry (ties: the smallest stream name). */
  oldest(): StreamMeta | undefined {
    return this.heap.peek();
  }

  /** The stream that would hold the globally oldest entry without {@link oldest}'s. */
  secondOldest(): StreamMeta | undefined {
    return this.heap.peekSecond();
  }

  digest(stream: string): StreamDigest | undefined {
    return this.metas.get(stream)?.digest();
  }

  streams(): string[] {
    return [...this.metas.keys()];
  }

  /** The state streams of `group` that hold an entry, sorted by name. */
  group(group: string): string[] {
    const set = this.groups.get(group);
    return set === undefined ? [] : [...set].sort();
  }

  totals(): StoreTotals {
    return { streams: this.metas.size, messages: this.messages, states: this.states, pending: this.pending, trimmed: this.trimmed };
  }

  private forgetMeta(meta: StreamMeta): void {
    this.metas.delete(meta.stream);
    if (meta.state) {
      this.setJoined(meta, false);
      const group = streamGroup(meta.stream);
      const set = this.groups.get(group);
      set?.delete(meta.stream);
      if (set?.size === 0) this.groups.delete(group);
    }
    this.heap.remove(meta);
    meta.count = meta.pending = 0;
    meta.front = [];
  }
}

/** True when (idA of streamA) sorts before (idB of streamB) in the store-wide eviction order. */
export function evictsBefore(idA: string, streamA: string, idB: string, streamB: string): boolean {
  return idA < idB || (idA === idB && streamA < streamB);
}

/** Ids below this bound are expired at `nowMs` (their time is before nowMs − ttlMs). */
export function expiryBound(nowMs: number, ttlMs: number): string {
  return idAtTime(Math.ceil(nowMs - ttlMs));
}

/** Checks the bounds (whole numbers >= 1, or Infinity; ttlMs > 0); throws RangeError. */
export function checkLimits(limits: StoreLimits): StoreLimits {
  const whole = (n: number) => n === Infinity || (Number.isInteger(n) && n >= 1);
  if (!whole(limits.maxPerStream)) throw new RangeError(`maxPerStream must be a whole number >= 1, got ${limits.maxPerStream}`);
  if (!whole(limits.maxMessages)) throw new RangeError(`maxMessages must be a whole number >= 1, got ${limits.maxMessages}`);
  if (!(limits.ttlMs > 0)) throw new RangeError(`ttlMs must be > 0, got ${limits.ttlMs}`);
  return { maxPerStream: limits.maxPerStream, ttlMs: limits.ttlMs, maxMessages: limits.maxMessages };
}

/** Checks a stream name: non-empty, no NUL (the disk store's key separator); throws TypeError. */
export function checkStream(stream: string): void {
  if (typeof stream !== 'string' || stream.length === 0 || stream.includes('\0')) {
    throw new TypeError(`a stream name is a non-empty string without NUL, got ${JSON.stringify(stream)}`);
  }
}

/** Checks the items of an append (stream names, well-formed ids, field types); throws TypeError. */
export function checkItems(items: readonly StreamItem[]): void {
  for (const { stream, entry } of items) {
    checkStream(stream);
    if (!isMessageId(entry?.id)) throw new TypeError(`not a message id: ${JSON.stringify(entry?.id)}`);
    if (typeof entry.with !== 'string' || typeof entry.frame !== 'string' || typeof entry.pending !== 'boolean') {
      throw new TypeError(`entry ${entry.id}: with and frame are strings, pending a boolean`);
    }
  }
}

/** Checks a range query (`limit` 1..10000, `from`); throws RangeError. */
export function checkQuery(query: RangeQuery): void {
  if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > MAX_RANGE_LIMIT) {
    throw new RangeError(`limit must be 1..${MAX_RANGE_LIMIT}, got ${query.limit}`);
  }
  if (query.from !== 'newest' && query.from !== 'oldest') throw new RangeError(`from must be 'newest' or 'oldest', got ${String(query.from)}`);
}

/** A call on a store after its `close()` began. */
export class StoreClosedError extends Error {
  readonly code = 'STORE_CLOSED';
  constructor() {
    super('the stream store is closed');
    this.name = 'StoreClosedError';
  }
}
