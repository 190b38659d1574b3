/**
 * A node's readiness follows its Consul discovery: `/healthz` 503 (and gRPC health NOT_SERVING)
 * while Consul refuses the token or cannot be reached, one log line per change and none per retry,
 * 200 again once Consul answers; and `--consul-token` reaches every Consul call. Real nodes (HTTP,
 * admin gRPC) against the project's Consul test server in ACL mode.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { pino } from 'pino';
import t from 'tap';
import type { Test } from 'tap';
import { startNode } from '../src/node.js';
import type { ChatNode } from '../src/node.js';
import type { NodeConfigInput } from '../src/config/index.js';
import type { Logger } from '../src/log.js';
import { serviceIdentityRules, startFakeConsul } from './consul/fake-consul.js';
import type { FakeConsul } from './consul/fake-consul.js';
import { eventually } from './helpers/client.js';

interface Line {
  level: string;
  msg: string;
  code?: string;
  err?: unknown;
  [k: string]: unknown;
}

/** A pino logger at debug that keeps every line, parsed. */
function memoryLogger(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  return { logger: pino({ level: 'debug', formatters: { level: (label) => ({ level: label }) } }, sink) as unknown as Logger, lines };
}

const SERVICE = 'cmhealth';

async function consulNode(t: Test, consulUrl: string, input: NodeConfigInput = {}): Promise<{ node: ChatNode; lines: Line[] }> {
  const { logger, lines } = memoryLogger();
  const node = await startNode(
    { host: '127.0.0.1', httpPort: 0, meshPort: 0, adminPort: 0, discovery: 'consul', consulUrl, serviceName: SERVICE, ...input },
    { logger, retryMinMs: 20, retryMaxMs: 300 },
  );
  t.teardown(() => node.stop());
  return { node, lines };
}

async function healthz(node: ChatNode): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${node.httpPort}/healthz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

type CheckFn = (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: { status: string }) => void) => void;
const HealthClient = (grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String })) as unknown as {
  grpc: { health: { v1: { Health: new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client & { Check: CheckFn } } } };
}).grpc.health.v1.Health;

function grpcHealth(t: Test, node: ChatNode): Promise<string> {
  const c = new HealthClient(`127.0.0.1:${node.adminPort}`, grpc.credentials.createInsecure());
  t.teardown(() => c.close());
  return new Promise((resolve, reject) => {
    c.Check({ service: '' }, { deadline: Date.now() + 5_000 }, (err, res) => (err ? reject(err) : resolve(res.status)));
  });
}

const warns = (lines: Line[]): Line[] => lines.filter((l) => l.level === 'warn' && l.msg.startsWith('consul'));
const retries = (lines: Line[]): number => lines.filter((l) => l.level === 'debug' && /^consul .* failed; .*retrying$/.test(l.msg)).length;
/** A stack frame anywhere in the log: what a stack trace per retry looked like. */
const stackLines = (lines: Line[]): Line[] => lines.filter((l) => /\n\s+at /.test(JSON.stringify(l).replace(/\\n/g, '\n')));

async function aclConsul(t: Test, tokens: { secretId: string; service: string }[] = []): Promise<FakeConsul> {
  const fake = await startFakeConsul({ acl: { defaultPolicy: 'deny', tokens: tokens.map((x) => ({ secretId: x.secretId, rules: serviceIdentityRules(x.service) })) } });
  t.teardown(() => fake.close());
  return fake;
}

t.test('--consul-token reaches every Consul call: registered, healthy, 200', async (t) => {
  const fake = await aclConsul(t, [{ secretId: 'node-token', service: SERVICE }]);
  const { node, lines } = await consulNode(t, fake.url, { id: 'tok-a', consulToken: 'node-token' });
  await eventually(() => fake.services().some((s) => s.id === 'tok-a' && s.checks[0]?.status === 'passing'), 5_000, 'registered and passing');
  const h = await healthz(node);
  t.equal(h.status, 200);
  t.match(h.body, { status: 'ok', discovery: { kind: 'consul', healthy: true } });
  t.equal(await grpcHealth(t, node), 'SERVING');
  await eventually(() => fake.requests().some((r) => r.path.startsWith('/v1/health/service/') && /index=[1-9]/.test(r.query)), 5_000, 'a blocking query');
  await node.stop();
  const reqs = fake.requests();
  t.ok(reqs.some((r) => r.path === '/v1/agent/service/deregister/tok-a' && r.status === 200), 'deregistered at stop');
  t.same(reqs.filter((r) => r.token !== 'node-token'), [], 'every call carried the token');
  t.same(warns(lines), [], 'no warnings');
});

t.test('default deny and no token: 503 with the reason, one warning over many retries; 200 once the ACL allows it', async (t) => {
  const fake = await aclConsul(t);
  const { node, lines } = await consulNode(t, fake.url, { id: 'deny-a' });
  const h = await healthz(node);
  t.equal(h.status, 503, 'not ready while Consul refuses the registration');
  t.match(h.body, {
    status: 'unavailable',
    discovered: true,
    discovery: { kind: 'consul', healthy: false, code: 'CONSUL_PERMISSION_DENIED', reason: /service:write.*--consul-token \/ CONSUL_HTTP_TOKEN/ },
  });
  t.equal(await grpcHealth(t, node), 'NOT_SERVING', 'gRPC health agrees');
  await eventually(() => retries(lines) >= 4, 10_000, 'several retries');
  t.equal((await healthz(node)).status, 503, 'still 503, still retrying');
  const w = warns(lines);
  t.equal(w.length, 1, `exactly one warning over ${retries(lines)} retries`);
  t.equal(w[0]?.msg, 'consul: permission denied (403) — check --consul-token / CONSUL_HTTP_TOKEN');
  t.same(stackLines(lines), [], 'no stack trace in any line');
  t.same(fake.services(), [], 'nothing registered');

  fake.acl.setDefaultPolicy('allow');
  await eventually(async () => (await healthz(node)).status === 200, 10_000, '/healthz 200 once the ACL allows the calls');
  t.match((await healthz(node)).body, { status: 'ok', discovery: { healthy: true } });
  t.equal(await grpcHealth(t, node), 'SERVING');
  t.ok(fake.services().some((s) => s.id === 'deny-a'), 'registered');
  t.equal(lines.filter((l) => l.msg === 'consul: reachable again').length, 1, 'one info line for the recovery');
  t.equal(warns(lines).length, 1, 'and no other warning');
});

t.test('an unknown token ("ACL not found"): 503, one warning; 200 once the token exists', async (t) => {
  const fake = await aclConsul(t);
  const { node, lines } = await consulNode(t, fake.url, { id: 'late-token', consulToken: 'issued-later' });
  const h = await healthz(node);
  t.equal(h.status, 503);
  t.match(h.body, { discovery: { healthy: false, code: 'CONSUL_PERMISSION_DENIED', reason: /ACL not found/ } });
  await eventually(() => retries(lines) >= 4, 10_000, 'several retries');
  t.equal(warns(lines).length, 1, 'one warning');
  fake.acl.addToken({ secretId: 'issued-later', rules: serviceIdentityRules(SERVICE) });
  await eventually(async () => (await healthz(node)).status === 200, 10_000, '/healthz 200 with the token known');
  t.equal(warns(lines).length, 1);
  t.same(stackLines(lines), []);
});

t.test('no Consul agent at all: 503, no stack trace per retry, one warning; 200 once an agent answers', async (t) => {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  const { node, lines } = await consulNode(t, `http://127.0.0.1:${port}`, { id: 'lonely' });
  const h = await healthz(node);
  t.equal(h.status, 503);
  t.match(h.body, { discovery: { healthy: false, code: 'CONSUL_UNREACHABLE', reason: /unreachable at http:\/\/127\.0\.0\.1/ } });
  t.equal(await grpcHealth(t, node), 'NOT_SERVING');
  await eventually(() => retries(lines) >= 6, 10_000, 'several retries of both loops');
  t.equal(warns(lines).length, 1, `one warning over ${retries(lines)} retries`);
  t.match(warns(lines)[0], { msg: /^consul: agent unreachable at http:\/\/127\.0\.0\.1:\d+ — retrying$/, code: 'CONSUL_UNREACHABLE' });
  t.same(stackLines(lines), [], 'no stack trace in any line');
  t.notOk(lines.some((l) => l.level === 'error'), 'no error lines');

  const fake = await startFakeConsul({ port });
  t.teardown(() => fake.close());
  await eventually(async () => (await healthz(node)).status === 200, 10_000, '/healthz 200 once the agent is there');
  t.ok(fake.services().some((x) => x.id === 'lonely'), 'registered');
  t.equal(lines.filter((l) => l.msg === 'consul: reachable again').length, 1);
  t.equal(warns(lines).length, 1);
});

t.test('static discovery is always healthy and says so', async (t) => {
  const { logger } = memoryLogger();
  const node = await startNode({ host: '127.0.0.1', httpPort: 0, meshPort: 0, adminPort: 0 }, { logger });
  t.teardown(() => node.stop());
  const h = await healthz(node);
  t.equal(h.status, 200);
  t.match(h.body, { discovery: { kind: 'static', healthy: true } });
});
