import pRetry, { AbortError } from 'p-retry';
import { LinkRefusedError, RefuseCode } from './link.js';
import type { NodeIdentity, PeerLink } from './link.js';

/** What a dial loop needs from the peer manager. */
export interface DialHost {
  readonly selfId: string;
  /** First retry delay, in ms. */
  readonly retryMinMs: number;
  /** Largest retry delay, in ms. */
  readonly retryMaxMs: number;
  isStopped(): boolean;
  upLinks(): ReadonlyMap<string, PeerLink>;
  /** Resolves when a link with `peerId` is up (true), or after `timeoutMs` (whether one is up then). */
  waitUp(peerId: string, timeoutMs: number): Promise<boolean>;
  /** Opens a link to `address` (not yet registered). */
  dial(address: string): PeerLink;
  /** Registers a link that came up; false if it lost a race and was closed. */
  register(peer: NodeIdentity, link: PeerLink): boolean;
  logRefusal(err: unknown, remote: string): void;
  /**
   * The address has failed to link for `failingMs`: true if the host forgot it (an address only a
   * refused dialer told us about), which ends the loop.
   */
  giveUp(address: string, failingMs: number): boolean;
}

/** Something to wait on until a link is gone. */
interface GoneHandle {
  onGone(cb: () => void): void;
}

/**
 * Dials one address until stopped: up → wait for down → dial again, with exponential back-off and
 * jitter between failures (`p-retry`) and a growing pause when links keep dropping soon after they
 * came up. A peer with a smaller id dials us (design: the smaller id dials), so the loop waits for
 * that link instead, probing now and then so the peer learns our address. A `self` refusal (our own
 * address in the list) ends the loop.
 */
export class DialLoop {
  private readonly abort = new AbortController();
  /** True while the loop waits for the peer to dial (it has the smaller id). */
  passive = false;
  lastError: string | undefined;
  private failingSince: number | undefined;
  private flapMs = 0;
  /** Cuts the current back-off short (see {@link wake}). */
  private backoff = new AbortController();
  /** True between a failed attempt and the next one (the loop is waiting out its back-off). */
  private waiting = false;

  constructor(readonly address: string, public peerId: string | undefined, private readonly host: DialHost) {}

  stop(): void {
    this.abort.abort();
    this.backoff.abort();
  }

  /**
   * The peer just showed it is alive (it dialed us and was refused as the wrong direction): dial
   * now instead of waiting out a back-off of up to `retryMaxMs`, so a restarted node rejoins at
   * once. Does nothing while an attempt is in flight or a link is up.
   */
  wake(): void {
    if (this.waiting) this.backoff.abort();
  }

  async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted && !this.host.isStopped()) {
      try {
        this.backoff = new AbortController();
        const backoff = this.backoff.signal;
        let link: GoneHandle | undefined;
        try {
          link = await pRetry(() => {
            this.waiting = false;
            return this.attempt();
          }, {
            retries: Infinity,
            factor: 2,
            minTimeout: this.host.retryMinMs,
            maxTimeout: this.host.retryMaxMs,
            randomize: true,
            signal: AbortSignal.any([signal, backoff]),
            unref: true,
            onFailedAttempt: () => { this.waiting = true; },
          });
        } catch (err) {
          // Woken during a back-off: start over with a fresh one (and dial at once).
          if (backoff.aborted && !signal.aborted) continue;
          throw err;
        } finally {
          this.waiting = false;
        }
        if (!link) return; // refused as self: nothing to dial here
        const upAt = Date.now();
        await new Promise<void>((resolve) => link.onGone(resolve));
        // A link that keeps dropping soon after it came up must not become a tight reconnect loop.
        this.flapMs = Date.now() - upAt < 5000 ? Math.min(Math.max(this.flapMs * 2, this.host.retryMinMs), this.host.retryMaxMs) : 0;
        if (this.flapMs > 0) await sleep(this.flapMs * (0.5 + Math.random()), signal);
      } catch {
        return; // aborted, or given up
      }
    }
  }

  /** One attempt. Resolves with a handle to wait on, or undefined to stop for good. */
  private async attempt(): Promise<GoneHandle | undefined> {
    const host = this.host;
    // A peer with a smaller id dials us; wait for it, then check again.
    if (this.peerId !== undefined && this.peerId < host.selfId) {
      this.passive = true;
      const existing = host.upLinks().get(this.peerId);
      if (existing) return goneHandle(existing);
      const up = await host.waitUp(this.peerId, host.retryMaxMs * 2);
      const l = host.upLinks().get(this.peerId);
      if (up && l) return goneHandle(l);
      // It has not dialed: probe it, so it learns our address (its list may not have us).
    }
    this.passive = false;
    if (this.peerId !== undefined) {
      const existing = host.upLinks().get(this.peerId);
      if (existing) return goneHandle(existing);
    }
    const link = host.dial(this.address);
    let peer: NodeIdentity;
    try {
      peer = await link.up;
    } catch (err) {
      this.lastError = (err as Error).message;
      this.failingSince ??= Date.now();
      if (host.giveUp(this.address, Date.now() - this.failingSince)) {
        throw new AbortError(`forgetting ${this.address}: unreachable since ${new Date(this.failingSince).toISOString()}`);
      }
      host.logRefusal(err, this.address);
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
    if (!host.register(peer, link)) {
      const other = host.upLinks().get(peer.id);
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

function goneHandle(link: PeerLink): GoneHandle {
  return {
    onGone(cb) {
      if (link.state === 'closed') cb();
      else void link.closed.then(cb);
    },
  };
}
