/**
 * The home directory: for the topics this node is home of, the complete owner set (owner node id
 * → connection count), never evicted. It sees every change of its topics in one order, stamps
 * each new set with a version, and hands back the full set for broadcasting. It also keeps, per
 * owner node, an order-independent digest of what that owner holds here, for anti-entropy.
 */
import { hashLanes, mix53 } from './hash.js';
import type { RouteEntry } from './route-table.js';

/** Seed of the per-topic digest hash; both sides must use the same. */
const DIGEST_SEED = 0x7f4a7c15;
/** 2^32. */
const LANE = 0x1_0000_0000;
/** Mask of the high lane of a 53-bit digest hash. */
const HI_MASK = 0x1fffff;

/**
 * What one owner node holds at one home: how many topics, and a 53-bit hash over the
 * (topic, count) pairs. The hash is a lane-wise sum of per-pair hashes, so it does not depend on
 * order (no sorting on either side) and the home updates it in O(1) per change. Two sets that
 * differ in any topic or count differ in `hash` except with probability about 2^-53.
 */
export interface OwnerDigest {
  /** Number of topics held (count ≥ 1). */
  readonly topics: number;
  /** Integer in `[0, 2^53)`; 0 for the empty set. */
  readonly hash: number;
}

/** One topic whose owner set changed, with the new complete set to broadcast. */
export interface DirectoryChange {
  readonly topic: string;
  /** The new complete set and its version; `owners` may be empty ("nobody"). */
  readonly entry: RouteEntry;
}

/** Options of {@link OwnerDirectory}. */
export interface OwnerDirectoryOptions {
  /** This (home) node's id: the `home` of every entry it publishes. */
  readonly nodeId: string;
  /** This node's incarnation: the `incarnation` of every entry it publishes. */
  readonly incarnation: string;
}

/** Running digest: topic count and two lanes (low 32 bits, high 21 bits). */
interface Acc {
  topics: number;
  lo: number;
  hi: number;
}

interface NodeRecord {
  readonly topics: Map<string, number>;
  readonly acc: Acc;
}

/**
 * Topic → complete owner set for the topics homed here. Not thread-safe; synchronous.
 *
 * Versions: `seq` comes from one counter per directory that every change increments, so a
 * topic's `seq` rises on every change, and a topic that empties (and is dropped) or leaves and
 * later comes back never reuses a `seq`. A new incarnation starts again at 1; caches tell
 * incarnations apart by `incarnation`.
 */
export class OwnerDirectory {
  /** This node's id, the `home` of its entries. */
  readonly nodeId: string;
  /** This node's incarnation. */
  readonly incarnation: string;
  readonly #topics = new Map<string, RouteEntry>();
  readonly #nodes = new Map<string, NodeRecord>();
  readonly #scratch = new Uint32Array(2);
  #clock = 0;

  constructor(options: OwnerDirectoryOptions) {
    if (!options.nodeId) throw new TypeError('nodeId must be a non-empty string');
    this.nodeId = options.nodeId;
    this.incarnation = options.incarnation;
  }

  /** Topics with at least one owner. */
  get size(): number {
    return this.#topics.size;
  }

  /** The latest `seq` issued (0 before any change). */
  get seq(): number {
    return this.#clock;
  }

  /** The current set of `topic`, or `undefined` when nobody owns it here. */
  get(topic: string): RouteEntry | undefined {
    return this.#topics.get(topic);
  }

  /**
   * The answer to a lookup: the current set, or an empty set when nobody owns `topic`, versioned
   * with the latest `seq` issued. That `seq` is at least any this topic ever had, so the answer
   * is not ignored by a cache holding an older set, and any later change is newer still.
   */
  lookup(topic: string): RouteEntry {
    return this.#topics.get(topic) ?? this.#entry(new Map(), this.#clock);
  }

  /** Topics with at least one owner, in insertion order. Do not mutate while iterating. */
  topics(): IterableIterator<string> {
    return this.#topics.keys();
  }

  /** The topics `nodeId` holds here → its connection count. Read-only view. */
  nodeTopics(nodeId: string): ReadonlyMap<string, number> {
    return this.#nodes.get(nodeId)?.topics ?? new Map();
  }

  /**
   * Sets `nodeId`'s connection count for `topic`; 0 removes it as an owner.
   *
   * @returns the new complete set (to broadcast), or `undefined` when nothing changed.
   * @throws RangeError when `count` is not an integer ≥ 0.
   */
  setOwner(topic: string, nodeId: string, count: number): RouteEntry | undefined {
    checkCount(count);
    const current = this.#topics.get(topic);
    const old = current?.owners.get(nodeId) ?? 0;
    if (old === count) return undefined;
    const owners = new Map(current?.owners);
    if (count === 0) owners.delete(nodeId);
    else owners.set(nodeId, count);
    this.#track(nodeId, topic, old, count);
    const entry = this.#entry(owners, ++this.#clock);
    if (owners.size === 0) this.#topics.delete(topic);
    else this.#topics.set(topic, entry);
    return entry;
  }

  /** Removes `nodeId` as owner of every topic (it died). @returns the changed sets. */
  removeNode(nodeId: string): DirectoryChange[] {
    return this.syncNode(nodeId, []);
  }

  /**
   * Replaces everything `nodeId` holds here with `held` (topic → count; 0 counts are ignored,
   * each topic at most once): after a digest mismatch, or a snapshot after (re)connect.
   *
   * @returns the changed sets, in no particular order.
   * @throws RangeError on a bad count (then nothing has changed).
   */
  syncNode(nodeId: string, held: Iterable<readonly [string, number]>): DirectoryChange[] {
    const target = new Map<string, number>();
    for (const [topic, count] of held) {
      checkCount(count);
      if (count > 0) target.set(topic, count);
    }
    const changes: DirectoryChange[] = [];
    const record = (topic: string, entry: RouteEntry | undefined): void => {
      if (entry !== undefined) changes.push({ topic, entry });
    };
    const current = this.#nodes.get(nodeId)?.topics;
    if (current !== undefined) {
      for (const topic of [...current.keys()]) {
        if (!target.has(topic)) record(topic, this.setOwner(topic, nodeId, 0));
      }
    }
    for (const [topic, count] of target) record(topic, this.setOwner(topic, nodeId, count));
    return changes;
  }

  /** The digest of what `nodeId` holds here; compare with the owner's {@link ownerDigest}. */
  digest(nodeId: string): OwnerDigest {
    const acc = this.#nodes.get(nodeId)?.acc;
    return acc === undefined ? { topics: 0, hash: 0 } : toDigest(acc);
  }

  /** Moves `nodeId`'s count for `topic` from `old` to `count` in its record and digest. */
  #track(nodeId: string, topic: string, old: number, count: number): void {
    let rec = this.#nodes.get(nodeId);
    if (rec === undefined) {
      rec = { topics: new Map(), acc: { topics: 0, lo: 0, hi: 0 } };
      this.#nodes.set(nodeId, rec);
    }
    if (old > 0) fold(rec.acc, pairHash(topic, old, this.#scratch), -1);
    if (count > 0) {
      fold(rec.acc, pairHash(topic, count, this.#scratch), 1);
      rec.topics.set(topic, count);
    } else {
      rec.topics.delete(topic);
      if (rec.topics.size === 0) this.#nodes.delete(nodeId);
    }
  }

  #entry(owners: ReadonlyMap<string, number>, seq: number): RouteEntry {
    return { owners, home: this.nodeId, incarnation: this.incarnation, seq };
  }
}

/**
 * The owner side of the digest: what this node would expect its home to hold for it. Pass the
 * local topics whose home is that home, with their connection counts (0 counts are ignored; each
 * topic at most once). Agrees with {@link OwnerDirectory.digest} for the same set, in any order.
 *
 * @throws RangeError when a count is not an integer ≥ 0.
 */
export function ownerDigest(held: Iterable<readonly [string, number]>): OwnerDigest {
  const acc: Acc = { topics: 0, lo: 0, hi: 0 };
  const scratch = new Uint32Array(2);
  for (const [topic, count] of held) {
    checkCount(count);
    if (count > 0) fold(acc, pairHash(topic, count, scratch), 1);
  }
  return toDigest(acc);
}

/** Whether two digests describe the same set (up to a 2^-53 collision). */
export function digestEquals(a: OwnerDigest, b: OwnerDigest): boolean {
  return a.topics === b.topics && a.hash === b.hash;
}

/** 53-bit hash of one (topic, count) pair. */
function pairHash(topic: string, count: number, scratch: Uint32Array): number {
  const lanes = hashLanes(topic, DIGEST_SEED, scratch);
  // Counts are at most 2^53; fold the high part in too so every count is distinct.
  return mix53(lanes[0]! ^ count, lanes[1]! ^ Math.imul(Math.floor(count / LANE) ^ count, 0x9e3779b1));
}

/** Adds (sign 1) or removes (sign -1) one pair hash, lane-wise modulo 2^32 and 2^21. */
function fold(acc: Acc, h: number, sign: 1 | -1): void {
  acc.topics += sign;
  acc.lo = (acc.lo + sign * (h >>> 0)) >>> 0;
  acc.hi = (acc.hi + sign * Math.floor(h / LANE)) & HI_MASK;
}

function toDigest(acc: Acc): OwnerDigest {
  return { topics: acc.topics, hash: acc.hi * LANE + acc.lo };
}

function checkCount(count: number): void {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new RangeError(`count must be an integer >= 0, got ${count}`);
  }
}
