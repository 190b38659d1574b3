/**
 * `chatmesh ctl` pointed at the wrong place says what is there and what to check (exit 1): the
 * node's HTTP port (an HTTP/1 server), its mesh port (gRPC, not the admin API), a closed port.
 * Ranges of its numeric options are enforced before any call (exit 2), both ends accepted.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CLI, freePort, startCliNode } from './helpers/procs.js';

const run = promisify(execFile);
type Ran = { code: number; stdout: string; stderr: string };

function ctl(admin: string, ...args: string[]): Promise<Ran> {
  return run(process.execPath, [CLI, 'ctl', '--admin', admin, ...args]).then(
    (r) => ({ code: 0, ...r }),
    (e: Ran) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

const HINT = 'the admin port of `chatmesh node` defaults to 9090 (--admin-port); `chatmesh cluster` gives node i port P+200+i';

t.test('ctl against a real node: the wrong port is named and explained', async (t) => {
  const node = await startCliNode(t, ['--http-port', '0', '--mesh-port', '0', '--admin-port', '0']);
  const ports = node.logs.find((r) => typeof r['adminPort'] === 'number')!;
  const http = `127.0.0.1:${node.httpPort}`;
  const mesh = `127.0.0.1:${String(ports['meshPort'])}`;
  const admin = `127.0.0.1:${String(ports['adminPort'])}`;
  const closed = `127.0.0.1:${await freePort()}`;

  const [onHttp, onMesh, onClosed, ok] = await Promise.all([ctl(http, 'stats'), ctl(mesh, 'peers'), ctl(closed, 'stats'), ctl(admin, 'stats')]);
  t.equal(onHttp.code, 1, 'HTTP port: exit 1');
  t.equal(onHttp.stderr, `chatmesh ctl: cannot talk to the admin API at ${http}: it does not speak gRPC — is ${http} the admin port? ${HINT}\n`);
  t.equal(onMesh.code, 1, 'mesh port: exit 1');
  t.equal(onMesh.stderr, `chatmesh ctl: cannot talk to the admin API at ${mesh}: it speaks gRPC but does not implement /chatmesh.admin.v1.Admin/ListPeers — ` +
    `is ${mesh} the mesh port, or a node of an older version? ${HINT}\n`);
  t.equal(onClosed.code, 1, 'closed port: exit 1');
  t.equal(onClosed.stderr, `chatmesh ctl: cannot reach the admin API at ${closed}: nothing listens on ${closed} — is the node running? ${HINT}\n`);
  for (const r of [onHttp, onMesh, onClosed]) {
    t.notMatch(r.stderr, /Resolution note/, 'no empty grpc-js note');
    t.equal(r.stdout, '');
  }
  t.equal(ok.code, 0, 'the admin port answers');
  t.match(ok.stdout, /^counter\s+value\n/);

  // Ranges: both ends are accepted, one past them refused before any call.
  const [lo, hi, zero, over, fast] = await Promise.all([
    ctl(admin, 'routes', '--limit', '1'), ctl(admin, 'routes', '--limit', '10000', '--json'),
    ctl(admin, 'routes', '--limit', '0'), ctl(admin, 'routes', '--limit', '20000'),
    ctl(admin, '--timeout-ms', '600000', 'peers', '--timeout-ms', '1'),
  ]);
  t.equal(lo.code, 0, '--limit 1');
  t.equal(hi.code, 0, '--limit 10000');
  t.same(JSON.parse(hi.stdout), [], 'no routes yet');
  for (const [r, v] of [[zero, '0'], [over, '20000']] as const) {
    t.equal(r.code, 2, `--limit ${v}`);
    t.equal(r.stderr, `chatmesh: error: option '--limit <n>' must be 1-10000 (got '${v}')\nrun 'chatmesh ctl routes --help' for usage\n`);
  }
  // The subcommand's own --timeout-ms wins; 1 ms is a valid deadline (answered or timed out, never a usage error).
  t.not(fast.code, 2, '--timeout-ms 1 is in range');
  if (fast.code === 1) t.match(fast.stderr, /no answer from .* within 1 ms/);
});
