/**
 * A node's stream layer, assembled: placement, the replicated service and hand-off over one store.
 * The composition root builds it and passes `serve` and `membersChanged` to the mesh as hooks.
 */
import type { Logger } from '../log.js';
import type { StreamCall__Output, StreamReplyBody } from '../mesh/index.js';
import { HandOff } from './handoff.js';
import type { HandOffOptions } from './handoff.js';
import { Placement } from './placement.js';
import { StreamService } from './service.js';
import type { StreamCallsPort } from './service.js';
import { StreamStats } from './stats.js';
import type { StoreTotals, StreamStore } from './types.js';

/** Options of {@link NodeStreams}. */
export interface NodeStreamsOptions {
  readonly selfId: string;
  /** `--replicas`. */
  readonly replicas: number;
  readonly store: StreamStore;
  /** Reaches other nodes; resolved lazily (the mesh is built after this). */
  readonly calls: () => StreamCallsPort;
  readonly log: Logger;
  /** Monotonic ms. */
  readonly monotonic: () => number;
  /** Wall-clock ms (TTL). */
  readonly now: () => number;
  /** Moves the node's message clock past a received id. */
  readonly observe: (id: string) => void;
  readonly onWriteLatency?: (ms: number) => void;
  /** Period of the TTL sweep, ms. Default 60000. */
  readonly sweepMs?: number;
  readonly handoff?: Partial<Omit<HandOffOptions, 'selfId' | 'service' | 'placement' | 'calls' | 'stats' | 'log'>>;
}

/** The stream layer of one node. */
export class NodeStreams {
  readonly stats = new StreamStats();
  readonly placement: Placement;
  readonly service: StreamService;
  readonly handoff: HandOff;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly opts: NodeStreamsOptions) {
    const calls: StreamCallsPort = {
      call: (peer, body) => opts.calls().call(peer, body),
      tell: (peer, body) => opts.calls().tell(peer, body),
    };
    this.placement = new Placement({ selfId: opts.selfId, replicas: opts.replicas, monotonic: opts.monotonic });
    this.service = new StreamService({
      selfId: opts.selfId, store: opts.store, calls, placement: this.placement, stats: this.stats, log: opts.log,
      monotonic: opts.monotonic, observe: opts.observe,
      ...(opts.onWriteLatency && { onWriteLatency: opts.onWriteLatency }),
      onForeignAppend: () => this.handoff.schedule(),
    });
    this.handoff = new HandOff({
      selfId: opts.selfId, service: this.service, placement: this.placement, calls, stats: this.stats, log: opts.log, ...opts.handoff,
    });
    this.sweeper = setInterval(() => {
      opts.store.sweep(opts.now()).catch((err: unknown) => opts.log.warn({ err }, 'stream TTL sweep failed'));
    }, opts.sweepMs ?? 60_000);
    this.sweeper.unref();
  }

  /** The mesh's hook: serves a stream call from a peer. */
  serve(peer: string, call: StreamCall__Output): Promise<StreamReplyBody> {
    return this.service.serve(peer, call);
  }

  /** The mesh's hook: the live members changed; streams whose replicas moved are handed off. */
  membersChanged(members: readonly string[]): void {
    this.placement.membersChanged(members);
    this.handoff.schedule();
  }

  /** Totals for the statistics view. */
  totals(): StoreTotals {
    return this.opts.store.totals();
  }

  /** Stops hand-off and the sweep, then closes the store (flushing the disk store). */
  async close(): Promise<void> {
    this.handoff.close();
    clearInterval(this.sweeper);
    await this.opts.store.close();
  }
}
