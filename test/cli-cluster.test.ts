/**
 * `chatmesh cluster` through the real CLI: a node that dies is reported while the others keep
 * serving; with --restart it comes back (same id and ports) after a back-off; SIGTERM stops all.
 * The back-off itself is pure and tested by values.
 */
import t from 'tap';
import type { Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { RestartBackoff } from '../src/cluster-backoff.js';
import { ClusterNode, describeExit } from '../src/cluster-node.js';
import { clusterExitCode, clusterOptionsProblem, maxBasePort } from '../src/cluster.js';
import { CLI, freeBase } from './helpers/procs.js';


// Many real CLI processes: slow on a loaded machine (the per-file default is 60 s).
t.setTimeout(180_000);
t.test('back-off: 500 ms doubling to 10 s, back to 500 ms after a run of 30 s', async (t) => {
  const b = new RestartBackoff();
  t.same([1, 1, 1, 1, 1, 1, 1].map((up) => b.delayAfter(up)), [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
  t.equal(b.delayAfter(29_999), 10_000, 'a run just short of 30 s does not reset it');
  t.equal(b.delayAfter(30_000), 500, 'a run of 30 s does');
  t.equal(b.delayAfter(0), 1000);
  t.throws(() => new RestartBackoff({ initialMs: 0, maxMs: 1, resetAfterMs: 1 }), RangeError);
  t.throws(() => new RestartBackoff({ initialMs: 2, maxMs: 1, resetAfterMs: 1 }), RangeError);
});

t.test('ports must fit: the last admin port is P+200+N-1 <= 65535', async (t) => {
  t.equal(maxBasePort(1), 65335);
  t.equal(maxBasePort(100), 65236);
  t.equal(clusterOptionsProblem(3, 65333), undefined);
  t.match(clusterOptionsProblem(3, 65334), /must be 1-65333 for 3 node/);
  t.match(clusterOptionsProblem(0, 8080), /--nodes <n>' must be 1-100/);
});

/** A supervised stand-in for a node: a script that prints a line and exits with `codes[run]`, or keeps running past them. */
function fakeNode(t: Test, codes: number[], restart: boolean): { node: ClusterNode; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'chatmesh-fake-node-'));
  const runs = join(dir, 'runs');
  // Each run appends a byte to a file: how many there are is its index.
  const script = `const fs = require('fs'); fs.appendFileSync(${JSON.stringify(runs)}, 'x'); const c = ${JSON.stringify(codes)}[fs.readFileSync(${JSON.stringify(runs)}).length - 1];` +
    " console.log('run'); if (c === undefined) setInterval(() => {}, 1000); else process.exitCode = c;";
  const node = new ClusterNode({
    id: 'n', restart, args: ['-e', script],
    backoff: { initialMs: 10, maxMs: 20, resetAfterMs: 60_000 },
    print: (l) => out.push(l),
    warn: (l) => err.push(l),
  });
  t.teardown(() => {
    node.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return { node, out, err };
}

t.test('ClusterNode: restarts with the back-off, never after exit 2; stop() ends it for good', async (t) => {
  const { node, out, err } = fakeNode(t, [3, 0], true);
  node.start('first');
  // Run 0 exits 3, run 1 exits 0 (also restarted: only the cluster stops nodes), run 2 keeps running.
  await until('third run', async () => (out.filter((l) => l === '[n] run').length === 3 ? true : undefined));
  t.match(err, [/^\[cluster\] n \(pid \d+\) exited \(code 3\); restarting it in 10 ms$/, /exited \(code 0\); restarting it in 20 ms$/]);
  t.match(out.filter((l) => l.startsWith('[cluster]')), [/: first$/, /: restarted$/, /: restarted$/]);
  t.ok(node.pid);
  node.stop();
  await node.done;
  t.same(node.lastExit, { code: null, signal: 'SIGTERM' }, 'stopped by the cluster');
  t.equal(describeExit(node.lastExit!), 'signal SIGTERM');
  t.equal(err.length, 2, 'a stop is not reported as an exit');
});

t.test('ClusterNode: exit 2 is not restarted; without restart an exit is final; stop during the back-off', async (t) => {
  const bad = fakeNode(t, [2], true);
  bad.node.start();
  await bad.node.done;
  t.match(bad.err, [/exited \(code 2\): its flags are wrong, not restarting it$/]);
  t.equal(clusterExitCode([bad.node]), 2);

  const once = fakeNode(t, [1], false);
  once.node.start();
  await once.node.done;
  t.match(once.err, [/exited \(code 1\); the other nodes keep running$/]);
  t.equal(clusterExitCode([once.node]), 1);

  const waiting = new ClusterNode({ id: 'w', restart: true, args: ['-e', 'process.exitCode = 5'], backoff: { initialMs: 60_000, maxMs: 60_000, resetAfterMs: 1 }, print: () => undefined, warn: () => undefined });
  t.teardown(() => waiting.stop('SIGKILL'));
  waiting.start();
  await until('the first exit', async () => waiting.lastExit);
  waiting.stop();
  await waiting.done;
  t.equal(waiting.pid, undefined, 'no restart after stop()');
  t.same(waiting.lastExit, { code: 5 });
});



/** Polls `fn` until it returns a value, failing after `ms`. */
async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `/healthz` of a node once it answers 200 and sees `peers` peers: its incarnation. */
function healthy(port: number, peers: number): Promise<string> {
  return until(`node on ${port} healthy`, async () => {
    const r = await fetch(`http://127.0.0.1:${port}/healthz`);
    const body = await r.json() as { incarnation: string; peers: number };
    return r.status === 200 && body.peers === peers ? body.incarnation : undefined;
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts `chatmesh cluster`; every process it and its nodes ran is killed at the end of the test. */
function startCluster(t: Test, args: string[]) {
  const child = spawn(process.execPath, [CLI, 'cluster', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  const err: string[] = [];
  const pids = new Map<string, number[]>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    out.push(line);
    const m = /^\[cluster\] (node-\d+) \(pid (\d+)\)/.exec(line);
    if (m) pids.set(m[1]!, [...pids.get(m[1]!) ?? [], Number(m[2])]);
  });
  createInterface({ input: child.stderr! }).on('line', (line) => err.push(line));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    // The nodes have their own process group: kill them too, in case the cluster could not.
    for (const pid of [...pids.values()].flat()) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  const line = (from: string[], re: RegExp): Promise<string> => until(`a line ${String(re)}`, async () => from.find((l) => re.test(l)));
  const pid = (id: string, nth = 0): Promise<number> => until(`pid of ${id}`, async () => pids.get(id)?.[nth]);
  return { child, out, err, exited, pid, stdoutLine: (re: RegExp) => line(out, re), stderrLine: (re: RegExp) => line(err, re) };
}

t.test('--restart: a SIGKILLed node comes back on the same ports while the other stays up; SIGTERM stops all', async (t) => {
  const base = await freeBase(2);
  const c = startCluster(t, ['--nodes', '2', '--base-port', String(base), '--restart', '--', '--log-level', 'warn']);
  const [pid0, pid1] = [await c.pid('node-0'), await c.pid('node-1')];
  t.match(c.out.join('\n'), new RegExp(`\\[cluster\\] node-1 \\(pid ${pid1}\\): http://127\\.0\\.0\\.1:${base + 1}  mesh 127\\.0\\.0\\.1:${base + 101}  admin 127\\.0\\.0\\.1:${base + 201}`), 'startup line: pid and ports');
  const [inc0, inc1] = [await healthy(base, 1), await healthy(base + 1, 1)];

  process.kill(pid1, 'SIGKILL');
  t.match(await c.stderrLine(/node-1/), new RegExp(`^\\[cluster\\] node-1 \\(pid ${pid1}\\) exited \\(signal SIGKILL\\); restarting it in 500 ms$`));
  const again = await c.pid('node-1', 1);
  t.not(again, pid1, 'a new process');
  t.ok(await c.stdoutLine(new RegExp(`^\\[cluster\\] node-1 \\(pid ${again}\\): restarted$`)), 'the restart is printed');
  const back = await healthy(base + 1, 1);
  t.not(back, inc1, 'node-1 is a new incarnation, healthy on its old HTTP port and meshed again');
  t.equal(await healthy(base, 1), inc0, 'node-0 kept running all along');
  t.ok(alive(pid0));

  c.child.kill('SIGTERM');
  t.equal(await c.exited, 0, 'every node stopped gracefully: exit 0');
  t.ok(c.err.includes('[cluster] stopping every node'));
  t.notOk(c.err.some((l) => /exited/.test(l) && !l.includes(String(pid1))), 'no node reported as exiting on its own while stopping');
  await until('nodes gone', async () => (alive(pid0) || alive(again) ? undefined : true));
});

t.test('without --restart a node that dies is reported and the other keeps running', async (t) => {
  const base = await freeBase(2);
  const c = startCluster(t, ['--nodes', '2', '--base-port', String(base), '--', '--log-level', 'warn']);
  const [pid0, pid1] = [await c.pid('node-0'), await c.pid('node-1')];
  const inc0 = await healthy(base, 1);
  await healthy(base + 1, 1);

  process.kill(pid1, 'SIGKILL');
  t.equal(await c.stderrLine(/node-1/), `[cluster] node-1 (pid ${pid1}) exited (signal SIGKILL); the other nodes keep running`);
  t.equal(await healthy(base, 0), inc0, 'node-0 still serves (and sees its peer gone)');
  t.equal(c.child.exitCode, null, 'the cluster still runs');
  t.ok(alive(pid0));
  t.notOk(c.out.some((l) => l.includes('restarted')), 'no restart');

  c.child.kill('SIGTERM');
  t.equal(await c.exited, 1, 'exit 1: a node failed');
  await until('node-0 gone', async () => (alive(pid0) ? undefined : true));
});
