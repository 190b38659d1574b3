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
import { GrpcTransport, MeshRouter, PeerManager, defaultLinkOptions, listNodeUrls, loadMeshTls } from './mesh/index.js';
import type { GrpcTransportOptions, LinkOptions, MeshRouterOptions, MeshTransport, NodeIdentity, PeerLink } from './mesh/index.js';
import { NodeLifecycle } from './lifecycle.js';
import { createNodeStats } from './node-stats.js';
import { Accounts } from './accounts/index.js';
import { MessageClock, NodeStreams } from './streams/index.js';
import { createStreamStore } from './streams/store/index.js';
import type { StreamCallsPort, StreamStore } from './streams/index.js';
import { UlidGenerator, defaultPublicUrl, systemClock } from './util/index.js';
import { warnIfFewOpenFiles } from './util/open-files.js';
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
  /** The stream layer (with `--history-size 0` it keeps accounts only). */
  readonly streams: NodeStreams;
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
  /** The stream store; default from the config (memory, or disk with `--data-dir`). */
  readonly store?: StreamStore;
}

/** Starts a node; resolves once it listens and discovery has run once. Throws `ConfigError` on a bad config. */
export async function startNode(input: NodeConfigInput = {}, deps: NodeDeps = {}): Promise<ChatNode> {
  const config = resolveNodeConfig(input);
  const clock = deps.clock ?? systemClock;
  // First, so that a data dir that cannot be opened stops the node before it listens anywhere.
  // With --history-size 0 no message is kept, but accounts (memberships, read markers) are.
  const store = deps.store ?? await createStreamStore({
    ...(config.dataDir !== undefined && { dataDir: config.dataDir }),
    limits: { maxPerStream: Math.max(1, config.historySize), ttlMs: config.historyTtlMs, maxMessages: config.maxStoredMessages },
    now: () => clock.now(),
  });
  try {
    return await wire(config, clock, store, deps);
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** Builds and starts every part of a node around its (opened) store. */
async function wire(config: NodeConfig, clock: Clock, store: StreamStore, deps: NodeDeps): Promise<ChatNode> {
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
  warnIfFewOpenFiles(log, { maxConnections: config.gateway.maxConnections, peers: config.peers.length, dataDir: config.dataDir !== undefined });
  if (!config.meshSecret && meshTls === undefined && !isLoopbackHost(config.host)) {
    log.warn({ host: config.host, meshPort }, 'MESH IS OPEN (--insecure-mesh): anyone who reaches the mesh port is a full peer and can write to every user\'s connections. Set --mesh-secret or --mesh-tls-cert/--mesh-tls-key/--mesh-tls-ca.');
  }
  const advertise = `${config.advertise.includes(':') ? `[${config.advertise}]` : config.advertise}:${meshPort}`;
  let metrics: ReturnType<typeof createMetrics> | undefined;
  // The one map of up links: the peer manager writes it, the router reads it.
  const links = new Map<string, PeerLink>();
  const messageIds = new MessageClock(clock);
  const keepsMessages = config.historySize > 0;
  const streams = new NodeStreams({
    selfId: id, replicas: config.replicas, store, log, now: () => clock.now(), monotonic: () => clock.monotonic(),
    calls: (): StreamCallsPort => router.streamCalls,
    observe: (msg) => messageIds.observe(msg),
    onWriteLatency: (ms) => metrics?.observeStore(ms),
  });
  const router: MeshRouter = new MeshRouter({
    ...deps.mesh,
    self: { id, incarnation, advertise, httpPort: 0, adminPort: 0 },
    links,
    routeCacheSize: config.routeCacheSize,
    log,
    clock,
    onDeliveryLatency: (ms) => metrics?.observeDelivery(ms),
    onMessageSeen: (msg) => messageIds.observe(msg),
    serveStream: (peer, call) => streams.serve(peer, call),
    onMembersChanged: (m) => streams.membersChanged(m),
  });
  const stats = new GatewayStats();
  const gateway = new Gateway({
    nodeId: id,
    router,
    auth: createAuthenticator({ mode: config.auth, jwtSecret: config.jwtSecret, clock }),
    ids: new UlidGenerator(clock),
    messageIds,
    ...(keepsMessages && { streams: streams.service, streamStats: streams.stats }),
    accounts: new Accounts({ streams: streams.service, nextId: () => messageIds.next() }),
    clock,
    log,
    opts: config.gateway,
    stats,
  });
  let discovered = false;
  let lifecycle: NodeLifecycle | undefined;
  // `discovery` is built below; nothing reads it before `discovered` turns true.
  const serving = (): boolean => discovered && !lifecycle?.draining && discovery.status().healthy;
  const nodeStats = createNodeStats({
    id, incarnation, clock, router, gateway: stats, transport, links, draining: () => lifecycle?.draining ?? false, streams,
  });
  const statsView = (): NodeStatsView => nodeStats.view();
  const nodeMetrics = createMetrics(statsView);
  metrics = nodeMetrics;
  const http = await startHttpServer({ host: config.host, port: config.httpPort, log }, {
    upgrade: (req, socket, head) => gateway.handleUpgrade(req, socket, head),
    metrics: () => nodeMetrics.render(),
    ready: serving,
    health: () => ({
      node: id, incarnation, connections: stats.connections, draining: lifecycle?.draining ?? false, discovered,
      ...(discovered ? { discovery: { kind: config.discovery, ...discovery.status() } } : {}),
      peers: peers ? peers.upLinks().size : 0, members: router.liveMembers().length,
    }),
    // `self` is set in the same microtask chain as the listen, so before any request is handled.
    nodes: () => listNodeUrls(lifecycle?.draining ? undefined : { id, url: self.publicUrl! }, links.values()),
  });
  const publicUrl = config.publicUrl ?? defaultPublicUrl(config.advertise, http.port);
  const self: NodeIdentity = { id, incarnation, advertise, httpPort: http.port, adminPort: config.adminPort, publicUrl };
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
    link: { ...defaultLinkOptions(), lingerMs: config.meshLingerMs, ...deps.link },
    log,
    onBatchSent: (n) => nodeMetrics.observeBatch(n),
    ...(deps.retryMinMs !== undefined && { retryMinMs: deps.retryMinMs }),
    ...(deps.retryMaxMs !== undefined && { retryMaxMs: deps.retryMaxMs }),
  }, {
    onUp: (link) => router.peerUp(link),
    onDown: (link) => {
      nodeStats.linkClosed(link);
      router.peerDown(link);
    },
    onEnvelope: (link, env) => router.onEnvelope(link, env),
  });
  const adminTarget: AdminTarget = {
    id,
    describe: (topic) => router.describe(topic),
    listRoutes: (after, limit) => router.listRoutes(after, limit),
    peers: () => peers!.view(),
    members: () => router.liveMembers(),
    stats: statsView,
    drain: () => lifecycle!.drain(),
    stream: (topic) => (keepsMessages ? streams.service.describe(topic) : Promise.resolve(undefined)),
  };
  const admin = await startAdminServer(adminTarget, { host: config.host, port: config.adminPort, token: config.adminToken, health });
  if (config.adminToken === undefined && config.host !== '127.0.0.1') {
    log.warn({ adminPort: admin.port }, 'no --admin-token: the admin API listens on 127.0.0.1 only');
  }
  lifecycle = new NodeLifecycle({
    log, health, gateway, router, discovery, peers, transport, listeners: [http, admin], connections: () => stats.connections,
    closeLast: [() => streams.close()],
  });
  await discovery.start();
  peers.start();
  discovered = true;
  setHealth(health, serving() ? 'SERVING' : 'NOT_SERVING');
  discovery.onStatusChange(() => {
    if (!lifecycle!.draining) setHealth(health, serving() ? 'SERVING' : 'NOT_SERVING');
  });
  log.info({ httpPort: http.port, meshPort, adminPort: admin.port, host: config.host, advertise, publicUrl, incarnation, discovery: config.discovery },
    `chatmesh node ${id} listening on http://${config.host}:${http.port}`);

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
    streams,
    peers,
    discovery,
    ready: serving,
    drain: async () => { await lifecycle!.drain(); },
    stop: () => lifecycle!.stop(),
    kill: () => lifecycle!.kill(),
  };
}
