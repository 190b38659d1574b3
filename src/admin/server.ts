import { createHash, timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import type { ProtoGrpcType } from '../generated/admin.js';
import type { Route } from '../generated/chatmesh/admin/v1/Route.js';
import type { AdminHandlers } from '../generated/chatmesh/admin/v1/Admin.js';
import type { GetStreamRequest__Output } from '../generated/chatmesh/admin/v1/GetStreamRequest.js';
import { ID_PATTERN, isValidId } from '../protocol/index.js';
import { PROTO_LOADER_OPTIONS, protoPath } from '../mesh/index.js';
import type { AdminTarget } from './target.js';

/** Service names the health service reports. */
export const HEALTH_SERVICES = ['', 'chatmesh.mesh.v1.Mesh', 'chatmesh.admin.v1.Admin'] as const;

/** Max routes one ListRoutes call streams. */
export const MAX_ROUTES_PER_CALL = 10_000;

function loadAll(): protoLoader.PackageDefinition {
  return protoLoader.loadSync([protoPath('mesh.proto'), protoPath('admin.proto'), healthProtoPath], PROTO_LOADER_OPTIONS);
}

/**
 * Adds `grpc.health.v1` and server reflection to a gRPC server (the admin server: the mesh port
 * serves only the Mesh service). Pair it with `reflectionGuard` where a token is set.
 */
export function addStandardServices(server: grpc.Server, health: HealthImplementation): void {
  health.addToServer(server);
  new ReflectionService(loadAll()).addToServer(server);
}

/** A health implementation with every chatmesh service NOT_SERVING until told otherwise. */
export function createHealth(): HealthImplementation {
  return new HealthImplementation(Object.fromEntries(HEALTH_SERVICES.map((s) => [s, 'NOT_SERVING'])));
}

/** Sets every chatmesh service of `health` to `status`. */
export function setHealth(health: HealthImplementation, status: 'SERVING' | 'NOT_SERVING'): void {
  for (const s of HEALTH_SERVICES) health.setStatus(s, status);
}

function tokenMatches(header: string | undefined, token: string): boolean {
  if (!header) return false;
  const m = /^Bearer (.+)$/i.exec(header.trim());
  if (!m) return false;
  const h = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(m[1]!), h(token));
}

/**
 * Reflection describes every service and message of the node; with an admin token set, only callers
 * presenting it may use it. Health stays open (checkers rarely send tokens; it tells only status).
 */
export function reflectionGuard(token: string | undefined): grpc.ServerInterceptor {
  return (method, call) => new grpc.ServerInterceptingCall(call, {
    start: (next) => next({
      onReceiveMetadata: (metadata, mdNext) => {
        if (token !== undefined && method.path.startsWith('/grpc.reflection.')) {
          const v = metadata.get('authorization')[0];
          if (!tokenMatches(typeof v === 'string' ? v : undefined, token)) {
            call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: 'missing or wrong admin token (metadata authorization: Bearer <token>)', metadata: new grpc.Metadata() });
            return;
          }
        }
        mdNext(metadata);
      },
    }),
  });
}

function fail(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

/** The stream a `GetStream` request names (`u:<user>` or `r:<room>`), or why it names none. */
export function streamTopic(req: Partial<GetStreamRequest__Output>): { topic: string } | { error: string } {
  const user = req.user ?? '';
  const room = req.room ?? '';
  if ((user === '') === (room === '')) return { error: 'give exactly one of user and room' };
  const [field, name] = user !== '' ? ['user', user] : ['room', room];
  if (!isValidId(name)) return { error: `${field} "${String(name).slice(0, 80)}" is not a valid id (${ID_PATTERN.source})` };
  return { topic: (field === 'user' ? 'u:' : 'r:') + name };
}

/** Options of the admin server. */
export interface AdminServerOptions {
  /** Bind address; forced to 127.0.0.1 when no token is configured. */
  readonly host: string;
  readonly port: number;
  /** Bearer token required on every call; undefined: none, loopback only. */
  readonly token: string | undefined;
  readonly health: HealthImplementation;
}

/** Starts the admin gRPC server; resolves with it and its bound port. */
export async function startAdminServer(target: AdminTarget, opts: AdminServerOptions): Promise<{ server: grpc.Server; port: number; host: string; close(): Promise<void> }> {
  const proto = (grpc.loadPackageDefinition(protoLoader.loadSync(protoPath('admin.proto'), PROTO_LOADER_OPTIONS)) as unknown as ProtoGrpcType).chatmesh.admin.v1;
  const authorized = (call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): boolean => {
    if (opts.token === undefined) return true;
    const v = call.metadata.get('authorization')[0];
    return tokenMatches(typeof v === 'string' ? v : undefined, opts.token);
  };
  const denied = fail(grpc.status.UNAUTHENTICATED, 'missing or wrong admin token (metadata authorization: Bearer <token>)');
  const lookup = (prefix: 'u:' | 'r:') => (call: grpc.ServerUnaryCall<{ name: string }, Route>, cb: grpc.sendUnaryData<Route>): void => {
    if (!authorized(call)) return cb(denied);
    const name = call.request.name;
    if (!isValidId(name)) return cb(fail(grpc.status.INVALID_ARGUMENT, `"${String(name).slice(0, 80)}" is not a valid id`));
    target.describe(prefix + name).then(
      (a) => cb(null, {
        topic: a.topic, home: a.home, source: a.source, seq: a.seq, tentative: a.tentative, pinned: a.pinned,
        owners: [...a.owners].map(([nodeId, connections]) => ({ nodeId, connections })),
      }),
      (err: unknown) => cb(fail(grpc.status.UNAVAILABLE, `could not resolve ${prefix}${name}: ${(err as Error).message}`)),
    );
  };
  const handlers: AdminHandlers = {
    LookupUser: lookup('u:'),
    LookupRoom: lookup('r:'),
    ListRoutes(call) {
      if (!authorized(call)) {
        call.emit('error', denied);
        return;
      }
      const limit = Math.min(call.request.limit || 1000, MAX_ROUTES_PER_CALL);
      for (const r of target.listRoutes(call.request.after ?? '', limit)) {
        call.write({
          topic: r.topic, home: r.home, source: r.source, seq: r.seq, pinned: r.pinned, tentative: false,
          owners: [...r.owners].map(([nodeId, connections]) => ({ nodeId, connections })),
        });
      }
      call.end();
    },
    ListPeers(call, cb) {
      if (!authorized(call)) return cb(denied);
      cb(null, {
        selfId: target.id,
        members: [...target.members()],
        peers: target.peers().map((p) => ({
          id: p.id ?? '', address: p.address, incarnation: p.incarnation ?? '', state: p.state, role: p.role ?? '',
          queueDepth: p.queueDepth, lastError: p.lastError ?? '', upSinceMs: p.link?.stats.upSince ?? 0,
          batchesIn: p.link?.stats.batchesIn ?? 0, batchesOut: p.link?.stats.batchesOut ?? 0,
          itemsIn: p.link?.stats.itemsIn ?? 0, itemsOut: p.link?.stats.itemsOut ?? 0,
        })),
      });
    },
    GetStats(call, cb) {
      if (!authorized(call)) return cb(denied);
      cb(null, { ...target.stats() });
    },
    Drain(call, cb) {
      if (!authorized(call)) return cb(denied);
      target.drain().then(
        (r) => cb(null, { connectionsClosed: r.closed, deregistered: r.deregistered }),
        (err: unknown) => cb(fail(grpc.status.INTERNAL, `drain failed: ${(err as Error).message}`)),
      );
    },
    GetStream(call, cb) {
      if (!authorized(call)) return cb(denied);
      const named = streamTopic(call.request);
      if ('error' in named) return cb(fail(grpc.status.INVALID_ARGUMENT, named.error));
      target.stream(named.topic).then(
        (v) => (v === undefined
          ? cb(fail(grpc.status.FAILED_PRECONDITION, 'this node keeps no message streams (it runs with --history-size 0)'))
          : cb(null, {
          stream: v.stream, replicas: v.replicas,
          nodes: v.nodes.map((n) => ({
            rank: n.rank, node: n.node, reachable: n.reachable, error: n.error, messages: n.messages,
            oldest: n.oldest, newest: n.newest, pending: n.pending, handoff: n.handoff,
          })),
        })),
        (err: unknown) => cb(fail(grpc.status.UNAVAILABLE, `could not read stream ${named.topic}: ${(err as Error).message}`)),
      );
    },
  };
  const server = new grpc.Server({ interceptors: [reflectionGuard(opts.token)] });
  server.addService(proto.Admin.service, handlers);
  addStandardServices(server, opts.health);
  const host = opts.token === undefined ? '127.0.0.1' : opts.host;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${opts.port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    server,
    port,
    host,
    close: () => new Promise<void>((resolve) => {
      const t = setTimeout(() => { server.forceShutdown(); resolve(); }, 1000);
      server.tryShutdown(() => { clearTimeout(t); resolve(); });
    }),
  };
}
