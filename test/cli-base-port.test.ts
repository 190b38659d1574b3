/**
 * `chatmesh node --base-port P` moves the node's three ports at once, as node 0 of
 * `chatmesh cluster --base-port P`: HTTP P, mesh P+100, admin P+200. A port flag wins over it;
 * `CHATMESH_BASE_PORT` works like the other variables (a flag wins over a variable).
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { clusterPorts } from '../src/cluster.js';
import { CLI, startCliNode, freeBase } from './helpers/procs.js';

const run = promisify(execFile);



function ports(logs: ReadonlyArray<Record<string, unknown>>): { http: unknown; mesh: unknown; admin: unknown } {
  const r = logs.find((l) => typeof l['adminPort'] === 'number')!;
  return { http: r['httpPort'], mesh: r['meshPort'], admin: r['adminPort'] };
}

t.test('node --base-port P listens on P (HTTP, /healthz), P+100 (mesh) and P+200 (admin)', async (t) => {
  const p = await freeBase();
  const node = await startCliNode(t, ['--base-port', String(p)]);
  t.same(ports(node.logs), { http: p, mesh: p + 100, admin: p + 200 });
  t.same(ports(node.logs), clusterPorts(p, 0), 'the same derivation as node 0 of a cluster');
  const health = await fetch(`http://127.0.0.1:${p}/healthz`);
  t.equal(health.status, 200, '/healthz on P');
  const stats = await run(process.execPath, [CLI, 'ctl', '--admin', `127.0.0.1:${p + 200}`, 'stats', '--json']);
  t.equal((JSON.parse(stats.stdout) as { nodeId: string }).nodeId, node.logs[0]!['node'], 'the admin API on P+200');
  node.child.kill('SIGTERM');
  t.equal(await node.exited, 0);
});

t.test('port flags win over --base-port; CHATMESH_BASE_PORT works; a flag wins over a variable', async (t) => {
  const [a, b] = [await freeBase(), await freeBase()];
  const [flagWins, fromEnv, baseFlagOverEnvPort] = await Promise.all([
    // --http-port given: only mesh and admin follow the base port.
    startCliNode(t, ['--base-port', String(a), '--http-port', '0']),
    // The base port from the environment, the admin port from a flag.
    startCliNode(t, ['--admin-port', '0'], { CHATMESH_BASE_PORT: String(b) }),
    // CHATMESH_HTTP_PORT=1 would fail: the --base-port flag beats the variable.
    freeBase().then((c) => startCliNode(t, ['--base-port', String(c)], { CHATMESH_HTTP_PORT: '1' }).then((n) => ({ n, c }))),
  ]);
  const f = ports(flagWins.logs);
  t.not(f.http, a, '--http-port 0 won');
  t.same([f.mesh, f.admin], [a + 100, a + 200]);
  const e = ports(fromEnv.logs);
  t.same([e.http, e.mesh], [b, b + 100], 'from CHATMESH_BASE_PORT');
  t.not(e.admin, b + 200, '--admin-port 0 won');
  const { n, c } = baseFlagOverEnvPort;
  t.same(ports(n.logs), { http: c, mesh: c + 100, admin: c + 200 });
});
