/**
 * The composition root: reads a resolved config, builds the real parts and wires them. The only
 * place that knows every component.
 */
import { randomBytes } from 'node:crypto';
import { createAuthenticator } from './auth/index.js';
import { resolveNodeConfig } from './config/index.js';
import type { NodeConfig, NodeConfigInput } from './config/index.js';
import { LocalRouter } from './core/index.js';
import type { Router } from './core/index.js';
import { Gateway, GatewayStats } from './gateway/index.js';
import { startHttpServer } from './http/index.js';
import { createLogger } from './log.js';
import type { Logger } from './log.js';
import { CloseCode } from './protocol/index.js';
import { UlidGenerator, systemClock } from './util/index.js';
import type { Clock } from './util/index.js';

/** A running node. */
export interface ChatNode {
  readonly config: NodeConfig;
  readonly id: string;
  /** Changes on every start; peers drop state of older incarnations. */
  readonly incarnation: string;
  /** The real HTTP port (differs from the config when it asked for 0). */
  readonly httpPort: number;
  readonly stats: GatewayStats;
  readonly router: Router;
  /** True once every listener is up (and discovery has run once). */
  ready(): boolean;
  /** Stops accepting clients and asks the connected ones to reconnect elsewhere (1012); keeps running. */
  drain(): Promise<void>;
  /** Graceful shutdown: drain, then close every listener. Idempotent. */
  stop(): Promise<void>;
}

/** Extra wiring for tests and embedding. */
export interface NodeDeps {
  readonly logger?: Logger;
  readonly clock?: Clock;
}

/** Starts a node; resolves once it listens. Throws `ConfigError` on a bad config. */
export async function startNode(input: NodeConfigInput = {}, deps: NodeDeps = {}): Promise<ChatNode> {
  const config = resolveNodeConfig(input);
  const clock = deps.clock ?? systemClock;
  const incarnation = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const log = deps.logger ?? createLogger(config.logLevel, { node: config.id });
  if (config.auth === 'dev') {
    log.warn('AUTH IS OFF (--auth dev): any client may claim any user name. Use --auth jwt --jwt-secret in production.');
  }
  const stats = new GatewayStats();
  const router = new LocalRouter();
  const gateway = new Gateway({
    nodeId: config.id,
    router,
    auth: createAuthenticator({ mode: config.auth, jwtSecret: config.jwtSecret }),
    ids: new UlidGenerator(clock),
    clock,
    log,
    opts: config.gateway,
    stats,
  });
  let draining = false;
  const http = await startHttpServer({ host: config.host, port: config.httpPort, log }, {
    upgrade: (req, socket, head) => gateway.handleUpgrade(req, socket, head),
    ready: () => !draining,
    health: () => ({ node: config.id, incarnation, connections: stats.connections, draining }),
  });
  log.info({ httpPort: http.port, host: config.host, incarnation }, `chatmesh node ${config.id} listening on http://${config.host}:${http.port}`);

  let stopping: Promise<void> | undefined;
  const drain = async (): Promise<void> => {
    if (draining) return;
    draining = true;
    log.info({ connections: stats.connections }, 'draining: asking clients to reconnect elsewhere');
    gateway.stopAccepting();
    await gateway.closeAll(CloseCode.ServiceRestart, 'service restart');
  };
  return {
    config,
    id: config.id,
    incarnation,
    httpPort: http.port,
    stats,
    router,
    ready: () => !draining,
    drain,
    stop() {
      stopping ??= (async () => {
        await drain();
        await gateway.close(CloseCode.ServiceRestart, 'service restart');
        await http.close();
        log.info('stopped');
      })();
      return stopping;
    },
  };
}
