/**
 * Consul discovery and its API wrapper. Runs against the fake agent, or against a real one when
 * CONSUL_HTTP_ADDR is set (then the fake-only tests are skipped); with a real agent that enforces
 * ACLs, set CONSUL_HTTP_TOKEN to a token with `service:write` on the `cm*` test services and
 * `service:read` + `node:read` (e.g. `service_prefix "cm" { policy = "write" }` plus
 * `node_prefix "" { policy = "read" }`).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import t from 'tap';
import { ConsulApiError, createConsulApi, parseAgentUrl, serviceCheckId } from '../src/discovery/consul-api.js';
import { ConsulStatus, failureOf } from '../src/discovery/consul-status.js';
import { ConsulDiscoveryError, createConsulDiscovery, createWatchLimiter, nextWatchIndex } from '../src/discovery/index.js';
import type { ConsulDiscoveryOptions, Discovery, DiscoveryLogger, DiscoveryStatus, PeerTarget, SleepFn } from '../src/discovery/index.js';
import { serviceIdentityRules, startFakeConsul } from './consul/fake-consul.js';
import type { FakeConsul } from './consul/fake-consul.js';

const REAL = process.env['CONSUL_HTTP_ADDR'];
const fakeOnly = REAL === undefined ? false : 'needs the fake agent (CONSUL_HTTP_ADDR is set)';
/** The real agent's token, if any; the fake (without `acl`) ignores tokens. */
const REAL_TOKEN = REAL === undefined ? undefined : process.env['CONSUL_HTTP_TOKEN'] || undefined;
const withToken = REAL_TOKEN === undefined ? {} : { token: REAL_TOKEN };

type T = Pick<typeof t, 'teardown' | 'fail' | 'type' | 'equal'>;

async function agentFor(t: T): Promise<{ url: string; fake: FakeConsul | undefined }> {
  if (REAL !== undefined) return { url: REAL, fake: undefined };
  const fake = await startFakeConsul();
  t.teardown(() => fake.close());
  return { url: fake.url, fake };
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface LogLine {
  level: string;
  obj: Record<string, unknown>;
  msg: string | undefined;
}
function captureLogger(): { logger: DiscoveryLogger; lines: LogLine[]; count(level: string, code?: string): number } {
  const lines: LogLine[] = [];
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj: obj as Record<string, unknown>, msg });
    };
  return {
    logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
    lines,
    count: (level, code) => lines.filter((l) => l.level === level && (code === undefined || l.obj['code'] === code)).length,
  };
}

/** A free port nothing listens on. */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

let nextPort = 17_000;
function makeNode(t: T, url: string, serviceName: string, id: string, extra: Partial<ConsulDiscoveryOptions> = {}): Discovery {
  const meshPort = nextPort++;
  const d = createConsulDiscovery({
    agentUrl: url,
    serviceName,
    self: { id, address: '127.0.0.1', meshPort, httpPort: meshPort + 1000, adminPort: meshPort + 2000, incarnation: `inc-${id}` },
    ttlMs: 3_000,
    waitMs: 2_000,
    retryMinMs: 20,
    retryMaxMs: 200,
    ...withToken,
    ...extra,
  });
  t.teardown(() => d.stop());
  return d;
}

const ids = (ts: readonly PeerTarget[]): string[] => ts.map((x) => x.id ?? '?').sort();
const uniq = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;

async function rejectsCode(t: T, p: Promise<unknown>, code: string, what: string): Promise<ConsulApiError | undefined> {
  try {
    await p;
    t.fail(`${what}: expected ${code}, resolved`);
    return undefined;
  } catch (err) {
    t.type(err, ConsulApiError, what);
    t.equal((err as ConsulApiError).code, code, `${what}: ${code}`);
    return err as ConsulApiError;
  }
}

// ---------------------------------------------------------------- the API wrapper

t.test('consul-api: register, a new TTL check is critical until passed, blocking query, deregister, 404s', async (t) => {
  const { url } = await agentFor(t);
  const api = createConsulApi({ agentUrl: url, ...withToken });
  t.teardown(() => api.destroy());
  const name = uniq('cmtest');
  const id = `${name}-1`;

  const empty = await api.healthService({ service: name, passing: true });
  t.same(empty.entries, []);
  t.type(empty.index, 'bigint');
  t.ok(empty.index >= 1n, 'X-Consul-Index >= 1');

  await api.register({ id, name, address: '127.0.0.1', port: 7000, tags: ['t1'], meta: { k: 'v' }, check: { ttlMs: 10_000, deregisterCriticalServiceAfterMs: 60_000 } });
  // A real agent syncs to the catalog asynchronously (anti-entropy), so reads after writes poll.
  await waitFor('the registration in the catalog', async () => (await api.healthService({ service: name })).entries.length === 1);
  const all = await api.healthService({ service: name });
  t.equal(all.entries.length, 1);
  t.match(all.entries[0]!.Service, { ID: id, Service: name, Port: 7000, Address: '127.0.0.1', Meta: { k: 'v' }, Tags: ['t1'] });
  const own = all.entries[0]!.Checks.find((c) => c.CheckID === serviceCheckId(id));
  t.equal(own?.Status, 'critical', 'a new TTL check starts critical');
  t.ok(all.entries[0]!.Checks.some((c) => c.CheckID === 'serfHealth'), "the node's serfHealth check is there");
  t.same((await api.healthService({ service: name, passing: true })).entries, [], 'not in ?passing until passed');

  const before = await api.healthService({ service: name, passing: true });
  const blocked = api.healthService({ service: name, passing: true, index: before.index, waitMs: 5_000 });
  const started = Date.now();
  await api.passCheck(serviceCheckId(id), { note: 'up' });
  const after = await blocked;
  t.ok(Date.now() - started < 2_000, 'the blocking query returned on the change');
  t.ok(after.index > before.index, 'with a higher index');
  t.same(after.entries.map((e) => e.Service.ID), [id], 'passing now');

  const waitStart = Date.now();
  const idle = await api.healthService({ service: name, passing: true, index: after.index, waitMs: 300 });
  t.ok(Date.now() - waitStart >= 250, 'an unchanged blocking query returns at wait');
  t.equal(idle.index, after.index);

  await api.failCheck(serviceCheckId(id));
  await waitFor('a failed check to drop out of ?passing', async () => (await api.healthService({ service: name, passing: true })).entries.length === 0);

  await api.deregister(id);
  await waitFor('the deregistration', async () => (await api.healthService({ service: name })).entries.length === 0);
  const nf = await rejectsCode(t, api.deregister(id), 'CONSUL_NOT_FOUND', 'deregister of an unknown id');
  t.equal(nf?.statusCode, 404);
  t.ok(nf?.cause, 'the original error is kept as cause');
  t.equal(nf?.operation, 'agent.service.deregister');
  await rejectsCode(t, api.passCheck(serviceCheckId(id)), 'CONSUL_NOT_FOUND', 'pass of an unknown check');
});

t.test('consul-api: TTL expiry drops a service out of ?passing', async (t) => {
  const { url } = await agentFor(t);
  const api = createConsulApi({ agentUrl: url, ...withToken });
  t.teardown(() => api.destroy());
  const name = uniq('cmttl');
  await api.register({ id: name, name, address: '127.0.0.1', port: 7000, check: { ttlMs: 1_000 } });
  t.teardown(() => api.deregister(name).catch(() => {}));
  await api.passCheck(serviceCheckId(name));
  await waitFor('the pass', async () => (await api.healthService({ service: name, passing: true })).entries.length === 1);
  await waitFor('the TTL to expire', async () => (await api.healthService({ service: name, passing: true })).entries.length === 0, 4_000);
  const entry = (await api.healthService({ service: name })).entries[0];
  t.equal(entry?.Checks.find((c) => c.CheckID === serviceCheckId(name))?.Status, 'critical');
});

t.test('consul-api: abort, unreachable, timeout, bad response, bad URL', async (t) => {
  const { url } = await agentFor(t);
  const api = createConsulApi({ agentUrl: url, ...withToken });
  t.teardown(() => api.destroy());
  const name = uniq('cmabort');
  const { index } = await api.healthService({ service: name });
  const ac = new AbortController();
  const blocked = api.healthService({ service: name, index, waitMs: 10_000, signal: ac.signal });
  setImmediate(() => ac.abort());
  await rejectsCode(t, blocked, 'CONSUL_ABORTED', 'aborting a blocking query');
  await rejectsCode(t, api.healthService({ service: name, signal: ac.signal }), 'CONSUL_ABORTED', 'an already aborted signal');

  const closed = createConsulApi({ agentUrl: `127.0.0.1:${await freePort()}` });
  t.teardown(() => closed.destroy());
  await rejectsCode(t, closed.passCheck('x'), 'CONSUL_UNREACHABLE', 'nothing listening');

  const silent = net.createServer(() => {}); // accepts, never answers
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    silent.close();
  });
  const slow = createConsulApi({ agentUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, requestTimeoutMs: 150 });
  t.teardown(() => slow.destroy());
  await rejectsCode(t, slow.register({ id: 'x', name: 'x', address: 'a', port: 1 }), 'CONSUL_TIMEOUT', 'an agent that never answers');

  const liar = http.createServer((req, res) => {
    if (req.url?.includes('badentry') === true) res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': '3' }).end('[{"Node":{},"Service":{},"Checks":[]}]');
    else if (req.url?.includes('noshape') === true) res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': '3' }).end('[1]');
    else if (req.url?.includes('noindex') === true) res.writeHead(200, { 'content-type': 'application/json' }).end('[]');
    else if (req.url?.includes('notarray') === true) res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': '3' }).end('{"a":1}');
    else if (req.url?.includes('garbage') === true) res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': '3' }).end('{nope');
    else res.writeHead(500, { 'content-type': 'text/plain' }).end('rpc error');
  });
  await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    liar.closeAllConnections();
    liar.close();
  });
  const bad = createConsulApi({ agentUrl: `http://127.0.0.1:${(liar.address() as AddressInfo).port}` });
  t.teardown(() => bad.destroy());
  await rejectsCode(t, bad.healthService({ service: 'noindex' }), 'CONSUL_BAD_RESPONSE', 'no X-Consul-Index');
  await rejectsCode(t, bad.healthService({ service: 'notarray' }), 'CONSUL_BAD_RESPONSE', 'body not an array');
  await rejectsCode(t, bad.healthService({ service: 'badentry' }), 'CONSUL_BAD_RESPONSE', 'entry without Service.ID');
  await rejectsCode(t, bad.healthService({ service: 'noshape' }), 'CONSUL_BAD_RESPONSE', 'entry not an object');
  await rejectsCode(t, bad.healthService({ service: 'garbage' }), 'CONSUL_BAD_RESPONSE', 'body not JSON');
  const e500 = await rejectsCode(t, bad.deregister('x'), 'CONSUL_HTTP_ERROR', 'HTTP 500');
  t.equal(e500?.statusCode, 500);
  await rejectsCode(t, bad.healthService({ service: '' }), 'CONSUL_INVALID_ARGUMENT', 'empty service name');

  t.same(parseAgentUrl('127.0.0.1:8500'), { host: '127.0.0.1', port: 8500, secure: false });
  t.same(parseAgentUrl('https://consul.local'), { host: 'consul.local', port: 443, secure: true });
  t.same(parseAgentUrl('http://[::1]:8501'), { host: '::1', port: 8501, secure: false });
  t.same(parseAgentUrl('consul'), { host: 'consul', port: 8500, secure: false });
  for (const u of ['ftp://x:1', 'http://x:1/v1', 'http://', '::::']) {
    t.throws(() => parseAgentUrl(u), { code: 'CONSUL_INVALID_ARGUMENT' }, `"${u}" is rejected`);
  }
  t.throws(() => createConsulApi({ requestTimeoutMs: 0 }), { code: 'CONSUL_INVALID_ARGUMENT' });
});

// ---------------------------------------------------------------- discovery

t.test('discovery: options are validated at construction', async (t) => {
  const self = { id: 'n1', address: '127.0.0.1', meshPort: 7000, httpPort: 8080, adminPort: 9090, incarnation: 'i1' };
  const bad: Partial<ConsulDiscoveryOptions>[] = [
    { ttlMs: 0 },
    { ttlMs: 1_000, passIntervalMs: 1_000 },
    { waitMs: 700_000 },
    { retryMinMs: 500, retryMaxMs: 100 },
    { serviceName: 'bad name' },
    { self: { ...self, id: '' } },
    { self: { ...self, meshPort: 0 } },
    { self: { ...self, httpPort: 70_000 } },
    { self: { ...self, address: '' } },
  ];
  for (const b of bad) {
    t.throws(() => createConsulDiscovery({ self, ...b }), { code: 'DISCOVERY_INVALID_OPTIONS', name: 'ConsulDiscoveryError' }, JSON.stringify(b));
  }
  const d = createConsulDiscovery({ self, logger: pino({ enabled: false }) }); // a pino logger fits DiscoveryLogger
  t.same(d.targets(), [], 'no targets before start, and no I/O');
  await d.stop();
  await t.rejects(d.start(), { code: 'DISCOVERY_STOPPED' });
  t.type(new ConsulDiscoveryError('DISCOVERY_STOPPED', 'x'), Error);
});

t.test('discovery: two nodes see each other join and leave; self excluded; meta published', async (t) => {
  const { url, fake } = await agentFor(t);
  const name = uniq('cmjoin');
  const log = captureLogger();
  const a = makeNode(t, url, name, `${name}-a`, { logger: log.logger });
  const b = makeNode(t, url, name, `${name}-b`);
  const seenByA: string[][] = [];
  a.onChange((ts) => seenByA.push(ids(ts)));
  a.onChange(() => {
    throw new Error('a broken listener');
  });

  await a.start();
  t.same(a.targets(), [], 'alone: itself is excluded');
  await t.rejects(a.start(), { code: 'DISCOVERY_ALREADY_STARTED' });
  await b.start();
  await waitFor('A to see B', () => a.targets().length === 1);
  await waitFor('B to see A', () => b.targets().length === 1);

  const target = a.targets()[0]!;
  t.match(target, { id: `${name}-b`, incarnation: `inc-${name}-b`, meta: { node_id: `${name}-b`, incarnation: `inc-${name}-b` } });
  t.match(target.address, /^127\.0\.0\.1:\d+$/);
  const port = Number(target.address.split(':')[1]);
  t.same(target.meta, { admin_port: String(port + 2000), http_port: String(port + 1000), incarnation: `inc-${name}-b`, node_id: `${name}-b` });
  t.ok(log.count('error', 'DISCOVERY_LISTENER_FAILED') >= 1, 'a throwing listener is logged, the others still run');

  if (fake !== undefined) {
    const regs = fake.services().filter((s) => s.name === name);
    t.same(regs.map((s) => s.id), [`${name}-a`, `${name}-b`]);
    t.match(regs[0], { address: '127.0.0.1', checks: [{ checkId: `service:${name}-a`, status: 'passing', ttlMs: 3_000, deregisterCriticalServiceAfterMs: 60_000 }] });
  }

  await b.stop();
  await waitFor('A to see B leave', () => a.targets().length === 0);
  t.same(seenByA, [[`${name}-b`], []], 'complete lists: B joined, then left');
});

t.test('discovery: stop() deregisters; deregister() leaves but keeps watching', async (t) => {
  const { url } = await agentFor(t);
  const api = createConsulApi({ agentUrl: url, ...withToken });
  t.teardown(() => api.destroy());
  const name = uniq('cmleave');
  const registered = async (): Promise<string[]> => (await api.healthService({ service: name })).entries.map((e) => e.Service.ID).sort();
  const a = makeNode(t, url, name, `${name}-a`);
  const b = makeNode(t, url, name, `${name}-b`);
  await Promise.all([a.start(), b.start()]);
  await waitFor('both registered and passing', async () => (await api.healthService({ service: name, passing: true })).entries.length === 2);

  await Promise.all([a.deregister(), a.deregister()]);
  await a.deregister();
  await waitFor('deregister() to remove A (idempotent)', async () => (await registered()).join() === `${name}-b`);
  await waitFor('B to see A leave', () => b.targets().length === 0);

  const c = makeNode(t, url, name, `${name}-c`);
  await c.start();
  await waitFor('A, though deregistered, still sees C join', () => ids(a.targets()).join() === [`${name}-b`, `${name}-c`].sort().join());
  await waitFor('C registered', async () => (await registered()).length === 2);
  t.same(await registered(), [`${name}-b`, `${name}-c`], 'A did not re-register itself');

  await Promise.all([b.stop(), b.stop()]);
  await b.stop();
  await waitFor('stop() to deregister B (idempotent)', async () => (await registered()).join() === `${name}-c`);
  await t.rejects(b.start(), { code: 'DISCOVERY_STOPPED' });
});

t.test('discovery: a peer whose check fails drops out, and comes back on its next pass', async (t) => {
  const { url } = await agentFor(t);
  const api = createConsulApi({ agentUrl: url, ...withToken });
  t.teardown(() => api.destroy());
  const name = uniq('cmfail');
  const a = makeNode(t, url, name, `${name}-a`);
  const b = makeNode(t, url, name, `${name}-b`);
  await Promise.all([a.start(), b.start()]);
  await waitFor('A to see B', () => a.targets().length === 1);
  await api.failCheck(serviceCheckId(`${name}-b`));
  await waitFor('A to drop B (not passing)', () => a.targets().length === 0);
  await waitFor("B's next TTL pass to bring it back", () => a.targets().length === 1, 3_000);
  t.same(ids(a.targets()), [`${name}-b`]);
});

t.test('discovery: entries become targets: node-address fallback, IPv6, unusable ports, shared addresses', async (t) => {
  const { url, fake } = await agentFor(t);
  const api = createConsulApi({ agentUrl: url, ...withToken });
  t.teardown(() => api.destroy());
  const name = uniq('cmshape');
  const foreign = async (id: string, address: string, port: number, meta: Record<string, string> = {}): Promise<void> => {
    await api.register({ id, name, address, port, meta, check: { ttlMs: 60_000, status: 'passing' } });
    t.teardown(() => api.deregister(id).catch(() => {}));
  };
  const a = makeNode(t, url, name, `${name}-a`);
  const calls: string[][] = [];
  const off = a.onChange((ts) => calls.push(ts.map((x) => x.address)));
  await a.start();
  await foreign('v6', '::1', 7005, { incarnation: 'x' });
  await foreign('no-port', '10.0.0.9', 0);
  await foreign('dup-old', '10.0.0.7', 7007);
  await foreign('dup-new', '10.0.0.7', 7007);
  await foreign('node-addr', '', 7008);
  await waitFor('the three usable registrations', () => a.targets().length === 3);
  const byId = new Map(a.targets().map((x) => [x.id, x]));
  t.match(byId.get('v6'), { address: '[::1]:7005', incarnation: 'x' }, 'IPv6 is bracketed');
  t.notOk(byId.has('no-port'), 'port 0 is skipped');
  t.equal(byId.get('dup-new')?.address, '10.0.0.7:7007', 'two registrations on one address: the newer wins');
  t.notOk(byId.has('dup-old'));
  t.match(byId.get('node-addr')?.address, fake === undefined ? /:7008$/ : '127.0.0.1:7008', 'an empty service Address means the node address');
  t.equal(byId.get('dup-new')?.incarnation, undefined, 'no incarnation meta: none reported');
  const before = calls.length;
  off();
  await api.deregister('v6');
  await waitFor('v6 to leave', () => a.targets().length === 2);
  t.equal(calls.length, before, 'an unsubscribed listener is not called');
});

t.test('discovery: agent restart (state lost) keeps the last targets during the outage, then re-registers', { skip: fakeOnly }, async (t) => {
  const { url, fake } = await agentFor(t);
  if (fake === undefined) return;
  const name = uniq('cmrestart');
  const la = captureLogger();
  const lb = captureLogger();
  const a = makeNode(t, url, name, `${name}-a`, { logger: la.logger });
  const b = makeNode(t, url, name, `${name}-b`, { logger: lb.logger });
  await Promise.all([a.start(), b.start()]);
  await waitFor('A and B to see each other', () => a.targets().length === 1 && b.targets().length === 1);

  let down = false;
  const emittedWhileDown: string[][] = [];
  a.onChange((ts) => {
    if (down) emittedWhileDown.push(ids(ts));
  });
  await fake.restart({
    whileDown: async () => {
      down = true;
      await waitFor('both nodes to notice the outage and retry', () => la.count('debug', 'CONSUL_UNREACHABLE') >= 3 && lb.count('debug', 'CONSUL_UNREACHABLE') >= 3);
      t.same(ids(a.targets()), [`${name}-b`], 'A keeps its last known targets while the agent is unreachable');
      t.same(ids(b.targets()), [`${name}-a`], 'so does B');
      t.equal(la.count('warn', 'CONSUL_UNREACHABLE'), 1, 'one warning for the outage, the retries at debug');
      t.match(a.status(), { healthy: false, code: 'CONSUL_UNREACHABLE', reason: /unreachable/ });
      down = false;
    },
  });
  t.same(emittedWhileDown, [], 'no change (no empty list) was emitted because of the errors');
  t.same(fake.services(), [], 'the agent came back empty');

  await waitFor('both to re-register with passing checks', () => {
    const s = fake.services();
    return s.length === 2 && s.every((x) => x.checks.every((c) => c.status === 'passing'));
  });
  await waitFor('A and B to see each other again', () => ids(a.targets()).join() === `${name}-b` && ids(b.targets()).join() === `${name}-a`);
  t.ok(la.lines.some((l) => l.msg?.includes('re-registering') === true), 'A re-registered after a TTL pass answered 404');
  await waitFor('A to be healthy again', () => a.status().healthy);
  t.equal(la.lines.filter((l) => l.msg === 'consul: reachable again').length, 1, 'A logged the recovery once');
  t.equal(la.count('warn', 'CONSUL_UNREACHABLE'), 1, 'and no more warnings');
  t.match(a.status(), { healthy: true });
});

t.test('discovery: agent down at start; start() resolves after the first failure and registers once it is up', { skip: fakeOnly }, async (t) => {
  const port = await freePort();
  const name = uniq('cmlate');
  const log = captureLogger();
  const a = makeNode(t, `http://127.0.0.1:${port}`, name, `${name}-a`, { logger: log.logger });
  await a.start();
  t.same(a.targets(), []);
  t.ok(log.count('warn', 'CONSUL_UNREACHABLE') >= 1, 'the failure is logged with its code');
  const fake = await startFakeConsul({ port });
  t.teardown(() => fake.close());
  await waitFor('A to register once the agent is up', () => fake.services().some((s) => s.id === `${name}-a` && s.checks[0]?.status === 'passing'));
});

t.test('discovery: back-off is exponential, capped, jittered; stop() with the agent gone still ends', async (t) => {
  const delays: number[] = [];
  // Record each delay and advance a fake clock by it (so the watch's rate limit, fed that clock,
  // has refilled by the next query); return at once for the first ones, then park until stop().
  let clock = 0;
  const sleep: SleepFn = (ms, signal) => {
    delays.push(ms);
    clock += ms;
    if (delays.length < 14) return new Promise((r) => setImmediate(r));
    return new Promise((r) => signal.addEventListener('abort', () => r(), { once: true }));
  };
  const log = captureLogger();
  const d = makeNode(t, `http://127.0.0.1:${await freePort()}`, 'cmbackoff', 'n1', {
    retryMinMs: 100,
    retryMaxMs: 400,
    sleep,
    now: () => clock,
    watchIntervalMs: 50,
    random: () => 1,
    logger: log.logger,
  });
  await d.start();
  await waitFor('both loops to back off a few times', () => delays.length >= 14);
  t.ok(delays.every((ms) => [100, 200, 400].includes(ms)), `delays double and cap at retryMaxMs: ${delays.join(',')}`);
  t.ok(delays.includes(400), 'the cap is reached');
  await d.stop();
  t.equal(log.lines.filter((l) => l.level === 'warn' && l.msg?.startsWith('consul: agent unreachable') === true).length, 1, 'one warning, however many retries');
  t.ok(log.count('debug', 'CONSUL_UNREACHABLE') >= 13, 'each retry at debug');
  t.notOk(log.lines.some((l) => 'err' in l.obj), 'no error object (no stack) in any line');
  t.ok(log.lines.some((l) => l.msg?.includes('deregistration failed at stop') === true), 'a failed deregistration at stop is logged, not thrown');

  const jitter: number[] = [];
  let clock2 = 0;
  const d2 = makeNode(t, `http://127.0.0.1:${await freePort()}`, 'cmbackoff', 'n2', {
    retryMinMs: 100,
    retryMaxMs: 400,
    random: () => 0,
    now: () => clock2,
    watchIntervalMs: 50,
    sleep: (ms, signal) => {
      jitter.push(ms);
      clock2 += ms;
      if (jitter.length < 6) return new Promise((r) => setImmediate(r));
      return new Promise((r) => signal.addEventListener('abort', () => r(), { once: true }));
    },
  });
  await d2.start();
  await waitFor('second node to back off', () => jitter.length >= 6);
  t.ok(jitter.every((ms) => [50, 100, 200].includes(ms)), `random 0 halves each delay (equal jitter): ${jitter.join(',')}`);
  await d2.stop();
});

t.test('discovery: a clean start and stop log no warnings', async (t) => {
  const { url } = await agentFor(t);
  const name = uniq('cmdestroy');
  const log = captureLogger();
  const a = makeNode(t, url, name, `${name}-a`, { logger: log.logger });
  await a.start();
  const warnsBefore = log.count('warn');
  await a.stop();
  t.equal(log.count('warn'), warnsBefore, 'a clean stop logs no warnings');
  t.same(a.targets(), [], 'alone before and after');
});

// ---------------------------------------------------------------- blocking-query rules

t.test('blocking-query rules: next index (reset when it goes backwards, at least 1) and the token bucket', async (t) => {
  t.equal(nextWatchIndex(0n, 17n), 17n, 'first answer: block on its index');
  t.equal(nextWatchIndex(17n, 17n), 17n, 'unchanged (wait elapsed): same index');
  t.equal(nextWatchIndex(17n, 30n), 30n);
  t.equal(nextWatchIndex(30n, 12n), 0n, 'went backwards: start over without blocking');
  t.equal(nextWatchIndex(0n, 0n), 1n, 'an index of 0 would never block: 1');
  t.equal(nextWatchIndex(5n, 0n), 0n, '0 after a real index went backwards too');

  let now = 0;
  const l = createWatchLimiter({ burst: 2, intervalMs: 1_000, now: () => now });
  t.same([l.take(), l.take()], [0, 0], 'a burst of 2 goes at once');
  t.equal(l.take(), 1_000, 'then a full interval');
  now += 400;
  t.equal(l.take(), 600, 'what is left of it');
  now += 600;
  t.equal(l.take(), 0);
  now += 10_000;
  t.same([l.take(), l.take(), l.take()], [0, 0, 1_000], 'a long quiet spell refills the burst, not more');
  now -= 5_000;
  t.equal(l.take(), 1_000, 'a clock stepping back refills nothing');
  t.throws(() => createWatchLimiter({ burst: 0, intervalMs: 1, now: () => 0 }), RangeError);
  t.throws(() => createWatchLimiter({ burst: 1.5, intervalMs: 1, now: () => 0 }), RangeError);
  t.throws(() => createWatchLimiter({ burst: 1, intervalMs: 0, now: () => 0 }), RangeError);
});

t.test('discovery: a watch whose index moves on every query is rate-limited (burst 2, then one per interval); index rules applied', async (t) => {
  // An agent in churn: every health query answers at once with the next index of a script.
  const script = [10n, 11n, 12n, 5n, 0n, 20n, 21n, 22n];
  const seen: { index: string | null; at: number }[] = [];
  let clock = 0;
  const churn = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (!url.pathname.startsWith('/v1/health/service/')) return void res.writeHead(200).end();
    const i = seen.length;
    seen.push({ index: url.searchParams.get('index'), at: clock });
    if (i >= script.length) return; // hold the query; stop() aborts it
    res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': String(script[i]) }).end('[]');
  });
  await new Promise<void>((r) => churn.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    churn.closeAllConnections();
    churn.close();
  });
  const sleeps: number[] = [];
  const d = makeNode(t, `http://127.0.0.1:${(churn.address() as AddressInfo).port}`, 'cmchurn', 'n1', {
    ttlMs: 600_000, // the heartbeat sleeps 200 s between passes: parked below
    watchBurst: 2,
    watchIntervalMs: 1_000,
    now: () => clock,
    sleep: (ms, signal) => {
      if (ms >= 200_000) return new Promise((r) => signal.addEventListener('abort', () => r(), { once: true }));
      sleeps.push(ms);
      clock += ms;
      return new Promise((r) => setImmediate(r));
    },
  });
  await d.start();
  await waitFor('every scripted answer to be consumed', () => seen.length > script.length);
  t.same(
    seen.map((x) => x.at),
    [0, 0, 1_000, 2_000, 3_000, 4_000, 5_000, 6_000, 7_000],
    'two queries back to back, then at most one per second (not a busy loop)',
  );
  t.same(sleeps, [1_000, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000], 'only the rate limit slept');
  t.same(
    seen.map((x) => x.index),
    [null, '10', '11', '12', null, '1', '20', '21', '22'],
    'blocks on each index; 5 < 12 starts over without an index; 0 becomes 1',
  );
  t.match(d.status(), { healthy: true });
});

// ---------------------------------------------------------------- ACL token and status

type Fake = Awaited<ReturnType<typeof startFakeConsul>>;

async function aclAgent(t: T, name: string, tokens: string[] = []): Promise<Fake> {
  const fake = await startFakeConsul({ acl: { defaultPolicy: 'deny', tokens: tokens.map((secretId) => ({ secretId, rules: serviceIdentityRules(name) })) } });
  t.teardown(() => fake.close());
  return fake;
}

function statusLog(d: Discovery): DiscoveryStatus[] {
  const changes: DiscoveryStatus[] = [];
  d.onStatusChange((st) => changes.push(st));
  return changes;
}

t.test('discovery: the ACL token goes with every call (register, passes, blocking queries, deregistration)', { skip: fakeOnly }, async (t) => {
  const name = uniq('cmacl');
  const fake = await aclAgent(t, name, ['tok-a', 'tok-b']);
  const a = makeNode(t, fake.url, name, `${name}-a`, { token: 'tok-a', ttlMs: 600, waitMs: 200 });
  const b = makeNode(t, fake.url, name, `${name}-b`, { token: 'tok-b', ttlMs: 600, waitMs: 200 });
  const changes = [...[a, b].map(statusLog)];
  await Promise.all([a.start(), b.start()]);
  await waitFor('A and B to see each other (their tokens may read)', () => a.targets().length === 1 && b.targets().length === 1);
  const blocking = (tok: string): number => fake.requests().filter((r) => r.token === tok && r.path.startsWith('/v1/health/service/') && /[?&]index=[1-9]/.test(r.query)).length;
  const passes = (tok: string): number => fake.requests().filter((r) => r.token === tok && r.path.startsWith('/v1/agent/check/pass/')).length;
  await waitFor('a few TTL passes and blocking queries of each', () => ['tok-a', 'tok-b'].every((x) => blocking(x) >= 3 && passes(x) >= 3));
  await b.stop();
  await waitFor('A to see B leave', () => a.targets().length === 0);
  await a.stop();

  const reqs = fake.requests();
  t.same(reqs.filter((r) => r.token !== 'tok-a' && r.token !== 'tok-b'), [], 'no call went without the token');
  t.same(reqs.filter((r) => r.status === 403), [], 'and none was refused');
  for (const tok of ['tok-a', 'tok-b']) {
    const paths = new Set(reqs.filter((r) => r.token === tok).map((r) => r.path.replace(/\/[^/]*$/, '/:x')));
    t.same([...paths].sort(), ['/v1/agent/check/pass/:x', '/v1/agent/service/deregister/:x', '/v1/agent/service/:x', '/v1/health/service/:x'].sort(), `${tok}: every kind of call`);
  }
  t.same(fake.services(), [], 'both deregistered with their token');
  t.same(changes, [[], []], 'healthy throughout: no status change');
});

t.test('discovery: no token under default deny -> unhealthy, one warning however many retries; healthy once the ACL allows it', { skip: fakeOnly }, async (t) => {
  const name = uniq('cmdeny');
  const fake = await aclAgent(t, name);
  const log = captureLogger();
  const d = makeNode(t, fake.url, name, `${name}-a`, { logger: log.logger, retryMinMs: 10, retryMaxMs: 40 });
  const changes = statusLog(d);
  await d.start();
  t.match(d.status(), { healthy: false, code: 'CONSUL_PERMISSION_DENIED', reason: /403.*anonymous token lacks permission 'service:write'.*--consul-token \/ CONSUL_HTTP_TOKEN/ });
  await waitFor('several registration retries', () => log.lines.filter((l) => l.level === 'debug' && l.msg === 'consul registration failed; retrying').length >= 6);
  const warns = log.lines.filter((l) => l.level === 'warn');
  t.equal(warns.length, 1, 'exactly one warning over all those retries');
  t.equal(warns[0]?.msg, 'consul: permission denied (403) — check --consul-token / CONSUL_HTTP_TOKEN');
  t.match(warns[0]?.obj, { code: 'CONSUL_PERMISSION_DENIED', operation: 'agent.service.register', detail: /^Permission denied: anonymous token/ });
  t.notOk(log.lines.some((l) => 'err' in l.obj), 'no error object (no stack) in any line');
  t.same(d.targets(), [], 'the watch itself works (filtered to nothing), discovery keeps running');
  t.equal(changes.length, 1, 'one status change');

  fake.acl.setDefaultPolicy('allow');
  await waitFor('healthy once the ACL allows it', () => d.status().healthy);
  await waitFor('registered', () => fake.services().some((x) => x.id === `${name}-a` && x.checks[0]?.status === 'passing'));
  t.equal(log.lines.filter((l) => l.msg === 'consul: reachable again').length, 1, 'one info line for the recovery');
  t.match(log.lines.find((l) => l.msg === 'consul: reachable again')?.obj, { previousCode: 'CONSUL_PERMISSION_DENIED' });
  t.equal(log.count('warn'), 1, 'no new warning');
  t.same(changes.map((c) => c.healthy), [false, true]);
});

t.test('discovery: an unknown token ("ACL not found") fails both loops with one warning; fixed token -> healthy', { skip: fakeOnly }, async (t) => {
  const name = uniq('cmnotfound');
  const fake = await aclAgent(t, name);
  const log = captureLogger();
  const d = makeNode(t, fake.url, name, `${name}-a`, { token: 'not-yet', logger: log.logger, retryMinMs: 10, retryMaxMs: 40 });
  await d.start();
  t.match(d.status(), { healthy: false, code: 'CONSUL_PERMISSION_DENIED', reason: /ACL not found/ });
  await waitFor('both loops to retry', () => log.count('debug', 'CONSUL_PERMISSION_DENIED') >= 8 && log.lines.some((l) => l.obj['operation'] === 'health.service'));
  t.equal(log.count('warn'), 1, 'one warning for both failing loops');
  fake.acl.addToken({ secretId: 'not-yet', rules: serviceIdentityRules(name) });
  await waitFor('healthy with the token now known', () => d.status().healthy);
  await waitFor('registered', () => fake.services().some((x) => x.id === `${name}-a`));
  t.equal(log.count('warn'), 1);
});

t.test('discovery: a token that may write but not read: Consul hides the peers (200, filtered) -> unhealthy, one warning', { skip: fakeOnly }, async (t) => {
  const name = uniq('cmblind');
  const fake = await aclAgent(t, name, ['peer-token']);
  fake.acl.addToken({ secretId: 'write-only', rules: [{ resource: 'service', name, policy: 'write' }] });
  const peer = makeNode(t, fake.url, name, `${name}-peer`, { token: 'peer-token' });
  await peer.start();
  const log = captureLogger();
  const d = makeNode(t, fake.url, name, `${name}-blind`, { token: 'write-only', logger: log.logger });
  await d.start();
  await waitFor('registered (it may write)', () => fake.services().some((x) => x.id === `${name}-blind` && x.checks[0]?.status === 'passing'));
  t.match(d.status(), { healthy: false, code: 'CONSUL_ACL_FILTERED', reason: /hid .* entries the token may not read.*--consul-token/ });
  t.same(d.targets(), [], 'it sees no peer although one is there');
  t.same(log.lines.filter((l) => l.level === 'warn').map((l) => l.msg), ['consul: peers hidden by ACLs (the token needs service:read and node:read) — check --consul-token / CONSUL_HTTP_TOKEN']);
  fake.acl.addToken({ secretId: 'write-only', rules: serviceIdentityRules(name) }); // the same secret, now with read rights
  await waitFor('healthy at the next answer', () => d.status().healthy, 5_000);
  await waitFor('the peer in sight', () => d.targets().length === 1);
  t.equal(log.count('warn'), 1);
});

t.test('discovery: a token that is not a valid header value is refused at construction', async (t) => {
  const self = { id: 'n1', address: '127.0.0.1', meshPort: 7000, httpPort: 8080, adminPort: 9090, incarnation: 'i1' };
  t.throws(() => createConsulDiscovery({ self, token: 'two words' }), { code: 'DISCOVERY_INVALID_OPTIONS' });
  t.throws(() => createConsulDiscovery({ self, token: 'line\nbreak' }), { code: 'DISCOVERY_INVALID_OPTIONS' });
  t.throws(() => createConsulDiscovery({ self, watchBurst: 0 }), { code: 'DISCOVERY_INVALID_OPTIONS' });
  t.throws(() => createConsulDiscovery({ self, watchIntervalMs: 0 }), { code: 'DISCOVERY_INVALID_OPTIONS' });
  t.throws(() => createConsulApi({ token: 'x\r\ny' }), { code: 'CONSUL_INVALID_ARGUMENT' });
  const api = createConsulApi({ token: '' });
  api.destroy();
  t.pass('an empty token means none');
});

t.test('consul-api: 403 is CONSUL_PERMISSION_DENIED with the agent\'s words as detail', { skip: fakeOnly }, async (t) => {
  const fake = await aclAgent(t, 'cmapi');
  const api = createConsulApi({ agentUrl: fake.url });
  t.teardown(() => api.destroy());
  const e = await rejectsCode(t, api.register({ id: 'x', name: 'cmapi', address: '127.0.0.1', port: 1 }), 'CONSUL_PERMISSION_DENIED', 'register without a token');
  t.equal(e?.statusCode, 403);
  t.match(e?.detail, /^Permission denied: anonymous token lacks permission 'service:write' on "cmapi"/);
  const wrong = createConsulApi({ agentUrl: fake.url, token: 'wrong' });
  t.teardown(() => wrong.destroy());
  const e2 = await rejectsCode(t, wrong.healthService({ service: 'cmapi' }), 'CONSUL_PERMISSION_DENIED', 'health with an unknown token');
  t.equal(e2?.detail, 'ACL not found');
  const r = await api.healthService({ service: 'cmapi' });
  t.same(r.entries, [], 'no token: the health query is filtered, not refused');
});

t.test('consul status: one line per change of (healthy, code), reasons per code, a throwing listener is logged', async (t) => {
  const log = captureLogger();
  let now = 1_000;
  const st = new ConsulStatus({ agentUrl: 'http://consul:8500', logger: log.logger, now: () => now });
  const seen: DiscoveryStatus[] = [];
  st.onChange((s) => seen.push(s));
  const off = st.onChange(() => {
    throw new Error('listener bug');
  });
  const timeout = { code: 'CONSUL_TIMEOUT', operation: 'agent.check.pass', detail: 'timeout of 5000ms exceeded' };
  const http500 = { code: 'CONSUL_HTTP_ERROR', operation: 'health.service', detail: 'rpc error: No cluster leader' };
  t.equal(st.report('heartbeat', timeout), false);
  st.report('heartbeat', timeout);
  t.match(st.current(), { healthy: false, code: 'CONSUL_TIMEOUT', reason: 'consul agent at http://consul:8500 does not answer agent.check.pass (timeout of 5000ms exceeded)', since: 1_000 });
  t.equal(log.count('error', 'DISCOVERY_LISTENER_FAILED'), 1, 'the throwing listener is logged; the others still ran');
  off();
  st.report('watch', http500);
  t.equal(seen.length, 1, 'the heartbeat failure still names the status');
  now = 3_000;
  t.equal(st.report('heartbeat', undefined), true, 'recovered while the watch fails: wake the watch');
  t.match(st.current(), { healthy: true, since: 3_000 }, 'and the watch failure, older than the registration, is forgotten');
  st.report('watch', http500);
  t.match(st.current(), { healthy: false, code: 'CONSUL_HTTP_ERROR', reason: 'consul health.service fails: rpc error: No cluster leader' });
  t.equal(st.report('watch', undefined), false, 'nothing to wake');
  t.same(seen.map((s) => [s.healthy, s.code]), [[false, 'CONSUL_TIMEOUT'], [true, undefined], [false, 'CONSUL_HTTP_ERROR'], [true, undefined]]);
  t.same(log.lines.filter((l) => l.level !== 'error').map((l) => l.msg), [
    'consul: agent at http://consul:8500 does not answer — retrying',
    'consul: reachable again',
    'consul: health.service fails (CONSUL_HTTP_ERROR) — retrying',
    'consul: reachable again',
  ]);
  t.same(failureOf(new Error('plain')), { code: 'UNKNOWN', operation: 'consul', detail: 'plain' });
  t.same(failureOf('str'), { code: 'UNKNOWN', operation: 'consul', detail: 'str' });
  t.same(failureOf(new ConsulApiError('CONSUL_UNREACHABLE', 'agent.check.pass', 'connect ECONNREFUSED')), { code: 'CONSUL_UNREACHABLE', operation: 'agent.check.pass', detail: 'connect ECONNREFUSED' });
});
