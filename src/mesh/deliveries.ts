import type { Topic } from '../core/index.js';
import { ChatError, ErrorCode } from '../protocol/index.js';
import type { PeerLink } from './link.js';
import type { RouteAnswer } from './lookups.js';
import { PendingRequests } from './pending.js';
import type { MeshStats } from './stats.js';
import type { Envelope } from './wire.js';

/** What an owner node answered to one delivery. */
type Result = { readonly count: number; readonly notHere: boolean };
/** An owner we have no link to: the route is stale (a dead node) or ahead of us (a joining one). */
const NO_LINK: Result = { count: 0, notHere: true };

/** One message on its way to a topic's owner nodes. */
export interface DeliveryJob {
  readonly topic: Topic;
  /** The encoded client frame. */
  readonly data: string;
  /** A local connection that must not get it (the sender's). */
  readonly except: string | undefined;
  /** When this node accepted it, ms since the epoch. */
  readonly acceptedAt: number;
  /** Its message id, if it is a message: owner nodes write one id to a topic at most once. */
  readonly msg: string | undefined;
}

/** What deliveries need from the router. */
export interface DeliveryHost {
  readonly selfId: string;
  link(peerId: string): PeerLink | undefined;
  /** Asks the topic's home afresh (after a stale route). */
  lookup(topic: Topic): Promise<RouteAnswer>;
  /** Forgets a cached route found stale. */
  dropRoute(topic: Topic): void;
  /** Monotonic ms (the node's clock). */
  monotonic(): number;
  readonly stats: MeshStats;
}

/** The `unavailable` answer: nothing could be routed (and nothing was delivered by this node). */
export function unavailable(stats: MeshStats, cause: unknown): ChatError {
  stats.unavailable++;
  return new ChatError(ErrorCode.Unavailable, 'the mesh could not route this now; nothing was delivered', { cause });
}

/**
 * Sends one encoded frame to the owner nodes of a topic and sums how many connections each wrote
 * it to. A "not here" answer (a stale route) is healed once: the route is dropped, the home asked
 * again, and only owners not yet delivered to get it, so nothing arrives twice.
 */
export class Deliveries {
  private readonly pending: PendingRequests<Result>;
  private readonly healingTopics = new Map<Topic, Promise<void>>();

  constructor(private readonly host: DeliveryHost, timeoutMs: number) {
    this.pending = new PendingRequests(timeoutMs, () => host.monotonic());
  }

  /** Delivers to every owner but this node; resolves with `local` plus what they wrote. A stale
   *  route ("not here") is healed once when `mayRetry`. */
  toOwners(job: DeliveryJob, owners: ReadonlyMap<string, number>, local: number, mayRetry = true): Promise<number> {
    return this.send(job, owners, local, mayRetry, undefined);
  }

  /** While a stale route of `topic` is being healed: resolves when the retry has gone out. */
  healing(topic: Topic): Promise<void> | undefined {
    return this.healingTopics.get(topic);
  }

  /** Handles a `DeliverResult` from `peer`. */
  onResult(peer: string, id: number, count: number, notHere: boolean): void {
    this.pending.settle(id, peer, { count, notHere });
  }

  /** Deliveries to a peer whose link went down count as written to nobody. */
  failPeer(peer: string): void {
    this.pending.failPeer(peer);
  }

  close(): void {
    this.pending.close();
  }

  private send(job: DeliveryJob, owners: ReadonlyMap<string, number>, local: number, mayRetry: boolean, skip: ReadonlySet<string> | undefined): Promise<number> {
    const targets: string[] = [];
    for (const id of owners.keys()) if (id !== this.host.selfId && !skip?.has(id)) targets.push(id);
    // Most publishes touch no other node, or one: keep those paths free of extra promises.
    if (targets.length === 0) return Promise.resolve(local);
    const settle = (rs: ReadonlyArray<Result | 'unavailable'>): Promise<number> => this.settle(job, rs, targets, local, mayRetry, skip);
    if (targets.length === 1) {
      return this.one(targets[0]!, job, mayRetry).then((r) =>
        // The common answer (written, or written to nobody) settles without another promise.
        r !== 'unavailable' && !r.notHere ? local + r.count : settle([r]));
    }
    return Promise.all(targets.map((id) => this.one(id, job, mayRetry))).then(settle);
  }

  private async settle(
    job: DeliveryJob, results: ReadonlyArray<Result | 'unavailable'>, targets: readonly string[], local: number, mayRetry: boolean, skip: ReadonlySet<string> | undefined,
  ): Promise<number> {
    const topic = job.topic;
    let total = local;
    let failed = 0;
    let stale = false;
    for (const r of results) {
      if (r === 'unavailable') failed++;
      else {
        total += r.count;
        if (r.notHere) stale = true;
      }
    }
    if (stale && mayRetry) {
      this.host.stats.staleRoutes++;
      this.host.dropRoute(topic);
      const delivered = total;
      const retry = this.host.lookup(topic)
        .then((fresh) => this.send(job, fresh.owners, delivered, false, new Set([...(skip ?? []), ...targets])))
        .catch(() => delivered);
      // Later publishes to this topic wait for the retry, so they cannot overtake it.
      const gate = retry.then(() => undefined);
      this.healingTopics.set(topic, gate);
      void gate.finally(() => {
        if (this.healingTopics.get(topic) === gate) this.healingTopics.delete(topic);
      });
      total = await retry;
    }
    if (total === 0 && failed > 0) throw unavailable(this.host.stats, new Error(`${failed} owner node(s) unreachable`));
    return total;
  }

  private one(peer: string, job: DeliveryJob, mayRetry: boolean): Promise<Result | 'unavailable'> {
    const link = this.host.link(peer);
    // First time: heal like "not here" (ask the home again). Still no link after that: unavailable.
    if (!link) return Promise.resolve(mayRetry ? NO_LINK : 'unavailable');
    return new Promise((resolve) => {
      let env: Envelope | undefined;
      const id = this.pending.add(peer, resolve, (why) => {
        // Answered unavailable: if the delivery is still queued here, it must never leave.
        if (why === 'timeout' && env) link.cancel(env);
        // Timed out, or the link went down with the delivery in flight: whether it was written is
        // unknown, so it never counts as "written to nobody" (that would be a false offline).
        resolve('unavailable');
      });
      env = { deliver: { id, topic: job.topic, data: job.data, exceptSession: job.except ?? '', acceptedAtMs: job.acceptedAt, msg: job.msg ?? '' } };
      this.host.stats.deliveriesOut++;
      if (!link.send(env)) this.pending.fail(id, 'timeout');
    });
  }
}
