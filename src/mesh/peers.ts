import type { Discovery, PeerTarget } from '../discovery/types.js';
import type { Logger } from '../log.js';
import { DialLoop } from './dial-loop.js';
import type { DialHost } from './dial-loop.js';
import { LinkRefusedError, PeerLink, RefuseCode } from './link.js';
import type { LinkOptions, NodeIdentity } from './link.js';
import type { MeshTransport, LinkStream } from './transport.js';
import { ADDRESS_PATTERN } from './validate.js';
import type { Envelope__Output } from './wire.js';

/** Options of the peer manager. */
export interface PeerManagerOptions {
  readonly self: NodeIdentity;
  readonly secret: string | undefined;
  readonly transport: MeshTransport;
  readonly discovery: Discovery;
  readonly link: LinkOptions;
  readonly log: Logger;
  /**
   * The registry of up links (peer id → link) this manager owns and writes; pass the same map, read
   * only, to the router, so there is one link map in the node. Default: a new map.
   */
  readonly links?: Map<string, PeerLink>;
  /** Called with the size of every batch a link writes (metrics). */
  readonly onBatchSent?: (size: number) => void;
  /** First retry delay of a dial loop, in ms. Default 100. */
  readonly retryMinMs?: number;
  /** Largest retry delay, in ms. Default 5000. */
  readonly retryMaxMs?: number;
  /**
   * Peers authenticate: a mesh secret or mesh TLS is configured. Only then does this node dial
   * addresses that peers give it (their `Members` lists, and the advertised address of a dialer
   * it refuses as `wrong_direction`): on an open mesh anyone is a peer, and must not be able to
   * make this node dial anything. Default: true when `secret` is set.
   */
  readonly authenticated?: boolean;
}

/** What the peer manager reports. */
export interface PeerEvents {
  /** A peer's link completed its handshake. At most one link per peer id is up at a time. */
  onUp(link: PeerLink): void;
  /** That link went down. */
  onDown(link: PeerLink, err?: Error): void;
  onEnvelope(link: PeerLink, env: Envelope__Output): void;
}

/** A peer as the admin API shows it. */
export interface PeerView {
  readonly id: string | undefined;
  readonly address: string;
  readonly incarnation: string | undefined;
  readonly state: 'up' | 'connecting' | 'passive';
  readonly role: 'dialer' | 'acceptor' | undefined;
  readonly queueDepth: number;
  readonly lastError: string | undefined;
  readonly link: PeerLink | undefined;
}

/**
 * Keeps exactly one link per live peer. The node with the smaller id dials: every node dials the
 * targets discovery names (retrying forever with exponential back-off and jitter, `DialLoop`). An
 * acceptor that sees a dialer with a larger id refuses it (`wrong_direction`) and, on an
 * authenticated mesh, dials it back at the address the dialer advertised; on an open mesh it takes
 * the link as it is instead (unless it dials that peer itself), so an unauthenticated caller never
 * makes it dial anything. On an authenticated mesh, peers' `Members` lists close a mesh built from
 * partial static lists; a learned address is dialed while a live peer announces it (or a link to it
 * is up) and forgotten once none does. A refused `self` (our own address in the list) stops that loop.
 */
export class PeerManager implements DialHost {
  /** The one registry of up links: written only here, read by the router (`options.links`). */
  private readonly links: Map<string, PeerLink>;
  private readonly loops = new Map<string, DialLoop>();
  /** Addresses dialed because peers announced them (authenticated mesh only). */
  private readonly learned = new Set<string>();
  /** What each up link last announced in `Members` (authenticated mesh only). */
  private readonly announced = new Map<PeerLink, ReadonlySet<string>>();
  /** Advertised addresses of dialers refused as `wrong_direction`, to dial back (authenticated mesh only). */
  private readonly dialBack = new Set<string>();
  private readonly upWaiters = new Map<string, Array<() => void>>();
  private discoveryTargets: readonly PeerTarget[] = [];
  private stopped = false;
  private unsubscribe: (() => void) | undefined;

  private readonly authenticated: boolean;

  constructor(private readonly opts: PeerManagerOptions, private readonly events: PeerEvents) {
    this.links = opts.links ?? new Map();
    this.authenticated = opts.authenticated ?? !!opts.secret;
  }

  /** Starts dialing discovery's targets and follows its changes. */
  start(): void {
    this.unsubscribe = this.opts.discovery.onChange((targets) => this.setTargets(targets));
    this.setTargets(this.opts.discovery.targets());
  }

  /** Handles an inbound stream (from the transport's listener). */
  accept(stream: LinkStream): void {
    if (this.stopped) {
      stream.close();
      return;
    }
    const link = new PeerLink(stream, 'acceptor', this.opts.self, this.opts.secret, this.opts.link, {
      admit: (peer) => this.admit(peer),
      onEnvelope: (l, env) => this.onEnvelope(l, env),
      onDown: (l, err) => this.down(l, err),
      ...(this.opts.onBatchSent && { onBatchSent: this.opts.onBatchSent }),
    });
    link.up.then((peer) => this.register(peer, link), (err: unknown) => this.logRefusal(err, stream.remote));
  }

  /** Established links by peer id. */
  upLinks(): ReadonlyMap<string, PeerLink> {
    return this.links;
  }

  /** Every peer known by address or link, for the admin API. */
  view(): PeerView[] {
    const out: PeerView[] = [];
    const seen = new Set<string>();
    for (const link of this.links.values()) {
      seen.add(link.peer!.advertise);
      out.push({ id: link.peer!.id, address: link.peer!.advertise, incarnation: link.peer!.incarnation, state: 'up', role: link.role, queueDepth: link.queueDepth, lastError: link.stats.lastError, link });
    }
    for (const [address, loop] of this.loops) {
      if (seen.has(address)) continue;
      out.push({ id: loop.peerId, address, incarnation: undefined, state: loop.passive ? 'passive' : 'connecting', role: undefined, queueDepth: 0, lastError: loop.lastError, link: undefined });
    }
    return out.sort((a, b) => a.address.localeCompare(b.address));
  }

  /** Says goodbye on every link and stops dialing. */
  stop(reason: string): void {
    this.stopped = true;
    this.unsubscribe?.();
    for (const loop of this.loops.values()) loop.stop();
    this.loops.clear();
    for (const link of [...this.links.values()]) link.close(reason);
  }

  private setTargets(targets: readonly PeerTarget[]): void {
    this.discoveryTargets = targets;
    this.syncLoops();
  }

  private syncLoops(): void {
    if (this.stopped) return;
    const wanted = new Map<string, string | undefined>();
    for (const t of this.discoveryTargets) {
      if (t.address === this.opts.self.advertise || t.id === this.opts.self.id) continue;
      wanted.set(t.address, t.id);
    }
    for (const a of this.learned) if (!wanted.has(a)) wanted.set(a, undefined);
    for (const a of this.dialBack) if (!wanted.has(a)) wanted.set(a, undefined);
    for (const [address, loop] of this.loops) {
      if (!wanted.has(address)) {
        loop.stop();
        this.loops.delete(address);
      }
    }
    for (const [address, id] of wanted) {
      if (this.loops.has(address)) continue;
      const loop = new DialLoop(address, id, this);
      this.loops.set(address, loop);
      void loop.run();
    }
  }

  /** Acceptor's decision about a dialer. */
  private admit(peer: NodeIdentity): { code: RefuseCode; message: string } | undefined {
    if (this.stopped) return { code: RefuseCode.Draining, message: 'node is shutting down' };
    if (peer.id === this.opts.self.id) return { code: RefuseCode.Self, message: `that is this node (${peer.id})` };
    if (peer.id > this.opts.self.id) {
      // A peer we dial is alive again (it restarted and dialed us first): dial it now.
      this.loops.get(peer.advertise)?.wake();
      if (this.authenticated) {
        // The smaller id dials; we will dial the peer back where it says it listens.
        if (ADDRESS_PATTERN.test(peer.advertise) && peer.advertise !== this.opts.self.advertise && !this.loops.has(peer.advertise)
          && this.learned.size + this.dialBack.size < MAX_LEARNED) {
          this.dialBack.add(peer.advertise);
          this.syncLoops();
        }
        return { code: RefuseCode.WrongDirection, message: `${this.opts.self.id} dials ${peer.id}` };
      }
      // Open mesh: never dial where a caller says. Take its link the other way round, unless we
      // dial that peer ourselves (then this would become a second link).
      if (this.dialsPeer(peer)) return { code: RefuseCode.WrongDirection, message: `${this.opts.self.id} dials ${peer.id}` };
    }
    const existing = this.links.get(peer.id);
    if (existing && existing.peer!.incarnation === peer.incarnation) {
      return { code: RefuseCode.Duplicate, message: `a link with ${peer.id} is already up` };
    }
    // A new incarnation replaces a stale link of the old one (the old process died).
    if (existing) existing.close('replaced by a new incarnation');
    return undefined;
  }

  /** True when a dial loop of ours targets that peer (by id or by its advertised address). */
  private dialsPeer(peer: NodeIdentity): boolean {
    if (this.loops.has(peer.advertise)) return true;
    for (const loop of this.loops.values()) if (loop.peerId === peer.id) return true;
    return false;
  }

  private onEnvelope(link: PeerLink, env: Envelope__Output): void {
    if (env.kind !== 'members') {
      this.events.onEnvelope(link, env);
      return;
    }
    // On an open mesh anyone is a peer: what it announces is not dialed.
    if (!this.authenticated || this.links.get(link.peer!.id) !== link) return;
    // Bounded: a peer cannot make this node dial more addresses than a mesh plausibly has.
    const set = new Set<string>();
    for (const a of env.members!.addresses.slice(0, MAX_LEARNED)) {
      if (a !== this.opts.self.advertise && ADDRESS_PATTERN.test(a)) set.add(a);
    }
    this.announced.set(link, set);
    const linked = this.linkedAddresses();
    for (const a of set) {
      if (this.learned.size + this.dialBack.size >= MAX_LEARNED) break;
      if (!linked.has(a)) this.learned.add(a);
    }
    this.pruneLearned();
    this.syncLoops();
  }

  private linkedAddresses(): Set<string> {
    const out = new Set<string>();
    for (const l of this.links.values()) out.add(l.peer!.advertise);
    return out;
  }

  /** Forgets learned addresses that no live peer announces and no up link has. */
  private pruneLearned(): void {
    if (this.learned.size === 0) return;
    const keep = this.linkedAddresses();
    for (const set of this.announced.values()) for (const a of set) keep.add(a);
    for (const a of this.learned) if (!keep.has(a)) this.learned.delete(a);
  }

  /** Tells every peer which peers this node has links with. */
  private announceMembers(): void {
    const addresses = [...this.links.values()].map((l) => l.peer!.advertise).filter((a) => a !== '');
    for (const link of this.links.values()) link.send({ members: { addresses } });
  }

  /** Addresses this node dials because peers told it (for the admin API and tests). */
  learnedAddresses(): string[] {
    return [...new Set([...this.learned, ...this.dialBack])].sort();
  }

  /** Forgets a dial-back address that has failed to link for `DIAL_BACK_TTL_MS` (a node that is gone). */
  giveUp(address: string, failingMs: number): boolean {
    if (failingMs <= DIAL_BACK_TTL_MS || !this.dialBack.has(address) || this.learned.has(address)) return false;
    if (this.discoveryTargets.some((t) => t.address === address)) return false;
    this.dialBack.delete(address);
    this.syncLoops();
    return true;
  }

  /** Dials `address` once; resolves when the link is up. */
  dial(address: string): PeerLink {
    const link = new PeerLink(this.opts.transport.dial(address), 'dialer', this.opts.self, this.opts.secret, this.opts.link, {
      onEnvelope: (l, env) => this.onEnvelope(l, env),
      onDown: (l, err) => this.down(l, err),
      ...(this.opts.onBatchSent && { onBatchSent: this.opts.onBatchSent }),
    });
    return link;
  }

  /** Called by a dial loop when its link came up. Returns false if it lost a race and was closed. */
  register(peer: NodeIdentity, link: PeerLink): boolean {
    if (this.stopped) {
      link.close('shutting down');
      return false;
    }
    const existing = this.links.get(peer.id);
    if (existing && existing !== link) {
      if (existing.peer!.incarnation === peer.incarnation) {
        link.close('duplicate link');
        return false;
      }
      existing.close('replaced by a new incarnation');
    }
    this.links.set(peer.id, link);
    // A dialed-back address that linked is now kept like an announced one: while linked or announced.
    if (this.dialBack.delete(peer.advertise)) this.learned.add(peer.advertise);
    this.opts.log.info({ peer: peer.id, address: peer.advertise, incarnation: peer.incarnation, role: link.role, publicUrl: peer.publicUrl }, 'peer link up');
    if (peer.publicUrlRefused) this.opts.log.debug({ peer: peer.id, reason: peer.publicUrlRefused }, 'peer sent an invalid public_url: listing its fallback URL');
    this.events.onUp(link);
    this.announceMembers();
    const w = this.upWaiters.get(peer.id);
    if (w) {
      this.upWaiters.delete(peer.id);
      for (const f of w) f();
    }
    return true;
  }

  /** Resolves when a link with `peerId` is up, or after `timeoutMs`. */
  waitUp(peerId: string, timeoutMs: number): Promise<boolean> {
    if (this.links.has(peerId)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const list = this.upWaiters.get(peerId) ?? [];
      const waiter = (): void => {
        clearTimeout(t);
        resolve(true);
      };
      const t = setTimeout(() => {
        // Forget this waiter, so a peer that stays down does not collect them.
        const left = (this.upWaiters.get(peerId) ?? []).filter((w) => w !== waiter);
        if (left.length) this.upWaiters.set(peerId, left);
        else this.upWaiters.delete(peerId);
        resolve(this.links.has(peerId));
      }, timeoutMs);
      t.unref();
      list.push(waiter);
      this.upWaiters.set(peerId, list);
    });
  }

  private down(link: PeerLink, err?: Error): void {
    const id = link.peer!.id;
    if (this.links.get(id) !== link) return;
    this.links.delete(id);
    this.announced.delete(link);
    this.opts.log.warn({ peer: id, err: err?.message ?? link.stats.lastError }, 'peer link down');
    this.events.onDown(link, err);
    this.announceMembers();
    this.pruneLearned();
    this.syncLoops();
  }

  logRefusal(err: unknown, remote: string): void {
    if (this.stopped) return;
    if (err instanceof LinkRefusedError) {
      const level = err.code === RefuseCode.BadSecret || err.code === RefuseCode.BadVersion ? 'error' : 'debug';
      this.opts.log[level]({ remote, code: err.code, peer: err.peer?.id }, `mesh link refused: ${err.message}`);
    } else {
      this.opts.log.debug({ remote, err: (err as Error).message }, 'mesh link failed');
    }
  }

  get retryMinMs(): number {
    return this.opts.retryMinMs ?? 100;
  }

  get retryMaxMs(): number {
    return this.opts.retryMaxMs ?? 5000;
  }

  get selfId(): string {
    return this.opts.self.id;
  }

  isStopped(): boolean {
    return this.stopped;
  }
}

/** Max addresses learned from peers (not from discovery). */
const MAX_LEARNED = 1000;

/** A dial-back address (a refused dialer's) that has not linked for this long is forgotten, in ms. */
const DIAL_BACK_TTL_MS = 60_000;
