/**
 * The composition root: reads a resolved config, builds the real parts and wires them. The only
 * place that knows every component.
 */
import { randomBytes } from 'node:crypto';
import { createHealth, setHealth, startAdminServer } from './admin/index.js';
import type { AdminTarget, NodeStatsView } from './admin/index.js';
import { createAuthenticator } from './auth/index.js';
import { defaultNodeId, isLoopbackHost, resolveNodeConfig } from './config/index.js';
import type { NodeConfig, NodeConfigInput } from './config/index.js';
import { createConsulDiscovery, createStaticDiscovery } from './discovery/index.js';
import type { Discovery } from './discovery/index.js';
import { Gateway, GatewayStats } from './gateway/index.js';
import { startHttpServer } from './http/index.js';
import { createLogger } from './log.js';
import { createMetrics } from './metrics/index.js';
import type { Logger } from './log.js';
import { GrpcTransport, MeshRouter, PeerManager, defaultLinkOptions, loadMeshTls } from './mesh/index.js';
import type { GrpcTransportOptions, LinkOptions, MeshRouterOptions, MeshTransport, NodeIdentity, PeerLink } from './mesh/index.js';
import { CloseCode } from './protocol/index.js';
import { UlidGenerator, systemClock } from './util/index.js';
import type { Clock } from './util/index.js';

/** A running node. */
export interface ChatNode {
  readonly config: NodeConfig;
  readonly id: string;
  /** Changes on every start; peers drop state of older incarnations. */
  readonly incarnation: string;
  /** The real ports (they differ from the config where it asked for 0). */
  readonly httpPort: number;
  readonly meshPort: number;
  readonly adminPort: number;
  readonly stats: GatewayStats;
  readonly router: MeshRouter;
  readonly peers: PeerManager;
  readonly discovery: Discovery;
  /** True once every listener is up and discovery has run once, while discovery is healthy (Consul
   *  reachable and accepting the token), until drain. */
  ready(): boolean;
  /** The node's counters (admin `stats`, `/metrics`). */
  statsView(): NodeStatsView;
  /** Stops accepting clients, deregisters from discovery and asks the connected clients to
   *  reconnect elsewhere (1012); keeps serving peers. Idempotent. */
  drain(): Promise<void>;
  /** Graceful shutdown: drain, tell peers goodbye, close every listener. Idempotent. */
  stop(): Promise<void>;
  /** Stops at once without goodbyes (tests of crashes). */
  kill(): Promise<void>;
}

/** Parts a test or an embedder may replace. */
export interface NodeDeps {
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Mesh transport; default gRPC. */
  readonly transport?: MeshTransport;
  /** Discovery; default from the config (static or consul). */
  readonly discovery?: (self: { id: string; advertise: string; meshPort: number; httpPort: number; incarnation: string }) => Discovery;
  readonly link?: Partial<LinkOptions>;
  readonly mesh?: Partial<Omit<MeshRouterOptions, 'self' | 'links' | 'log' | 'clock' | 'routeCacheSize'>>;
  /** Dial retry bounds, ms. */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** Options of the default gRPC transport (limits, deadlines); the secret and TLS come from the config. */
  readonly grpc?: Omit<GrpcTransportOptions, 'secret' | 'tls'>;
}

const NO_TRANSPORT_COUNTERS = { connectionsRefused: 0, handshakeTimeouts: 0, callsUnauthenticated: 0, callsRefused: 0 } as const;

/** Starts a node; resolves once it listens and discovery has run once. Throws `ConfigError` on a bad config. */
export async function startNode(input: NodeConfigInput = {}, deps: NodeDeps = {}): Promise<ChatNode> {
  const config = resolveNodeConfig(input);
  const clock = deps.clock ?? systemClock;
  const incarnation = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const health = createHealth();
  // The mesh port serves only the Mesh service (health and reflection are on the admin port).
  const meshTls = config.meshTlsCert ? loadMeshTls({ cert: config.meshTlsCert, key: config.meshTlsKey!, ca: config.meshTlsCa! }) : undefined;
  const transport = deps.transport ?? new GrpcTransport({ ...deps.grpc, secret: config.meshSecret, tls: meshTls });
  let peers: PeerManager | undefined;
  const meshPort = await transport.listen(config.host, config.meshPort, (s) => {
    if (peers) peers.accept(s);
    else s.close();
  });
  const id = config.id ?? defaultNodeId(meshPort);
  const log = deps.logger ?? createLogger(config.logLevel, { node: id });
  if (config.auth === 'dev') {
    log.warn('AUTH IS OFF (--auth dev): any client may claim any user name. Use --auth jwt --jwt-secret in production.');
  }
  if (!config.meshSecret && meshTls === undefined && !isLoopbackHost(config.host)) {
    log.warn({ host: config.host, meshPort }, 'MESH IS OPEN (--insecure-mesh): anyone who reaches the mesh port is a full peer and can write to every user\'s connections. Set --mesh-secret or --mesh-tls-cert/--mesh-tls-key/--mesh-tls-ca.');
  }
  const advertise = `${config.advertise.includes(':') ? `[${config.advertise}]` : config.advertise}:${meshPort}`;
  let metrics: ReturnType<typeof createMetrics> | undefined;
  // The one map of up links: the peer manager writes it, the router reads it.
  const links = new Map<string, PeerLink>();
  const router = new MeshRouter({
    ...deps.mesh,
    self: { id, incarnation, advertise, httpPort: 0, adminPort: 0 },
    links,
    routeCacheSize: config.routeCacheSize,
    log,
    clock,
    onDeliveryLatency: (ms) => metrics?.observeDelivery(ms),
  });
  const stats = new GatewayStats();
  const gateway = new Gateway({
    nodeId: id,
    router,
    auth: createAuthenticator({ mode: config.auth, jwtSecret: config.jwtSecret, clock }),
    ids: new UlidGenerator(clock),
    clock,
    log,
    opts: config.gateway,
    stats,
  });
  let draining = false;
  let discovered = false;
  // `discovery` is built below; nothing reads it before `discovered` turns true.
  const serving = (): boolean => discovered && !draining && discovery.status().healthy;
  const startedAt = Date.now();
  const closedLinks = { batchesIn: 0, batchesOut: 0 };
  const statsView = (): NodeStatsView => {
    let batchesIn = closedLinks.batchesIn;
    let batchesOut = closedLinks.batchesOut;
    for (const l of peers?.upLinks().values() ?? []) {
      batchesIn += l.stats.batchesIn;
      batchesOut += l.stats.batchesOut;
    }
    const m = router.stats;
    const mc = transport instanceof GrpcTransport ? transport.counters : NO_TRANSPORT_COUNTERS;
    const t = router.table;
    return {
      nodeId: id, incarnation, uptimeMs: Date.now() - startedAt, draining,
      connections: stats.connections, users: router.hub.userCount, topics: router.hub.size,
      directMessagesIn: stats.directMessages, roomMessagesIn: stats.roomMessages, framesIn: stats.framesIn, framesOut: stats.framesOut,
      deliveriesOut: m.deliveriesOut, deliveriesIn: m.deliveriesIn, staleRoutes: m.staleRoutes,
      cacheSize: t.size, cachePinned: t.pinnedSize, cacheMax: t.maxEntries, cacheHits: t.hits, cacheMisses: t.misses, cacheEvictions: t.evictions,
      homeTopics: router.directory.size, homeLookupsIn: m.lookupsIn, homeLookupsOut: m.lookupsOut,
      routeUpdatesIn: m.routeUpdatesIn, routeUpdatesOut: m.routeUpdatesOut,
      gossipBatchesIn: batchesIn, gossipBatchesOut: batchesOut,
      unavailable: m.unavailable, slowConsumers: stats.slowConsumers, errors: { ...stats.errors },
      members: router.liveMembers().length,
      ownerDeltasOut: m.ownerDeltasOut, ownerDeltasIn: m.ownerDeltasIn, snapshotsOut: m.snapshotsOut, snapshotsIn: m.snapshotsIn,
      digestsOut: m.digestsOut, digestMismatches: m.digestMismatches, membershipChanges: m.membershipChanges,
      confirmRetries: m.confirmRetries, confirmedNegatives: m.confirmedNegatives, duplicatesDropped: m.duplicatesDropped,
      ownerAcksWaited: m.ownerAcksWaited, ownerAckTimeouts: m.ownerAckTimeouts,
      framesDropped: stats.framesDropped, policyViolations: stats.policyViolations, tokensExpired: stats.tokensExpired, tokensRefreshed: stats.tokensRefreshed,
      meshConnectionsRefused: mc.connectionsRefused, meshHandshakeTimeouts: mc.handshakeTimeouts,
      meshCallsUnauthenticated: mc.callsUnauthenticated, meshCallsRefused: mc.callsRefused,
    };
  };
  const nodeMetrics = createMetrics(statsView);
  metrics = nodeMetrics;
  const http = await startHttpServer({ host: config.host, port: config.httpPort, log }, {
    upgrade: (req, socket, head) => gateway.handleUpgrade(req, socket, head),
    metrics: () => nodeMetrics.render(),
    ready: serving,
    health: () => ({
      node: id, incarnation, connections: stats.connections, draining, discovered,
      ...(discovered ? { discovery: { kind: config.discovery, ...discovery.status() } } : {}),
      peers: peers ? peers.upLinks().size : 0, members: router.liveMembers().length,
    }),
  });
  const self: NodeIdentity = { id, incarnation, advertise, httpPort: http.port, adminPort: config.adminPort };
  const discovery = deps.discovery
    ? deps.discovery({ id, advertise: config.advertise, meshPort, httpPort: http.port, incarnation })
    : config.discovery === 'consul'
      ? createConsulDiscovery({
        self: { id, address: config.advertise, meshPort, httpPort: http.port, adminPort: config.adminPort, incarnation },
        agentUrl: config.consulUrl,
        serviceName: config.serviceName,
        ...(config.consulToken === undefined ? {} : { token: config.consulToken }),
        logger: log,
      })
      : createStaticDiscovery({ peers: config.peers, selfAddress: advertise });
  peers = new PeerManager({
    self,
    links,
    secret: config.meshSecret,
    authenticated: !!config.meshSecret || meshTls !== undefined,
    transport,
    discovery,
    link: { ...defaultLinkOptions(), ...deps.link },
    log,
    ...(deps.retryMinMs !== undefined && { retryMinMs: deps.retryMinMs }),
    ...(deps.retryMaxMs !== undefined && { retryMaxMs: deps.retryMaxMs }),
  }, {
    onUp: (link) => {
      link.onBatchSent = (n) => nodeMetrics.observeBatch(n);
      router.peerUp(link);
    },
    onDown: (link) => {
      closedLinks.batchesIn += link.stats.batchesIn;
      closedLinks.batchesOut += link.stats.batchesOut;
      router.peerDown(link);
    },
    onEnvelope: (link, env) => router.onEnvelope(link, env),
  });
  let drained: Promise<{ closed: number; deregistered: boolean }> | undefined;
  const drain = (): Promise<{ closed: number; deregistered: boolean }> => {
    drained ??= (async () => {
      draining = true;
      setHealth(health, 'NOT_SERVING');
      const closed = stats.connections;
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
    return drained;
  };
  const adminTarget: AdminTarget = {
    id,
    describe: (topic) => router.describe(topic),
    listRoutes: (after, limit) => router.listRoutes(after, limit),
    peers: () => peers!.view(),
    members: () => router.liveMembers(),
    stats: statsView,
    drain,
  };
  const admin = await startAdminServer(adminTarget, { host: config.host, port: config.adminPort, token: config.adminToken, health });
  if (config.adminToken === undefined && config.host !== '127.0.0.1') {
    log.warn({ adminPort: admin.port }, 'no --admin-token: the admin API listens on 127.0.0.1 only');
  }
  await discovery.start();
  peers.start();
  discovered = true;
  setHealth(health, serving() ? 'SERVING' : 'NOT_SERVING');
  discovery.onStatusChange(() => {
    if (!draining) setHealth(health, serving() ? 'SERVING' : 'NOT_SERVING');
  });
  log.info({ httpPort: http.port, meshPort, adminPort: admin.port, host: config.host, advertise, incarnation, discovery: config.discovery },
    `chatmesh node ${id} listening on http://${config.host}:${http.port}`);

  let stopping: Promise<void> | undefined;
  const shutdown = async (graceful: boolean): Promise<void> => {
    if (graceful) {
      await drain();
      // Give the closed clients time to reconnect elsewhere before this node's users are released.
      await router.lingerDone();
      // Let the owner deltas of the closed clients leave before saying goodbye.
      await new Promise((r) => setImmediate(r));
    }
    router.close();
    peers!.stop(graceful ? 'shutdown' : 'killed');
    await gateway.close(CloseCode.ServiceRestart, 'service restart');
    await Promise.all([discovery.stop().catch(() => undefined), transport.close(), http.close(), admin.close()]);
    log.info('stopped');
  };
  return {
    config,
    id,
    incarnation,
    httpPort: http.port,
    meshPort,
    adminPort: admin.port,
    stats,
    statsView,
    router,
    peers,
    discovery,
    ready: serving,
    drain: async () => { await drain(); },
    stop() {
      stopping ??= shutdown(true);
      return stopping;
    },
    kill() {
      stopping ??= shutdown(false);
      return stopping;
    },
  };
}
