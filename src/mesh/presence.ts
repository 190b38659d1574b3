import { WatchRegistry } from '../core/index.js';
import type { PresenceListener, Topic } from '../core/index.js';
import { ChatError, ErrorCode } from '../protocol/index.js';
import type { RouteAnswer } from './lookups.js';

/** The narrow view of routing that presence needs (no import of the router: no cycle). */
export interface OwnersView {
  /** A complete owner set known now without asking anyone (cache or own directory), or undefined. */
  routeNow(topic: Topic): RouteAnswer | undefined;
  /** The newest complete set held for a topic (a broadcast may have overtaken a lookup answer). */
  newestOwners(topic: Topic): ReadonlyMap<string, number> | undefined;
  /** An authoritative answer from the topic's home (rejects when none can be had in time). */
  confirm(topic: Topic): Promise<RouteAnswer>;
  /** Keeps a topic's cached entry out of LRU eviction (reference counted). */
  pin(topic: Topic): void;
  unpin(topic: Topic): void;
}

/** Options of {@link Presence}. */
export interface PresenceOptions {
  readonly owners: OwnersView;
  /** Watched topics re-checked per event-loop turn after a membership change. Default 500. */
  readonly refreshSlice?: number;
}

/**
 * Who is online, and `presence_change` for local watchers. The rule that makes answers
 * trustworthy: "online" may come from any complete set held (a cache hit costs nothing), but
 * "offline" only from an authoritative answer — a firm set broadcast by the topic's home under this
 * node's own view of the members, or a confirmation asked of the home. Anything less (a cached
 * empty set, a set from a home still rebuilding, a dead owner filtered out locally) triggers a
 * confirmation instead of a transition, so watchers never see an offline that was not true.
 */
export class Presence {
  private readonly watchers = new WatchRegistry();
  private readonly refreshing = new Map<Topic, number>();
  private readonly owners: OwnersView;
  private readonly slice: number;
  private sweep: Topic[] = [];
  private sweepScheduled = false;
  private closed = false;

  constructor(opts: PresenceOptions) {
    this.owners = opts.owners;
    this.slice = opts.refreshSlice ?? 500;
  }

  /** Number of watched topics on this node. */
  get size(): number {
    return this.watchers.size;
  }

  /** Whether a topic is online now: positive from any complete set, negative only when confirmed. */
  async status(topic: Topic): Promise<boolean> {
    const now = this.owners.routeNow(topic);
    if (now !== undefined && now.owners.size > 0) return true;
    const firm = await this.owners.confirm(topic);
    return firm.owners.size > 0 || (this.owners.newestOwners(topic)?.size ?? 0) > 0;
  }

  /** `status` of several topics; rejects with `unavailable` if any has no answer in time. */
  async online(topics: readonly Topic[]): Promise<Map<Topic, boolean>> {
    try {
      const values = await Promise.all(topics.map((t) => this.status(t)));
      return new Map(topics.map((t, i) => [t, values[i]!]));
    } catch (err) {
      throw new ChatError(ErrorCode.Unavailable, 'presence is not known for sure now (the mesh is rebuilding); try again', { cause: err });
    }
  }

  /** Starts calling `listener` on transitions of `topic`; resolves with the current status. */
  async watch(topic: Topic, listener: PresenceListener): Promise<boolean> {
    this.owners.pin(topic);
    let online: boolean;
    try {
      online = await this.status(topic);
    } catch (err) {
      this.owners.unpin(topic);
      throw new ChatError(ErrorCode.Unavailable, 'presence of this user is not known for sure now (its home is unreachable or rebuilding)', { cause: err });
    }
    const fresh = this.watchers.add(topic, listener, online);
    if (fresh) return online;
    // Another local watcher already holds the pin and a status; keep one pin per watched topic.
    this.owners.unpin(topic);
    return this.watchers.status(topic)!;
  }

  unwatch(topic: Topic, listener: PresenceListener): void {
    if (this.watchers.remove(topic, listener)) this.owners.unpin(topic);
  }

  /**
   * A new complete owner set of `topic` is held. `firm`: it is authoritative (a home's firm
   * broadcast under this node's view, or a confirmation); only then may it turn a user offline.
   */
  observe(topic: Topic, owners: ReadonlyMap<string, number>, firm: boolean): void {
    if (!this.watchers.has(topic)) return;
    if (owners.size > 0) this.watchers.update(topic, true);
    else if (firm) this.watchers.update(topic, false);
    else this.refresh(topic);
  }

  /** Re-reads a watched topic (confirming a negative) and tells watchers on a change. */
  refresh(topic: Topic, attempt = 0): void {
    if (this.closed || !this.watchers.has(topic)) return;
    if (attempt === 0) {
      if (this.refreshing.has(topic)) return;
      this.refreshing.set(topic, 0);
    }
    this.status(topic).then((online) => {
      this.refreshing.delete(topic);
      this.watchers.update(topic, online);
    }, () => {
      // No firm answer in time (a home unreachable or rebuilding): keep the last status, try again.
      if (attempt >= 10 || this.closed) {
        this.refreshing.delete(topic);
        return;
      }
      setTimeout(() => this.refresh(topic, attempt + 1), Math.min(250 * (attempt + 1), 2000)).unref();
    });
  }

  /** Re-checks every watched topic, a slice per event-loop turn (after membership changes). */
  refreshAll(): void {
    if (this.watchers.size === 0) return;
    this.sweep = [...this.watchers.topics()];
    if (this.sweepScheduled) return;
    this.sweepScheduled = true;
    const step = (): void => {
      const part = this.sweep.splice(0, this.slice);
      for (const topic of part) this.refresh(topic);
      if (this.sweep.length > 0 && !this.closed) setImmediate(step);
      else this.sweepScheduled = false;
    };
    setImmediate(step);
  }

  close(): void {
    this.closed = true;
    this.sweep = [];
  }
}
