import type { Topic } from '../core/index.js';
import { digestEquals, ownerDigest } from '../routing/index.js';
import type { OwnerDirectory, RouteEntry } from '../routing/index.js';
import type { PeerLink } from './link.js';
import type { MeshStats } from './stats.js';

/** Max topics one owner's snapshot may hold (10 million: far above one node's connections). */
export const MAX_SNAPSHOT_TOPICS = 10_000_000;

/** What resynchronisation needs from the router. */
export interface ResyncHost {
  readonly selfId: string;
  homeOf(topic: Topic): string;
  links(): ReadonlyMap<string, PeerLink>;
  /** This node's own topics with their local connection counts. */
  localTopics(): Iterable<[Topic, number]>;
  readonly directory: OwnerDirectory;
  /** Publishes a changed complete owner set of a topic homed here. */
  broadcast(topic: Topic, entry: RouteEntry): void;
  readonly stats: MeshStats;
  /** Monotonic ms. */
  monotonic(): number;
  /** Every live peer has re-sent its topics under the current view of the members. */
  onSettled(): void;
}

/** Options of `Resync`. */
export interface ResyncOptions {
  /** Topics per snapshot chunk. */
  readonly snapshotChunk: number;
  /** Longest a home answers tentatively after a membership change, in ms. */
  readonly barrierTimeoutMs: number;
}

/**
 * Keeps homes' directories equal to the owners' truth. Owners re-send the complete list of their
 * topics homed at each peer (a snapshot, tagged with their view of the members) on every membership
 * change and whenever a home's digest disagrees; a home answers tentatively until it holds a snapshot
 * from every live peer made under its own view of the members (bounded by `barrierTimeoutMs`).
 */
export class Resync {
  private readonly inbound = new Map<string, Map<Topic, number>>();
  private readonly awaiting = new Set<string>();
  /** Per peer: the members hash of the last snapshot it completed. */
  private readonly views = new Map<string, number>();
  private membersHash = 0;
  private barrierUntil = 0;

  constructor(private readonly host: ResyncHost, private readonly opts: ResyncOptions) {}

  /**
   * True while this node's answers as a home may miss owners that have not re-sent yet: some live
   * peer has not completed a snapshot made under this node's current view of the members. There
   * is deliberately no time limit: a home that has not heard from every owner never answers
   * "nobody" as if it were sure (the barrier timeout only releases held-back positive sets).
   */
  tentative(): boolean {
    return this.awaiting.size > 0;
  }

  /** The view of the members this node's snapshots are tagged with. */
  get view(): number {
    return this.membersHash;
  }

  /** True when the barrier timeout has passed without every owner re-sending. */
  overdue(): boolean {
    return this.awaiting.size > 0 && this.host.monotonic() >= this.barrierUntil;
  }

  /** The live members changed (to the view `membersHash`): re-send everything, reset the barrier. */
  membershipChanged(membersHash: number): void {
    this.membersHash = membersHash;
    this.awaiting.clear();
    for (const id of this.host.links().keys()) {
      if (this.views.get(id) !== membersHash) this.awaiting.add(id);
    }
    this.barrierUntil = this.host.monotonic() + this.opts.barrierTimeoutMs;
    const perHome = new Map<string, Array<[Topic, number]>>();
    for (const id of this.host.links().keys()) perHome.set(id, []);
    const mine: Array<[Topic, number]> = [];
    for (const [topic, count] of this.host.localTopics()) {
      const home = this.host.homeOf(topic);
      if (home === this.host.selfId) mine.push([topic, count]);
      else perHome.get(home)?.push([topic, count]);
    }
    for (const change of this.host.directory.syncNode(this.host.selfId, mine)) this.host.broadcast(change.topic, change.entry);
    for (const [id, topics] of perHome) this.send(this.host.links().get(id)!, topics);
  }

  /** A peer's link went down. */
  peerDown(peer: string): void {
    this.inbound.delete(peer);
    this.awaiting.delete(peer);
    this.views.delete(peer);
  }

  /** One chunk of a peer's snapshot. */
  onSnapshot(link: PeerLink, topics: ReadonlyArray<{ topic: string; count: number }>, first: boolean, done: boolean, view: number): void {
    const peer = link.peer!.id;
    let acc = this.inbound.get(peer);
    if (first || !acc) {
      acc = new Map();
      this.inbound.set(peer, acc);
    }
    for (const t of topics) if (t.count > 0) acc.set(t.topic, t.count);
    if (acc.size > MAX_SNAPSHOT_TOPICS) {
      link.close(`snapshot over ${MAX_SNAPSHOT_TOPICS} topics`);
      return;
    }
    if (!done) return;
    this.inbound.delete(peer);
    this.host.stats.snapshotsIn++;
    this.views.set(peer, view);
    // Made under another view of the members: the peer now sends the changes of some topics that
    // are homed here in our view to another node, so what we hold for it may go stale. Not
    // authoritative until it re-sends under our view (it does as soon as our views agree). Marked
    // before the snapshot is applied, so the changes it makes are held back, not sent as firm.
    const sameView = view === this.membersHash;
    if (!sameView) this.awaiting.add(peer);
    for (const change of this.host.directory.syncNode(peer, acc)) this.host.broadcast(change.topic, change.entry);
    if (!sameView) return;
    if (this.awaiting.delete(peer) && this.awaiting.size === 0) this.host.onSettled();
  }

  /** Anti-entropy: tells each home a digest of our topics homed there. */
  sendDigests(): void {
    for (const [id, held] of this.heldPerHome()) {
      const d = ownerDigest(held);
      this.host.stats.digestsOut++;
      this.host.links().get(id)!.send({ digest: { topics: d.topics, hash: d.hash } });
    }
  }

  /** As a home: compares an owner's digest with what the directory holds of it. */
  onDigest(link: PeerLink, topics: number, hash: number): void {
    const mine = this.host.directory.digest(link.peer!.id);
    if (digestEquals(mine, { topics, hash })) return;
    this.host.stats.digestMismatches++;
    link.send({ digestReply: { match: false } });
  }

  /** As an owner: the home disagreed; send it a full snapshot. */
  onDigestMismatch(link: PeerLink): void {
    this.send(link, this.heldPerHome().get(link.peer!.id) ?? []);
  }

  private heldPerHome(): Map<string, Array<[Topic, number]>> {
    const perHome = new Map<string, Array<[Topic, number]>>();
    for (const id of this.host.links().keys()) perHome.set(id, []);
    for (const [topic, count] of this.host.localTopics()) perHome.get(this.host.homeOf(topic))?.push([topic, count]);
    return perHome;
  }

  private send(link: PeerLink, topics: ReadonlyArray<[Topic, number]>): void {
    this.host.stats.snapshotsOut++;
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
}
