import t from 'tap';
import { parseGoDurationMs, startFakeConsul } from './consul/fake-consul.js';
import type { FakeConsul } from './consul/fake-consul.js';

async function waitFor(what: string, cond: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Reply {
  status: number;
  index: number;
  headers: Headers;
  body: unknown;
  text: string;
}

async function call(agent: FakeConsul, method: string, path: string, body?: unknown): Promise<Reply> {
  const res = await fetch(agent.url + path, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  const json = (res.headers.get('content-type') ?? '').startsWith('application/json');
  return { status: res.status, index: Number(res.headers.get('x-consul-index')), headers: res.headers, body: json ? JSON.parse(text) : undefined, text };
}

type Entry = {
  Node: { ID: string; Node: string; Address: string; Datacenter: string };
  Service: { ID: string; Service: string; Tags: string[]; Address: string; Port: number; Meta: Record<string, string>; ModifyIndex: number };
  Checks: { Node: string; CheckID: string; Name: string; Status: string; Output: string; ServiceID: string; ServiceName: string }[];
};

async function health(agent: FakeConsul, name: string, query = ''): Promise<{ entries: Entry[]; index: number; status: number }> {
  const r = await call(agent, 'GET', `/v1/health/service/${name}${query}`);
  return { entries: r.body as Entry[], index: r.index, status: r.status };
}

const reg = (id: string, extra: Record<string, unknown> = {}) => ({
  ID: id,
  Name: 'web',
  Address: '10.0.0.1',
  Port: 7000,
  Tags: ['a'],
  Meta: { http_port: '8080' },
  Check: { TTL: '10s' },
  ...extra,
});

t.test('registration shows in health/service with the real entry shape; a new TTL check starts critical', async (t) => {
  const agent = await startFakeConsul();
  t.teardown(() => agent.close());
  t.match(agent.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.ok(agent.port > 0, 'listens on a real port read back from port 0');

  t.equal((await call(agent, 'PUT', '/v1/agent/service/register', reg('web-1'))).status, 200);
  const all = await health(agent, 'web');
  t.equal(all.entries.length, 1);
  const e = all.entries[0]!;
  t.match(e.Node, { Node: 'fake-consul', Address: '127.0.0.1', Datacenter: 'dc1', ID: String });
  t.match(e.Service, { ID: 'web-1', Service: 'web', Tags: ['a'], Address: '10.0.0.1', Port: 7000, Meta: { http_port: '8080' } });
  t.same(
    e.Checks.map((c) => [c.CheckID, c.Status, c.ServiceID]),
    [
      ['serfHealth', 'passing', ''],
      ['service:web-1', 'critical', 'web-1'],
    ],
    "the node's serfHealth plus the service check, critical until passed",
  );
  t.equal(e.Checks[1]!.Name, "Service 'web' check");
  t.same((await health(agent, 'web', '?passing')).entries, [], 'critical: not in ?passing');

  t.equal((await call(agent, 'PUT', '/v1/agent/check/pass/service:web-1?note=ok')).status, 200);
  const passing = await health(agent, 'web', '?passing=true');
  t.same(passing.entries.map((x) => x.Service.ID), ['web-1']);
  t.equal(passing.entries[0]!.Checks[1]!.Output, 'ok', 'note becomes the output');
  t.same((await health(agent, 'WEB', '?passing=1')).entries.length, 1, 'service names match case-insensitively');
  t.same((await health(agent, 'web', '?passing=false')).entries.length, 1);
  t.same((await health(agent, 'web', '?tag=a')).entries.length, 1);
  t.same((await health(agent, 'web', '?tag=b')).entries, []);

  t.equal((await call(agent, 'PUT', '/v1/agent/check/warn/service:web-1')).status, 200);
  t.same((await health(agent, 'web', '?passing')).entries, [], 'warning is not passing');
  t.equal((await call(agent, 'PUT', '/v1/agent/check/update/service:web-1', { Status: 'passing', Output: 'fine' })).status, 200);
  t.equal((await health(agent, 'web', '?passing')).entries[0]!.Checks[1]!.Output, 'fine');
  t.equal((await call(agent, 'PUT', '/v1/agent/check/fail/service:web-1')).status, 200);
  t.same((await health(agent, 'web', '?passing')).entries, []);

  t.equal((await call(agent, 'PUT', '/v1/agent/service/deregister/web-1')).status, 200);
  t.same((await health(agent, 'web')).entries, []);
  t.same(agent.services(), []);
});

t.test('check ids, explicit Status, case-insensitive keys, re-registration keeps check status', async (t) => {
  const agent = await startFakeConsul();
  t.teardown(() => agent.close());
  await call(agent, 'PUT', '/v1/agent/service/register', { name: 'db', port: 5432, checks: [{ ttl: '5s' }, { TTL: '5s', Status: 'passing' }] });
  t.same(
    agent.services().map((s) => [s.id, s.checks.map((c) => [c.checkId, c.status])]),
    [['db', [['service:db:1', 'critical'], ['service:db:2', 'passing']]]],
    'ID defaults to Name; several checks get :1, :2',
  );

  await call(agent, 'PUT', '/v1/agent/service/register', reg('web-1'));
  await call(agent, 'PUT', '/v1/agent/check/pass/service:web-1');
  const before = agent.index();
  t.equal((await call(agent, 'PUT', '/v1/agent/service/register', reg('web-1'))).status, 200);
  t.equal(agent.index(), before, 'an identical re-registration changes nothing');
  t.equal(agent.services().find((s) => s.id === 'web-1')!.checks[0]!.status, 'passing', 'and keeps the check status');
  await call(agent, 'PUT', '/v1/agent/service/register', reg('web-1', { Port: 7001 }));
  t.ok(agent.index() > before, 'a changed registration bumps the index');
  t.match(agent.services().find((s) => s.id === 'web-1'), { port: 7001, checks: [{ status: 'passing' }] });
});

t.test('TTL expiry turns a check critical (injected clock) and DeregisterCriticalServiceAfter reaps it', async (t) => {
  let clock = 1_000_000;
  const agent = await startFakeConsul({ now: () => clock, tickMs: 1_000_000 });
  t.teardown(() => agent.close());
  await call(agent, 'PUT', '/v1/agent/service/register', reg('web-1', { Check: { TTL: '1s', DeregisterCriticalServiceAfter: '1m' } }));
  await call(agent, 'PUT', '/v1/agent/service/register', reg('web-2', { Check: { TTL: '1m' } }));
  await call(agent, 'PUT', '/v1/agent/check/pass/service:web-1');
  await call(agent, 'PUT', '/v1/agent/check/pass/service:web-2');
  t.equal((await health(agent, 'web', '?passing')).entries.length, 2);

  clock += 999;
  agent.tick();
  t.equal((await health(agent, 'web', '?passing')).entries.length, 2, 'not expired before the TTL');
  clock += 1;
  const expired = await health(agent, 'web'); // requests evaluate expiry too
  t.match(expired.entries.find((e) => e.Service.ID === 'web-1')!.Checks[1], { Status: 'critical', Output: 'TTL expired' });
  t.same((await health(agent, 'web', '?passing')).entries.map((e) => e.Service.ID), ['web-2'], 'expired service drops out of ?passing');

  await call(agent, 'PUT', '/v1/agent/check/pass/service:web-1');
  t.equal((await health(agent, 'web', '?passing')).entries.length, 2, 'a pass revives it and re-arms the TTL');
  clock += 1_000;
  agent.tick();
  clock += 60_000;
  agent.tick();
  t.same(agent.services().map((s) => s.id), ['web-1', 'web-2'], 'critical exactly DeregisterCriticalServiceAfter: not yet reaped');
  clock += 1;
  agent.tick();
  t.same(agent.services().map((s) => s.id), ['web-2'], 'reaped once critical for longer than 1m');

  const floor = await startFakeConsul({ now: () => clock, tickMs: 1_000_000, deregisterCriticalMinMs: 60_000 });
  t.teardown(() => floor.close());
  await call(floor, 'PUT', '/v1/agent/service/register', reg('x', { Check: { TTL: '1s', DeregisterCriticalServiceAfter: '1s' } }));
  clock += 2_000;
  floor.tick();
  t.equal(floor.services().length, 1, 'deregisterCriticalMinMs raises the floor like a real agent (1m)');
  clock += 60_000;
  floor.tick();
  t.equal(floor.services().length, 0);
});

t.test('TTL expiry with the real clock, checked every tickMs', async (t) => {
  const agent = await startFakeConsul({ tickMs: 10 });
  t.teardown(() => agent.close());
  await call(agent, 'PUT', '/v1/agent/service/register', reg('web-1', { Check: { TTL: '150ms' } }));
  await call(agent, 'PUT', '/v1/agent/check/pass/service:web-1');
  const first = await health(agent, 'web', '?passing');
  t.equal(first.entries.length, 1);
  const started = Date.now();
  const next = await health(agent, 'web', `?passing&index=${first.index}&wait=5s`);
  t.same(next.entries, [], 'the blocking query wakes when the TTL expires');
  t.ok(Date.now() - started < 2_000);
});

t.test('blocking queries: return on change, at wait, and X-Consul-Index is present and monotonic', async (t) => {
  const agent = await startFakeConsul();
  t.teardown(() => agent.close());
  const first = await health(agent, 'web', '?passing');
  t.ok(first.index >= 1);

  const pending = health(agent, 'web', `?passing&index=${first.index}&wait=10s`);
  await waitFor('the query to park', () => agent.pendingQueries() > 0);
  t.equal(agent.pendingQueries(), 1, 'the query is parked');
  const started = Date.now();
  await call(agent, 'PUT', '/v1/agent/service/register', reg('web-1'));
  const afterRegister = await pending;
  t.ok(Date.now() - started < 1_000, 'returned as soon as the index moved');
  t.ok(afterRegister.index > first.index, 'index moved');
  t.same(afterRegister.entries, [], 'critical check: still not passing');

  const waitStart = Date.now();
  const timedOut = await health(agent, 'web', `?passing&index=${afterRegister.index}&wait=200ms`);
  const elapsed = Date.now() - waitStart;
  t.ok(elapsed >= 190 && elapsed < 2_000, `returned at wait (${elapsed} ms)`);
  t.equal(timedOut.index, afterRegister.index, 'unchanged index at wait');

  const unrelated = health(agent, 'web', `?index=${afterRegister.index}&wait=300ms`);
  await call(agent, 'PUT', '/v1/agent/service/register', { ...reg('db-1'), Name: 'db' });
  const u = await unrelated;
  t.equal(u.index, afterRegister.index, "another service's change does not move this query's index");

  const seen: number[] = [first.index, afterRegister.index];
  for (const [method, path] of [
    ['PUT', '/v1/agent/check/pass/service:web-1'],
    ['PUT', '/v1/agent/check/fail/service:web-1'],
    ['PUT', '/v1/agent/service/deregister/web-1'],
  ] as const) {
    const r = await call(agent, method, path);
    t.ok(r.headers.get('x-consul-index'), `${path} carries X-Consul-Index`);
    t.equal(r.headers.get('x-consul-knownleader'), 'true');
    t.equal(r.headers.get('x-consul-lastcontact'), '0');
    seen.push((await health(agent, 'web')).index);
  }
  t.ok(
    seen.every((v, i) => i === 0 || v > seen[i - 1]!),
    `strictly increasing over changes: ${seen.join(' < ')}`,
  );
  t.ok((await call(agent, 'GET', '/v1/health/service/nothing')).index >= 1, 'unknown service still has an index');

  const ahead = Date.now();
  const future = await health(agent, 'web', `?index=${agent.index() + 1000}&wait=100ms`);
  t.ok(Date.now() - ahead >= 90, 'a client index ahead of the agent blocks until wait (as in Consul)');
  t.ok(future.index < agent.index() + 1000, 'and returns the lower index, so clients can reset');
});

t.test('errors: 404 for unknown ids and paths, 400 for bad input, 405 for the wrong method', async (t) => {
  const agent = await startFakeConsul();
  t.teardown(() => agent.close());
  const cases: [string, string, unknown, number, RegExp][] = [
    ['PUT', '/v1/agent/service/deregister/nope', undefined, 404, /Unknown service ID "nope"/],
    ['PUT', '/v1/agent/check/pass/service:nope', undefined, 404, /Unknown check ID "service:nope"/],
    ['PUT', '/v1/agent/check/warn/service:nope', undefined, 404, /Unknown check ID/],
    ['PUT', '/v1/agent/check/fail/service:nope', undefined, 404, /Unknown check ID/],
    ['PUT', '/v1/agent/check/update/service:nope', { Status: 'passing' }, 404, /Unknown check ID/],
    ['GET', '/v1/kv/anything', undefined, 404, /page not found/],
    ['PUT', '/v1/agent/service/register', { Port: 1 }, 400, /Missing service name/],
    ['PUT', '/v1/agent/service/register', { Name: 'x', Check: { HTTP: 'http://x', Interval: '1s' } }, 400, /TTL/],
    ['PUT', '/v1/agent/service/register', { Name: 'x', Check: { TTL: '1s', Status: 'bogus' } }, 400, /Status for checks/],
    ['PUT', '/v1/agent/service/register', { Name: 'x', Check: { TTL: 'soon' } }, 400, /TTL/],
    ['PUT', '/v1/agent/check/update/service:x', { Status: 'meh' }, 400, /Invalid check status/],
    ['GET', '/v1/health/service/web?index=1&wait=forever', undefined, 400, /Invalid wait time/],
    ['GET', '/v1/health/service/web?index=-1', undefined, 400, /Invalid index/],
    ['GET', '/v1/health/service/web?passing=maybe', undefined, 400, /Invalid value for \?passing/],
    ['GET', '/v1/agent/service/register', undefined, 405, /not allowed/],
    ['POST', '/v1/health/service/web', undefined, 405, /not allowed/],
  ];
  for (const [method, path, body, status, text] of cases) {
    const r = await call(agent, method, path, body);
    t.equal(r.status, status, `${method} ${path} -> ${status}`);
    t.match(r.text, text);
    t.ok(r.headers.get('x-consul-index'), 'errors carry X-Consul-Index too');
  }
  const bad = await fetch(`${agent.url}/v1/agent/service/register`, { method: 'PUT', body: '{not json' });
  t.equal(bad.status, 400);
  t.match(await bad.text(), /Request decode failed/);
});

t.test('agent/self and status/leader', async (t) => {
  const agent = await startFakeConsul({ nodeName: 'n1', datacenter: 'eu' });
  t.teardown(() => agent.close());
  t.match((await call(agent, 'GET', '/v1/agent/self')).body, { Config: { Datacenter: 'eu', NodeName: 'n1', NodeID: String }, Member: { Name: 'n1' } });
  t.equal((await call(agent, 'GET', '/v1/status/leader')).body, '127.0.0.1:8300');
});

t.test('restart: same port; state lost by default, kept on request; blocked queries are ended', async (t) => {
  const agent = await startFakeConsul();
  t.teardown(() => agent.close());
  const port = agent.port;
  await call(agent, 'PUT', '/v1/agent/service/register', reg('web-1'));
  const idx = (await health(agent, 'web')).index;

  const blocked = health(agent, 'web', `?index=${idx}&wait=30s`).then(
    () => 'answered',
    () => 'failed',
  );
  await waitFor('the query to park', () => agent.pendingQueries() > 0);
  let downChecked = false;
  await agent.restart({
    keepState: true,
    whileDown: async () => {
      t.equal(await blocked, 'failed', 'the blocked query was cut off when the agent went away');
      t.equal(agent.pendingQueries(), 0);
      const refused = await fetch(`${agent.url}/v1/status/leader`).then(
        () => false,
        () => true,
      );
      t.ok(refused, 'connections are refused while down');
      downChecked = true;
    },
  });
  t.ok(downChecked);
  t.equal(agent.port, port, 'same port');
  t.same(agent.services().map((s) => s.id), ['web-1'], 'keepState keeps the registration');
  t.ok((await health(agent, 'web')).index >= idx, 'and the index');

  await agent.restart();
  t.equal(agent.port, port);
  t.same(agent.services(), [], 'default restart loses everything, like a dev agent');
  t.equal((await call(agent, 'PUT', '/v1/agent/check/pass/service:web-1')).status, 404, 'so a TTL pass answers 404');
  t.ok((await health(agent, 'web')).index < idx + 1, 'the index started over');

  await agent.close();
  await agent.close();
  t.pass('close is idempotent');
});

t.test('parseGoDurationMs', async (t) => {
  const ok: [string, number][] = [
    ['10s', 10_000],
    ['500ms', 500],
    ['1m', 60_000],
    ['1m30s', 90_000],
    ['1.5h', 5_400_000],
    ['0', 0],
    ['100us', 0.1],
    ['2000000ns', 2],
    ['-1s', -1_000],
    ['.5s', 500],
  ];
  for (const [s, ms] of ok) t.equal(parseGoDurationMs(s), ms, s);
  for (const s of ['', '10', 's', '1x', '1s2', 'ms', '1 s']) t.equal(parseGoDurationMs(s), undefined, `"${s}" is invalid`);
});
