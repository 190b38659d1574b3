// What the bench scripts share: free ports, plain HTTP reads, a node's /metrics, a process's CPU
// time from /proc, the command/event channel to a forked load process, the commit measured, and
// the guards of a child bench's main.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

export const HOST = '127.0.0.1';

/**
 * The chatmesh CLI the benches start: this checkout's build, or BENCH_CLI (the dist/cli.js of
 * another build, e.g. a worktree of an older commit), so that two builds are measured by the same
 * bench code: `BENCH_CLI=/tmp/base/dist/cli.js npm run bench`. Flags the other build lacks fail its start.
 */
export function benchCli(root) {
  const other = process.env.BENCH_CLI;
  return other ? resolve(other) : join(root, 'dist', 'cli.js');
}
/** Linux USER_HZ: /proc times are in these ticks per second. */
export const CLK_TCK = 100;

/** A port that was free a moment ago. */
export function freePort(host = HOST) {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** GET `url`: `{ status, text }`; rejects after `timeoutMs`. */
export async function httpGet(url, timeoutMs = 2000) {
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(), timeoutMs);
  try {
    const res = await fetch(url, { signal: ac.signal });
    return { status: res.status, text: await res.text() };
  } finally {
    clearTimeout(t);
  }
}

/** The `chatmesh_*` samples of the /metrics at `httpPort`, summed over labels: name → number. */
export async function nodeMetrics(httpPort, host = HOST) {
  const { text } = await httpGet(`http://${host}:${httpPort}/metrics`);
  const out = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('chatmesh_')) continue;
    const m = /^([a-z_]+)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m) out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
  }
  return out;
}

/** utime and stime of a process, in ms (NaN when it is gone). */
export function procCpuMs(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // Fields after the command: state is index 0, utime index 11, stime index 12.
    return { user: (Number(f[11]) * 1000) / CLK_TCK, sys: (Number(f[12]) * 1000) / CLK_TCK };
  } catch {
    return { user: NaN, sys: NaN };
  }
}

/**
 * The channel to a forked load process that answers commands with `{ ev }` messages, reports
 * `{ ev: 'mark' }` and `{ ev: 'error' }`: `call(msg, ev, timeoutMs)` sends a command and resolves
 * with the event `ev` (bounded); `onMark(f)` hears the marks. A failure or an exit rejects every call.
 */
export function childChannel(child, name) {
  const waiters = [];
  const marks = [];
  let failure;
  child.on('message', (m) => {
    if (m.ev === 'error') {
      failure = new Error(`${name}: ${m.message}`);
      for (const w of waiters.splice(0)) w.reject(failure);
      return;
    }
    if (m.ev === 'mark') {
      for (const f of marks) f(m.mark);
      return;
    }
    const i = waiters.findIndex((w) => w.ev === m.ev);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m);
  });
  child.once('exit', (code, signal) => {
    const err = failure ?? new Error(`${name} exited (${code ?? signal})`);
    for (const w of waiters.splice(0)) w.reject(err);
  });
  return {
    child,
    onMark(f) {
      marks.push(f);
    },
    call(msg, ev, timeoutMs) {
      if (failure) return Promise.reject(failure);
      // Gone (stopped by a signal's cleanup, or crashed): a rejection, not an 'error' event nobody handles.
      if (!child.connected) return Promise.reject(new Error(`${name}: its channel is closed (${msg.cmd})`));
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${name}: no ${ev} within ${timeoutMs} ms for ${msg.cmd}`)), timeoutMs);
        waiters.push({ ev, resolve: (m) => { clearTimeout(t); resolve(m); }, reject: (e) => { clearTimeout(t); reject(e); } });
        child.send(msg);
      });
    },
  };
}

/**
 * Every sample of a Prometheus text exposition: `[{ name, labels: {k: v}, value }]` (comments
 * skipped; `+Inf` and `NaN` become numbers).
 */
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) for (const l of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return out;
}

/** The parsed /metrics (parseMetrics) of the node at `httpPort`, with the time read; null when it did not answer. */
export async function scrapeMetrics(httpPort, host = HOST, timeoutMs = 2000) {
  try {
    const { status, text } = await httpGet(`http://${host}:${httpPort}/metrics`, timeoutMs);
    return status === 200 ? { t: performance.now(), samples: parseMetrics(text) } : null;
  } catch {
    return null;
  }
}

/** True while a child process has not exited. */
export function alive(child) {
  return child.exitCode === null && child.signalCode === null;
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL; resolves when the child has exited. */
export async function stopChild(child, graceMs = 10_000) {
  if (!alive(child)) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => {
    if (alive(child)) child.kill('SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(t);
}

/** The commit measured, and whether the work tree had changes (results of a dirty tree are not a commit's). */
export function gitState(root) {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8' }).trim() !== '';
    return { commit, dirty };
  } catch {
    return undefined;
  }
}

/**
 * Runs the main of a bench that run.mjs starts as a child (or a person runs alone), with the guards
 * each needs: on a signal, or when its parent is gone (run.mjs killed outright; the nodes follow by
 * orphan-guard.mjs), or at its hard time limit, `cleanup` runs and the process exits; so does it
 * after `main` settles (exit 0, or 1 with the error).
 * @param {string} name - e.g. "conns-bench", in messages
 * @param {() => Promise<void>} main
 * @param {{ cleanup: () => Promise<void>, timeoutS: number, timeoutVar?: string }} opts - timeoutVar: the env variable that sets it
 */
export function runBench(name, main, { cleanup, timeoutS, timeoutVar }) {
  const stop = (code) => cleanup().finally(() => process.exit(code));
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      process.stderr.write(`${name}: ${sig}, stopping children\n`);
      stop(130);
    });
  }
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) stop(1);
  }, 500).unref();
  setTimeout(() => {
    process.stderr.write(`${name}: ${timeoutVar ?? 'time limit'} (${timeoutS} s) reached, stopping\n`);
    stop(1);
  }, timeoutS * 1000).unref();
  main().then(
    () => stop(0),
    (err) => {
      process.stderr.write(`${name} failed: ${err?.stack ?? err}\n`);
      stop(1);
    },
  );
}
