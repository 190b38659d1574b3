/**
 * The routing table: a bounded LRU cache of topic → complete owner set, plus pinned entries that
 * never get evicted. Invariant: a cached entry is the complete owner set published by the topic's
 * home, or absent; never built from one owner's delta. Pure logic: no I/O, no timers.
 */
import { LRUCache } from 'lru-cache';

/**
 * The complete owner set of one topic, as published by its home, with its version.
 *
 * The version is (`home`, `incarnation`, `seq`): `seq` orders the sets one home incarnation
 * publishes for a topic. Entries are immutable values: the table stores the object it is given and
 * never mutates it, and callers must not mutate it afterwards either (edits make new objects).
 */
export interface RouteEntry {
  /** Owner key → connection count (≥ 1) of that owner for this topic. May be empty: "nobody".
   *  Owner keys are opaque to this table; they are node ids. */
  readonly owners: ReadonlyMap<string, number>;
  /** Node id of the home that published this set. */
  readonly home: string;
  /** Incarnation of that home (changes on every process start). */
  readonly incarnation: string;
  /** Per-topic version number within one home incarnation; higher is newer. */
  readonly seq: number;
}

/** Options of {@link RouteTable}. */
export interface RouteTableOptions {
  /** Max entries in the LRU part (`--route-cache-size`); pinned entries are not counted.
   *  Integer ≥ 1. Default {@link DEFAULT_ROUTE_CACHE_SIZE}. `lru-cache` preallocates its index
   *  for this many (about 28 bytes per slot, ~28 MB at the default) besides the entries. */
  readonly maxEntries?: number;
}

/** Default of {@link RouteTableOptions.maxEntries}: one million entries. */
export const DEFAULT_ROUTE_CACHE_SIZE = 1_000_000;

/** Max `limit` of one {@link RouteTable.entries} page. */
export const MAX_ROUTE_PAGE = 10_000;

/** One row of a {@link RouteTable.entries} page. */
export interface RouteRow {
  readonly topic: string;
  readonly entry: RouteEntry;
  readonly pinned: boolean;
}

/**
 * What becomes of a cached entry after a membership change: the same object (still valid), a new
 * object (rewritten, e.g. without a dead owner) or `undefined` (dropped, e.g. its home moved).
 * Must not modify the table.
 */
export type EntryCheck = (topic: string, entry: RouteEntry) => RouteEntry | undefined;

interface Pin {
  refs: number;
  entry: RouteEntry | undefined;
}

/**
 * Topic → complete owner set. Not thread-safe (single event loop); all methods are synchronous.
 *
 * Version rules of {@link applyFull}: a set replaces the stored one when there is none, when it
 * comes from another home or another incarnation of the home (the caller passes only sets from
 * the topic's current home, so the stored one is stale), or when its `seq` is newer; otherwise
 * it is ignored. Sets with no owners are kept: "nobody owns it" is a complete answer (presence
 * offline, `ack` offline) that saves a lookup.
 */
export class RouteTable {
  readonly #lru: LRUCache<string, RouteEntry>;
  readonly #pins = new Map<string, Pin>();
  /** Entries rewritten here by {@link revalidate}'s check rather than published by a home. */
  readonly #edited = new WeakSet<RouteEntry>();
  /** Epoch each stored entry was last checked in (see {@link revalidate}). */
  readonly #stamp = new WeakMap<RouteEntry, number>();
  #epoch = 0;
  #check: EntryCheck | undefined;
  #hits = 0;
  #misses = 0;
  #evictions = 0;
  #pinnedEntries = 0;

  /** @throws RangeError when `maxEntries` is not an integer ≥ 1. */
  constructor(options: RouteTableOptions = {}) {
    const maxEntries = options.maxEntries ?? DEFAULT_ROUTE_CACHE_SIZE;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`maxEntries must be an integer >= 1, got ${maxEntries}`);
    }
    this.#lru = new LRUCache<string, RouteEntry>({
      max: maxEntries,
      dispose: (_value, _key, reason) => {
        if (reason === 'evict') this.#evictions++;
      },
    });
  }

  /** Max entries of the LRU part. */
  get maxEntries(): number {
    return this.#lru.max;
  }
  /** Cached entries, pinned ones included. */
  get size(): number {
    return this.#lru.size + this.#pinnedEntries;
  }
  /** Pinned topics (with or without an entry). */
  get pinnedSize(): number {
    return this.#pins.size;
  }
  /** {@link get} calls that found an entry. Monotonic. */
  get hits(): number {
    return this.#hits;
  }
  /** {@link get} calls that found none. Monotonic. */
  get misses(): number {
    return this.#misses;
  }
  /** Entries pushed out of the LRU by newer ones. Monotonic. */
  get evictions(): number {
    return this.#evictions;
  }

  /** The entry of `topic`, counting a hit or miss and marking it recently used. */
  get(topic: string): RouteEntry | undefined {
    let entry = this.#pins.get(topic)?.entry ?? this.#lru.get(topic);
    if (entry !== undefined && this.#stamp.get(entry) !== this.#epoch) entry = this.#recheck(topic, entry);
    if (entry === undefined) this.#misses++;
    else this.#hits++;
    return entry;
  }

  /** The entry of `topic` without counting or touching recency (for comparisons, admin). */
  peek(topic: string): RouteEntry | undefined {
    const pin = this.#pins.get(topic);
    const entry = pin !== undefined ? pin.entry : this.#lru.peek(topic);
    return entry !== undefined && this.#stamp.get(entry) !== this.#epoch ? this.#recheck(topic, entry) : entry;
  }

  /**
   * Membership changed: every entry is re-checked with `check` when it is next read, not now. O(1),
   * so a membership change costs nothing per cached route (a pass over a million entries blocked
   * the event loop for about a second). A rewritten entry is marked as locally edited: the home's
   * next set replaces it even at the same `seq` (the home may have re-added an owner the check
   * removed, e.g. a node that restarted before the change was read).
   */
  revalidate(check: EntryCheck): void {
    this.#epoch++;
    this.#check = check;
  }

  #recheck(topic: string, entry: RouteEntry): RouteEntry | undefined {
    const next = this.#check === undefined ? entry : this.#check(topic, entry);
    if (next === undefined) {
      this.delete(topic);
      return undefined;
    }
    if (next !== entry) {
      this.#edited.add(next);
      const pin = this.#pins.get(topic);
      if (pin !== undefined) pin.entry = next;
      else this.#lru.set(topic, next, { noUpdateTTL: true });
    }
    this.#stamp.set(next, this.#epoch);
    return next;
  }

  /** Whether `topic` is pinned. */
  isPinned(topic: string): boolean {
    return this.#pins.has(topic);
  }

  /**
   * Stores a complete owner set published by the topic's current home, if it is newer than the
   * stored one (see the class notes). To learn a presence transition, `peek` before calling.
   *
   * @returns whether the entry was stored.
   */
  applyFull(topic: string, entry: RouteEntry): boolean {
    const stored = this.peek(topic);
    if (stored !== undefined && !supersedes(entry, stored, this.#edited.has(stored))) return false;
    this.#store(topic, entry);
    return true;
  }

  /** Removes the entry of `topic` (e.g. a stale route); a pin stays. @returns whether one existed. */
  delete(topic: string): boolean {
    const pin = this.#pins.get(topic);
    if (pin === undefined) return this.#lru.delete(topic);
    if (pin.entry === undefined) return false;
    pin.entry = undefined;
    this.#pinnedEntries--;
    return true;
  }

  /**
   * Pins `topic` (reference counted): its entry, present now or stored later, leaves the LRU and
   * is never evicted until the matching number of {@link unpin} calls.
   */
  pin(topic: string): void {
    const pin = this.#pins.get(topic);
    if (pin !== undefined) {
      pin.refs++;
      return;
    }
    const entry = this.#lru.peek(topic);
    if (entry !== undefined) {
      this.#lru.delete(topic);
      this.#pinnedEntries++;
    }
    this.#pins.set(topic, { refs: 1, entry });
  }

  /**
   * Drops one reference; at zero the entry goes back into the LRU as most recently used (which
   * may evict another). Unpinning a topic that is not pinned does nothing.
   *
   * @returns whether the topic is still pinned.
   */
  unpin(topic: string): boolean {
    const pin = this.#pins.get(topic);
    if (pin === undefined) return false;
    if (--pin.refs > 0) return true;
    this.#pins.delete(topic);
    if (pin.entry !== undefined) {
      this.#pinnedEntries--;
      this.#lru.set(topic, pin.entry);
    }
    return false;
  }

  /**
   * One page of the table in topic order (code units), pinned entries included: the rows with
   * topic > `afterTopic` (all when omitted), at most `limit`. Pass the last row's topic to get the
   * next page; the order does not depend on recency, so paging is stable while the table changes
   * (a topic added behind the cursor is skipped, one removed is not shown). Does not touch
   * recency or counters. O(size + limit log limit) per page.
   *
   * @param limit - rows per page, 1 to {@link MAX_ROUTE_PAGE}. Default 100.
   */
  entries(afterTopic?: string, limit = 100): RouteRow[] {
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_ROUTE_PAGE) {
      throw new RangeError(`limit must be an integer in 1..${MAX_ROUTE_PAGE}, got ${limit}`);
    }
    // Keep a buffer of candidates; when it doubles past `limit`, sort and cut, raising the bar.
    let buf: RouteRow[] = [];
    let bar: string | undefined;
    const offer = (topic: string, entry: RouteEntry, pinned: boolean): void => {
      if (afterTopic !== undefined && topic <= afterTopic) return;
      if (bar !== undefined && topic >= bar) return;
      buf.push({ topic, entry, pinned });
      if (buf.length >= 2 * limit) {
        buf = sortRows(buf).slice(0, limit);
        bar = buf[limit - 1]!.topic;
      }
    };
    for (const [topic, pin] of this.#pins) if (pin.entry) offer(topic, pin.entry, true);
    for (const [topic, entry] of this.#lru.entries()) offer(topic, entry, false);
    return sortRows(buf).slice(0, limit);
  }

  #store(topic: string, entry: RouteEntry): void {
    this.#stamp.set(entry, this.#epoch);
    const pin = this.#pins.get(topic);
    if (pin === undefined) {
      this.#lru.set(topic, entry);
      return;
    }
    if (pin.entry === undefined) this.#pinnedEntries++;
    pin.entry = entry;
  }
}

/** Whether `next` replaces `stored` under the version rules (see {@link RouteTable}). */
function supersedes(next: RouteEntry, stored: RouteEntry, storedEdited: boolean): boolean {
  if (next.home !== stored.home || next.incarnation !== stored.incarnation) return true;
  return next.seq > stored.seq || (storedEdited && next.seq === stored.seq);
}

/** Sorts by topic in code-unit order; topics in one table are unique, so none compare equal. */
function sortRows(rows: RouteRow[]): RouteRow[] {
  return rows.sort((a, b) => (a.topic < b.topic ? -1 : 1));
}
