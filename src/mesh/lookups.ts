import type { Topic } from '../core/index.js';
import type { RouteEntry } from '../routing/index.js';
import type { PeerLink } from './link.js';
import { PendingRequests } from './pending.js';
import type { MeshStats } from './stats.js';
import type { RouteUpdate__Output } from './wire.js';

/** Where an answer about a topic came from (admin `route`). */
export type RouteSource = 'home' | 'cache' | 'asked';

/** A topic's owners as this node knows them. */
export interface RouteAnswer {
  readonly topic: Topic;
  readonly home: string;
  readonly owners: ReadonlyMap<string, number>;
  readonly source: RouteSource;
  readonly seq: number;
  /** The home was still rebuilding after a membership change: use the answer, do not cache it. */
  readonly tentative: boolean;
}

/** What lookups need from the router. */
export interface LookupHost {
  readonly selfId: string;
  homeOf(topic: Topic): string;
  link(peerId: string): PeerLink | undefined;
  /** The answer of this node's own directory, for topics homed here. */
  ownAnswer(topic: Topic): RouteAnswer;
  /** Stores a complete, non-tentative set from the topic's home in the routing table. */
  cache(topic: Topic, entry: RouteEntry): void;
  /** This node's view of the live members (sent with every lookup). */
  membersHash(): number;
  /** Monotonic ms (the node's clock). */
  monotonic(): number;
  readonly stats: MeshStats;
}

/** No firm answer could be had in time: the caller must answer `unavailable`, never "nobody". */
export class NoFirmAnswerError extends Error {
  constructor(topic: Topic, why: string) {
    super(`no authoritative owner set for ${topic}: ${why}`);
    this.name = 'NoFirmAnswerError';
  }
}

type Waiter = { resolve: (a: RouteAnswer) => void; reject: (e: Error) => void };

/**
 * Asks topic homes for owner sets. Concurrent lookups of one topic share one request; lookups to
 * one home in one event-loop turn share one `LookupRequest`; a failed lookup is retried once
 * (the home may have changed meanwhile).
 */
export class Lookups {
  private readonly inFlight = new Map<Topic, Promise<RouteAnswer>>();
  private readonly confirming = new Map<Topic, Promise<RouteAnswer>>();
  private readonly batch = new Map<string, Map<Topic, Waiter>>();
  private flushScheduled = false;
  private readonly requests: PendingRequests<{ routes: RouteUpdate__Output[]; tentative: boolean }>;

  constructor(private readonly host: LookupHost, timeoutMs: number) {
    this.requests = new PendingRequests(timeoutMs, () => host.monotonic());
  }

  /** True while a lookup of `topic` is outstanding (publishes to it must queue behind it). */
  pending(topic: Topic): boolean {
    return this.inFlight.has(topic) || this.confirming.has(topic);
  }

  /** The outstanding lookup or confirmation of `topic`, if any (to queue behind it). */
  current(topic: Topic): Promise<RouteAnswer> | undefined {
    return this.confirming.get(topic) ?? this.inFlight.get(topic);
  }

  /**
   * An authoritative answer: asks the topic's home (never the cache) until it answers firmly —
   * it is the home in its own view, holds every owner's snapshot for that view, and shares this
   * node's view — retrying with a short back-off while it is rebuilding. Rejects with
   * {@link NoFirmAnswerError} after `timeoutMs`. Concurrent calls for one topic share one.
   * The only source of "nobody owns it" for offline acks and presence.
   */
  confirm(topic: Topic, timeoutMs: number): Promise<RouteAnswer> {
    let p = this.confirming.get(topic);
    if (p) return p;
    p = this.confirmLoop(topic, this.host.monotonic() + timeoutMs).finally(() => {
      if (this.confirming.get(topic) === p) this.confirming.delete(topic);
    });
    this.confirming.set(topic, p);
    return p;
  }

  private async confirmLoop(topic: Topic, deadline: number): Promise<RouteAnswer> {
    let why = 'timed out';
    for (let attempt = 0; ; attempt++) {
      const left = deadline - this.host.monotonic();
      if (left <= 0) throw new NoFirmAnswerError(topic, why);
      try {
        const a = await withDeadline(this.ask(topic), left);
        if (a === undefined) throw new NoFirmAnswerError(topic, 'timed out');
        if (!a.tentative) return a;
        why = `home ${a.home} is still rebuilding`;
      } catch (err) {
        if (err instanceof NoFirmAnswerError) throw err;
        why = (err as Error).message;
      }
      this.host.stats.confirmRetries++;
      await sleep(Math.min(10 * 2 ** attempt, 200, Math.max(0, deadline - this.host.monotonic())));
    }
  }

  /** Asks the topic's home. */
  lookup(topic: Topic): Promise<RouteAnswer> {
    let p = this.inFlight.get(topic);
    if (p) return p;
    p = this.ask(topic).catch(() => this.ask(topic)).finally(() => {
      if (this.inFlight.get(topic) === p) this.inFlight.delete(topic);
    });
    this.inFlight.set(topic, p);
    return p;
  }

  /** Handles a `LookupReply` from `peer`. */
  onReply(peer: string, id: number, routes: RouteUpdate__Output[], tentative: boolean): void {
    this.requests.settle(id, peer, { routes, tentative });
  }

  /** Fails the lookups that went to a peer whose link went down. */
  failPeer(peer: string): void {
    this.requests.failPeer(peer);
  }

  close(): void {
    this.requests.close();
  }

  private ask(topic: Topic): Promise<RouteAnswer> {
    const home = this.host.homeOf(topic);
    if (home === this.host.selfId) return Promise.resolve(this.host.ownAnswer(topic));
    if (!this.host.link(home)) return Promise.reject(new Error(`home ${home} of ${topic} has no link`));
    return new Promise((resolve, reject) => {
      let waiters = this.batch.get(home);
      if (!waiters) {
        waiters = new Map();
        this.batch.set(home, waiters);
      }
      const prev = waiters.get(topic);
      waiters.set(topic, prev
        ? { resolve: (a) => { prev.resolve(a); resolve(a); }, reject: (e) => { prev.reject(e); reject(e); } }
        : { resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batches = [...this.batch];
    this.batch.clear();
    for (const [home, waiters] of batches) {
      const link = this.host.link(home);
      const failAll = (why: string): void => {
        for (const w of waiters.values()) w.reject(new Error(why));
      };
      if (!link) {
        failAll(`home ${home} went away`);
        continue;
      }
      const id = this.requests.add(home, (reply) => this.answer(home, link.peer!.incarnation, waiters, reply), (why) => failAll(`lookup at ${home}: ${why}`));
      this.host.stats.lookupsOut++;
      if (!link.send({ lookup: { id, topics: [...waiters.keys()], membersHash: this.host.membersHash() } })) this.requests.fail(id, 'timeout');
    }
  }

  private answer(home: string, incarnation: string, waiters: Map<Topic, Waiter>, reply: { routes: RouteUpdate__Output[]; tentative: boolean }): void {
    const byTopic = new Map(reply.routes.map((r) => [r.topic, r]));
    for (const [topic, w] of waiters) {
      const r = byTopic.get(topic);
      const owners = new Map((r?.owners ?? []).map((o) => [o.nodeId, o.count]));
      const entry: RouteEntry = { owners, home, incarnation, seq: r?.seq ?? 0 };
      if (!reply.tentative && r && this.host.homeOf(topic) === home) this.host.cache(topic, entry);
      w.resolve({ topic, home, owners, source: 'asked', seq: entry.seq, tentative: reply.tentative });
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** Resolves with `p`'s value, or undefined once `ms` passed first. */
function withDeadline<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => resolve(undefined), ms);
    t.unref();
    p.then((v) => { clearTimeout(t); resolve(v); }, (e: unknown) => { clearTimeout(t); reject(e as Error); });
  });
}
