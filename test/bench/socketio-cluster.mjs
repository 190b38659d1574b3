// The Socket.IO cluster of the bench's `socketio` scenario (run.mjs): one redis-server (a free port,
// no persistence: `--save '' --appendonly no`, its own temp dir) and 3 socketio-node.mjs processes
// with @socket.io/redis-adapter on it. Every process goes through run.mjs's `track`, so every exit
// path of the runner stops it; on top of that the nodes are preloaded with orphan-guard.mjs and
// redis-server runs under `setpriv --pdeathsig KILL` (when setpriv exists), so none outlives a
// runner that is killed outright.
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { HOST, freePort, httpGet } from './bench-util.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Full path of an executable on PATH, or null. */
export function findOnPath(cmd) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** The one line the bench prints when the scenario cannot run. */
export const NO_REDIS_NOTE = 'socketio: skipped, redis-server is not on PATH (Debian/Ubuntu: sudo apt-get install -y redis-server)';

/** Keeps the last lines of a child's output; shows the first few (unless the cluster is stopping). */
function watchOutput(proc, name, ctx, onLine) {
  proc.lines = [];
  let shown = 0;
  for (const stream of [proc.child.stdout, proc.child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      proc.lines.push(line);
      if (proc.lines.length > 30) proc.lines.shift();
      if (onLine?.(line)) return;
      if (proc.stopping || ctx.stopping()) return;
      if (shown < 10) {
        shown++;
        ctx.log(`  [${name}] ${line.slice(0, 300)}`);
      }
    });
  }
  proc.child.once('exit', (code, signal) => {
    proc.exit = { code, signal };
    if (!proc.stopping && !ctx.stopping()) process.stderr.write(`bench: ${name} exited unexpectedly (${code ?? signal})\n${proc.lines.slice(-10).join('\n')}\n`);
  });
}

/** Resolves when `test(proc)` holds, checked every 50 ms; rejects after `ms` or when the process exits. */
async function waitFor(proc, name, ms, test) {
  const t0 = performance.now();
  for (;;) {
    if (proc.exit) throw new Error(`${name} exited during startup (${proc.exit.code ?? proc.exit.signal}): ${proc.lines.slice(-5).join(' | ')}`);
    if (await test(proc)) return;
    if (performance.now() - t0 > ms) throw new Error(`${name} not ready after ${ms} ms: ${proc.lines.slice(-5).join(' | ')}`);
    await sleep(50);
  }
}

/**
 * Starts redis-server and `count` Socket.IO nodes. `ctx`: { track(child, name), stopChild(child, graceMs),
 * log(line), stopping(): bool, addTempDir(dir), removeTempDir(dir) }. Resolves with
 * { nodes: [{ id, pid, http }], redis: { id: 'redis', pid, port }, stop() }.
 */
export async function startSocketIoCluster(label, count, ctx) {
  const redisBin = findOnPath('redis-server');
  if (!redisBin) throw new Error(NO_REDIS_NOTE);
  const setpriv = findOnPath('setpriv');
  const dir = mkdtempSync(join(tmpdir(), `chatmesh-bench-${label}-redis-`));
  ctx.addTempDir(dir);
  const procs = [];
  const stop = async () => {
    for (const p of procs) p.stopping = true;
    // Nodes first (they quit their Redis clients), then Redis.
    await Promise.all(procs.filter((p) => p.id !== 'redis').map((p) => ctx.stopChild(p.child, 5000)));
    await Promise.all(procs.filter((p) => p.id === 'redis').map((p) => ctx.stopChild(p.child, 5000)));
    ctx.removeTempDir(dir);
  };
  try {
    const port = await freePort();
    const redisArgs = [redisBin, '--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'no', '--daemonize', 'no'];
    const [cmd, ...args] = setpriv ? [setpriv, '--pdeathsig', 'KILL', ...redisArgs] : redisArgs; // setpriv execs: same pid
    const redis = { id: 'redis', port, ready: false };
    redis.child = ctx.track(spawn(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }), 'redis-server');
    redis.pid = redis.child.pid;
    procs.push(redis);
    watchOutput(redis, `${label} redis`, ctx, (line) => {
      if (/Ready to accept connections/.test(line)) redis.ready = true;
      return true; // its start-up banner and notices are not shown
    });
    await waitFor(redis, 'redis-server', 10_000, (p) => p.ready);

    const nodes = [];
    for (let i = 0; i < count; i++) {
      const id = `s${i}`;
      const http = await freePort();
      const node = { id, http, ready: false };
      node.child = ctx.track(spawn(process.execPath, [
        '--import', pathToFileURL(join(here, 'orphan-guard.mjs')).href,
        join(here, 'socketio-node.mjs'), '--id', id, '--host', HOST, '--port', String(http), '--redis', `redis://${HOST}:${port}`,
      ], { stdio: ['ignore', 'pipe', 'pipe'] }), `socketio ${id}`);
      node.pid = node.child.pid;
      procs.push(node);
      watchOutput(node, `${label} ${id}`, ctx, (line) => {
        if (line.startsWith('SOCKETIO_READY ')) {
          node.ready = true;
          return true;
        }
        return false;
      });
      nodes.push(node);
    }
    for (const n of nodes) await waitFor(n, `socketio node ${n.id}`, 30_000, (p) => p.ready);
    // Listening and both Redis clients connected; /healthz confirms the HTTP side answers.
    for (const n of nodes) await waitFor(n, `socketio node ${n.id}`, 5000, async () => (await httpGet(`http://${HOST}:${n.http}/healthz`).catch(() => ({}))).status === 200);
    return { nodes, redis, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
