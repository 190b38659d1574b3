/**
 * The real CLI as a child process: `chatmesh node` serves clients and shuts down gracefully,
 * `chatmesh token` signs tokens that a `--auth jwt` node accepts, bad flags fail clearly.
 */
import t from 'tap';
import type { Test } from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TestClient, connectAs } from './helpers/client.js';
import { CLI, startCliNode } from './helpers/procs.js';
import type { CliNode } from './helpers/procs.js';

const run = promisify(execFile);

function startCli(t: Test, args: string[], env: Record<string, string> = {}): Promise<CliNode> {
  return startCliNode(t, ['--http-port', '0', '--mesh-port', '0', '--admin-port', '0', ...args], env);
}

t.test('chatmesh node: clients chat through it; SIGTERM closes them with 1012 and exits 0', async (t) => {
  const { child, httpPort: port, exited } = await startCli(t, ['--id', 'cli-node']);
  const url = `ws://127.0.0.1:${port}/ws`;
  const a = await connectAs(url, 'alice');
  const b = await connectAs(url, 'bob');
  t.equal(a.welcome['node'], 'cli-node');
  t.equal((await a.c.request({ type: 'send', id: 'c1', to: 'bob', body: 'hi' }))['status'], 'delivered');
  t.equal((await b.c.next('message'))['body'], 'hi');
  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  t.equal(health.status, 200);
  const page = await fetch(`http://127.0.0.1:${port}/`);
  t.equal(page.status, 200);
  t.match(await page.text(), /<html/i, 'serves the web client');
  child.kill('SIGTERM');
  t.equal((await a.c.closed).code, 1012);
  t.equal((await b.c.closed).code, 1012);
  t.equal(await exited, 0);
});

t.test('SIGINT also shuts down cleanly', async (t) => {
  const { child, exited } = await startCli(t, []);
  child.kill('SIGINT');
  t.equal(await exited, 0);
});

t.test('flags win over CHATMESH_* env vars, which win over defaults', async (t) => {
  // The env asks for an id; the flag for the port wins over the env's unusable port.
  const { httpPort: port } = await startCli(t, [], { CHATMESH_ID: 'from-env', CHATMESH_HTTP_PORT: '1' });
  const { c, welcome } = await connectAs(`ws://127.0.0.1:${port}/ws`, 'u');
  t.teardown(() => c.close());
  t.equal(welcome['node'], 'from-env');
});

t.test('chatmesh token signs a token that a --auth jwt node accepts', async (t) => {
  const secret = 'cli-secret-xyz';
  const { stdout } = await run(process.execPath, [CLI, 'token', '--user', 'dora', '--secret', secret, '--ttl', '10m']);
  const token = stdout.trim();
  t.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  const { httpPort: port } = await startCli(t, ['--auth', 'jwt', '--jwt-secret', secret]);
  const c = new TestClient(`ws://127.0.0.1:${port}/ws`);
  t.teardown(() => c.close());
  await c.opened;
  c.send({ type: 'hello', token });
  t.equal((await c.next('welcome'))['user'], 'dora');
});

t.test('bad flags fail with a clear message and exit 2 (a usage error)', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['node', '--auth', 'jwt'], /--auth jwt needs --jwt-secret/],
    [['node', '--http-port', 'eighty'], /whole number/],
    [['node', '--discovery', 'dns'], /allowed choices are static, consul/],
    [['node', '--peers', 'nohost'], /not host:port/],
    [['node', '--discovery', 'consul', '--host', '0.0.0.0'], /needs --advertise/],
    [['token', '--user', 'x'], /--secret/],
    [['token', '--user', 'x', '--secret', 's', '--ttl', 'soon'], /time span/],
    [['node', '--mesh-linger-ms', '51'], /--mesh-linger-ms must be a whole number 0-50, got 51/],
    [['node', '--mesh-linger-ms', 'soon'], /--mesh-linger-ms/],
  ];
  for (const [args, why] of cases) {
    const r = await run(process.execPath, [CLI, ...args]).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, why, args.join(' '));
  }
  const help = await run(process.execPath, [CLI, 'node', '--help']);
  for (const f of ['--id', '--host', '--advertise', '--http-port', '--mesh-port', '--admin-port', '--base-port', '--discovery', '--peers', '--consul-url', '--service-name', '--auth', '--jwt-secret', '--mesh-secret', '--admin-token', '--route-cache-size', '--mesh-linger-ms']) {
    t.match(help.stdout, f, `--help lists ${f}`);
  }
});
