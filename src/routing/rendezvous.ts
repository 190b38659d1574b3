/**
 * Rendezvous (highest-random-weight) hashing: the home of a topic is the member with the highest
 * score(topic, member). When a member joins, only the topics it now wins move (to it); when a
 * member leaves, only its topics move (each to its runner-up). So about 1/N of topics move per
 * change, and no other topic changes home.
 */
import { hash53, hashLanes, mix53 } from './hash.js';

/** Seeds of the two independent hashes that make a member's 64-bit seed. */
const MEMBER_SEED_A = 0x6d2b79f5;
const MEMBER_SEED_B = 0x1b873593;
/** Seed of the topic hash; fixed so every node agrees. */
const TOPIC_SEED = 0x2545f491;

/**
 * An immutable rendezvous hash over one membership. Build a new instance when membership changes
 * (construction is O(N log N) for N members; `home` is O(length of topic + N) and allocation-free).
 * Synchronous and safe to call from anywhere on the event loop: `home` reuses a per-instance
 * scratch buffer but never calls out while using it.
 *
 * @example
 * ```ts
 * const r = new Rendezvous(['n1', 'n2', 'n3']);
 * r.home('u:bob'); // 'n2' on every node that has the same members
 * ```
 */
export class Rendezvous {
  /** Member ids, de-duplicated and sorted by code unit, whatever the constructor's order. */
  readonly members: readonly string[];
  /** Per-member 32-bit seed lanes, parallel to `members`. */
  readonly #seedA: Uint32Array;
  readonly #seedB: Uint32Array;
  readonly #scratch = new Uint32Array(2);
  readonly #index: ReadonlySet<string>;

  /**
   * @param members - live member (node) ids, in any order; duplicates are ignored. May be empty.
   */
  constructor(members: Iterable<string>) {
    const sorted = [...new Set(members)].sort(compareIds);
    this.members = Object.freeze(sorted);
    this.#index = new Set(sorted);
    this.#seedA = new Uint32Array(sorted.length);
    this.#seedB = new Uint32Array(sorted.length);
    sorted.forEach((m, i) => {
      // Fully mixed seeds: raw lanes of two short, similar ids would be correlated.
      this.#seedA[i] = hash53(m, MEMBER_SEED_A);
      this.#seedB[i] = hash53(m, MEMBER_SEED_B);
    });
  }

  /** Number of members. */
  get size(): number {
    return this.members.length;
  }

  /** Whether `member` is one of the members. */
  has(member: string): boolean {
    return this.#index.has(member);
  }

  /**
   * The home of `topic`: the member with the highest score. Ties (a 2^-53 event) go to the member
   * whose id sorts first, so the answer is the same on every node and for every input order.
   *
   * @returns the home member id, or `undefined` when there are no members.
   */
  home(topic: string): string | undefined {
    const members = this.members;
    if (members.length === 0) return undefined;
    const lanes = hashLanes(topic, TOPIC_SEED, this.#scratch);
    const t1 = lanes[0]!;
    const t2 = lanes[1]!;
    const seedA = this.#seedA;
    const seedB = this.#seedB;
    let best = 0;
    let bestScore = -1;
    for (let i = 0; i < members.length; i++) {
      const score = mix53(t1 ^ seedA[i]!, t2 ^ seedB[i]!);
      // Strict `>` over members in sorted order keeps the lowest id on a tie.
      if (score > bestScore) {
        bestScore = score;
        best = i;
      }
    }
    return members[best];
  }

  /**
   * The first `k` members of `topic`'s ranking, best first: `[0]` is its home, `[1]` the member
   * that becomes home when the home leaves, and so on (stream replicas). Fewer when there are fewer
   * members. O(N log N) for N members.
   */
  ranking(topic: string, k: number): string[] {
    const members = this.members;
    const lanes = hashLanes(topic, TOPIC_SEED, this.#scratch);
    const t1 = lanes[0]!;
    const t2 = lanes[1]!;
    const scored = members.map((m, i) => ({ m, i, score: mix53(t1 ^ this.#seedA[i]!, t2 ^ this.#seedB[i]!) }));
    // Same order as `home`: higher score first, the lower id (earlier index) on a tie.
    scored.sort((a, b) => b.score - a.score || a.i - b.i);
    return scored.slice(0, Math.max(0, k)).map((s) => s.m);
  }

  /**
   * Whether `member` is the home of `topic`. Convenience for `retainHomes`-style filters.
   */
  isHome(topic: string, member: string): boolean {
    return this.home(topic) === member;
  }
}

/** One topic whose home differs between two memberships. */
export interface MovedTopic {
  readonly topic: string;
  /** Home before the change; `undefined` when the old membership was empty. */
  readonly from: string | undefined;
  /** Home after the change; `undefined` when the new membership is empty. */
  readonly to: string | undefined;
}

/**
 * The topics whose home differs between two memberships, in input order. After a membership
 * change an owner re-sends exactly these of its local topics (to `to`), and a cache drops the
 * entries of these topics. O(topics × (N_before + N_after)).
 *
 * @param topics - the topics to check (e.g. this node's local topics).
 * @param before - rendezvous over the old membership.
 * @param after - rendezvous over the new membership.
 */
export function movedTopics(
  topics: Iterable<string>,
  before: Rendezvous,
  after: Rendezvous,
): MovedTopic[] {
  const moved: MovedTopic[] = [];
  for (const topic of topics) {
    const from = before.home(topic);
    const to = after.home(topic);
    if (from !== to) moved.push({ topic, from, to });
  }
  return moved;
}

/** Code-unit order, independent of locale (localeCompare could differ between hosts). Ids are
 *  unique here (de-duplicated first), so no two compare equal. */
function compareIds(a: string, b: string): number {
  return a < b ? -1 : 1;
}
