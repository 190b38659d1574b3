/**
 * Drain, graceful stop and kill of a running node (design.md "Shutdown"): the order in which its
 * parts are told, in one place.
 */
import type { HealthImplementation } from 'grpc-health-check';
import { setHealth } from './admin/index.js';
import type { Discovery } from './discovery/index.js';
import type { Gateway } from './gateway/index.js';
import type { Logger } from './log.js';
import type { MeshRouter, MeshTransport, PeerManager } from './mesh/index.js';
import { CloseCode } from './protocol/index.js';

/** The parts a node's lifecycle acts on. */
export interface LifecycleParts {
  readonly log: Logger;
  readonly health: HealthImplementation;
  readonly gateway: Gateway;
  readonly router: MeshRouter;
  readonly discovery: Discovery;
  readonly peers: PeerManager;
  readonly transport: MeshTransport;
  /** Open client connections now. */
  connections(): number;
  /** The HTTP and admin listeners. */
  readonly listeners: ReadonlyArray<{ close(): Promise<void> }>;
  /** Closed after everything else (the stream store, so nothing writes to it any more). */
  readonly closeLast?: ReadonlyArray<() => Promise<void>>;
}

/** What a drain did. */
export interface DrainResult {
  readonly closed: number;
  readonly deregistered: boolean;
}

/** Drains and stops one node. Every method is idempotent and safe to call concurrently. */
export class NodeLifecycle {
  private drained: Promise<DrainResult> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly p: LifecycleParts) {}

  /** True from the start of a drain (or stop) on. */
  get draining(): boolean {
    return this.drained !== undefined;
  }

  /**
   * Stops accepting clients, goes NOT_SERVING, deregisters from discovery and closes every client
   * with 1012 (reconnect elsewhere); users whose last connection closes linger meanwhile (see
   * `MeshRouter.startDrain`). The node keeps serving peers.
   */
  drain(): Promise<DrainResult> {
    this.drained ??= (async () => {
      const { log, gateway, router, discovery } = this.p;
      setHealth(this.p.health, 'NOT_SERVING');
      const closed = this.p.connections();
      log.info({ connections: closed }, 'draining: deregistering and asking clients to reconnect elsewhere');
      gateway.stopAccepting();
      // Users whose clients reconnect elsewhere must not look offline meanwhile.
      router.startDrain();
      const [deregistered] = await Promise.all([
        discovery.deregister().then(() => true, (err: unknown) => {
          log.warn({ err }, 'deregistration failed');
          return false;
        }),
        gateway.closeAll(CloseCode.ServiceRestart, 'service restart'),
      ]);
      return { closed, deregistered };
    })();
    return this.drained;
  }

  /** Graceful shutdown: drain, let clients move and ownership removals leave, goodbye, close. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown(true);
    return this.stopping;
  }

  /** Stops at once, without goodbyes (a crash, for tests). */
  kill(): Promise<void> {
    this.stopping ??= this.shutdown(false);
    return this.stopping;
  }

  private async shutdown(graceful: boolean): Promise<void> {
    const { log, gateway, router, discovery, peers, transport, listeners } = this.p;
    if (graceful) {
      await this.drain();
      // Give the closed clients time to reconnect elsewhere before this node's users are released.
      await router.lingerDone();
      // Let the owner deltas of the closed clients leave before saying goodbye.
      await new Promise((r) => setImmediate(r));
    }
    router.close();
    peers.stop(graceful ? 'shutdown' : 'killed');
    await gateway.close(CloseCode.ServiceRestart, 'service restart');
    await Promise.all([discovery.stop().catch(() => undefined), transport.close(), ...listeners.map((l) => l.close())]);
    for (const close of this.p.closeLast ?? []) {
      await close().catch((err: unknown) => log.error({ err }, 'closing failed'));
    }
    log.info('stopped');
  }
}
