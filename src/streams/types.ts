/**
 * Kept messages: the `StreamStore` interface every engine implements (memory, disk), and the shapes
 * the stream layer passes around. A *stream* is named like a topic: `u:<user>` (the direct messages
 * the user sent and received) or `r:<room>` (the room's messages). A stream is an append-only set
 * of entries keyed by message id and ordered by it (ids sort by the hybrid logical clock, ids.ts).
 */

/**
 * A *state stream* is named `<group>/<key>` (accounts: `a:<user>/j:<room>` a membership,
 * `a:<user>/u:<peer>` / `a:<user>/r:<room>` a read marker, `m:<room>/<user>` a room member). It
 * keeps only its newest entry (so, merged by union, the entry with the greatest id wins: a
 * last-writer-wins or forward-only register), is never trimmed by size, age or the store-wide cap,
 * and is placed by its group, so that every key of a group lives on the same replicas.
 */
export function isStateStream(stream: string): boolean {
  return stream.includes('/');
}

/** The group of a state stream (`a:alice` of `a:alice/j:lobby`); any other stream is its own. */
export function streamGroup(stream: string): string {
  const i = stream.indexOf('/');
  return i < 0 ? stream : stream.slice(0, i);
}

/** One kept message of a stream. */
export interface StreamEntry {
  /** Message id (26-character HLC id, ids.ts); the key of the entry within its stream. */
  readonly id: string;
  /**
   * In a user stream: the other party of the conversation (the recipient when the stream's user
   * sent it, the sender when they received it; the user themself for a note). Empty in a room stream.
   */
  readonly with: string;
  /** The encoded client frame (`message` or `room_message` JSON), written to clients as is. */
  readonly frame: string;
  /**
   * Mailbox mark (user streams only): acked `stored` or not yet known to be delivered, and not yet
   * sent to any device of the stream's user. Only ever goes from true to false: an append of an id
   * the stream already holds keeps `pending` only if both copies say so.
   */
  readonly pending: boolean;
}

/** An entry together with its stream, as appends carry them. */
export interface StreamItem {
  readonly stream: string;
  readonly entry: StreamEntry;
}

/** Which part of one stream a read wants. Entries come back oldest first. */
export interface RangeQuery {
  /** Only entries with id > after. */
  readonly after?: string;
  /** Only entries with id < before. */
  readonly before?: string;
  /** Only entries whose `with` is this (a conversation in a user stream). */
  readonly with?: string;
  /** Only entries still pending (the mailbox). */
  readonly pendingOnly?: boolean;
  /**
   * At most this many entries: the newest ones of the range when `from` is 'newest' (history
   * paging back), the oldest ones when 'oldest' (replay forward). 1..10000.
   */
  readonly limit: number;
  readonly from: 'newest' | 'oldest';
}

/** The answer of a range read. */
export interface RangeResult {
  /** Oldest first. */
  readonly entries: StreamEntry[];
  /** True when the range holds entries beyond the ones returned (older for 'newest', newer for 'oldest'). */
  readonly more: boolean;
}

/**
 * A cheap summary of one stream, to tell whether two copies hold the same set: `hash` is the XOR
 * of a 32-bit hash of every id it holds, so equal sets give equal digests whatever the order of
 * appends (equal digests of unequal sets are possible but improbable; hand-off then trusts it).
 */
export interface StreamDigest {
  readonly count: number;
  readonly pending: number;
  readonly oldest: string;
  readonly newest: string;
  readonly hash: number;
}

/** Totals of a store (admin stats, metrics). */
export interface StoreTotals {
  readonly streams: number;
  /** Entries of message streams (state streams' entries are in `states`). */
  readonly messages: number;
  /** Entries of state streams (one per state stream). */
  readonly states?: number;
  readonly pending: number;
  /**
   * Entries dropped by the bounds (per-stream size, age, the store-wide cap; an entry over a bound
   * when it arrives counts too) since this store object was opened. Not persisted; `drop` is not
   * counted.
   */
  readonly trimmed: number;
}

/** Bounds every store enforces. */
export interface StoreLimits {
  /** Newest entries kept per stream (`--history-size`), >= 1. */
  readonly maxPerStream: number;
  /** Entries older than this (by the time in their id) are dropped, ms (`--history-ttl`). */
  readonly ttlMs: number;
  /** Store-wide cap on entries: over it, the globally oldest (by id) are dropped first. */
  readonly maxMessages: number;
}

/**
 * Where a node keeps its streams. Implementations: `MemoryStreamStore` (default) and
 * `LevelStreamStore` (`--data-dir`, classic-level). Every method may be called concurrently; the
 * effects of `append`/`clearPending`/`drop` calls are applied in call order, and a read started
 * after a write resolved sees it.
 */
export interface StreamStore {
  /**
   * Adds entries; idempotent by (stream, id): an entry already held is not added twice (only its
   * pending mark may clear, see {@link StreamEntry.pending}). Trims each touched stream to
   * `maxPerStream` and drops expired entries. Resolves once the entries are durable: in memory for
   * the memory store, written and fsynced for the disk store.
   */
  append(items: readonly StreamItem[]): Promise<void>;
  /** Part of one stream, oldest first (see {@link RangeQuery}); an unknown stream is empty. */
  range(stream: string, query: RangeQuery): Promise<RangeResult>;
  /** Clears the pending mark of these ids (the ones not held are ignored). */
  clearPending(stream: string, ids: readonly string[]): Promise<void>;
  /** Forgets a whole stream (after a hand-off moved it to its replicas). */
  drop(stream: string): Promise<void>;
  /**
   * The digest of a stream, or undefined when it holds nothing. Synchronous: kept in memory (the
   * disk store's may already include a write being committed).
   */
  digest(stream: string): StreamDigest | undefined;
  /** Every stream that holds at least one entry, in no particular order (a snapshot). */
  streams(): string[];
  /** The state streams of `group` that hold an entry (see {@link isStateStream}), sorted by name. */
  group(group: string): string[];
  /** How many state streams of `group` hold a `join` as their newest entry. Synchronous. */
  groupCount(group: string): number;
  /** Drops every entry older than the TTL (a periodic sweep); resolves with how many. */
  sweep(nowMs: number): Promise<number>;
  totals(): StoreTotals;
  /** Flushes and releases the store (the disk store's lock). Idempotent. */
  close(): Promise<void>;
}

/** Why a disk store could not be opened; the node stops with this message and a non-zero exit. */
export class StoreOpenError extends Error {
  readonly code = 'STORE_OPEN_FAILED';
  /** `locked`: another process holds it; `permission`; `corrupt`; `other`. */
  readonly reason: 'locked' | 'permission' | 'corrupt' | 'other';
  constructor(reason: StoreOpenError['reason'], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreOpenError';
    this.reason = reason;
  }
}
