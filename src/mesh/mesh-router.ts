import { LocalHub } from '../core/index.js';
import type { PresenceListener, PublishOptions, Router, Subscriber, Topic } from '../core/index.js';
import type { Logger } from '../log.js';
import { OwnerDirectory, Rendezvous, RouteTable, hash53 } from '../routing/index.js';
import type { RouteEntry } from '../routing/index.js';
import type { Clock } from '../util/index.js';
import { Deliveries, unavailable } from './deliveries.js';
import type { DeliveryJob } from './deliveries.js';
import type { NodeIdentity, PeerLink } from './link.js';
import { Lookups } from './lookups.js';
import type { RouteAnswer } from './lookups.js';
import { PendingRequests } from './pending.js';
import { DrainLinger } from './drain-linger.js';
import { Presence } from './presence.js';
import { forEachResult } from './result-batch.js';
import { WrittenMessages } from './recent.js';
import { Resync } from './resync.js';
import { StreamCalls } from './stream-calls.js';
import type { StreamCall__Output, StreamReplyBody } from './stream-calls.js';
import { invalidEnvelope } from './validate.js';
import { MeshStats } from './stats.js';
import type { Envelope__Output } from './wire.js';

/** Options of the mesh router. */
export interface MeshRouterOptions {
  readonly self: NodeIdentity;
  /** The node's up links by peer id, owned and written by the peer manager (read only here). */
  readonly links: ReadonlyMap<string, PeerLink>;
  /** Max entries of the LRU routing table (`--route-cache-size`). */
  readonly routeCacheSize: number;
  readonly log: Logger;
  readonly clock: Clock;
  /** A delivery to a peer unanswered for this long fails as unavailable, in ms. Default 5000. */
  readonly deliveryTimeoutMs?: number;
  /** A lookup unanswered for this long fails, in ms. Default 3000. */
  readonly lookupTimeoutMs?: number;
  /** Longest a negative answer (offline, no subscribers, presence offline) waits for the home to
   *  confirm it; then the client gets `unavailable` instead, in ms. Default 5000. */
  readonly confirmTimeoutMs?: number;
  /** Longest a new connection's welcome (or a join's ack) waits for its home to record it, in ms.
   *  Default 3000. */
  readonly ownerAckTimeoutMs?: number;
  /** While draining, a user whose last connection here closed stays registered this long, so
   *  watchers see no offline flap when the client reconnects to another node, in ms. Default 2000. */
  readonly drainLingerMs?: number;
  /** (topic, message id) pairs remembered per node so that no delivery writes one message twice:
   *  the last half of this number at least, all of it at most. Default 65536. */
  readonly dedupeWindow?: number;
  /** Period of the anti-entropy digest exchange, in ms. Default 10000. */
  readonly antiEntropyMs?: number;
  /** Topics per snapshot chunk. Default 500. */
  readonly snapshotChunk?: number;
  /** After a membership change, a home holds back changed owner sets until every owner has
   *  re-sent its topics, at most this long; then it sends them marked as not authoritative, in ms.
   *  Default 3000. (Its negative answers wait for every owner regardless.) */
  readonly barrierTimeoutMs?: number;
  /** Called with the end-to-end latency of each delivery written here, in ms. */
  readonly onDeliveryLatency?: (ms: number) => void;
  /** Called with the message id of every delivery from a peer (the node's clock moves past it). */
  readonly onMessageSeen?: (msg: string) => void;
  /** Serves a stream call from a peer (the stream layer's handler). Without it calls are refused. */
  readonly serveStream?: (peer: string, call: StreamCall__Output) => Promise<StreamReplyBody>;
  /** Called after every change of the live members (with the new sorted member ids). */
  readonly onMembersChanged?: (members: readonly string[]) => void;
  /** A stream call unanswered for this long fails, in ms. Default 5000. */
  readonly streamCallTimeoutMs?: number;
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

type Hooks = 'onDeliveryLatency' | 'onMessageSeen' | 'serveStream' | 'onMembersChanged';
type Resolved = Required<Omit<MeshRouterOptions, Hooks>> & Pick<MeshRouterOptions, Hooks>;

/**
 * Routes topics across the mesh (design.md): this node is authoritative for its own connections
 * (`hub`); each topic has a home (rendezvous hashing over live members) that keeps the complete
 * owner set and broadcasts every change of it to all peers, which cache it in a bounded LRU; a miss
 * asks the home (`Lookups`); deliveries go straight to the owner nodes (`Deliveries`); homes are
 * rebuilt from owners after membership changes and checked by anti-entropy (`Resync`); `Presence`
 * tells watchers. Negative answers are authoritative: "nobody" is only ever answered after the
 * topic's home confirmed it under this node's view of the members, and a new connection is
 * recorded at its home before its welcome. All methods are safe to call at any time; publishes
 * from one caller to one topic keep their order.
 */
export class MeshRouter implements Router {
  readonly hub = new LocalHub();
  readonly table: RouteTable;
  readonly directory: OwnerDirectory;
  readonly stats = new MeshStats();
  private members: Rendezvous;
  private view = 0;
  private readonly links: ReadonlyMap<string, PeerLink>;
  private readonly presence: Presence;
  private readonly lookups: Lookups;
  private readonly deliveries: Deliveries;
  private readonly resync: Resync;
  private readonly ownerAcks: PendingRequests<void>;
  /** Message ids written here from peers' deliveries (exactly once on the wire). */
  private readonly written: WrittenMessages;
  private readonly antiEntropy: NodeJS.Timeout;
  /** Topics whose changed sets wait for the end of the snapshot barrier. */
  private readonly heldBack = new Set<Topic>();
  private barrierTimer: NodeJS.Timeout | undefined;
  private readonly linger: DrainLinger;
  /** Calls of the stream layer to other nodes (the mesh carries them, src/streams serves them). */
  readonly streamCalls: StreamCalls;
  private closed = false;
  private ackWarnAfter = 0;
  private readonly opts: Resolved;

  constructor(opts: MeshRouterOptions) {
    this.opts = {
      deliveryTimeoutMs: 5000, lookupTimeoutMs: 3000, confirmTimeoutMs: 5000, ownerAckTimeoutMs: 3000, drainLingerMs: 2000,
      dedupeWindow: 65_536, antiEntropyMs: 10_000, snapshotChunk: 500, barrierTimeoutMs: 3000, streamCallTimeoutMs: 5000, ...opts,
    };
    this.links = opts.links;
    this.table = new RouteTable({ maxEntries: opts.routeCacheSize });
    this.directory = new OwnerDirectory({ nodeId: opts.self.id, incarnation: opts.self.incarnation });
    this.members = new Rendezvous([opts.self.id]);
    const monotonic = (): number => this.opts.clock.monotonic();
    this.ownerAcks = new PendingRequests(this.opts.ownerAckTimeoutMs, monotonic);
    this.written = new WrittenMessages(this.opts.dedupeWindow);
    this.linger = new DrainLinger(this.opts.drainLingerMs, (topic) => {
      if (this.hub.count(topic) === 0 && !this.closed) void this.ownerChanged(topic, false);
    });
    const selfId = opts.self.id;
    const link = (id: string): PeerLink | undefined => this.links.get(id);
    const homeOf = (topic: Topic): string => this.homeOf(topic);
    this.presence = new Presence({
      owners: {
        routeNow: (topic) => this.routeNow(topic),
        newestOwners: (topic) => this.newestOwners(topic),
        confirm: (topic) => this.lookups.confirm(topic, this.opts.confirmTimeoutMs),
        pin: (topic) => this.table.pin(topic),
        unpin: (topic) => { this.table.unpin(topic); },
      },
    });
    this.lookups = new Lookups({
      selfId, homeOf, link, stats: this.stats,
      ownAnswer: (topic) => this.routeNow(topic)!,
      membersHash: () => this.view,
      monotonic,
      // A lookup may be what brings a watched topic's newest set: its watchers must hear it too.
      // It is cached only when firm, so it is authoritative here.
      cache: (topic, entry) => {
        if (this.table.applyFull(topic, entry)) this.presence.observe(topic, entry.owners, true);
      },
    }, this.opts.lookupTimeoutMs);
    this.deliveries = new Deliveries({
      selfId, link, stats: this.stats,
      lookup: (topic) => this.lookups.lookup(topic),
      dropRoute: (topic) => { this.table.delete(topic); },
      monotonic,
    }, this.opts.deliveryTimeoutMs);
    this.resync = new Resync({
      selfId, homeOf, stats: this.stats, directory: this.directory,
      links: () => this.links,
      localTopics: () => this.hub.entries(),
      broadcast: (topic, entry) => this.broadcast(topic, entry),
      monotonic: () => this.opts.clock.monotonic(),
      onSettled: () => this.barrierEnded(),
    }, { snapshotChunk: this.opts.snapshotChunk, barrierTimeoutMs: this.opts.barrierTimeoutMs });
    this.streamCalls = new StreamCalls({
      selfId, link, monotonic, timeoutMs: this.opts.streamCallTimeoutMs,
      serve: opts.serveStream ?? (() => Promise.reject(new Error('this node keeps no streams'))),
    });
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

  /** Hash of this node's view of the live members (ids and incarnations). */
  get membersView(): number {
    return this.view;
  }

  /** The home of `topic` in this node's view. */
  homeOf(topic: Topic): string {
    return this.members.home(topic)!;
  }

  // ---------------------------------------------------------------- local connections (owner side)

  subscribe(topic: Topic, sub: Subscriber): Promise<void> {
    const before = this.hub.count(topic);
    this.hub.add(topic, sub);
    this.linger.cancel(topic);
    if (this.hub.count(topic) === before) return Promise.resolve();
    return this.ownerChanged(topic, true);
  }

  unsubscribe(topic: Topic, sub: Subscriber): void {
    const before = this.hub.count(topic);
    this.hub.remove(topic, sub);
    if (this.hub.count(topic) === before) return;
    if (before > 0 && this.hub.count(topic) === 0 && this.linger.hold(topic)) return;
    void this.ownerChanged(topic, false);
  }

  isSubscribed(topic: Topic, session: string): boolean {
    return this.hub.isSubscribed(topic, session);
  }

  /**
   * Tells the topic's home this node's new connection count of it. With `ack`, resolves once the
   * home recorded it (or its link went down — then the snapshot to the new home carries it, and
   * nobody answers "nobody" before that home has it — or after `ownerAckTimeoutMs`).
   */
  private ownerChanged(topic: Topic, ack: boolean): Promise<void> {
    const count = this.hub.count(topic);
    const home = this.homeOf(topic);
    if (home === this.selfId) {
      this.applyOwner(topic, this.selfId, count);
      return Promise.resolve();
    }
    const link = this.links.get(home);
    // No link to the home: shutting down (links close one by one), or the link just dropped — the
    // snapshot to the topic's next home carries the count.
    if (!link || this.closed) return Promise.resolve();
    this.stats.ownerDeltasOut++;
    if (!ack) {
      // A control message that cannot be queued makes the link hopeless: dropping it makes both
      // sides resync from snapshots when it comes back.
      if (!link.send({ owner: { topic, count, ackId: 0 } })) link.close('outbound queue full');
      return Promise.resolve();
    }
    this.stats.ownerAcksWaited++;
    return new Promise((resolve) => {
      const ackId = this.ownerAcks.add(home, resolve, (why) => {
        if (why === 'timeout') {
          this.stats.ownerAckTimeouts++;
          // One line per 10 s at most: a hung home would otherwise log once per new connection.
          const now = this.opts.clock.monotonic();
          if (now >= this.ackWarnAfter) {
            this.ackWarnAfter = now + 10_000;
            this.opts.log.warn({ topic, home, timeouts: this.stats.ownerAckTimeouts }, 'a topic home did not acknowledge a new owner in time; welcoming anyway');
          }
        }
        resolve();
      });
      if (!link.send({ owner: { topic, count, ackId } })) {
        link.close('outbound queue full');
        this.ownerAcks.fail(ackId, 'gone');
      }
    });
  }

  /** Drain: from now on a user's last connection here lingers (see `drainLingerMs`). */
  startDrain(): void {
    this.linger.start();
  }

  /** Resolves once no user lingers here any more (at most `drainLingerMs` after the drain). */
  lingerDone(): Promise<void> {
    return this.linger.done();
  }

  // ---------------------------------------------------------------- publish

  publish(topic: Topic, data: string, exceptSession?: string, options?: PublishOptions): Promise<number> {
    const acceptedAt = this.opts.clock.now();
    const local = this.hub.deliver(topic, data, exceptSession);
    if (local > 0) this.opts.onDeliveryLatency?.(this.opts.clock.now() - acceptedAt);
    const job: DeliveryJob = { topic, data, except: exceptSession, acceptedAt, msg: options?.msg };
    // Keep order behind a stale route being healed, and behind an outstanding lookup.
    const healing = this.deliveries.healing(topic);
    const pending = healing ? undefined : this.lookups.current(topic);
    const route = healing || pending ? undefined : this.routeNow(topic);
    let sent: Promise<number>;
    if (route) sent = this.deliveries.toOwners(job, route.owners, local);
    else {
      const later = healing ? healing.then(() => this.resolve(topic)) : pending ? pending.catch(() => this.resolve(topic)) : this.lookups.lookup(topic);
      sent = later.then((a) => this.deliveries.toOwners(job, a.owners, local), (err: unknown) => {
        if (local > 0) return local;
        throw unavailable(this.stats, err);
      });
    }
    if (options?.confirm === false) return sent;
    return sent.then((n) => (n > 0 ? n : this.deliverConfirmed(job)));
  }

  /**
   * Nobody got it so far: ask the home for an authoritative set. Owners it names that the route
   * used did not (a connection the cache did not know of yet) get the message now; only a firm
   * empty set resolves 0. No firm answer in time: `unavailable`, never a false "nobody".
   */
  private deliverConfirmed(job: DeliveryJob): Promise<number> {
    return this.lookups.confirm(job.topic, this.opts.confirmTimeoutMs).then((firm) => {
      let others = false;
      for (const id of firm.owners.keys()) if (id !== this.selfId) others = true;
      if (!others) {
        this.stats.confirmedNegatives++;
        return 0;
      }
      return this.deliveries.toOwners(job, firm.owners, 0, false).then((n) => {
        if (n === 0) this.stats.confirmedNegatives++;
        return n;
      });
    }, (err: unknown) => {
      throw unavailable(this.stats, err);
    });
  }

  // ---------------------------------------------------------------- routes

  /** A complete owner set known now without asking anyone, or undefined. */
  private routeNow(topic: Topic): RouteAnswer | undefined {
    // The cache first: it only ever holds entries whose home is another node and still the
    // topic's home (membership changes re-check them), so a hit needs no ranking of the members.
    const cached = this.table.get(topic);
    if (cached) return { topic, home: cached.home, owners: cached.owners, source: 'cache', seq: cached.seq, tentative: false };
    const home = this.homeOf(topic);
    if (home !== this.selfId) return undefined;
    const e = this.directory.lookup(topic);
    return { topic, home, owners: e.owners, source: 'home', seq: e.seq, tentative: this.resync.tentative() };
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
      if ((after && topic <= after) || this.homeOf(topic) !== this.selfId) continue;
      const e = this.directory.get(topic)!;
      rows.push({ topic, home: this.selfId, owners: e.owners, source: 'directory', seq: e.seq, pinned: this.table.isPinned(topic) });
    }
    rows.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
    return rows.slice(0, limit);
  }

  // ---------------------------------------------------------------- presence

  online(topics: readonly Topic[]): Promise<Map<Topic, boolean>> {
    return this.presence.online(topics);
  }

  watch(topic: Topic, listener: PresenceListener): Promise<boolean> {
    return this.presence.watch(topic, listener);
  }

  unwatch(topic: Topic, listener: PresenceListener): void {
    this.presence.unwatch(topic, listener);
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
   * back until every owner has re-sent; past the barrier timeout they go out marked as not
   * authoritative (members hash 0), which receivers use for routing but never to say "offline".
   */
  private broadcast(topic: Topic, entry: RouteEntry): void {
    if (this.homeOf(topic) !== this.selfId) return;
    const firm = !this.resync.tentative();
    if (!firm && !this.resync.overdue()) {
      this.heldBack.add(topic);
      return;
    }
    const owners = [...entry.owners].map(([nodeId, count]) => ({ nodeId, count }));
    const membersHash = firm ? this.view : 0;
    for (const link of this.links.values()) {
      this.stats.routeUpdatesOut++;
      if (!link.send({ route: { topic, owners, seq: entry.seq, membersHash } })) link.close('outbound queue full');
    }
    this.presence.observe(topic, entry.owners, firm);
  }

  private answerLookup(link: PeerLink, id: number, topics: readonly string[], askerView: number): void {
    this.stats.lookupsIn++;
    // Firm only when this node is the home in its own view, holds every owner's snapshot for that
    // view, and the asker sees the same members (else an owner one of us cannot see may be missing).
    let tentative = this.resync.tentative() || (askerView !== 0 && askerView !== this.view);
    const routes = topics.map((topic) => {
      if (this.homeOf(topic) !== this.selfId) tentative = true;
      const e = this.directory.lookup(topic);
      return { topic, owners: [...e.owners].map(([nodeId, count]) => ({ nodeId, count })), seq: e.seq };
    });
    link.send({ lookupReply: { id, routes, tentative } });
  }

  // ---------------------------------------------------------------- membership

  /** A peer's link came up (it is in `links` already). */
  peerUp(_link: PeerLink): void {
    this.membershipChanged();
  }

  /** A peer's registered link went down (it has left `links` already): its connections are gone. */
  peerDown(link: PeerLink): void {
    const id = link.peer!.id;
    // Shutting down: no re-homing work for links that close one after another.
    if (this.closed) return;
    this.deliveries.failPeer(id);
    this.lookups.failPeer(id);
    this.ownerAcks.failPeer(id);
    this.streamCalls.failPeer(id);
    this.resync.peerDown(id);
    this.membershipChanged();
    // Sets that lose the dead node go out once this home is rebuilt (held back until then).
    for (const change of this.directory.removeNode(id)) this.broadcast(change.topic, change.entry);
  }

  /**
   * The live members changed. Costs O(this node's own topics) for the re-send to the new homes,
   * O(1) for the routing cache (its entries are re-checked when next read) and nothing for the
   * directory (each owner's snapshot replaces what it held here). Watchers are re-checked in slices.
   */
  private membershipChanged(): void {
    this.stats.membershipChanges++;
    const ids = [this.selfId, ...this.links.keys()];
    this.members = new Rendezvous(ids);
    const incarnation = (id: string): string => (id === this.selfId ? this.opts.self.incarnation : this.links.get(id)!.peer!.incarnation);
    this.view = hash53(ids.map((id) => `${id}@${incarnation(id)}`).sort().join(','));
    // Cached sets are kept while their home is still the topic's home (same incarnation), without
    // owners that are no longer members.
    this.table.revalidate((topic, e) => {
      const home = this.homeOf(topic);
      if (e.home !== home || this.links.get(home)?.peer?.incarnation !== e.incarnation) return undefined;
      let gone = false;
      for (const id of e.owners.keys()) if (id !== this.selfId && !this.links.has(id)) gone = true;
      if (!gone) return e;
      return { ...e, owners: new Map([...e.owners].filter(([id]) => id === this.selfId || this.links.has(id))) };
    });
    this.resync.membershipChanged(this.view);
    clearTimeout(this.barrierTimer);
    if (this.resync.tentative()) {
      this.barrierTimer = setTimeout(() => this.releaseHeldBack(), this.opts.barrierTimeoutMs + 1);
      this.barrierTimer.unref();
    }
    this.presence.refreshAll();
    this.opts.onMembersChanged?.(this.members.members);
  }

  /** Every owner has re-sent: send what was held back (authoritative now), re-check watchers. */
  private barrierEnded(): void {
    clearTimeout(this.barrierTimer);
    this.releaseHeldBack();
    this.presence.refreshAll();
  }

  private releaseHeldBack(): void {
    const topics = [...this.heldBack];
    this.heldBack.clear();
    for (const topic of topics) if (this.homeOf(topic) === this.selfId) this.broadcast(topic, this.directory.lookup(topic));
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
        if (d.msg) this.opts.onMessageSeen?.(d.msg);
        const owns = this.hub.owns(d.topic);
        let count = 0;
        if (owns) {
          // Exactly once on the wire: a message id already written to this topic here (a retried
          // or re-routed delivery) is not written again; the earlier count is answered.
          const seen = d.msg ? this.written.seen(d.topic, d.msg) : undefined;
          if (seen !== undefined) {
            this.stats.duplicatesDropped++;
            count = seen;
          } else {
            count = this.hub.deliver(d.topic, d.data, d.exceptSession || undefined);
            if (d.msg && count > 0) this.written.record(d.topic, d.msg, count);
            if (count > 0 && d.acceptedAtMs) this.opts.onDeliveryLatency?.(this.opts.clock.now() - d.acceptedAtMs);
          }
        }
        link.answerDelivery(d.id, count, !owns);
        return;
      }
      case 'result':
        return this.deliveries.onResult(peer, env.result!.id, env.result!.count, env.result!.notHere);
      case 'results':
        return forEachResult(env.results!, (id, count, notHere) => this.deliveries.onResult(peer, id, count, notHere));
      case 'owner': {
        const o = env.owner!;
        this.stats.ownerDeltasIn++;
        this.applyOwner(o.topic, peer, o.count);
        if (o.ackId) link.send({ ownerAck: { id: o.ackId } });
        return;
      }
      case 'ownerAck':
        this.ownerAcks.settle(env.ownerAck!.id, peer, undefined);
        return;
      case 'route': {
        const r = env.route!;
        this.stats.routeUpdatesIn++;
        if (this.homeOf(r.topic) !== peer) return;
        const owners = new Map(r.owners.map((o) => [o.nodeId, o.count]));
        if (this.table.applyFull(r.topic, { owners, home: peer, incarnation: link.peer!.incarnation, seq: r.seq })) {
          // Authoritative only when the home was rebuilt under the same view of the members.
          this.presence.observe(r.topic, owners, r.membersHash !== 0 && r.membersHash === this.view);
        }
        return;
      }
      case 'lookup':
        return this.answerLookup(link, env.lookup!.id, env.lookup!.topics, env.lookup!.membersHash);
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
      case 'streamCall':
        return this.streamCalls.onCall(link, peer, env.streamCall!);
      case 'streamReply':
        return this.streamCalls.onReply(peer, env.streamReply!);
      default:
        this.opts.log.debug({ peer, kind: env.kind }, 'ignoring unknown mesh envelope');
    }
  }

  /** Stops timers and fails what is still in flight. */
  close(): void {
    this.closed = true;
    clearInterval(this.antiEntropy);
    clearTimeout(this.barrierTimer);
    this.linger.close();
    this.presence.close();
    this.deliveries.close();
    this.lookups.close();
    this.ownerAcks.close();
    this.streamCalls.close();
  }
}
