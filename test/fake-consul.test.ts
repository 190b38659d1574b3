import t from 'tap';
import { parseGoDurationMs, serviceIdentityRules, startFakeConsul } from './consul/fake-consul.js';
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

async function call(agent: FakeConsul, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(agent.url + path, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  const json = (res.headers.get('content-type') ?? '').startsWith('application/json');
  return { status: res.status, index: Number(res.headers.get('x-consul-index')), headers: res.headers, body: json ? JSON.parse(text) : undefined, text };
}

type Entry = {
  Node: { ID: string; Node: string; Address: string; Datacenter: string };
  Service: { ID: string; Service: string; Tags: string[]; Address: string; Port: number; Meta: Record<string, string>; ModifyIndex: number };
  Checks: { Node: string; CheckID: string; Name: string; Status: string; Output: string; ServiceID: string; ServiceName: string }[];
};

async function health(agent: FakeConsul, name: string, query = '', headers: Record<string, string> = {}): Promise<{ entries: Entry[]; index: number; status: number; headers: Headers }> {
  const r = await call(agent, 'GET', `/v1/health/service/${name}${query}`, undefined, headers);
  return { entries: r.body as Entry[], index: r.index, status: r.status, headers: r.headers };
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

t.test('TTL expiry turns a check critical (injected clock)', async (t) => {
  let clock = 1_000_000;
  const agent = await startFakeConsul({ now: () => clock, tickMs: 1_000_000 });
  t.teardown(() => agent.close());
  await call(agent, 'PUT', '/v1/agent/service/register', reg('web-1', { Check: { TTL: '1s' } }));
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
  t.equal((await health(agent, 'web', '?passing')).entries.length, 1, 'and it expires again one TTL after that pass');
});

t.test('reaping like a real agent: a pass every 30 s, DeregisterCriticalServiceAfter raised to 1 min', async (t) => {
  let clock = 0;
  const agent = await startFakeConsul({ now: () => clock, tickMs: 1_000_000 });
  t.teardown(() => agent.close());
  const ids = (): string[] => agent.services().map((s) => s.id);
  const at = async (ms: number): Promise<void> => {
    clock = ms;
    agent.tick();
  };
  // Reaper passes at 30 s, 60 s, 90 s, 120 s, ... (every reapIntervalMs after the agent started).
  await call(agent, 'PUT', '/v1/agent/service/register', reg('short', { Check: { TTL: '1s', DeregisterCriticalServiceAfter: '1s' } }));
  await call(agent, 'PUT', '/v1/agent/service/register', reg('long', { Check: { TTL: '1s', DeregisterCriticalServiceAfter: '90s' } }));
  await call(agent, 'PUT', '/v1/agent/service/register', reg('never', { Check: { TTL: '1s' } }));
  // All three checks start critical at t=0.
  await at(30_000);
  t.same(ids(), ['long', 'never', 'short'], '30 s: "1s" is raised to the 1 min minimum, nothing reaped');
  await at(60_000);
  t.same(ids(), ['long', 'never', 'short'], '60 s: critical for exactly 1 min is not "longer than" 1 min');
  await at(89_999);
  t.same(ids(), ['long', 'never', 'short'], 'between passes nothing happens, however long it has been critical');
  await at(90_000);
  t.same(ids(), ['long', 'never'], '90 s: the next reaper pass removes "short"; "long" (90s) is not past its time');
  await at(119_999);
  t.same(ids(), ['long', 'never'], 'no pass before 120 s');
  await at(120_000);
  t.same(ids(), ['never'], '120 s: the first pass after 90 s of critical removes "long"');
  await at(150_000);
  t.same(ids(), ['never'], 'no DeregisterCriticalServiceAfter: never reaped');

  // A pass resets "critical since"; the reaper only acts on its own schedule.
  await at(180_000); // a reaper pass; the next is due at 210 s (each pass schedules the next, like time.After)
  await call(agent, 'PUT', '/v1/agent/service/register', reg('revived', { Check: { TTL: '10m', DeregisterCriticalServiceAfter: '1m' } }));
  await at(185_000);
  await call(agent, 'PUT', '/v1/agent/check/pass/service:revived');
  await call(agent, 'PUT', '/v1/agent/check/fail/service:revived'); // critical since 185 s
  await at(240_000);
  t.ok(ids().includes('revived'), '240 s: a pass, but critical for only 55 s');
  await at(260_000);
  t.ok(ids().includes('revived'), '260 s: critical for 75 s, but the next pass is due at 270 s');
  await at(270_000);
  t.notOk(ids().includes('revived'), '270 s: that pass reaps it');

  const fast = await startFakeConsul({ now: () => clock, tickMs: 1_000_000, reapIntervalMs: 1_000, deregisterCriticalMinMs: 0 });
  t.teardown(() => fast.close());
  await call(fast, 'PUT', '/v1/agent/service/register', reg('x', { Check: { TTL: '1s', DeregisterCriticalServiceAfter: '1s' } }));
  clock += 1_001;
  fast.tick();
  t.equal(fast.services().length, 0, 'both are options, for tests that want reaping sooner');
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
  const registered = await call(agent, 'PUT', '/v1/agent/service/register', reg('web-1'));
  const afterRegister = await pending;
  t.equal(registered.headers.get('x-consul-index'), null, 'register sends no X-Consul-Index');
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
    t.equal(r.status, 200);
    t.equal(r.headers.get('x-consul-index'), null, `${path}: a write endpoint sends no X-Consul-Index (as Consul)`);
    t.equal(r.headers.get('x-consul-knownleader'), null);
    const h = await health(agent, 'web');
    t.equal(h.headers.get('x-consul-knownleader'), 'true', 'the query endpoint sends the query meta');
    t.equal(h.headers.get('x-consul-lastcontact'), '0');
    seen.push(h.index);
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
    ['PUT', '/v1/agent/service/register', { Name: 'x', Address: '0.0.0.0', Port: 1 }, 400, /^Invalid service address$/],
    ['PUT', '/v1/agent/service/register', { Name: 'x', Address: '::', Port: 1 }, 400, /^Invalid service address$/],
    ['PUT', '/v1/agent/service/register', { Name: 'x', Address: '[::]', Port: 1 }, 400, /^Invalid service address$/],
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
    t.equal(r.headers.get('x-consul-index'), null, 'no X-Consul-Index on an agent endpoint or a parse error (only setMeta sends it)');
  }
  t.same(agent.services(), [], 'nothing was registered by the refused calls');
  t.equal((await call(agent, 'PUT', '/v1/agent/service/register', { Name: 'x', Address: '0.0.0.1', Port: 1 })).status, 200, 'an ordinary address is fine');
  const bad = await fetch(`${agent.url}/v1/agent/service/register`, { method: 'PUT', body: '{not json' });
  t.equal(bad.status, 400);
  t.match(await bad.text(), /Request decode failed/);
});

t.test('ACLs, default deny: where the token is read, 403 bodies as Consul writes them, health filtered not refused', async (t) => {
  const agent = await startFakeConsul({
    acl: {
      tokens: [
        { secretId: 'root', management: true },
        { secretId: 'web-secret', accessorId: 'acc-web', rules: serviceIdentityRules('web') },
        { secretId: 'db-secret', accessorId: 'acc-db', rules: [{ resource: 'service', name: 'db', policy: 'write' }] },
      ],
    },
  });
  t.teardown(() => agent.close());
  const tok = (secret: string): Record<string, string> => ({ 'X-Consul-Token': secret });
  const anonDenied = (perm: string, name: string): string =>
    `Permission denied: anonymous token lacks permission '${perm}' on "${name}". The anonymous token is used implicitly when a request does not specify a token.`;

  let r = await call(agent, 'PUT', '/v1/agent/service/register', reg('web-1'));
  t.equal(r.status, 403, 'no token: the anonymous token, denied under default deny');
  t.equal(r.text, anonDenied('service:write', 'web'));
  t.equal(r.headers.get('x-consul-index'), null, 'no query meta on an agent endpoint error');
  r = await call(agent, 'PUT', '/v1/agent/service/register', reg('web-1'), tok('nope'));
  t.same([r.status, r.text], [403, 'ACL not found'], 'an unknown token');
  r = await call(agent, 'PUT', '/v1/agent/service/register', reg('web-1'), tok('db-secret'));
  t.same([r.status, r.text], [403, `Permission denied: token with AccessorID 'acc-db' lacks permission 'service:write' on "web"`], 'a token for another service');
  t.same(agent.services(), [], 'none of those registered anything');

  t.equal((await call(agent, 'PUT', '/v1/agent/service/register', reg('web-1'), tok('web-secret'))).status, 200, 'X-Consul-Token');
  t.equal((await call(agent, 'PUT', '/v1/agent/service/register?token=web-secret', reg('web-2'))).status, 200, '?token=');
  t.equal((await call(agent, 'PUT', '/v1/agent/service/register', reg('web-3'), { Authorization: 'Bearer web-secret' })).status, 200, 'Authorization: Bearer');
  t.same(agent.services().map((x) => x.id), ['web-1', 'web-2', 'web-3']);

  r = await call(agent, 'PUT', '/v1/agent/check/pass/service:web-1');
  t.same([r.status, r.text], [403, anonDenied('service:write', 'web')], 'a TTL pass needs service:write too');
  r = await call(agent, 'PUT', '/v1/agent/check/pass/service:nope');
  t.equal(r.status, 404, 'an unknown check is 404 whatever the permissions');
  r = await call(agent, 'PUT', '/v1/agent/check/pass/service:nope', undefined, tok('nope'));
  t.same([r.status, r.text], [403, 'ACL not found'], 'but the token is resolved first');
  t.equal((await call(agent, 'PUT', '/v1/agent/check/pass/service:web-1', undefined, tok('web-secret'))).status, 200);

  const anon = await health(agent, 'web');
  t.same([anon.status, anon.entries], [200, []], 'health/service with no token: 200 and nothing (filtered, not refused)');
  t.equal(anon.headers.get('x-consul-results-filtered-by-acls'), 'true');
  t.ok(Number(anon.headers.get('x-consul-index')) > 1, 'with the real index, so it can block');
  const own = await health(agent, 'web', '', tok('web-secret'));
  t.same(own.entries.map((e) => e.Service.ID), ['web-1', 'web-2', 'web-3'], 'service:read + node:read see them');
  t.equal(own.headers.get('x-consul-results-filtered-by-acls'), null);
  t.same((await health(agent, 'web', '', tok('db-secret'))).entries, [], 'no read on web nor the node: filtered');
  const unknown = await call(agent, 'GET', '/v1/health/service/web', undefined, tok('nope'));
  t.same([unknown.status, unknown.text], [403, 'ACL not found'], 'an unknown token is refused on the query endpoint');
  t.equal(unknown.headers.get('x-consul-index'), '1', 'with the empty query meta of the failed RPC');
  t.equal(unknown.headers.get('x-consul-knownleader'), 'false');

  r = await call(agent, 'GET', '/v1/agent/self');
  t.same([r.status, r.text], [403, anonDenied('agent:read', 'fake-consul')]);
  t.equal((await call(agent, 'GET', '/v1/agent/self', undefined, tok('root'))).status, 200, 'a management token may do anything');
  t.equal((await call(agent, 'GET', '/v1/status/leader')).status, 200, 'status/leader needs no token');

  t.equal((await call(agent, 'PUT', '/v1/agent/service/deregister/web-3')).status, 403);
  t.equal((await call(agent, 'PUT', '/v1/agent/service/deregister/nope')).status, 404);
  t.equal((await call(agent, 'PUT', '/v1/agent/service/deregister/web-3', undefined, tok('web-secret'))).status, 200);

  agent.acl.removeToken('web-secret');
  t.same((await call(agent, 'PUT', '/v1/agent/check/pass/service:web-1', undefined, tok('web-secret'))).text, 'ACL not found', 'a deleted token');
  agent.acl.addToken({ secretId: 'web-secret', rules: serviceIdentityRules('web') });
  t.equal((await call(agent, 'PUT', '/v1/agent/check/pass/service:web-1', undefined, tok('web-secret'))).status, 200, 'and re-created');
  agent.acl.setDefaultPolicy('allow');
  t.equal((await call(agent, 'PUT', '/v1/agent/check/pass/service:web-2')).status, 200, 'default allow: the anonymous token may write');
  t.equal((await call(agent, 'PUT', '/v1/agent/check/pass/service:web-2', undefined, tok('nope'))).text, 'ACL not found', 'an unknown token is still refused');

  const seen = agent.requests();
  t.match(seen[0], { method: 'PUT', path: '/v1/agent/service/register', token: undefined, status: 403 });
  t.match(seen[1], { token: 'nope', status: 403 });
  t.same(
    seen.slice(3, 6).map((x) => [x.token, x.status]),
    [['web-secret', 200], ['web-secret', 200], ['web-secret', 200]],
    'requests() records the token whichever way it came, and the status',
  );
});

t.test('ACLs disabled (the default): tokens are ignored, even unknown ones; acl controls refuse', async (t) => {
  const agent = await startFakeConsul();
  t.teardown(() => agent.close());
  t.equal((await call(agent, 'PUT', '/v1/agent/service/register', reg('web-1'), { 'X-Consul-Token': 'whatever' })).status, 200);
  t.equal((await health(agent, 'web', '', { 'X-Consul-Token': 'whatever' })).entries.length, 1);
  t.throws(() => agent.acl.setDefaultPolicy('allow'), /without acl/);
  t.throws(() => agent.acl.addToken({ secretId: 'x' }), /without acl/);
  t.throws(() => agent.acl.removeToken('x'), /without acl/);
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
