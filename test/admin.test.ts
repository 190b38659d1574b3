/**
 * The admin API over real gRPC against a 3-node mesh (Consul discovery through the Consul test
 * server): lookups, routes, peers, stats, tokens, health, reflection (admin port only, behind the
 * token), `ctl`, `/metrics`, drain.
 */
import t from 'tap';
import type { Test } from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { fileURLToPath } from 'node:url';
import { PROTO_LOADER_OPTIONS, protoPath } from '../src/mesh/index.js';
import type { ChatNode } from '../src/node.js';
import { startFakeConsul } from './consul/fake-consul.js';
import { connectAs, eventually } from './helpers/client.js';
import { grpcNode, wsUrl } from './helpers/grpc-mesh.js';
import { CLI } from './helpers/procs.js';

const run = promisify(execFile);
const TOKEN = 'admin-test-token';

type AnyClient = grpc.Client & Record<string, (...a: unknown[]) => unknown>;

function load(file: string, ...path: string[]): new (addr: string, creds: grpc.ChannelCredentials) => AnyClient {
  let o: unknown = grpc.loadPackageDefinition(protoLoader.loadSync(file, PROTO_LOADER_OPTIONS));
  for (const p of path) o = (o as Record<string, unknown>)[p];
  return o as new (addr: string, creds: grpc.ChannelCredentials) => AnyClient;
}
const Admin = load(protoPath('admin.proto'), 'chatmesh', 'admin', 'v1', 'Admin');
const Health = load(healthProtoPath, 'grpc', 'health', 'v1', 'Health');
const reflectionProto = fileURLToPath(new URL('../node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto', import.meta.url));
const Reflection = load(reflectionProto, 'grpc', 'reflection', 'v1', 'ServerReflection');

function call<T>(t: Test, Ctor: typeof Admin, port: number, method: string, req: object, token: string | null = TOKEN): Promise<T> {
  const c = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.teardown(() => c.close());
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve, reject) => {
    c[method]!(req, md, { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}

async function consulMesh(t: Test): Promise<{ nodes: ChatNode[]; consul: Awaited<ReturnType<typeof startFakeConsul>> }> {
  const consul = await startFakeConsul();
  t.teardown(() => consul.close());
  const nodes: ChatNode[] = [];
  for (const id of ['a', 'b', 'c']) {
    nodes.push(await grpcNode(t, { id, discovery: 'consul', consulUrl: consul.url, serviceName: 'chatmesh-test', adminToken: TOKEN }));
  }
  await eventually(() => nodes.every((n) => n.peers.upLinks().size === 2), 10_000, 'mesh through consul');
  return { nodes, consul };
}

t.test('admin API, health, reflection, ctl, metrics and drain on a Consul-discovered mesh', async (t) => {
  const { nodes, consul } = await consulMesh(t);
  const [a, b, c] = nodes as [ChatNode, ChatNode, ChatNode];
  t.same(consul.services().map((s) => s.id).sort(), ['a', 'b', 'c'], 'every node registered');

  const alice1 = (await connectAs(wsUrl(a), 'alice')).c;
  const alice2 = (await connectAs(wsUrl(b), 'alice')).c;
  const alice3 = (await connectAs(wsUrl(b), 'alice')).c;
  const carol = (await connectAs(wsUrl(c), 'carol')).c;
  t.teardown(() => Promise.all([alice1, alice2, alice3, carol].map((x) => x.close())));
  await carol.request({ type: 'join', id: 'j', room: 'lobby' });

  t.test('route lookups agree with where clients are connected, and say where the answer came from', async (t) => {
    type Route = { topic: string; home: string; owners: Array<{ nodeId: string; connections: number }>; source: string };
    const byNode = async (n: ChatNode): Promise<Route> => call<Route>(t, Admin, n.adminPort, 'LookupUser', { name: 'alice' });
    await eventually(async () => (await byNode(c)).owners.length === 2, 5000, 'alice settled');
    for (const n of [a, b, c]) {
      const r = await byNode(n);
      t.equal(r.topic, 'u:alice');
      t.same(r.owners.map((o) => o.nodeId).sort(), ['a', 'b'], `${n.id} sees alice on a and b`);
      if (r.home === n.id) t.equal(r.source, 'home', `${n.id} is home`);
      else t.match(r.source, /^(cache|asked)$/, `${n.id}: ${r.source}`);
      // Exact connection counts live at the home (caches keep those of the last owner-set change).
      if (r.source !== 'cache') t.same(r.owners.map((o) => [o.nodeId, o.connections]).sort(), [['a', 1], ['b', 2]], `${n.id}: exact counts`);
    }
    const room = await call<Route>(t, Admin, a.adminPort, 'LookupRoom', { name: 'lobby' });
    t.same(room.owners.map((o) => o.nodeId), ['c']);
    const bad = await call(t, Admin, a.adminPort, 'LookupUser', { name: 'no such user!' }).catch((e: grpc.ServiceError) => e);
    t.equal((bad as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT);
  });

  t.test('wrong or missing token: UNAUTHENTICATED', async (t) => {
    for (const token of ['nope', null]) {
      const err = await call(t, Admin, a.adminPort, 'GetStats', {}, token).catch((e: grpc.ServiceError) => e);
      t.equal((err as grpc.ServiceError).code, grpc.status.UNAUTHENTICATED, `token ${String(token)}`);
    }
  });

  t.test('peers and stats', async (t) => {
    const p = await call<{ selfId: string; members: string[]; peers: Array<{ id: string; state: string }> }>(t, Admin, a.adminPort, 'ListPeers', {});
    t.equal(p.selfId, 'a');
    t.same(p.members, ['a', 'b', 'c']);
    t.same(p.peers.map((x) => [x.id, x.state]).sort(), [['b', 'up'], ['c', 'up']]);
    const s = await call<Record<string, unknown>>(t, Admin, b.adminPort, 'GetStats', {});
    t.equal(s['nodeId'], 'b');
    t.equal(Number(s['connections']), 2);
    t.equal(Number(s['users']), 1);
    t.equal(Number(s['members']), 3);
    t.ok(Number(s['membershipChanges']) >= 2, 'membership changes counted');
    // b's two connections waited for their homes (a remote home acknowledges; its own home is immediate).
    t.ok('ownerAcksWaited' in s && 'confirmedNegatives' in s && 'framesDropped' in s && 'meshCallsUnauthenticated' in s, 'trust counters are in the stats');
    t.equal(Number(s['ownerAckTimeouts']), 0, 'no home failed to acknowledge');
    for (const k of ['streamAppends', 'storedMessages', 'storedStreams', 'mailboxPending', 'replicatedWrites', 'handoffsInProgress', 'storeTrimmed']) {
      t.ok(k in s, `stream counter ${k} is in the stats`);
    }
  });

  t.test('health and reflection on the admin port (reflection only with the token); the mesh port serves neither', async (t) => {
    const h = await call<{ status: string }>(t, Health, a.adminPort, 'Check', { service: '' }, null);
    t.equal(h.status, 'SERVING', 'health needs no token');
    const h2 = await call<{ status: string }>(t, Health, a.adminPort, 'Check', { service: 'chatmesh.mesh.v1.Mesh' }, null);
    t.equal(h2.status, 'SERVING');
    const meshHealth = await call(t, Health, a.meshPort, 'Check', { service: '' }, null).catch((e: grpc.ServiceError) => e);
    t.equal((meshHealth as grpc.ServiceError).code, grpc.status.UNIMPLEMENTED, 'no health on the mesh port');
    type Listing = { listServicesResponse?: { service: Array<{ name: string }> } };
    const reflect = async (port: number, token: string | null): Promise<Listing> => {
      const c2 = new Reflection(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      t.teardown(() => c2.close());
      const md = new grpc.Metadata();
      if (token) md.set('authorization', `Bearer ${token}`);
      const stream = c2['ServerReflectionInfo']!(md) as grpc.ClientDuplexStream<object, Listing>;
      return new Promise<Listing>((resolve, reject) => {
        stream.on('data', (d: Listing) => {
          resolve(d);
          stream.end();
        });
        stream.on('error', reject);
        stream.write({ listServices: '' });
      });
    };
    const res = await reflect(a.adminPort, TOKEN);
    const names = res.listServicesResponse!.service.map((s) => s.name);
    for (const s of ['chatmesh.admin.v1.Admin', 'chatmesh.mesh.v1.Mesh', 'grpc.health.v1.Health']) t.ok(names.includes(s), `reflection lists ${s}`);
    for (const token of [null, 'nope']) {
      const err = await reflect(a.adminPort, token).catch((e: grpc.ServiceError) => e);
      t.equal((err as grpc.ServiceError).code, grpc.status.UNAUTHENTICATED, `reflection without the right token (${String(token)}) is refused`);
    }
    const onMesh = await reflect(a.meshPort, TOKEN).catch((e: grpc.ServiceError) => e);
    t.equal((onMesh as grpc.ServiceError).code, grpc.status.UNIMPLEMENTED, 'no reflection on the mesh port');
  });

  t.test('ctl commands as child processes', async (t) => {
    const ctl = (...args: string[]) => run(process.execPath, [CLI, 'ctl', '--admin', `127.0.0.1:${c.adminPort}`, '--token', TOKEN, ...args]);
    const route = JSON.parse((await ctl('route', 'alice', '--json')).stdout) as { owners: Array<{ nodeId: string }> };
    t.same(route.owners.map((o) => o.nodeId).sort(), ['a', 'b']);
    const room = JSON.parse((await ctl('room', 'lobby', '--json')).stdout) as { owners: Array<{ nodeId: string }> };
    t.same(room.owners.map((o) => o.nodeId), ['c']);
    const peers = JSON.parse((await ctl('peers', '--json')).stdout) as { selfId: string };
    t.equal(peers.selfId, 'c');
    const stats = JSON.parse((await ctl('stats', '--json')).stdout) as { nodeId: string };
    t.equal(stats.nodeId, 'c');
    const routes = JSON.parse((await ctl('routes', '--json')).stdout) as Array<{ topic: string }>;
    t.ok(routes.length > 0, 'routing table listed');
    t.same(routes.map((r) => r.topic), [...routes.map((r) => r.topic)].sort(), 'in topic order');
    const human = (await ctl('peers')).stdout;
    t.match(human, /id\s+address\s+state/, 'a table by default');
    const wrong = await run(process.execPath, [CLI, 'ctl', '--admin', `127.0.0.1:${c.adminPort}`, '--token', 'bad', 'stats']).catch((e: { code: number; stderr: string }) => e);
    t.equal((wrong as { code: number }).code, 1);
    t.match((wrong as { stderr: string }).stderr, /unauthorized/);
    const away = await run(process.execPath, [CLI, 'ctl', '--admin', '127.0.0.1:1', '--timeout-ms', '2000', 'stats']).catch((e: { code: number; stderr: string }) => e);
    t.equal((away as { code: number }).code, 1);
    t.match((away as { stderr: string }).stderr, /cannot reach|no answer/);
  });

  t.test('/metrics exposes the series and they move when messages flow', async (t) => {
    const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${a.httpPort}/metrics`)).text();
    const value = (text: string, name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    const before = await scrape();
    for (const s of ['chatmesh_direct_messages_total', 'chatmesh_membership_changes_total', 'chatmesh_snapshots_out_total', 'chatmesh_connections', 'chatmesh_route_cache_entries', 'chatmesh_mesh_deliveries_out_total', 'chatmesh_delivery_latency_seconds_count', 'chatmesh_mesh_batch_size_count', 'process_cpu_user_seconds_total', 'chatmesh_negatives_confirmed_total', 'chatmesh_owner_acks_waited_total', 'chatmesh_client_frames_rate_limited_total', 'chatmesh_mesh_calls_unauthenticated_total']) {
      t.ok(Number.isFinite(value(before, s)), `${s} present`);
    }
    for (const s of ['chatmesh_stream_appends_total', 'chatmesh_stored_messages', 'chatmesh_stored_streams', 'chatmesh_mailbox_pending', 'chatmesh_mailbox_replayed_total', 'chatmesh_resume_replayed_total', 'chatmesh_history_reads_total', 'chatmesh_replicated_writes_total', 'chatmesh_replication_failures_total', 'chatmesh_handoff_streams_total', 'chatmesh_handoff_entries_total', 'chatmesh_handoffs_in_progress', 'chatmesh_store_trimmed_total', 'chatmesh_store_latency_seconds_count']) {
      t.ok(Number.isFinite(value(before, s)), `${s} present`);
    }
    for (let i = 0; i < 5; i++) t.equal((await alice1.request({ type: 'send', id: `m${i}`, to: 'carol', body: 'hi' }))['status'], 'delivered');
    const after = await scrape();
    t.equal(value(after, 'chatmesh_direct_messages_total') - value(before, 'chatmesh_direct_messages_total'), 5);
    t.ok(value(after, 'chatmesh_mesh_deliveries_out_total') >= value(before, 'chatmesh_mesh_deliveries_out_total') + 5, 'deliveries to carol\'s node');
    t.ok(value(after, 'chatmesh_mesh_batch_size_count') > value(before, 'chatmesh_mesh_batch_size_count'), 'batches observed');
    await alice1.request({ type: 'shout', id: 'bad' });
    t.match(await scrape(), /^chatmesh_client_errors_total\{code="unknown_type"\} [1-9]/m, 'client errors counted by code');
    const cm = await (await fetch(`http://127.0.0.1:${c.httpPort}/metrics`)).text();
    t.ok(value(cm, 'chatmesh_delivery_latency_seconds_count') >= 5, 'latency observed where carol reads');
  });

  t.test('drain: clients get 1012, the node deregisters from Consul, health NOT_SERVING, peers keep it', async (t) => {
    const res = await call<{ connectionsClosed: number; deregistered: boolean }>(t, Admin, b.adminPort, 'Drain', {});
    t.equal(Number(res.connectionsClosed), 2);
    t.equal(res.deregistered, true);
    t.equal((await alice2.closed).code, 1012);
    t.equal((await alice3.closed).code, 1012);
    t.same(consul.services().map((s) => s.id).sort(), ['a', 'c'], 'b is gone from Consul');
    t.equal((await fetch(`http://127.0.0.1:${b.httpPort}/healthz`)).status, 503);
    t.equal((await call<{ status: string }>(t, Health, b.adminPort, 'Check', { service: '' }, null)).status, 'NOT_SERVING');
    t.equal(b.peers.upLinks().size, 2, 'b keeps serving its peers');
    await eventually(async () => (await call<{ owners: unknown[] }>(t, Admin, a.adminPort, 'LookupUser', { name: 'alice' })).owners.length === 1, 5000, 'alice only on a now');
  });
});

t.test('without --admin-token the admin API listens on loopback only and needs no token', async (t) => {
  // The mesh binds 0.0.0.0 here too, which needs a secret (or --insecure-mesh).
  const n = await grpcNode(t, { id: 'solo', host: '0.0.0.0', meshSecret: 'admin-test-mesh-secret' });
  const s = await call<{ nodeId: string }>(t, Admin, n.adminPort, 'GetStats', {}, null);
  t.equal(s.nodeId, 'solo');
});
