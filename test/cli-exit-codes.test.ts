/**
 * One exit-code convention in every command, through the real CLI: a usage error exits 2 with one
 * line and a hint on stderr (never the whole help); a failure at run time exits 1; help exits 0.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { CLI, freePort } from './helpers/procs.js';


// Many real CLI processes: slow on a loaded machine (the per-file default is 60 s).
t.setTimeout(180_000);
const run = promisify(execFile);
type Ran = { code: number; stdout: string; stderr: string };

function exitOf(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  return run(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } }).then(
    (r) => ({ code: 0, ...r }),
    (e: Ran) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

/** Runs the cases a few processes at a time (each loads the whole CLI). */
async function all<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += 6) out.push(...await Promise.all(items.slice(i, i + 6).map(fn)));
  return out;
}

type Case = [args: string[], message: RegExp, hint: string, env?: Record<string, string>];

const USAGE: Case[] = [
  [[], /^missing command \(one of: node, cluster, ctl, token\)$/, 'chatmesh'],
  [['nope'], /^unknown command 'nope'/, 'chatmesh'],
  [['--bogus'], /^unknown option '--bogus'$/, 'chatmesh'],
  // node: commander's checks, the config's (ConfigError), and a range check of --base-port
  [['node', '--bogus'], /^unknown option '--bogus'$/, 'chatmesh node'],
  [['node', '--http-port'], /^option '--http-port <port>' argument missing$/, 'chatmesh node'],
  [['node', '--http-port', 'eighty'], /^option '--http-port <port>' must be a whole number \(got 'eighty'\)$/, 'chatmesh node'],
  [['node', '--http-port', '70000'], /--http-port must be a port number 0-65535, got 70000/, 'chatmesh node'],
  [['node', '--base-port', '0'], /^option '--base-port <port>' must be 1-65335 \(got '0'\)$/, 'chatmesh node'],
  [['node', '--base-port', '65336'], /^option '--base-port <port>' must be 1-65335 \(got '65336'\)$/, 'chatmesh node'],
  [['node'], /^option '--base-port <port>' must be 1-65335 \(got '99999' from CHATMESH_BASE_PORT\)$/, 'chatmesh node', { CHATMESH_BASE_PORT: '99999' }],
  [['node', '--discovery', 'dns'], /^option '--discovery <kind>' allowed choices are static, consul \(got 'dns'\)$/, 'chatmesh node'],
  [['node', '--auth', 'jwt'], /^--auth jwt needs --jwt-secret$/, 'chatmesh node'],
  [['node', '--history-ttl', 'forever'], /--history-ttl must be a time span/, 'chatmesh node'],
  // cluster
  [['cluster'], /^required option '--nodes <n>' not specified$/, 'chatmesh cluster'],
  [['cluster', '--nodes', '0'], /^option '--nodes <n>' must be 1-100 \(got '0'\)$/, 'chatmesh cluster'],
  [['cluster', '--nodes', '101'], /^option '--nodes <n>' must be 1-100 \(got '101'\)$/, 'chatmesh cluster'],
  [['cluster', '--nodes', 'x'], /^option '--nodes <n>' must be a whole number 1-100 \(got 'x'\)$/, 'chatmesh cluster'],
  [['cluster', '--nodes', '3', '--base-port', '65334'], /^option '--base-port <port>' must be 1-65333 for 3 node\(s\)/, 'chatmesh cluster'],
  [['cluster', '--nodes', '2', '--bogus'], /^unknown option '--bogus'$/, 'chatmesh cluster'],
  // token
  [['token'], /^required option '--user <user>' not specified$/, 'chatmesh token'],
  [['token', '--user', 'x'], /^required option '--secret <secret>' not specified$/, 'chatmesh token'],
  [['token', '--user', 'x', '--secret', 's', '--ttl', 'soon'], /^option '--ttl <span>' must be a time span like 30m, 1h, 7d \(got 'soon'\)$/, 'chatmesh token'],
  [['token', '--user', 'not a valid id!', '--secret', 's'], /^invalid user id "not a valid id!"$/, 'chatmesh token'],
  [['token', '--user', 'x', '--secret', 's', '--bogus'], /^unknown option '--bogus'$/, 'chatmesh token'],
  // ctl: every numeric option against its documented range, before any call
  [['ctl'], /^missing command \(one of: route, room, routes, peers, stats, drain, stream\)$/, 'chatmesh ctl'],
  [['ctl', 'nope'], /^unknown command 'nope' \(one of: route, room, routes, peers, stats, drain, stream\)$/, 'chatmesh ctl'],
  [['ctl', '--bogus', 'stats'], /^unknown option '--bogus'$/, 'chatmesh ctl'],
  [['ctl', 'route'], /^missing required argument 'user'$/, 'chatmesh ctl route'],
  [['ctl', 'routes', '--limit', '0'], /^option '--limit <n>' must be 1-10000 \(got '0'\)$/, 'chatmesh ctl routes'],
  [['ctl', 'routes', '--limit', '20000'], /^option '--limit <n>' must be 1-10000 \(got '20000'\)$/, 'chatmesh ctl routes'],
  [['ctl', 'routes', '--limit', '1.5'], /^option '--limit <n>' must be a whole number 1-10000 \(got '1.5'\)$/, 'chatmesh ctl routes'],
  [['ctl', '--timeout-ms', '0', 'stats'], /^option '--timeout-ms <ms>' must be 1-600000 \(got '0'\)$/, 'chatmesh ctl'],
  [['ctl', 'stats', '--timeout-ms', '600001'], /^option '--timeout-ms <ms>' must be 1-600000 \(got '600001'\)$/, 'chatmesh ctl stats'],
  [['ctl', '--admin', '9090', 'stats'], /^option '--admin <host:port>' must be host:port, e.g. 127.0.0.1:9090 \(got '9090'\)$/, 'chatmesh ctl'],
  [['ctl', 'peers', '--admin', 'localhost:0'], /^option '--admin <host:port>' must name a port 1-65535/, 'chatmesh ctl peers'],
];

t.test('usage errors exit 2 with one line and a hint, in every command', { timeout: 120_000 }, async (t) => {
  const results = await all(USAGE, ([args, , , env]) => exitOf(args, env));
  USAGE.forEach(([args, message, hint], i) => {
    const r = results[i]!;
    const what = `chatmesh ${args.join(' ')}`;
    t.equal(r.code, 2, `${what}: exit 2`);
    const lines = r.stderr.split('\n');
    t.equal(lines.length, 3, `${what}: two lines`, { stderr: r.stderr });
    t.match(lines[0], /^chatmesh: error: /, what);
    t.match(lines[0]!.replace(/^chatmesh: error: /, ''), message, what);
    t.equal(lines[1], `run '${hint} --help' for usage`, `${what}: the hint`);
    t.notMatch(r.stderr, /Usage:|Options:/, `${what}: not the whole help`);
    t.equal(r.stdout, '', `${what}: nothing on stdout`);
  });
});

t.test('--help exits 0 with the help on stdout, for every command', async (t) => {
  const results = await all([[], ['node'], ['cluster'], ['token'], ['ctl'], ['ctl', 'routes']], (c) => exitOf([...c, '--help']));
  for (const r of results) {
    t.equal(r.code, 0);
    t.match(r.stdout, /^Usage: chatmesh/);
    t.equal(r.stderr, '');
  }
  t.match(results[0]!.stdout, /Exit codes: 0 done, 1 failed at run time .*\s*2 usage error/, 'the convention is documented');
  t.match(results[4]!.stdout, /--timeout-ms <ms>\s+deadline of each call \(1-600000/);
  t.match(results[5]!.stdout, /--limit <n>\s+max routes \(1-10000\)/);
});

t.test('failures at run time exit 1', async (t) => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => busy.close());
  const port = (busy.address() as { port: number }).port;
  const closed = await freePort();

  const [node, ctl] = await Promise.all([
    exitOf(['node', '--http-port', String(port), '--mesh-port', '0', '--admin-port', '0', '--log-level', 'silent']),
    exitOf(['ctl', '--admin', `127.0.0.1:${closed}`, 'stats']),
  ]);
  t.equal(node.code, 1, 'node: a port in use');
  t.match(node.stderr, /^chatmesh: .*EADDRINUSE.*\(is another node running on that port\?\)\n$/);
  t.equal(ctl.code, 1, 'ctl: nothing listens');
  t.match(ctl.stderr, /^chatmesh ctl: cannot reach the admin API at 127\.0\.0\.1:\d+: nothing listens/);
  t.equal(ctl.stderr.split('\n').length, 2, 'one line');
});

t.test('cluster: a node that fails to start is reported with its exit code; the cluster exits 1 (2 for bad node flags)', async (t) => {
  const port = await freePort();
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(port, '127.0.0.1', resolve));
  t.teardown(() => busy.close());
  // The node's HTTP port (the base port) is taken: it exits 1 at once, and so does the cluster.
  const [failed, badFlags] = await Promise.all([
    exitOf(['cluster', '--nodes', '1', '--base-port', String(port), '--', '--log-level', 'silent']),
    exitOf(['cluster', '--nodes', '1', '--base-port', String(port), '--restart', '--', '--history-ttl', 'bogus']),
  ]);
  t.equal(failed.code, 1);
  t.match(failed.stderr, /\[cluster\] node-0 \(pid \d+\) exited \(code 1\); the other nodes keep running\n/);
  t.match(failed.stderr, /\[cluster\] every node has exited\n/);
  t.equal(badFlags.code, 2, 'a node exiting 2: not restarted, and the cluster exits 2');
  t.match(badFlags.stderr, /\[cluster\] node-0 \(pid \d+\) exited \(code 2\): its flags are wrong, not restarting it\n/);
  t.match(badFlags.stdout, /\[node-0\] chatmesh: error: --history-ttl must be a time span/);
});
