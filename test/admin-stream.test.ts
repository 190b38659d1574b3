/**
 * `GetStream` and `ctl stream` against the real admin server with an in-memory target: the answer,
 * INVALID_ARGUMENT for a request that names no stream (or two, or a bad id), the bearer token, a
 * target that fails; the real CLI (table, --room, --json, usage errors). And the stream statistics:
 * the node stats view with and without a stream layer, and their `/metrics` series.
 */
import t from 'tap';
import type { Test } from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { STAT_FIELDS, createHealth, startAdminServer, streamTopic } from '../src/admin/index.js';
import type { AdminTarget, NodeStatsView } from '../src/admin/index.js';
import { GatewayStats } from '../src/gateway/index.js';
import type { MeshRouter, MeshTransport } from '../src/mesh/index.js';
import { PROTO_LOADER_OPTIONS, protoPath } from '../src/mesh/index.js';
import { createMetrics } from '../src/metrics/index.js';
import { CtlError, runCtl } from '../src/ctl.js';
import { createNodeStats } from '../src/node-stats.js';
import { StreamStats } from '../src/streams/stats.js';
import type { StreamView } from '../src/streams/stats.js';
import { systemClock } from '../src/util/index.js';
import { CLI } from './helpers/procs.js';

const run = promisify(execFile);
const TOKEN = 'stream-test-token';
const OLD = '01JABCDEFGHJKMNPQRSTVWXYZ0';
const NEW = '01JZZZZZZZZZZZZZZZZZZZZZZ9';

type AnyClient = grpc.Client & Record<string, (...a: unknown[]) => unknown>;
const proto = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath('admin.proto'), PROTO_LOADER_OPTIONS)) as unknown as {
  chatmesh: { admin: { v1: { Admin: new (addr: string, creds: grpc.ChannelCredentials) => AnyClient } } };
};
const Admin = proto.chatmesh.admin.v1.Admin;

const VIEWS: Record<string, StreamView> = {
  'u:alice': {
    stream: 'u:alice', replicas: 3, nodes: [
      { rank: 1, node: 'a', reachable: true, error: '', messages: 12, oldest: OLD, newest: NEW, pending: 2, handoff: false },
      { rank: 2, node: 'b', reachable: false, error: 'deadline exceeded', messages: 0, oldest: '', newest: '', pending: 0, handoff: false },
      { rank: 3, node: 'c', reachable: true, error: '', messages: 0, oldest: '', newest: '', pending: 0, handoff: true },
    ],
  },
  'r:lobby': {
    stream: 'r:lobby', replicas: 1, nodes: [
      { rank: 1, node: 'b', reachable: true, error: '', messages: 5, oldest: OLD, newest: NEW, pending: 0, handoff: false },
    ],
  },
  'r:empty': { stream: 'r:empty', replicas: 2, nodes: [] },
};

/** A target that answers `stream` from VIEWS (rejecting other topics) and records what it was asked. */
function fakeTarget(asked: string[]): AdminTarget {
  const unused = (): never => {
    throw new Error('not used by these tests');
  };
  return {
    id: 'a',
    describe: unused,
    listRoutes: unused,
    peers: unused,
    members: unused,
    stats: unused,
    drain: unused,
    async stream(topic) {
      asked.push(topic);
      if (topic === 'u:nostreams') return undefined;
      const v = VIEWS[topic];
      if (!v) throw new Error('the ranking is not known yet');
      return v;
    },
  };
}

async function adminServer(t: Test, asked: string[]): Promise<number> {
  const srv = await startAdminServer(fakeTarget(asked), { host: '127.0.0.1', port: 0, token: TOKEN, health: createHealth() });
  t.teardown(() => srv.close());
  return srv.port;
}

function getStream<T>(t: Test, port: number, req: object, token: string | null = TOKEN): Promise<T> {
  const c = new Admin(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.teardown(() => c.close());
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve, reject) => {
    c['GetStream']!(req, md, { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}

const failure = (p: Promise<unknown>): Promise<grpc.ServiceError> => p.then(
  () => { throw new Error('expected the call to fail'); },
  (e: grpc.ServiceError) => e,
);

t.test('streamTopic: exactly one valid id names the stream', async (t) => {
  t.same(streamTopic({ user: 'alice' }), { topic: 'u:alice' });
  t.same(streamTopic({ room: 'lobby', user: '' }), { topic: 'r:lobby' });
  t.same(streamTopic({ user: 'x'.repeat(64) }), { topic: `u:${'x'.repeat(64)}` }, '64 characters is the limit');
  t.match(streamTopic({}), { error: /exactly one of user and room/ });
  t.match(streamTopic({ user: 'a', room: 'b' }), { error: /exactly one of user and room/ });
  t.match(streamTopic({ user: 'x'.repeat(65) }), { error: /^user "x+" is not a valid id/ });
  t.match(streamTopic({ room: 'no spaces' }), { error: /^room "no spaces" is not a valid id \(\^\[A-Za-z0-9_\.:@-\]\{1,64\}\$\)/ });
});

t.test('GetStream over gRPC', async (t) => {
  const asked: string[] = [];
  const port = await adminServer(t, asked);

  t.test('a user stream: every replica row, unreachable ones with their reason', async (t) => {
    const r = await getStream<Record<string, unknown>>(t, port, { user: 'alice' });
    t.same(r, VIEWS['u:alice'], 'the view as the target gave it');
    t.equal(asked.at(-1), 'u:alice');
  });

  t.test('a room stream', async (t) => {
    const r = await getStream<{ stream: string; replicas: number; nodes: Array<{ node: string; messages: number }> }>(t, port, { room: 'lobby' });
    t.equal(r.stream, 'r:lobby');
    t.equal(r.replicas, 1);
    t.same(r.nodes.map((n) => [n.node, n.messages]), [['b', 5]]);
    t.equal(asked.at(-1), 'r:lobby');
  });

  t.test('INVALID_ARGUMENT when the request names no stream, two, or a bad id; the target is not asked', async (t) => {
    const before = asked.length;
    const cases: Array<[object, RegExp]> = [
      [{}, /exactly one of user and room/],
      [{ user: '', room: '' }, /exactly one of user and room/],
      [{ user: 'alice', room: 'lobby' }, /exactly one of user and room/],
      [{ user: 'no such user!' }, /user "no such user!" is not a valid id/],
      [{ room: 'r'.repeat(65) }, /room "r+" is not a valid id/],
      [{ room: 'lobby/1' }, /is not a valid id/],
    ];
    for (const [req, why] of cases) {
      const err = await failure(getStream(t, port, req));
      t.equal(err.code, grpc.status.INVALID_ARGUMENT, JSON.stringify(req));
      t.match(err.details, why, JSON.stringify(req));
    }
    t.equal(asked.length, before);
  });

  t.test('a missing or wrong token: UNAUTHENTICATED, before the request is looked at', async (t) => {
    const before = asked.length;
    for (const token of [null, 'nope']) {
      t.equal((await failure(getStream(t, port, { user: 'alice' }, token))).code, grpc.status.UNAUTHENTICATED, `token ${String(token)}`);
      t.equal((await failure(getStream(t, port, {}, token))).code, grpc.status.UNAUTHENTICATED, `bad request, token ${String(token)}`);
    }
    t.equal(asked.length, before);
  });

  t.test('a target that fails: UNAVAILABLE naming the stream and the cause', async (t) => {
    const err = await failure(getStream(t, port, { user: 'ghost' }));
    t.equal(err.code, grpc.status.UNAVAILABLE);
    t.equal(err.details, 'could not read stream u:ghost: the ranking is not known yet');
  });

  t.test('a node that keeps no streams: FAILED_PRECONDITION saying so (not "cannot reach")', async (t) => {
    const err = await failure(getStream(t, port, { user: 'nostreams' }));
    t.equal(err.code, grpc.status.FAILED_PRECONDITION);
    t.match(err.details, /keeps no message streams.*--history-size 0/);
  });
});

t.test('ctl stream: the text, --json and errors (runCtl in this process)', async (t) => {
  const port = await adminServer(t, []);
  const opts = { admin: `127.0.0.1:${port}`, token: TOKEN, json: false, timeoutMs: 5000 };
  const ctl = (args: string[], extra: { room?: string } = {}, json = false): Promise<string> => runCtl('stream', args, { ...opts, json }, extra);
  const rejection = (p: Promise<unknown>): Promise<CtlError> => p.then(() => { throw new Error('expected ctl to fail'); }, (e: CtlError) => e);

  t.test('a table: one row per replica, by rank; unreachable rows say why', async (t) => {
    const lines = (await ctl(['alice'])).split('\n');
    t.equal(lines[0], 'u:alice  replicas: 3');
    t.match(lines[1], /^rank\s+node\s+messages\s+oldest\s+newest\s+pending\s+handoff$/);
    t.match(lines[2], new RegExp(`^1\\s+a\\s+12\\s+${OLD}\\s+${NEW}\\s+2\\s+no$`));
    t.match(lines[3], /^2\s+b\s+\?\s+\?\s+\?\s+\?\s+no\s+unreachable: deadline exceeded$/);
    t.match(lines[4], /^3\s+c\s+0\s+-\s+-\s+0\s+in progress$/);
    t.equal(lines.length, 5);
    const column = lines[1]!.indexOf('messages');
    t.same(lines.slice(2).map((l) => l.slice(column).split(' ')[0]), ['12', '?', '0'], 'columns line up');
  });

  t.test('--room, and a stream with no live replica', async (t) => {
    t.match(await ctl([], { room: 'lobby' }), /^r:lobby  replicas: 1\nrank .*\n1\s+b\s+5\s/);
    t.equal(await ctl([], { room: 'empty' }), 'r:empty  replicas: 2\n(no live replica)');
  });

  t.test('--json: the answer as is', async (t) => {
    t.same(JSON.parse(await ctl(['alice'], {}, true)), VIEWS['u:alice']);
    t.same(JSON.parse(await ctl([], { room: 'lobby' }, true)), VIEWS['r:lobby']);
  });

  t.test('usage errors before any call; the server\'s reasons after one', async (t) => {
    for (const [args, extra] of [[[], {}], [['alice'], { room: 'lobby' }]] as const) {
      const e = await rejection(ctl([...args], extra));
      t.equal(e.code, 'USAGE', JSON.stringify([args, extra]));
      t.equal(e.message, 'usage: chatmesh ctl stream <user> | chatmesh ctl stream --room <room>');
    }
    t.match(await rejection(ctl(['no such user!'])), { code: 'INVALID_ARGUMENT', message: /^INVALID_ARGUMENT: user "no such user!" is not a valid id/ });
    t.match(await rejection(ctl(['ghost'])), { code: 'UNAVAILABLE', message: /could not read stream u:ghost: the ranking is not known yet/ });
    t.match(await rejection(runCtl('stream', ['alice'], { ...opts, token: 'nope' })), { code: 'UNAUTHENTICATED', message: /^unauthorized/ });
  });
});

t.test('ctl stream as a child process: the subcommand, --room, --json, exit codes', async (t) => {
  const port = await adminServer(t, []);
  type Ran = { code: number; stdout: string; stderr: string };
  const ctl = (...args: string[]): Promise<Ran> => run(process.execPath, [CLI, 'ctl', '--admin', `127.0.0.1:${port}`, ...args]).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (e: Ran) => e,
  );
  // Each process loads the whole CLI: a few, started at once.
  const [table, json, none, both, wrongToken] = await Promise.all([
    ctl('--token', TOKEN, 'stream', 'alice'),
    ctl('--token', TOKEN, '--json', 'stream', '--room', 'lobby'),
    ctl('--token', TOKEN, 'stream'),
    ctl('--token', TOKEN, 'stream', 'alice', '--room', 'lobby', '--json'),
    ctl('--token', 'bad', 'stream', 'alice'),
  ]);
  t.equal(table.code, 0);
  t.match(table.stdout, /^u:alice  replicas: 3\nrank\s+node\s+messages\s+oldest\s+newest\s+pending\s+handoff\n1\s+a\s+12\s/);
  t.same(JSON.parse(json.stdout), VIEWS['r:lobby'], '--json before the subcommand, --room after it');
  for (const [what, r] of [['neither user nor --room', none], ['both', both]] as const) {
    t.equal(r.code, 2, what);
    t.equal(r.stderr, 'chatmesh ctl: usage: chatmesh ctl stream <user> | chatmesh ctl stream --room <room>\n', what);
    t.equal(r.stdout, '', what);
  }
  t.equal(wrongToken.code, 1);
  t.match(wrongToken.stderr, /^chatmesh ctl: unauthorized/);
});

/** A stats source with no traffic: enough of a router and gateway for `createNodeStats`. */
function quietSources(): Parameters<typeof createNodeStats>[0] {
  const router = {
    stats: {}, hub: { userCount: 0, size: 0 }, directory: { size: 0 },
    table: { size: 0, pinnedSize: 0, maxEntries: 0, hits: 0, misses: 0, evictions: 0 },
    liveMembers: () => ['a'],
  } as unknown as MeshRouter;
  return {
    id: 'a', incarnation: 'i1', clock: systemClock, router, gateway: new GatewayStats(),
    transport: {} as MeshTransport, links: new Map(), draining: () => false,
  };
}

const STREAM_KEYS = ['streamAppends', 'storedMessages', 'storedStreams', 'mailboxPending', 'mailboxReplayed', 'resumeReplayed', 'historyReads',
  'replicatedWrites', 'replicationFailures', 'handoffStreams', 'handoffEntries', 'handoffsInProgress', 'storeTrimmed'] as const;

t.test('stream statistics: 0 without a stream layer, read from its counters and store totals with one', async (t) => {
  const none = createNodeStats(quietSources()).view();
  for (const k of STREAM_KEYS) t.equal(none[k], 0, `${k} without streams`);

  const stats = new StreamStats();
  let totals = { streams: 2, messages: 30, pending: 4, trimmed: 7 };
  const view = createNodeStats({ ...quietSources(), streams: { stats, totals: () => totals } }).view;
  Object.assign(stats, {
    appends: 11, replicatedWrites: 9, replicationFailures: 1, mailboxReplayed: 3, resumeReplayed: 5, historyReads: 6,
    handoffStreams: 2, handoffEntries: 20, handoffsInProgress: 1,
  });
  t.match(view(), {
    streamAppends: 11, storedMessages: 30, storedStreams: 2, mailboxPending: 4, mailboxReplayed: 3, resumeReplayed: 5, historyReads: 6,
    replicatedWrites: 9, replicationFailures: 1, handoffStreams: 2, handoffEntries: 20, handoffsInProgress: 1, storeTrimmed: 7,
  });
  totals = { streams: 1, messages: 3, pending: 0, trimmed: 40 };
  stats.historyReads++;
  t.match(view(), { storedMessages: 3, storedStreams: 1, mailboxPending: 0, storeTrimmed: 40, historyReads: 7 }, 'read anew on every view');
});

t.test('the registry and /metrics: every stream field, in Stats order, and the store latency histogram', async (t) => {
  const keys = STAT_FIELDS.map((f) => f.key);
  t.same(keys.slice(keys.indexOf('streamAppends'), keys.indexOf('storeTrimmed') + 1), [...STREAM_KEYS], 'appended in one run, in admin.proto order');
  const ACCOUNT_KEYS = ['storedStates', 'membershipsChanged', 'readMarks', 'typingForwarded', 'typingDropped'];
  t.same(keys.slice(keys.indexOf('storedStates')), ACCOUNT_KEYS, 'the account fields follow at the end');
  const def = protoLoader.loadSync(protoPath('admin.proto'), PROTO_LOADER_OPTIONS)['chatmesh.admin.v1.Stats'] as { type: { field: Array<{ name: string; number: number }> } };
  const fields = def.type.field.filter((f) => f.number >= 52).map((f) => [f.number, f.name]);
  t.same(fields, [...STREAM_KEYS, ...ACCOUNT_KEYS].map((k, i) => [52 + i, k]), 'proto fields 52.. carry the same names (camelCased by the loader)');

  const streams = new StreamStats();
  streams.appends = 4;
  const view = createNodeStats({ ...quietSources(), streams: { stats: streams, totals: () => ({ streams: 1, messages: 4, pending: 1, trimmed: 0 }) } }).view;
  const m = createMetrics((): NodeStatsView => view());
  const body = (await m.render()).body;
  const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(body)?.[1] ?? NaN);
  const expected: Record<string, number> = {
    chatmesh_stream_appends_total: 4, chatmesh_stored_messages: 4, chatmesh_stored_streams: 1, chatmesh_mailbox_pending: 1,
    chatmesh_mailbox_replayed_total: 0, chatmesh_resume_replayed_total: 0, chatmesh_history_reads_total: 0,
    chatmesh_replicated_writes_total: 0, chatmesh_replication_failures_total: 0, chatmesh_handoff_streams_total: 0,
    chatmesh_handoff_entries_total: 0, chatmesh_handoffs_in_progress: 0, chatmesh_store_trimmed_total: 0,
    chatmesh_store_latency_seconds_count: 0,
  };
  for (const [name, v] of Object.entries(expected)) t.equal(value(name), v, name);
  t.match(body, /^# HELP chatmesh_store_latency_seconds Time for a replicated write to be confirmed by every replica$/m);

  m.observeStore(3);
  m.observeStore(0.05);
  m.observeStore(-1); // a clock step back counts as 0, not as a negative time
  m.observeStore(4000);
  const after = (await m.render()).body;
  const bucket = (le: string): number => Number(new RegExp(`^chatmesh_store_latency_seconds_bucket\\{le="${le.replace('+', '\\+')}"\\} (\\S+)$`, 'm').exec(after)?.[1] ?? NaN);
  t.equal(bucket('0.0001'), 2, '0.05 ms and the clamped one in the smallest bucket (0.1 ms)');
  t.equal(bucket('0.0025'), 2);
  t.equal(bucket('0.005'), 3, '3 ms');
  t.equal(bucket('2.5'), 3, 'the largest bucket is 2.5 s');
  t.equal(bucket('+Inf'), 4, '4 s only in +Inf');
  t.match(after, /^chatmesh_store_latency_seconds_sum 4\.00305/m);
});
