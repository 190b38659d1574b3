import pRetry, { AbortError } from 'p-retry';
import type { Discovery, PeerTarget } from '../discovery/types.js';
import type { Logger } from '../log.js';
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
  /** First retry delay of a dial loop, in ms. Default 100. */
  readonly retryMinMs?: number;
  /** Largest retry delay, in ms. Default 5000. */
  readonly retryMaxMs?: number;
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
 * targets discovery names (retrying forever with exponential back-off and jitter); an acceptor that
 * sees a dialer with a larger id refuses (`wrong_direction`) and dials it back at the address the
 * dialer advertised. A refused `self` (our own address in the list) stops that dial loop.
 */
export class PeerManager {
  private readonly links = new Map<string, PeerLink>();
  private readonly loops = new Map<string, DialLoop>();
  private readonly learned = new Set<string>();
  private readonly upWaiters = new Map<string, Array<() => void>>();
  private discoveryTargets: readonly PeerTarget[] = [];
  private stopped = false;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly opts: PeerManagerOptions, private readonly events: PeerEvents) {}

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
      // The smaller id dials; we will dial the peer back where it says it listens.
      if (ADDRESS_PATTERN.test(peer.advertise) && !this.learned.has(peer.advertise)) {
        this.learned.add(peer.advertise);
        this.syncLoops();
      }
      return { code: RefuseCode.WrongDirection, message: `${this.opts.self.id} dials ${peer.id}` };
    }
    const existing = this.links.get(peer.id);
    if (existing && existing.peer!.incarnation === peer.incarnation) {
      return { code: RefuseCode.Duplicate, message: `a link with ${peer.id} is already up` };
    }
    // A new incarnation replaces a stale link of the old one (the old process died).
    if (existing) existing.close('replaced by a new incarnation');
    return undefined;
  }

  private onEnvelope(link: PeerLink, env: Envelope__Output): void {
    if (env.kind !== 'members') {
      this.events.onEnvelope(link, env);
      return;
    }
    let added = false;
    // Bounded: a peer cannot make this node dial more addresses than a mesh plausibly has.
    for (const a of env.members!.addresses.slice(0, MAX_LEARNED)) {
      if (this.learned.size >= MAX_LEARNED) break;
      if (a === this.opts.self.advertise || this.learned.has(a) || !ADDRESS_PATTERN.test(a)) continue;
      if ([...this.links.values()].some((l) => l.peer!.advertise === a)) continue;
      this.learned.add(a);
      added = true;
    }
    if (added) this.syncLoops();
  }

  /** Tells every peer which peers this node has links with. */
  private announceMembers(): void {
    const addresses = [...this.links.values()].map((l) => l.peer!.advertise).filter((a) => a !== '');
    for (const link of this.links.values()) link.send({ members: { addresses } });
  }

  /** Forgets a learned address that has not answered for a long time (a node that is gone). */
  forget(address: string): void {
    if (!this.learned.delete(address)) return;
    this.syncLoops();
  }

  isLearnedOnly(address: string): boolean {
    return this.learned.has(address) && !this.discoveryTargets.some((t) => t.address === address);
  }

  /** Dials `address` once; resolves when the link is up. */
  dial(address: string): PeerLink {
    const link = new PeerLink(this.opts.transport.dial(address), 'dialer', this.opts.self, this.opts.secret, this.opts.link, {
      onEnvelope: (l, env) => this.onEnvelope(l, env),
      onDown: (l, err) => this.down(l, err),
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
    this.opts.log.info({ peer: peer.id, address: peer.advertise, incarnation: peer.incarnation, role: link.role }, 'peer link up');
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
    this.opts.log.warn({ peer: id, err: err?.message ?? link.stats.lastError }, 'peer link down');
    this.events.onDown(link, err);
    this.announceMembers();
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

/** A learned address (not from discovery) unreachable this long is forgotten, in ms. */
const LEARNED_TTL_MS = 60_000;

/** Dials one address forever: up → wait for down → dial again, with back-off between failures. */
class DialLoop {
  private readonly abort = new AbortController();
  passive = false;
  lastError: string | undefined;
  private failingSince: number | undefined;
  private flapMs = 0;

  constructor(readonly address: string, public peerId: string | undefined, private readonly pm: PeerManager) {}

  stop(): void {
    this.abort.abort();
  }

  async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted && !this.pm.isStopped()) {
      try {
        const link = await pRetry(() => this.attempt(), {
          retries: Infinity,
          factor: 2,
          minTimeout: this.pm.retryMinMs,
          maxTimeout: this.pm.retryMaxMs,
          randomize: true,
          signal,
          unref: true,
        });
        if (!link) return; // refused as self: nothing to dial here
        const upAt = Date.now();
        await new Promise<void>((resolve) => link.onGone(resolve));
        // A link that keeps dropping soon after it came up must not become a tight reconnect loop.
        this.flapMs = Date.now() - upAt < 5000 ? Math.min(Math.max(this.flapMs * 2, this.pm.retryMinMs), this.pm.retryMaxMs) : 0;
        if (this.flapMs > 0) await sleep(this.flapMs * (0.5 + Math.random()), signal);
      } catch {
        return; // aborted
      }
    }
  }

  /** One attempt. Resolves with a handle to wait on, or undefined to stop for good. */
  private async attempt(): Promise<{ onGone(cb: () => void): void } | undefined> {
    const selfId = this.pm.selfId;
    // A peer with a smaller id dials us; wait for it, then check again.
    if (this.peerId !== undefined && this.peerId < selfId) {
      this.passive = true;
      const existing = this.pm.upLinks().get(this.peerId);
      if (existing) return goneHandle(existing);
      const up = await this.pm.waitUp(this.peerId, this.pm.retryMaxMs * 2);
      const l = this.pm.upLinks().get(this.peerId);
      if (up && l) return goneHandle(l);
      // It has not dialed: probe it, so it learns our address (its list may not have us).
    }
    this.passive = false;
    if (this.peerId !== undefined) {
      const existing = this.pm.upLinks().get(this.peerId);
      if (existing) return goneHandle(existing);
    }
    const link = this.pm.dial(this.address);
    let peer: NodeIdentity;
    try {
      peer = await link.up;
    } catch (err) {
      this.lastError = (err as Error).message;
      this.failingSince ??= Date.now();
      if (Date.now() - this.failingSince > LEARNED_TTL_MS && this.pm.isLearnedOnly(this.address)) {
        this.pm.forget(this.address);
        throw new AbortError(`forgetting ${this.address}: unreachable for ${LEARNED_TTL_MS} ms`);
      }
      this.pm.logRefusal(err, this.address);
      if (err instanceof LinkRefusedError) {
        if (err.code === RefuseCode.Self) throw new AbortError(err.message);
        if (err.peerId) this.peerId = err.peerId;
        if (err.code === RefuseCode.WrongDirection || err.code === RefuseCode.Duplicate) {
          // The peer dials us (or already has): the next attempt waits for that link.
          this.passive = true;
        }
      }
      throw err;
    }
    this.peerId = peer.id;
    this.lastError = undefined;
    this.failingSince = undefined;
    if (!this.pm.register(peer, link)) {
      const other = this.pm.upLinks().get(peer.id);
      if (other) return goneHandle(other);
      throw new Error('link lost a race');
    }
    return goneHandle(link);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref();
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

function goneHandle(link: PeerLink): { onGone(cb: () => void): void } {
  return {
    onGone(cb) {
      if (link.state === 'closed') cb();
      else void link.closed.then(cb);
    },
  };
}
