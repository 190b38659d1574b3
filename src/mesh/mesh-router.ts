import { LocalHub, WatchRegistry } from '../core/index.js';
import type { PresenceListener, Router, Subscriber, Topic } from '../core/index.js';
import type { Logger } from '../log.js';
import { ChatError, ErrorCode } from '../protocol/index.js';
import { OwnerDirectory, Rendezvous, RouteTable, ownerDigest, digestEquals, hash53 } from '../routing/index.js';
import type { RouteEntry } from '../routing/index.js';
import type { Clock } from '../util/index.js';
import type { NodeIdentity, PeerLink } from './link.js';
import { PendingRequests } from './pending.js';
import { MeshStats } from './stats.js';
import type { Envelope__Output, RouteUpdate__Output } from './wire.js';

/** Options of the mesh router. */
export interface MeshRouterOptions {
  readonly self: NodeIdentity;
  /** Max entries of the LRU routing table (`--route-cache-size`). */
  readonly routeCacheSize: number;
  readonly log: Logger;
  readonly clock: Clock;
  /** A delivery to a peer unanswered for this long fails as unavailable, in ms. Default 5000. */
  readonly deliveryTimeoutMs?: number;
  /** A lookup unanswered for this long fails, in ms. Default 3000. */
  readonly lookupTimeoutMs?: number;
  /** Period of the anti-entropy digest exchange, in ms. Default 10000. */
  readonly antiEntropyMs?: number;
  /** Topics per snapshot chunk. Default 500. */
  readonly snapshotChunk?: number;
  /** Max time a home waits for owners' snapshots after a membership change before it answers
   *  lookups as authoritative anyway, in ms. Default 3000. */
  readonly barrierTimeoutMs?: number;
}

/** Where an answer about a topic came from (admin `route`). */
export type RouteSource = 'home' | 'cache' | 'asked';

/** A topic's owners as this node knows them. */
export interface RouteAnswer {
  readonly topic: Topic;
  readonly home: string;
  readonly owners: ReadonlyMap<string, number>;
  readonly source: RouteSource;
  readonly seq: number;
  readonly tentative: boolean;
}

type Result = { count: number; notHere: boolean };
const GONE = { count: 0, notHere: false, gone: true } as const;

/**
 * Routes topics across the mesh (design.md): this node is authoritative for its own connections
 * (`hub`); each topic has a home (rendezvous hashing over live members) that keeps the complete
 * owner set and broadcasts every change of it to all peers, which cache it in a bounded LRU; a miss
 * asks the home; deliveries go straight to the owner nodes. All methods are safe to call at any
 * time; publishes from one caller to one topic keep their order.
 */
export class MeshRouter implements Router {
  readonly hub = new LocalHub();
  readonly table: RouteTable;
  readonly directory: OwnerDirectory;
  readonly stats = new MeshStats();
  private members: Rendezvous;
  private readonly links = new Map<string, PeerLink>();
  private readonly watchers = new WatchRegistry();
  private readonly pendingLookups = new Map<Topic, Promise<RouteAnswer>>();
  private readonly lookupBatch = new Map<string, Map<Topic, { resolve: (a: RouteAnswer) => void; reject: (e: Error) => void }>>();
  private lookupFlushScheduled = false;
  private readonly lookups: PendingRequests<{ routes: RouteUpdate__Output[]; tentative: boolean }>;
  private readonly deliveries: PendingRequests<Result>;
  private readonly snapshotsIn = new Map<string, Map<Topic, number>>();
  private readonly awaitingSnapshots = new Set<string>();
  /** Per peer: the members hash of the last snapshot it completed. */
  private readonly snapshotViews = new Map<string, number>();
  private membersHash = 0;
  private barrierUntil = 0;
  private readonly antiEntropy: NodeJS.Timeout;
  private refreshTimer: NodeJS.Timeout | undefined;
  private readonly opts: Required<MeshRouterOptions>;
  /** Called with the end-to-end latency of each delivery received from a peer, in ms. */
  onDeliveryLatency: ((ms: number) => void) | undefined;

  constructor(opts: MeshRouterOptions) {
    this.opts = {
      deliveryTimeoutMs: 5000,
      lookupTimeoutMs: 3000,
      antiEntropyMs: 10_000,
      snapshotChunk: 500,
      barrierTimeoutMs: 3000,
      ...opts,
    };
    this.table = new RouteTable({ maxEntries: opts.routeCacheSize });
    this.directory = new OwnerDirectory({ nodeId: opts.self.id, incarnation: opts.self.incarnation });
    this.members = new Rendezvous([opts.self.id]);
    this.membersHash = hash53(opts.self.id);
    this.lookups = new PendingRequests(this.opts.lookupTimeoutMs);
    this.deliveries = new PendingRequests(this.opts.deliveryTimeoutMs);
    this.antiEntropy = setInterval(() => this.sendDigests(), this.opts.antiEntropyMs);
    this.antiEntropy.unref();
  }

  private get selfId(): string {
    return this.opts.self.id;
  }

  /** Ids of the live members (this node and every peer whose link is up), sorted. */
  liveMembers(): readonly string[] {
    return this.members.members;
  }

  /** The home of `topic` in this node's view. */
  homeOf(topic: Topic): string {
    return this.members.home(topic)!;
  }

  // ---------------------------------------------------------------- Router: local connections

  subscribe(topic: Topic, sub: Subscriber): void {
    const before = this.hub.count(topic);
    this.hub.add(topic, sub);
    if (this.hub.count(topic) !== before) this.ownerChanged(topic);
  }

  unsubscribe(topic: Topic, sub: Subscriber): void {
    const before = this.hub.count(topic);
    this.hub.remove(topic, sub);
    if (this.hub.count(topic) !== before) this.ownerChanged(topic);
  }

  isSubscribed(topic: Topic, session: string): boolean {
    return this.hub.isSubscribed(topic, session);
  }

  /** Tells the topic's home this node's new connection count of it. */
  private ownerChanged(topic: Topic): void {
    const count = this.hub.count(topic);
    const home = this.homeOf(topic);
    if (home === this.selfId) {
      this.applyOwner(topic, this.selfId, count);
      return;
    }
    const link = this.links.get(home);
    this.stats.ownerDeltasOut++;
    if (link && !link.send({ owner: { topic, count } })) {
      // A control message could not be queued: the link is hopeless. Dropping it makes both
      // sides resync from snapshots when it comes back.
      link.close('outbound queue full');
    }
  }

  // ---------------------------------------------------------------- Router: publish

  publish(topic: Topic, data: string, exceptSession?: string): Promise<number> {
    const acceptedAt = this.opts.clock.now();
    const local = this.hub.deliver(topic, data, exceptSession);
    if (local > 0) this.onDeliveryLatency?.(this.opts.clock.now() - acceptedAt);
    const pending = this.pendingLookups.get(topic);
    // Keep order behind an outstanding lookup of the same topic.
    const route = pending ? undefined : this.routeNow(topic);
    if (route) return this.deliverRemote(topic, route.owners, data, exceptSession, acceptedAt, local, true);
    return this.lookup(topic).then(
      (a) => this.deliverRemote(topic, a.owners, data, exceptSession, acceptedAt, local, true),
      (err: unknown) => this.noRoute(local, err),
    );
  }

  private noRoute(local: number, err: unknown): number {
    if (local > 0) return local;
    this.stats.unavailable++;
    throw new ChatError(ErrorCode.Unavailable, 'the mesh could not route this now; nothing was delivered', { cause: err });
  }

  /** Sends to every remote owner; sums what they wrote. Heals "not here" once. */
  private deliverRemote(
    topic: Topic, owners: ReadonlyMap<string, number>, data: string, except: string | undefined,
    acceptedAt: number, local: number, mayRetry: boolean, skip?: ReadonlySet<string>,
  ): Promise<number> {
    const targets: string[] = [];
    for (const id of owners.keys()) if (id !== this.selfId && !skip?.has(id)) targets.push(id);
    // Most publishes touch no other node, or one: keep those paths free of extra promises.
    if (targets.length === 0) return Promise.resolve(local);
    if (targets.length === 1) {
      return this.deliverTo(targets[0]!, topic, data, except, acceptedAt)
        .then((r) => this.settleRemote(topic, [r], targets, data, except, acceptedAt, local, mayRetry, skip));
    }
    return Promise.all(targets.map((id) => this.deliverTo(id, topic, data, except, acceptedAt)))
      .then((rs) => this.settleRemote(topic, rs, targets, data, except, acceptedAt, local, mayRetry, skip));
  }

  private async settleRemote(
    topic: Topic, results: ReadonlyArray<Result | 'unavailable'>, targets: readonly string[], data: string,
    except: string | undefined, acceptedAt: number, local: number, mayRetry: boolean, skip: ReadonlySet<string> | undefined,
  ): Promise<number> {
    let total = local;
    let unavailable = 0;
    let stale = false;
    for (const r of results) {
      if (r === 'unavailable') unavailable++;
      else {
        total += r.count;
        if (r.notHere) stale = true;
      }
    }
    if (stale && mayRetry) {
      this.stats.staleRoutes++;
      this.table.delete(topic);
      try {
        const fresh = await this.lookup(topic);
        total = await this.deliverRemote(topic, fresh.owners, data, except, acceptedAt, total, false, new Set([...(skip ?? []), ...targets]));
      } catch { /* keep what was delivered */ }
    }
    if (total === 0 && unavailable > 0) return this.noRoute(0, new Error(`${unavailable} owner node(s) unreachable`));
    return total;
  }

  private deliverTo(peer: string, topic: Topic, data: string, except: string | undefined, acceptedAt: number): Promise<Result | 'unavailable'> {
    const link = this.links.get(peer);
    // An owner without a live link is dead; its connections are gone: nothing to deliver.
    if (!link) return Promise.resolve(GONE);
    return new Promise((resolve) => {
      const id = this.deliveries.add(peer, resolve, (why) => resolve(why === 'gone' ? GONE : 'unavailable'));
      this.stats.deliveriesOut++;
      if (!link.send({ deliver: { id, topic, data, exceptSession: except ?? '', acceptedAtMs: acceptedAt } })) {
        this.deliveries.fail(id, 'timeout');
      }
    });
  }

  // ---------------------------------------------------------------- Router: presence

  online(topics: readonly Topic[]): Promise<Map<Topic, boolean>> {
    return Promise.all(topics.map((t) => this.resolve(t))).then((answers) => new Map(answers.map((a) => [a.topic, a.owners.size > 0])));
  }

  async watch(topic: Topic, listener: PresenceListener): Promise<boolean> {
    this.table.pin(topic);
    let online: boolean;
    let tentative = false;
    try {
      const a = await this.resolve(topic);
      online = a.owners.size > 0;
      tentative = a.tentative;
    } catch (err) {
      this.table.unpin(topic);
      throw new ChatError(ErrorCode.Unavailable, 'presence of this user is unknown now (its home is unreachable)', { cause: err });
    }
    const fresh = this.watchers.add(topic, listener, online);
    // A home still rebuilding answered: look again once it has every owner's snapshot.
    if (tentative) setTimeout(() => this.refreshPresence(topic), 200).unref();
    if (!fresh) {
      // Another local watcher already holds a pin and a status; keep one pin per watched topic.
      this.table.unpin(topic);
      return this.watchers.status(topic)!;
    }
    return online;
  }

  unwatch(topic: Topic, listener: PresenceListener): void {
    if (this.watchers.remove(topic, listener)) this.table.unpin(topic);
  }

  /** Re-evaluates the status of a watched topic and tells watchers on a change. */
  private presenceFrom(topic: Topic, owners: ReadonlyMap<string, number>): void {
    if (this.watchers.has(topic)) this.watchers.update(topic, owners.size > 0);
  }

  // ---------------------------------------------------------------- routes and lookups

  /** A complete owner set known now without asking anyone, or undefined. */
  private routeNow(topic: Topic): RouteAnswer | undefined {
    const home = this.homeOf(topic);
    if (home === this.selfId) {
      const e = this.directory.lookup(topic);
      return { topic, home, owners: e.owners, source: 'home', seq: e.seq, tentative: this.barrierPending() };
    }
    const e = this.table.get(topic);
    if (e) return { topic, home, owners: e.owners, source: 'cache', seq: e.seq, tentative: false };
    return undefined;
  }

  /** The owners of a topic: from the directory or cache, else asks its home. */
  resolve(topic: Topic): Promise<RouteAnswer> {
    if (!this.pendingLookups.has(topic)) {
      const now = this.routeNow(topic);
      if (now) return Promise.resolve(now);
    }
    return this.lookup(topic);
  }

  /** Asks the topic's home (batched per home per turn); one retry if the home changed meanwhile. */
  private lookup(topic: Topic): Promise<RouteAnswer> {
    let p = this.pendingLookups.get(topic);
    if (p) return p;
    p = this.askHome(topic).catch(() => this.askHome(topic)).finally(() => {
      if (this.pendingLookups.get(topic) === p) this.pendingLookups.delete(topic);
    });
    this.pendingLookups.set(topic, p);
    return p;
  }

  private askHome(topic: Topic): Promise<RouteAnswer> {
    const home = this.homeOf(topic);
    if (home === this.selfId) return Promise.resolve(this.routeNow(topic)!);
    if (!this.links.has(home)) return Promise.reject(new Error(`home ${home} of ${topic} has no link`));
    return new Promise((resolve, reject) => {
      let batch = this.lookupBatch.get(home);
      if (!batch) {
        batch = new Map();
        this.lookupBatch.set(home, batch);
      }
      const prev = batch.get(topic);
      batch.set(topic, prev ? { resolve: (a) => { prev.resolve(a); resolve(a); }, reject: (e) => { prev.reject(e); reject(e); } } : { resolve, reject });
      if (!this.lookupFlushScheduled) {
        this.lookupFlushScheduled = true;
        setImmediate(() => this.flushLookups());
      }
    });
  }

  private flushLookups(): void {
    this.lookupFlushScheduled = false;
    const batches = [...this.lookupBatch];
    this.lookupBatch.clear();
    for (const [home, waiters] of batches) {
      const link = this.links.get(home);
      const failAll = (why: string): void => {
        for (const w of waiters.values()) w.reject(new Error(why));
      };
      if (!link) {
        failAll(`home ${home} went away`);
        continue;
      }
      const id = this.lookups.add(home, (reply) => {
        const byTopic = new Map(reply.routes.map((r) => [r.topic, r]));
        for (const [topic, w] of waiters) {
          const r = byTopic.get(topic);
          const owners = new Map((r?.owners ?? []).map((o) => [o.nodeId, o.count]));
          const entry: RouteEntry = { owners, home, incarnation: link.peer!.incarnation, seq: r?.seq ?? 0 };
          if (!reply.tentative && r && this.homeOf(topic) === home) {
            this.table.applyFull(topic, entry);
          }
          w.resolve({ topic, home, owners, source: 'asked', seq: entry.seq, tentative: reply.tentative });
        }
      }, (why) => failAll(`lookup at ${home}: ${why}`));
      this.stats.lookupsOut++;
      if (!link.send({ lookup: { id, topics: [...waiters.keys()] } })) this.lookups.fail(id, 'timeout');
    }
  }

  /** What this node knows about a topic, asking its home on a miss (admin `route`). */
  async describe(topic: Topic): Promise<RouteAnswer & { pinned: boolean }> {
    const a = await this.resolve(topic);
    return { ...a, pinned: this.table.isPinned(topic) };
  }

  /** Routing table rows (cache, pins and home directory) after `after`, in topic order. */
  listRoutes(after: string, limit: number): Array<{ topic: Topic; home: string; owners: ReadonlyMap<string, number>; source: 'cache' | 'directory'; seq: number; pinned: boolean }> {
    const rows: Array<{ topic: Topic; home: string; owners: ReadonlyMap<string, number>; source: 'cache' | 'directory'; seq: number; pinned: boolean }> = [];
    for (const r of this.table.entries(after || undefined, limit)) {
      rows.push({ topic: r.topic, home: r.entry.home, owners: r.entry.owners, source: 'cache', seq: r.entry.seq, pinned: r.pinned });
    }
    for (const topic of this.directory.topics()) {
      if (after && topic <= after) continue;
      const e = this.directory.get(topic)!;
      rows.push({ topic, home: this.selfId, owners: e.owners, source: 'directory', seq: e.seq, pinned: this.table.isPinned(topic) });
    }
    rows.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
    return rows.slice(0, limit);
  }

  // ---------------------------------------------------------------- home side

  private barrierPending(): boolean {
    return this.awaitingSnapshots.size > 0 && this.opts.clock.monotonic() < this.barrierUntil;
  }

  /** Records an owner's count in the directory; broadcasts the new complete set on any change
   *  (connection counts included, so every cache can show them). */
  private applyOwner(topic: Topic, owner: string, count: number): void {
    const entry = this.directory.setOwner(topic, owner, count);
    if (entry) this.broadcast(topic, entry);
  }

  private broadcast(topic: Topic, entry: RouteEntry): void {
    if (this.homeOf(topic) !== this.selfId) return;
    const owners = [...entry.owners].map(([nodeId, count]) => ({ nodeId, count }));
    for (const link of this.links.values()) {
      this.stats.routeUpdatesOut++;
      if (!link.send({ route: { topic, owners, seq: entry.seq } })) link.close('outbound queue full');
    }
    this.presenceFrom(topic, entry.owners);
  }

  private answerLookup(link: PeerLink, id: number, topics: readonly string[]): void {
    this.stats.lookupsIn++;
    let tentative = this.barrierPending();
    const routes = topics.map((topic) => {
      if (this.homeOf(topic) !== this.selfId) tentative = true;
      const e = this.directory.lookup(topic);
      return { topic, owners: [...e.owners].map(([nodeId, count]) => ({ nodeId, count })), seq: e.seq };
    });
    link.send({ lookupReply: { id, routes, tentative } });
  }

  // ---------------------------------------------------------------- membership

  /** A peer's link came up. */
  peerUp(link: PeerLink): void {
    this.links.set(link.peer!.id, link);
    this.membershipChanged();
  }

  /** A peer's link went down: its connections are gone everywhere. */
  peerDown(link: PeerLink): void {
    const id = link.peer!.id;
    if (this.links.get(id) !== link) return;
    this.links.delete(id);
    this.deliveries.failPeer(id);
    this.lookups.failPeer(id);
    this.snapshotsIn.delete(id);
    this.awaitingSnapshots.delete(id);
    this.snapshotViews.delete(id);
    const purged = this.table.purgeNode(id);
    for (const change of this.directory.removeNode(id)) this.broadcast(change.topic, change.entry);
    this.membershipChanged();
    for (const topic of purged.pinned) this.refreshPresence(topic);
  }

  private membershipChanged(): void {
    this.stats.membershipChanges++;
    const oldHomes = new Map<Topic, string>();
    for (const topic of this.watchers.topics()) oldHomes.set(topic, this.homeOf(topic));
    this.members = new Rendezvous([this.selfId, ...this.links.keys()]);
    this.membersHash = hash53(this.members.members.join(','));
    // Cached sets whose home moved are no longer backed by a home that broadcasts to us.
    this.table.retainHomes((topic, e) => this.homeOf(topic) === e.home);
    // Directory entries of topics that moved away: their new home rebuilds them from the owners.
    this.directory.retainTopics((topic) => this.homeOf(topic) === this.selfId);
    // Every owner re-sends to every home. Until each peer's latest snapshot was made with the same
    // view of the members as ours, answers about our topics are tentative (see barrierPending).
    this.awaitingSnapshots.clear();
    for (const id of this.links.keys()) {
      if (this.snapshotViews.get(id) !== this.membersHash) this.awaitingSnapshots.add(id);
    }
    this.barrierUntil = this.opts.clock.monotonic() + this.opts.barrierTimeoutMs;
    this.resendOwnership();
    for (const [topic, home] of oldHomes) if (this.homeOf(topic) !== home) this.refreshPresence(topic);
    this.schedulePresenceRefresh();
  }

  /** Sends every peer the complete list of this node's topics homed at it; applies its own. */
  private resendOwnership(): void {
    const perHome = new Map<string, Array<[Topic, number]>>();
    for (const id of this.links.keys()) perHome.set(id, []);
    const mine: Array<[Topic, number]> = [];
    for (const [topic, count] of this.hub.entries()) {
      const home = this.homeOf(topic);
      if (home === this.selfId) mine.push([topic, count]);
      else perHome.get(home)?.push([topic, count]);
    }
    for (const change of this.directory.syncNode(this.selfId, mine)) this.broadcast(change.topic, change.entry);
    for (const [id, topics] of perHome) this.sendSnapshot(this.links.get(id)!, topics);
  }

  private sendSnapshot(link: PeerLink, topics: ReadonlyArray<[Topic, number]>): void {
    this.stats.snapshotsOut++;
    const chunk = this.opts.snapshotChunk;
    let first = true;
    for (let i = 0; first || i < topics.length; i += chunk) {
      const part = topics.slice(i, i + chunk).map(([topic, count]) => ({ topic, count }));
      const done = i + chunk >= topics.length;
      if (!link.send({ snapshot: { topics: part, first, done, membersHash: this.membersHash } })) {
        link.close('outbound queue full');
        return;
      }
      first = false;
    }
  }

  private onSnapshot(link: PeerLink, topics: ReadonlyArray<{ topic: string; count: number }>, first: boolean, done: boolean, view: number): void {
    const peer = link.peer!.id;
    let acc = this.snapshotsIn.get(peer);
    if (first || !acc) {
      acc = new Map();
      this.snapshotsIn.set(peer, acc);
    }
    for (const t of topics) if (t.count > 0) acc.set(t.topic, t.count);
    if (!done) return;
    this.snapshotsIn.delete(peer);
    this.stats.snapshotsIn++;
    for (const change of this.directory.syncNode(peer, acc)) this.broadcast(change.topic, change.entry);
    this.snapshotViews.set(peer, view);
    if (view === this.membersHash && this.awaitingSnapshots.delete(peer) && this.awaitingSnapshots.size === 0) {
      this.schedulePresenceRefresh(0);
    }
  }

  /** Anti-entropy: tell each home a digest of our topics homed there; it asks for a snapshot on mismatch. */
  private sendDigests(): void {
    const perHome = new Map<string, Array<[Topic, number]>>();
    for (const id of this.links.keys()) perHome.set(id, []);
    for (const [topic, count] of this.hub.entries()) perHome.get(this.homeOf(topic))?.push([topic, count]);
    for (const [id, held] of perHome) {
      const d = ownerDigest(held);
      this.stats.digestsOut++;
      this.links.get(id)!.send({ digest: { topics: d.topics, hash: d.hash } });
    }
  }

  private snapshotFor(link: PeerLink): void {
    const held: Array<[Topic, number]> = [];
    for (const [topic, count] of this.hub.entries()) if (this.homeOf(topic) === link.peer!.id) held.push([topic, count]);
    this.sendSnapshot(link, held);
  }

  // ---------------------------------------------------------------- presence refresh

  private schedulePresenceRefresh(delayMs = this.opts.barrierTimeoutMs): void {
    if (this.watchers.size === 0) return;
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      for (const topic of [...this.watchers.topics()]) this.refreshPresence(topic);
    }, delayMs);
    this.refreshTimer.unref();
  }

  /** Re-reads a watched topic's owners (asking its home on a miss) and tells watchers on a change. */
  private refreshPresence(topic: Topic, attempt = 0): void {
    if (!this.watchers.has(topic)) return;
    this.resolve(topic).then((a) => {
      if (a.tentative && attempt < 5) {
        setTimeout(() => this.refreshPresence(topic, attempt + 1), 200 * (attempt + 1)).unref();
        return;
      }
      this.presenceFrom(topic, a.owners);
    }, () => {
      if (attempt < 5) setTimeout(() => this.refreshPresence(topic, attempt + 1), 200 * (attempt + 1)).unref();
    });
  }

  // ---------------------------------------------------------------- inbound

  /** Handles one envelope from a peer (after its handshake). */
  onEnvelope(link: PeerLink, env: Envelope__Output): void {
    const peer = link.peer!.id;
    switch (env.kind) {
      case 'deliver': {
        const d = env.deliver!;
        this.stats.deliveriesIn++;
        const owns = this.hub.owns(d.topic);
        const count = owns ? this.hub.deliver(d.topic, d.data, d.exceptSession || undefined) : 0;
        if (count > 0 && d.acceptedAtMs) this.onDeliveryLatency?.(this.opts.clock.now() - d.acceptedAtMs);
        link.send({ result: { id: d.id, count, notHere: !owns } });
        return;
      }
      case 'result': {
        const r = env.result!;
        this.deliveries.settle(r.id, peer, { count: r.count, notHere: r.notHere });
        return;
      }
      case 'owner': {
        const o = env.owner!;
        this.stats.ownerDeltasIn++;
        this.applyOwner(o.topic, peer, o.count);
        return;
      }
      case 'route': {
        const r = env.route!;
        this.stats.routeUpdatesIn++;
        if (this.homeOf(r.topic) !== peer) return;
        const owners = new Map(r.owners.map((o) => [o.nodeId, o.count]));
        const applied = this.table.applyFull(r.topic, { owners, home: peer, incarnation: link.peer!.incarnation, seq: r.seq });
        if (applied) this.presenceFrom(r.topic, owners);
        return;
      }
      case 'lookup':
        return this.answerLookup(link, env.lookup!.id, env.lookup!.topics);
      case 'lookupReply': {
        const r = env.lookupReply!;
        this.lookups.settle(r.id, peer, { routes: r.routes, tentative: r.tentative });
        return;
      }
      case 'snapshot': {
        const s = env.snapshot!;
        return this.onSnapshot(link, s.topics, s.first, s.done, s.membersHash);
      }
      case 'digest': {
        const d = env.digest!;
        const mine = this.directory.digest(peer);
        if (!digestEquals(mine, { topics: d.topics, hash: d.hash })) {
          this.stats.digestMismatches++;
          link.send({ digestReply: { match: false } });
        }
        return;
      }
      case 'digestReply':
        if (!env.digestReply!.match) this.snapshotFor(link);
        return;
      default:
        this.opts.log.debug({ peer, kind: env.kind }, 'ignoring unknown mesh envelope');
    }
  }

  /** Stops timers and fails what is still in flight. */
  close(): void {
    clearInterval(this.antiEntropy);
    clearTimeout(this.refreshTimer);
    this.deliveries.close();
    this.lookups.close();
  }
}
