/**
 * Hand-off: after a membership change (and periodically, as anti-entropy) this node offers every
 * stream it holds to that stream's other replicas in the current view; each answers which it lacks
 * (its digest differs), and gets those pushed, oldest first, at a bounded rate. A stream this node
 * is no longer a replica of is dropped here once every replica confirmed it, unless an append came
 * in meanwhile (then the next round hands that on too). Pushes are plain idempotent appends, so a
 * repeated or interrupted hand-off never doubles a message.
 */
import type { Logger } from '../log.js';
import type { Placement } from './placement.js';
import type { StreamCallsPort, StreamService } from './service.js';
import type { StreamStats } from './stats.js';
import { toEntryMsg, toSummary } from './wire.js';

/** Options of {@link HandOff}. */
export interface HandOffOptions {
  readonly selfId: string;
  readonly service: StreamService;
  readonly placement: Placement;
  readonly calls: StreamCallsPort;
  readonly stats: StreamStats;
  readonly log: Logger;
  /** Entries pushed per second at most (the rest waits; live traffic shares the links). Default 20000. */
  readonly entriesPerSec?: number;
  /** Entries per pushed append. Default 200. */
  readonly pageSize?: number;
  /** Streams per offer. Default 500. */
  readonly offerSize?: number;
  /** Delay between a membership change and the round it starts (changes come in bursts), ms. Default 500. */
  readonly settleMs?: number;
  /** Period of the anti-entropy round, ms. Default 60000. */
  readonly periodMs?: number;
  /** Retry delay after a round that could not reach every replica, ms. Default 5000. */
  readonly retryMs?: number;
}

/**
 * Runs hand-off rounds, one at a time: `schedule` after membership changes and appends that
 * arrived at a non-replica; a periodic round heals whatever else diverged. Safe to call anytime.
 */
export class HandOff {
  private running = false;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly periodic: NodeJS.Timeout;
  private closed = false;
  private readonly o: Required<Omit<HandOffOptions, 'service' | 'placement' | 'calls' | 'stats' | 'log' | 'selfId'>>;

  constructor(private readonly opts: HandOffOptions) {
    this.o = { entriesPerSec: 20_000, pageSize: 200, offerSize: 500, settleMs: 500, periodMs: 60_000, retryMs: 5000, ...opts };
    this.periodic = setInterval(() => this.schedule(0), this.o.periodMs);
    this.periodic.unref();
  }

  /** Starts a round after `delayMs` (default: the settle delay), unless one is already due sooner. */
  schedule(delayMs = this.o.settleMs): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.round();
    }, delayMs);
    this.timer.unref();
  }

  /** A round in progress or due. */
  get busy(): boolean {
    return this.running || this.timer !== undefined;
  }

  private async round(): Promise<void> {
    if (this.closed || this.running) return;
    this.running = true;
    let complete = true;
    try {
      complete = await this.handOffAll();
    } catch (err) {
      complete = false;
      this.opts.log.warn({ err }, 'stream hand-off round failed');
    } finally {
      this.running = false;
      this.opts.stats.handoffsInProgress = 0;
    }
    if (this.again) {
      this.again = false;
      this.schedule();
    } else if (!complete) {
      this.schedule(this.o.retryMs);
    }
  }

  /** One round over every stream held here; true when every replica was reached. */
  private async handOffAll(): Promise<boolean> {
    const { service, placement, selfId } = this.opts;
    const store = service.store;
    // Appends called before this point are in the store (so the pushes below read them); any
    // called later change `touched`, which keeps their stream from being dropped this round.
    await service.settled();
    // Targets per stream, and streams per target.
    const byTarget = new Map<string, string[]>();
    const pendingTargets = new Map<string, Set<string>>();
    const touchedAt = new Map<string, number>();
    for (const stream of store.streams()) {
      const targets = placement.writeSet(stream).filter((n) => n !== selfId);
      pendingTargets.set(stream, new Set(targets));
      touchedAt.set(stream, service.touched(stream));
      for (const t of targets) {
        let list = byTarget.get(t);
        if (!list) byTarget.set(t, list = []);
        list.push(stream);
      }
    }
    let complete = true;
    for (const [target, streams] of byTarget) {
      for (let i = 0; i < streams.length && !this.closed; i += this.o.offerSize) {
        const chunk = streams.slice(i, i + this.o.offerSize);
        try {
          const reply = await this.opts.calls.call(target, { offer: { streams: chunk.map((s) => toSummary(s, store.digest(s))) } });
          const wanted = new Set(reply.wanted?.streams ?? []);
          for (const s of chunk) {
            if (wanted.has(s)) await this.push(target, s);
            pendingTargets.get(s)!.delete(target);
          }
        } catch (err) {
          complete = false;
          this.opts.log.debug({ err, target }, 'hand-off to a replica failed; retrying later');
          break;
        }
      }
    }
    // Drop what moved away entirely, unless something came in meanwhile.
    for (const [stream, left] of pendingTargets) {
      if (left.size > 0 || placement.isReplica(stream) || this.closed) continue;
      if (service.touched(stream) !== touchedAt.get(stream)) {
        complete = false;
        continue;
      }
      await store.drop(stream);
      service.forget(stream);
    }
    return complete;
  }

  /** Pushes one stream to one replica, oldest first, in pages, at the bounded rate. */
  private async push(target: string, stream: string): Promise<void> {
    const { service, stats } = this.opts;
    stats.handoffsInProgress++;
    try {
      let after: string | undefined;
      for (;;) {
        const page = await service.store.range(stream, { ...(after && { after }), limit: this.o.pageSize, from: 'oldest' });
        if (page.entries.length === 0) break;
        // At most ~1 MiB per append: a peer-link batch is at most 4 MiB.
        let n = 0;
        for (let bytes = 0; n < page.entries.length; n++) {
          bytes += page.entries[n]!.frame.length + 64;
          if (n > 0 && bytes > 1024 * 1024) break;
        }
        const entries = page.entries.slice(0, n);
        const more = page.more || n < page.entries.length;
        await this.opts.calls.call(target, {
          append: { entries: entries.map((entry) => toEntryMsg({ stream, entry })), handoff: true, last: !more },
        });
        stats.handoffEntries += entries.length;
        after = entries[entries.length - 1]!.id;
        await pause((entries.length / this.o.entriesPerSec) * 1000);
        if (!more || this.closed) break;
      }
      stats.handoffStreams++;
    } finally {
      stats.handoffsInProgress--;
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.periodic);
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)).unref());
}
