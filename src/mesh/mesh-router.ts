import { LocalHub, WatchRegistry } from '../core/index.js';
import type { PresenceListener, Router, Subscriber, Topic } from '../core/index.js';
import type { Logger } from '../log.js';
import { ChatError, ErrorCode } from '../protocol/index.js';
import { OwnerDirectory, Rendezvous, RouteTable, hash53 } from '../routing/index.js';
import type { RouteEntry } from '../routing/index.js';
import type { Clock } from '../util/index.js';
import { Deliveries, unavailable } from './deliveries.js';
import type { NodeIdentity, PeerLink } from './link.js';
import { Lookups } from './lookups.js';
import type { RouteAnswer } from './lookups.js';
import { Resync } from './resync.js';
import { invalidEnvelope } from './validate.js';
import { MeshStats } from './stats.js';
import type { Envelope__Output } from './wire.js';


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

/** A row of the routing table listing (admin `routes`). */
export interface RouteRow {
  readonly topic: Topic;
  readonly home: string;
  readonly owners: ReadonlyMap<string, number>;
  readonly source: 'cache' | 'directory';
  readonly seq: number;
  readonly pinned: boolean;
}

/**
 * Routes topics across the mesh (design.md): this node is authoritative for its own connections
 * (`hub`); each topic has a home (rendezvous hashing over live members) that keeps the complete
 * owner set and broadcasts every change of it to all peers, which cache it in a bounded LRU; a miss
 * asks the home (`Lookups`); deliveries go straight to the owner nodes (`Deliveries`); homes are
 * rebuilt from owners after membership changes and checked by anti-entropy (`Resync`). All methods
 * are safe to call at any time; publishes from one caller to one topic keep their order.
 */
export class MeshRouter implements Router {
  readonly hub = new LocalHub();
  readonly table: RouteTable;
  readonly directory: OwnerDirectory;
  readonly stats = new MeshStats();
  private members: Rendezvous;
  private readonly links = new Map<string, PeerLink>();
  private readonly watchers = new WatchRegistry();
  private readonly lookups: Lookups;
  private readonly deliveries: Deliveries;
  private readonly resync: Resync;
  private readonly antiEntropy: NodeJS.Timeout;
  private refreshTimer: NodeJS.Timeout | undefined;
  /** Topics whose changed sets wait for the end of the snapshot barrier. */
  private readonly heldBack = new Set<Topic>();
  private barrierTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly opts: Required<MeshRouterOptions>;
  /** Called with the end-to-end latency of each delivery written here, in ms. */
  onDeliveryLatency: ((ms: number) => void) | undefined;

  constructor(opts: MeshRouterOptions) {
    this.opts = { deliveryTimeoutMs: 5000, lookupTimeoutMs: 3000, antiEntropyMs: 10_000, snapshotChunk: 500, barrierTimeoutMs: 3000, ...opts };
    this.table = new RouteTable({ maxEntries: opts.routeCacheSize });
    this.directory = new OwnerDirectory({ nodeId: opts.self.id, incarnation: opts.self.incarnation });
    this.members = new Rendezvous([opts.self.id]);
    const selfId = opts.self.id;
    const link = (id: string): PeerLink | undefined => this.links.get(id);
    const homeOf = (topic: Topic): string => this.homeOf(topic);
    this.lookups = new Lookups({
      selfId, homeOf, link, stats: this.stats,
      ownAnswer: (topic) => this.routeNow(topic)!,
      // A lookup may be what brings a watched topic's newest set: its watchers must hear it too.
      cache: (topic, entry) => {
        if (this.table.applyFull(topic, entry)) this.presenceFrom(topic, entry.owners);
      },
    }, this.opts.lookupTimeoutMs);
    this.deliveries = new Deliveries({
      selfId, link, stats: this.stats,
      lookup: (topic) => this.lookups.lookup(topic),
      dropRoute: (topic) => { this.table.delete(topic); },
    }, this.opts.deliveryTimeoutMs);
    this.resync = new Resync({
      selfId, homeOf, stats: this.stats, directory: this.directory,
      links: () => this.links,
      localTopics: () => this.hub.entries(),
      broadcast: (topic, entry) => this.broadcast(topic, entry),
      monotonic: () => this.opts.clock.monotonic(),
      onSettled: () => this.barrierEnded(),
    }, { snapshotChunk: this.opts.snapshotChunk, barrierTimeoutMs: this.opts.barrierTimeoutMs });
    this.antiEntropy = setInterval(() => this.resync.sendDigests(), this.opts.antiEntropyMs);
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

  // ---------------------------------------------------------------- local connections (owner side)

  subscribe(topic: Topic, sub: Subscriber): Promise<void> {
    const before = this.hub.count(topic);
    this.hub.add(topic, sub);
    if (this.hub.count(topic) !== before) this.ownerChanged(topic);
    return Promise.resolve();
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
    if (home === this.selfId) return this.applyOwner(topic, this.selfId, count);
    const link = this.links.get(home);
    this.stats.ownerDeltasOut++;
    // A control message that cannot be queued makes the link hopeless: dropping it makes both
    // sides resync from snapshots when it comes back.
    if (link && !link.send({ owner: { topic, count } })) link.close('outbound queue full');
  }

  // ---------------------------------------------------------------- publish

  publish(topic: Topic, data: string, exceptSession?: string): Promise<number> {
    const acceptedAt = this.opts.clock.now();
    const local = this.hub.deliver(topic, data, exceptSession);
    if (local > 0) this.onDeliveryLatency?.(this.opts.clock.now() - acceptedAt);
    const send = (owners: ReadonlyMap<string, number>): Promise<number> =>
      this.deliveries.toOwners(topic, owners, data, exceptSession, acceptedAt, local);
    // Keep order behind a stale route being healed, and behind an outstanding lookup.
    const healing = this.deliveries.healing(topic);
    const route = healing || this.lookups.pending(topic) ? undefined : this.routeNow(topic);
    if (route) return send(route.owners);
    const later = healing ? healing.then(() => this.resolve(topic)) : this.lookups.lookup(topic);
    return later.then((a) => send(a.owners), (err: unknown) => {
      if (local > 0) return local;
      throw unavailable(this.stats, err);
    });
  }

  // ---------------------------------------------------------------- routes

  /** A complete owner set known now without asking anyone, or undefined. */
  private routeNow(topic: Topic): RouteAnswer | undefined {
    const home = this.homeOf(topic);
    if (home === this.selfId) {
      const e = this.directory.lookup(topic);
      return { topic, home, owners: e.owners, source: 'home', seq: e.seq, tentative: this.resync.tentative() };
    }
    const e = this.table.get(topic);
    return e && { topic, home, owners: e.owners, source: 'cache', seq: e.seq, tentative: false };
  }

  /** The owners of a topic: from the directory or cache, else asks its home. */
  resolve(topic: Topic): Promise<RouteAnswer> {
    const now = this.lookups.pending(topic) ? undefined : this.routeNow(topic);
    return now ? Promise.resolve(now) : this.lookups.lookup(topic);
  }

  /** What this node knows about a topic, asking its home on a miss (admin `route`). */
  async describe(topic: Topic): Promise<RouteAnswer & { pinned: boolean }> {
    return { ...(await this.resolve(topic)), pinned: this.table.isPinned(topic) };
  }

  /** Routing table rows (cache, pins and home directory) after `after`, in topic order. */
  listRoutes(after: string, limit: number): RouteRow[] {
    const rows: RouteRow[] = this.table.entries(after || undefined, limit).map((r) => ({
      topic: r.topic, home: r.entry.home, owners: r.entry.owners, source: 'cache' as const, seq: r.entry.seq, pinned: r.pinned,
    }));
    for (const topic of this.directory.topics()) {
      if (after && topic <= after) continue;
      const e = this.directory.get(topic)!;
      rows.push({ topic, home: this.selfId, owners: e.owners, source: 'directory', seq: e.seq, pinned: this.table.isPinned(topic) });
    }
    rows.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
    return rows.slice(0, limit);
  }

  // ---------------------------------------------------------------- presence

  online(topics: readonly Topic[]): Promise<Map<Topic, boolean>> {
    return Promise.all(topics.map((t) => this.resolve(t))).then((answers) => new Map(answers.map((a) => [a.topic, a.owners.size > 0])));
  }

  async watch(topic: Topic, listener: PresenceListener): Promise<boolean> {
    this.table.pin(topic);
    let a: RouteAnswer;
    try {
      a = await this.resolve(topic);
    } catch (err) {
      this.table.unpin(topic);
      throw new ChatError(ErrorCode.Unavailable, 'presence of this user is unknown now (its home is unreachable)', { cause: err });
    }
    const online = (this.newestOwners(topic) ?? a.owners).size > 0;
    const fresh = this.watchers.add(topic, listener, online);
    // A home still rebuilding answered: look again once it has every owner's snapshot.
    if (a.tentative) setTimeout(() => this.refreshPresence(topic), 200).unref();
    if (fresh) return online;
    // Another local watcher already holds the pin and a status; keep one pin per watched topic.
    this.table.unpin(topic);
    return this.watchers.status(topic)!;
  }

  unwatch(topic: Topic, listener: PresenceListener): void {
    if (this.watchers.remove(topic, listener)) this.table.unpin(topic);
  }

  private presenceFrom(topic: Topic, owners: ReadonlyMap<string, number>): void {
    if (this.watchers.has(topic)) this.watchers.update(topic, owners.size > 0);
  }

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
    // Retried while the topic is watched and its home cannot give a firm answer (back-off to 2 s;
    // the home's barrier is bounded, so this ends).
    const again = (): void => {
      if (attempt < 20) setTimeout(() => this.refreshPresence(topic, attempt + 1), Math.min(200 * (attempt + 1), 2000)).unref();
    };
    this.resolve(topic).then((a) => (a.tentative ? again() : this.presenceFrom(topic, this.newestOwners(topic) ?? a.owners)), again);
  }

  /**
   * The newest complete set this node holds for a topic, if any. A lookup answer can be older than
   * a broadcast that overtook it (and was already applied); presence must follow the newest.
   */
  private newestOwners(topic: Topic): ReadonlyMap<string, number> | undefined {
    const home = this.homeOf(topic);
    if (home === this.selfId) return this.directory.lookup(topic).owners;
    const e = this.table.peek(topic);
    return e && e.home === home ? e.owners : undefined;
  }

  // ---------------------------------------------------------------- home side

  /**
   * Records an owner's count. The new complete set is broadcast when the set of owner nodes
   * changed; a count-only change (a second device, a room member on a node that already had one)
   * stays at the home, so one busy client cannot make every node of the mesh do work per frame.
   */
  private applyOwner(topic: Topic, owner: string, count: number): void {
    const had = this.directory.get(topic)?.owners.has(owner) ?? false;
    const entry = this.directory.setOwner(topic, owner, count);
    if (entry && had !== count > 0) this.broadcast(topic, entry);
  }

  /**
   * Publishes a topic's new complete owner set to every peer (and to local watchers). While this
   * home is still rebuilding after a membership change its sets may miss owners, so they are held
   * back and sent once every owner has re-sent, or the barrier times out.
   */
  private broadcast(topic: Topic, entry: RouteEntry): void {
    if (this.homeOf(topic) !== this.selfId) return;
    if (this.resync.tentative()) {
      this.heldBack.add(topic);
      return;
    }
    const owners = [...entry.owners].map(([nodeId, count]) => ({ nodeId, count }));
    for (const link of this.links.values()) {
      this.stats.routeUpdatesOut++;
      if (!link.send({ route: { topic, owners, seq: entry.seq } })) link.close('outbound queue full');
    }
    this.presenceFrom(topic, entry.owners);
  }

  private answerLookup(link: PeerLink, id: number, topics: readonly string[]): void {
    this.stats.lookupsIn++;
    let tentative = this.resync.tentative();
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
    if (this.closed) {
      // Shutting down: no re-homing work for links that close one after another.
      this.links.delete(id);
      return;
    }
    this.links.delete(id);
    this.deliveries.failPeer(id);
    this.lookups.failPeer(id);
    this.resync.peerDown(id);
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
    // Cached sets whose home moved are no longer backed by a home that broadcasts to us.
    this.table.retainHomes((topic, e) => this.homeOf(topic) === e.home);
    // Directory entries of topics that moved away: their new home rebuilds them from the owners.
    this.directory.retainTopics((topic) => this.homeOf(topic) === this.selfId);
    this.resync.membershipChanged(hash53(this.members.members.join(',')));
    clearTimeout(this.barrierTimer);
    if (this.resync.tentative()) {
      this.barrierTimer = setTimeout(() => this.barrierEnded(), this.opts.barrierTimeoutMs + 1);
      this.barrierTimer.unref();
    }
    for (const [topic, home] of oldHomes) if (this.homeOf(topic) !== home) this.refreshPresence(topic);
    this.schedulePresenceRefresh();
  }

  /** Every owner has re-sent (or the barrier timed out): send what was held back, refresh presence. */
  private barrierEnded(): void {
    clearTimeout(this.barrierTimer);
    const topics = [...this.heldBack];
    this.heldBack.clear();
    for (const topic of topics) if (this.homeOf(topic) === this.selfId) this.broadcast(topic, this.directory.lookup(topic));
    this.schedulePresenceRefresh(0);
  }

  // ---------------------------------------------------------------- inbound

  /** Handles one envelope from a peer (after its handshake), in link order. */
  onEnvelope(link: PeerLink, env: Envelope__Output): void {
    const peer = link.peer!.id;
    const bad = invalidEnvelope(env);
    if (bad) {
      // A peer that sends garbage cannot be trusted with routing state: drop the link.
      this.opts.log.error({ peer, why: bad }, 'invalid envelope from a peer; closing the link');
      link.close(`invalid envelope: ${bad}`);
      return;
    }
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
      case 'result':
        return this.deliveries.onResult(peer, env.result!.id, env.result!.count, env.result!.notHere);
      case 'owner':
        this.stats.ownerDeltasIn++;
        return this.applyOwner(env.owner!.topic, peer, env.owner!.count);
      case 'route': {
        const r = env.route!;
        this.stats.routeUpdatesIn++;
        if (this.homeOf(r.topic) !== peer) return;
        const owners = new Map(r.owners.map((o) => [o.nodeId, o.count]));
        if (this.table.applyFull(r.topic, { owners, home: peer, incarnation: link.peer!.incarnation, seq: r.seq })) this.presenceFrom(r.topic, owners);
        return;
      }
      case 'lookup':
        return this.answerLookup(link, env.lookup!.id, env.lookup!.topics);
      case 'lookupReply':
        return this.lookups.onReply(peer, env.lookupReply!.id, env.lookupReply!.routes, env.lookupReply!.tentative);
      case 'snapshot': {
        const s = env.snapshot!;
        return this.resync.onSnapshot(link, s.topics, s.first, s.done, s.membersHash);
      }
      case 'digest':
        return this.resync.onDigest(link, env.digest!.topics, env.digest!.hash);
      case 'digestReply':
        if (!env.digestReply!.match) this.resync.onDigestMismatch(link);
        return;
      default:
        this.opts.log.debug({ peer, kind: env.kind }, 'ignoring unknown mesh envelope');
    }
  }

  /** Stops timers and fails what is still in flight. */
  close(): void {
    this.closed = true;
    clearInterval(this.antiEntropy);
    clearTimeout(this.refreshTimer);
    clearTimeout(this.barrierTimer);
    this.deliveries.close();
    this.lookups.close();
  }
}
