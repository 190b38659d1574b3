import { Rendezvous } from '../routing/index.js';
import { streamGroup } from './types.js';

/** Options of {@link Placement}. */
export interface PlacementOptions {
  readonly selfId: string;
  /** Copies of every stream (`--replicas`), >= 1. */
  readonly replicas: number;
  /** Monotonic ms. */
  readonly monotonic: () => number;
  /** How long an earlier view's replicas are still read from (they may hold what a hand-off has
   *  not moved yet), in ms. Default 120000. */
  readonly recentViewMs?: number;
}

/**
 * Where streams are kept: the replicas of a stream are the first `replicas` live members of its
 * rendezvous ranking (rank 1 is the topic's home), so every node that sees the same members agrees
 * without asking anyone, and a membership change moves only the streams whose ranking it touches.
 * Reads also ask the replicas of recent earlier views that are still live, which may hold what a
 * hand-off has not moved yet. Pure: no I/O; synchronous.
 */
export class Placement {
  private current: Rendezvous;
  /** Earlier views, newest first, with when they ended. */
  private recent: Array<{ view: Rendezvous; endedAt: number }> = [];
  private readonly recentViewMs: number;
  /** Write sets computed under the current view (a ranking costs a sort of the members). */
  private readonly cache = new Map<string, string[]>();

  constructor(private readonly opts: PlacementOptions) {
    this.current = new Rendezvous([opts.selfId]);
    this.recentViewMs = opts.recentViewMs ?? 120_000;
  }

  /** The configured copies. */
  get replicas(): number {
    return this.opts.replicas;
  }

  /** The live members changed (sorted ids, this node included). */
  membersChanged(members: readonly string[]): void {
    const now = this.opts.monotonic();
    this.recent.unshift({ view: this.current, endedAt: now });
    this.recent = this.recent.filter((r) => now - r.endedAt <= this.recentViewMs).slice(0, 8);
    this.current = new Rendezvous(members);
    this.cache.clear();
  }

  /** The live members now. */
  members(): readonly string[] {
    return this.current.members;
  }

  /** The nodes a write to `stream` must reach: its replicas, rank order. Fewer when fewer are live. */
  writeSet(stream: string): readonly string[] {
    // A state stream lives with its group (every key of an account on the same replicas).
    const key = streamGroup(stream);
    let set = this.cache.get(key);
    if (!set) {
      if (this.cache.size >= 100_000) this.cache.clear();
      set = this.current.ranking(key, this.opts.replicas);
      this.cache.set(key, set);
    }
    return set;
  }

  /** Whether this node is one of `stream`'s replicas now. */
  isReplica(stream: string): boolean {
    return this.writeSet(stream).includes(this.opts.selfId);
  }

  /** The nodes a read of `stream` asks: its replicas now, then live replicas of recent earlier views. */
  readSet(stream: string): readonly string[] {
    const now = this.opts.monotonic();
    // No recent view still counts (the usual case): the write set itself, nothing allocated.
    if (this.recent.length === 0 || now - this.recent[0]!.endedAt > this.recentViewMs) return this.writeSet(stream);
    const out = [...this.writeSet(stream)];
    for (const r of this.recent) {
      if (now - r.endedAt > this.recentViewMs) break;
      for (const id of r.view.ranking(streamGroup(stream), this.opts.replicas)) {
        if (!out.includes(id) && this.current.has(id)) out.push(id);
      }
    }
    return out;
  }
}
