#!/usr/bin/env node
// End-to-end benchmark of chatmesh: `npm run bench` (builds, then runs this file).
//
// Starts 3 node processes (dist/cli.js, static discovery, all on 127.0.0.1) and a load generator
// in its own process (loadgen.mjs), then runs scenarios of direct messages between
// sender/receiver pairs:
//   cross          senders on node 0, receivers on nodes 1 and 2 (every message crosses the mesh);
//                  node defaults: every DM kept in 2 streams on 2 replicas, in memory, before the ack
//   cross-nostore  the same load on nodes run with --history-size 0 (storage off)
//   cross-disk     the same load on nodes run with --data-dir (a fresh temp dir each, removed after):
//                  kept on disk, fsynced before the ack
//   same           senders and receivers on node 0 (nodes 1 and 2 run idle)
//   socketio       the peer of the comparison (issue 11): 3 Socket.IO nodes (socketio-node.mjs) with
//                  @socket.io/redis-adapter on one redis-server (socketio-cluster.mjs), the same load
//                  and layout as `cross` (senders on s0, receivers on s1/s2) through socket.io-client;
//                  its "server CPU" is the 3 nodes AND redis-server. Skipped, with a note saying how
//                  to install it, when redis-server is not on PATH. Socket.IO's ack cannot mean
//                  delivery (a broadcast to a room is fire-and-forget) and it keeps nothing: compare
//                  with `cross` (chatmesh as deployed) and `cross-nostore` (the same work minus storage).
// The report prints cross/same and, for the cost of storage, cross/cross-nostore (memory/off) and
// cross-disk/cross-nostore (disk/off): CPU per delivered message and throughput; socketio/cross and
// socketio/cross-nostore; then the targets table of issue 11 (one row per figure: the issue's
// today, measured, target, met?), whose RSS-per-idle-connection and connections-on-one-node rows come
// from the `conns` child bench when it ran (BENCH_SCENARIOS=...,conns). Compare ratios measured in
// the same run (identical runs on a busy machine differ by up to 40%).
// Everything of issue 11 in one go (about 5 minutes on the 2-core machine):
//   BENCH_SCENARIOS=cross-nostore,cross,same,socketio,conns npm run bench
// Just the storage rows: BENCH_SCENARIOS=cross-nostore,cross,cross-disk npm run bench
// The stream bench (RSS per 100k stored messages, mailbox replay rate, hand-off rate):
//   BENCH_SCENARIOS=streams npm run bench   (or: npm run build && node test/bench/streams-bench.mjs)
// The accounts bench (accounts-bench.mjs, about 50 s, in the default list): a user in 200 rooms with
// 500 conversations, set up through WebSocket clients; ms hello -> welcome and welcome -> `rooms` +
// first `conversations` page over 30 fresh connections (answers checked, bytes, node CPU per first
// screen); then 1000 connections sending `typing` every second: events received/s, node CPU µs per
// forwarded event, share throttled. Just it: BENCH_SCENARIOS=accounts npm run bench
// Each scenario gets a fresh 3-node cluster (so its RSS and profile are its own) and measures:
//   1. saturation: closed loop, BENCH_WINDOW un-acked sends per sender; delivered messages/s
//   2. latency at half of that rate: open loop, paced; p50/p90/p99/max end to end
//   3. the same at a fixed rate, BENCH_FIXED_RATE (run, and flagged, even above the saturation rate)
//   4. RSS of each node at the end of the scenario (/proc/<pid>/status)
// and, per phase and node, the runtime sources of the tail from each node's /metrics (prom-client's
// default metrics; the Socket.IO nodes serve the same): read at the start of the measurement window
// (which resets prom-client's event-loop histogram) and at its end: event-loop delay p50/p99/max
// (monitorEventLoopDelay samples every 10 ms and counts the whole interval; the bench subtracts the
// 10 ms), GC pauses (count, total ms, share of wall time, largest histogram bucket; prom-client keeps
// only the first GC entry of each observer callback, so counts are lower bounds: the Socket.IO
// nodes also count every entry, bench_gc_*), and chatmesh's own histograms (peer-link batch size,
// node-side delivery and replicated-write latency). Beside them, the scheduler floor: the event-loop
// delay of an idle process (sched-probe.mjs) over the same window, which is what sharing the cores
// costs any process here, work of its own or not.
// Prints a table, the ratios and the targets, writes JSON to bench-results/ (gitignored). Besides
// rates it reports CPU from /proc: each node's and the loadgen's share of a core, CPU µs per
// delivered message (robust against a busy machine), and "other processes" (anything else on the
// machine, e.g. a concurrent test run: a disturbed run says so). The nodes are preloaded with
// orphan-guard.mjs and redis-server runs under `setpriv --pdeathsig`, so none outlives a runner
// that is killed outright; every other exit path (end, failure, Ctrl-C, BENCH_TIMEOUT) stops them.
//
// Profiling: `BENCH_PROFILE=1 npm run bench` (or BENCH_SCENARIOS=cross for one scenario); a saved
// profile can be summarized again with `node test/bench/profile-summary.mjs <file.cpuprofile>`.
// Note that V8 samples on wall time: under CPU contention, time a node spends preempted is charged
// to whatever ran last (often `writev`), so compare with the kernel share from /proc.
//
// Env (defaults in brackets):
//   BENCH_SECONDS [8]      measured seconds of each phase
//   BENCH_WARMUP [2]       warm-up seconds before the saturation measurement (paced: half of it)
//   BENCH_PAIRS [50]       sender/receiver pairs
//   BENCH_WINDOW [32]      un-acked sends per sender (socketio: sends not yet received, see loadgen.mjs)
//   BENCH_BODY_BYTES [64]  message body size
//   BENCH_FIXED_RATE [5000] msgs/s of the fixed-rate phase of every load scenario; 0: no such phase
//   BENCH_SCENARIOS [cross-nostore,cross,cross-disk,same,socketio,membership,accounts]
//                          also: streams (stream bench, several minutes), junk (other users' latency under
//                          junk flooders), conns (connections per node: conns-bench.mjs, up to 10 minutes)
//   BENCH_BASE_PORT [0]    0: free ports picked at random; else HTTP P+i, mesh P+100+i, admin P+200+i
//                          (chatmesh nodes only: socketio's nodes and redis-server always take free ports)
//   BENCH_CLI [dist/cli.js of this checkout]  the chatmesh build to measure (another build's dist/cli.js:
//                          the same bench code measures both, e.g. a worktree of the commit before a change)
//   BENCH_NODE_FLAGS []    extra Node.js flags for the chatmesh nodes (not the loadgen), space-separated,
//                          e.g. "--max-semi-space-size=32" to compare V8 heap settings
//   BENCH_ARGS []          extra chatmesh flags for its nodes (after the bench's own), e.g. "--mesh-linger-ms 1"
//   BENCH_PROFILE [0]      1: run the nodes with --cpu-prof, write profiles next to the results and
//                          print the top self-time functions of each node (chatmesh nodes only)
//   BENCH_TIMEOUT [60 + per scenario: 40 + 3 x (warmup + seconds + 5) for load scenarios (2 x without the
//                 fixed phase), 60 membership, 600 streams, 180 accounts, 600 conns]  hard limit of the whole run, seconds
import { fork, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { formatSummary, summarizeProfile } from './profile-summary.mjs';
import { alive, benchCli, HOST, childChannel, freePort, gitState, procCpuMs, scrapeMetrics, stopChild } from './bench-util.mjs';
import { NO_REDIS_NOTE, findOnPath, startSocketIoCluster } from './socketio-cluster.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const cli = benchCli(root);
const NODES = 3;

function envNum(name, def, { min = 0, max = Infinity } = {}) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) {
    process.stderr.write(`bench: ${name}=${raw} is not a number in [${min}, ${max}]\n`);
    process.exit(2);
  }
  return n;
}

const DEFAULT_SCENARIOS = 'cross-nostore,cross,cross-disk,same,socketio,membership,accounts';
const scenarioList = (process.env.BENCH_SCENARIOS || DEFAULT_SCENARIOS).split(',').map((s) => s.trim()).filter(Boolean);
const cfg = {
  seconds: envNum('BENCH_SECONDS', 8, { min: 1, max: 120 }),
  warmup: envNum('BENCH_WARMUP', 2, { min: 0, max: 60 }),
  pairs: envNum('BENCH_PAIRS', 50, { min: 1, max: 2000 }),
  window: envNum('BENCH_WINDOW', 32, { min: 1, max: 10_000 }),
  bodyBytes: envNum('BENCH_BODY_BYTES', 64, { min: 16, max: 16_000 }),
  // Extra Node.js flags for the chatmesh nodes only (not the loadgen), e.g. V8 heap tuning.
  nodeFlags: (process.env.BENCH_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean),
  // Extra chatmesh flags for the nodes, after the bench's own (a later flag wins), e.g. --mesh-linger-ms 1.
  nodeArgs: (process.env.BENCH_ARGS ?? '').split(/\s+/).filter(Boolean),
  fixedRate: envNum('BENCH_FIXED_RATE', 5000, { min: 0, max: 1_000_000 }),
  basePort: envNum('BENCH_BASE_PORT', 0, { min: 0, max: 65_000 }),
  profile: process.env.BENCH_PROFILE === '1' || process.env.BENCH_PROFILE === 'true',
  // A load scenario: set-up plus 2 or 3 phases of warm-up and measurement (and their drains) on a busy 2-core
  // machine; the stream bench (two 3-node fills of 100k messages) up to 10 minutes; the accounts bench (set-up
  // of a big account, 1000 typing connections) up to 3; the connections bench (~19k connections) up to 10.
  timeout: envNum('BENCH_TIMEOUT', 60 + scenarioList.reduce((t, s) => t + ({ streams: 600, accounts: 180, conns: 600, membership: 60, junk: 60 }[s] ?? loadScenarioSeconds()), 0), { min: 10, max: 3600 }),
  scenarios: scenarioList,
};
/** Seconds a load scenario may take: set-up, then saturation, paced and (unless off) fixed-rate phases. */
function loadScenarioSeconds() {
  const phases = process.env.BENCH_FIXED_RATE === '0' ? 2 : 3;
  return 40 + phases * (envNum('BENCH_WARMUP', 2) + envNum('BENCH_SECONDS', 8) + 5);
}
/**
 * Load scenarios (runScenario) → the storage of their nodes: node defaults (memory), off, disk; `socketio`
 * is the Socket.IO + Redis cluster (socketio-cluster.mjs), which keeps nothing.
 */
const LOAD_SCENARIOS = { cross: 'memory', 'cross-nostore': 'off', 'cross-disk': 'disk', same: 'memory', socketio: 'socketio' };
/** Scenarios that are benchmarks of their own, run as a child process: name → file beside this one. */
const CHILD_BENCHES = { membership: 'membership-bench.mjs', junk: 'junk-flood.mjs', streams: 'streams-bench.mjs', accounts: 'accounts-bench.mjs', conns: 'conns-bench.mjs' };
for (const s of cfg.scenarios) {
  if (!(s in LOAD_SCENARIOS) && !(s in CHILD_BENCHES)) {
    process.stderr.write(`bench: unknown scenario "${s}" in BENCH_SCENARIOS (${[...Object.keys(LOAD_SCENARIOS), ...Object.keys(CHILD_BENCHES)].join(', ')})\n`);
    process.exit(2);
  }
}

/** Runs a child benchmark, echoing its output; resolves with its last JSON line. */
function runChildBench(name) {
  return new Promise((resolve, reject) => {
    log(`\n== scenario ${name}`);
    if (!existsSync(join(here, CHILD_BENCHES[name]))) {
      const skipped = `${name}: skipped, test/bench/${CHILD_BENCHES[name]} does not exist`;
      log(`  ${skipped}`);
      resolve({ bench: name, skipped });
      return;
    }
    const child = track(spawn(process.execPath, [join(here, CHILD_BENCHES[name])], { stdio: ['ignore', 'pipe', 'inherit'] }), `${name} bench`);
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      process.stdout.write(c);
    });
    child.on('close', (code) => {
      const json = out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      if (code !== 0) reject(new Error(`${name} bench exited with ${code}`));
      else resolve(json ? JSON.parse(json) : { bench: name });
    });
  });
}

const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const resultsDir = join(root, 'bench-results');
const profileDir = join(resultsDir, `profiles-${stamp}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => process.stdout.write(`${s}\n`);

// ------------------------------------------------------------------ child bookkeeping / cleanup

/** Every child process started, so that every exit path can kill what is left. */
const children = new Set();

function track(child, name) {
  child.benchName = name;
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

let cleaningUp = false;
async function cleanup() {
  if (cleaningUp) return;
  cleaningUp = true;
  await Promise.all([...children].map((c) => stopChild(c, 5000)));
}

/** Data dirs of cross-disk nodes not yet removed (removed after their cluster stops, or at exit). */
const tempDirs = new Set();

function removeTempDir(dir) {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (err) {
    process.stderr.write(`bench: could not remove ${dir}: ${err.message}\n`);
  }
  tempDirs.delete(dir);
}

// Last resort, synchronous: nothing may outlive the runner.
process.on('exit', () => {
  for (const c of children) if (alive(c)) c.kill('SIGKILL');
  for (const d of tempDirs) removeTempDir(d);
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    process.stderr.write(`bench: ${sig}, stopping children\n`);
    cleanup().finally(() => process.exit(130));
  });
}
const hardTimer = setTimeout(() => {
  process.stderr.write(`bench: BENCH_TIMEOUT (${cfg.timeout} s) reached, stopping children\n`);
  cleanup().finally(() => process.exit(1));
}, cfg.timeout * 1000);
hardTimer.unref();

// ------------------------------------------------------------------ /proc sampling


function readRss(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN);
    return { rssMiB: +(kb('VmRSS') / 1024).toFixed(1), hwmMiB: +(kb('VmHWM') / 1024).toFixed(1) };
  } catch {
    return { rssMiB: null, hwmMiB: null };
  }
}

/** Whole-machine busy and total jiffies (all cores). */
function systemCpu() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3] + (v[4] ?? 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

function cpuSnapshot(pids) {
  return { t: performance.now(), nodes: pids.map(procCpuMs), sys: systemCpu() };
}

function cpuBetween(a, b) {
  const wall = b.t - a.t;
  const nodes = b.nodes.map((ms, i) => +(((ms.user + ms.sys - a.nodes[i].user - a.nodes[i].sys) / wall) * 100).toFixed(1));
  // Share of each node's CPU time spent in the kernel (socket writes and reads, mostly).
  const kernel = b.nodes.map((ms, i) => {
    const total = ms.user + ms.sys - a.nodes[i].user - a.nodes[i].sys;
    return total > 0 ? +(((ms.sys - a.nodes[i].sys) / total) * 100).toFixed(1) : null;
  });
  const machine = (b.sys.busy - a.sys.busy) / (b.sys.total - a.sys.total);
  return {
    nodesPercentOfOneCore: nodes,
    nodesKernelPercentOfTheirCpu: kernel,
    machineBusyPercent: +(machine * 100).toFixed(1),
    // Whole machine minus the nodes, in % of one core: the loadgen plus anything else running.
    restPercentOfOneCore: +(machine * 100 * cpus().length - nodes.reduce((x, y) => x + y, 0)).toFixed(1),
  };
}

// ------------------------------------------------------------------ cluster


async function pickPorts() {
  if (cfg.basePort) {
    return Array.from({ length: NODES }, (_, i) => ({ http: cfg.basePort + i, mesh: cfg.basePort + 100 + i, admin: cfg.basePort + 200 + i }));
  }
  const used = new Set();
  const out = [];
  for (let i = 0; i < NODES; i++) {
    const p = {};
    for (const k of ['http', 'mesh', 'admin']) {
      let port;
      for (let tries = 0; tries < 20; tries++) {
        port = await freePort();
        if (!used.has(port)) break;
      }
      used.add(port);
      p[k] = port;
    }
    out.push(p);
  }
  return out;
}

async function getJson(url, timeoutMs = 1000) {
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(), timeoutMs);
  try {
    const res = await fetch(url, { signal: ac.signal });
    return { status: res.status, body: await res.json() };
  } finally {
    clearTimeout(t);
  }
}

/** Storage flags of one node: `storage` is 'memory' (node defaults), 'off' or 'disk' (a fresh temp dir). */
function storageArgs(storage, label, id) {
  if (storage === 'off') return { args: ['--history-size', '0'] };
  if (storage === 'disk') {
    const dir = mkdtempSync(join(tmpdir(), `chatmesh-bench-${label}-${id}-`));
    tempDirs.add(dir);
    return { args: ['--data-dir', dir], dir };
  }
  return { args: [] };
}

async function startCluster(label, storage = 'memory') {
  const ports = await pickPorts();
  const peers = ports.map((p) => `${HOST}:${p.mesh}`).join(',');
  const nodes = [];
  for (let i = 0; i < NODES; i++) {
    const id = `b${i}`;
    const p = ports[i];
    const nodeArgs = ['--import', pathToFileURL(join(here, 'orphan-guard.mjs')).href, ...cfg.nodeFlags];
    if (cfg.profile) {
      mkdirSync(profileDir, { recursive: true });
      nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${label}-${id}.cpuprofile`);
    }
    const store = storageArgs(storage, label, id);
    const child = track(spawn(process.execPath, [
      ...nodeArgs, cli, 'node', '--id', id, '--host', HOST, ...store.args,
      '--http-port', String(p.http), '--mesh-port', String(p.mesh), '--admin-port', String(p.admin),
      '--discovery', 'static', '--peers', peers, '--auth', 'dev', '--log-level', 'warn',
      '--rate-limit', '1000000', '--rate-burst', '1000000',
      // The load holds a few hundred connections: a cap this machine's open-files limit covers
      // (the default, 100,000, is above it, and the node would rightly warn at every start).
      '--max-connections', '10000',
      ...cfg.nodeArgs,
    ], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] }), `node ${id}`);
    const node = { id, ...p, child, pid: child.pid, lines: [], shown: 0, suppressed: 0, dataDir: store.dir };
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        node.lines.push(line);
        if (node.lines.length > 50) node.lines.shift();
        if (line.includes('AUTH IS OFF')) return; // expected: the bench uses --auth dev
        if (node.stopping || cleaningUp) return; // "peer link down" and the like while the cluster stops
        if (node.shown < 10) {
          node.shown++;
          log(`  [${label} ${id}] ${line.slice(0, 300)}`);
        } else node.suppressed++;
      });
    }
    child.once('exit', (code, signal) => {
      node.exit = { code, signal };
      if (!node.stopping && !cleaningUp) process.stderr.write(`bench: node ${id} exited unexpectedly (${code ?? signal})\n${node.lines.slice(-10).join('\n')}\n`);
    });
    nodes.push(node);
  }
  // Ready when every node answers /healthz with peers: 2 (bounded: 30 s).
  const t0 = performance.now();
  for (const n of nodes) {
    let last;
    for (;;) {
      if (n.exit) throw new Error(`node ${n.id} exited during startup`);
      if (performance.now() - t0 > 30_000) throw new Error(`node ${n.id} not ready after 30 s; last /healthz: ${JSON.stringify(last)}`);
      try {
        last = await getJson(`http://${HOST}:${n.http}/healthz`);
        if (last.status === 200 && last.body.peers === NODES - 1) break;
      } catch (err) {
        last = String(err);
      }
      await sleep(100);
    }
  }
  log(`  cluster up in ${Math.round(performance.now() - t0)} ms: ${nodes.map((n) => `${n.id} pid ${n.pid} http ${n.http} mesh ${n.mesh}`).join(' | ')}`);
  return nodes;
}

async function stopCluster(nodes) {
  for (const n of nodes) n.stopping = true;
  await Promise.all(nodes.map((n) => stopChild(n.child, 10_000)));
  for (const n of nodes) if (n.dataDir) removeTempDir(n.dataDir);
}

/** Stream-store totals over the nodes, from /metrics (null fields when a node did not answer). */
async function storeTotals(nodes) {
  const want = { storedMessages: 'chatmesh_stored_messages', trimmed: 'chatmesh_store_trimmed_total', replicationFailures: 'chatmesh_replication_failures_total' };
  const out = Object.fromEntries(Object.keys(want).map((k) => [k, 0]));
  for (const n of nodes) {
    let text;
    try {
      const ac = new AbortController();
      const t = setTimeout(() => ac.abort(), 2000);
      text = await (await fetch(`http://${HOST}:${n.http}/metrics`, { signal: ac.signal })).text();
      clearTimeout(t);
    } catch {
      return Object.fromEntries(Object.keys(want).map((k) => [k, null]));
    }
    for (const [k, metric] of Object.entries(want)) {
      const m = new RegExp(`^${metric} (\\S+)$`, 'm').exec(text);
      out[k] += m ? Number(m[1]) : 0;
    }
  }
  return out;
}

// ------------------------------------------------------------------ load generator

function startLoadgen() {
  return childChannel(track(fork(join(here, 'loadgen.mjs'), [], { cwd: root, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }), 'loadgen'), 'loadgen');
}

// ------------------------------------------------------------------ scenarios

/** Starts the servers of a load scenario: chatmesh's 3 nodes, or Socket.IO's 3 nodes and redis-server. */
async function startServers(name, storage) {
  if (storage === 'socketio') {
    const t0 = performance.now();
    const c = await startSocketIoCluster(name, NODES, {
      track, stopChild, log, stopping: () => cleaningUp, addTempDir: (d) => tempDirs.add(d), removeTempDir,
    });
    log(`  cluster up in ${Math.round(performance.now() - t0)} ms: ${c.nodes.map((n) => `${n.id} pid ${n.pid} http ${n.http}`).join(' | ')} | redis-server pid ${c.redis.pid} port ${c.redis.port}`);
    return { nodes: c.nodes, servers: [...c.nodes, c.redis], protocol: 'socketio', url: (i) => `http://${HOST}:${c.nodes[i].http}`, stop: c.stop };
  }
  const nodes = await startCluster(name, storage);
  return { nodes, servers: nodes, protocol: 'chatmesh', url: (i) => `ws://${HOST}:${nodes[i].http}/ws`, stop: () => stopCluster(nodes) };
}

/** The parsed /metrics of every node, in parallel (null for a node that did not answer). */
function scrapeAll(nodes) {
  return Promise.all(nodes.map((n) => scrapeMetrics(n.http)));
}

/** prom-client's event-loop monitor (monitorEventLoopDelay) samples every 10 ms and records the whole interval. */
const ELD_RESOLUTION_MS = 10;

/** The value at quantile `q` of the histogram of bucket counts `le → count` (cumulative), as the bucket's upper bound. */
function bucketQuantile(buckets, count, q) {
  if (!count) return null;
  for (const [le, n] of buckets) if (n >= q * count) return le;
  return Infinity;
}

/** Diff of a histogram family between two scrapes, summed over labels: count, sum, cumulative buckets [le, n]. */
function histogramDiff(a, b, family) {
  const tally = (snap, name) => {
    const m = new Map();
    for (const s of snap.samples) if (s.name === name) m.set(s.labels.le ?? '', (m.get(s.labels.le ?? '') ?? 0) + s.value);
    return m;
  };
  const diff = (name) => {
    const x = tally(a, name);
    const y = tally(b, name);
    return new Map([...y].map(([k, v]) => [k, v - (x.get(k) ?? 0)]));
  };
  const count = diff(`${family}_count`).get('') ?? 0;
  const sum = diff(`${family}_sum`).get('') ?? 0;
  const buckets = [...diff(`${family}_bucket`)].map(([le, n]) => [Number(le), n]).sort((p, q) => p[0] - q[0]);
  return { count, sum, buckets };
}

/**
 * The runtime sources of the tail of one node over a measurement window, from its /metrics read at
 * the window's start (`a`, which also reset prom-client's event-loop histogram) and end (`b`).
 */
function runtimeOf(a, b) {
  if (!a || !b) return null;
  const wallMs = b.t - a.t;
  const gauge = (name) => b.samples.find((s) => s.name === name)?.value;
  const eld = (name) => {
    const v = gauge(name);
    return v == null ? null : +Math.max(0, v * 1000 - ELD_RESOLUTION_MS).toFixed(2);
  };
  const gc = histogramDiff(a, b, 'nodejs_gc_duration_seconds');
  const byKind = {};
  for (const s of b.samples) {
    if (s.name !== 'nodejs_gc_duration_seconds_count') continue;
    const before = a.samples.find((x) => x.name === s.name && x.labels.kind === s.labels.kind)?.value ?? 0;
    if (s.value - before > 0) byKind[s.labels.kind] = s.value - before;
  }
  const counter = (name) => {
    const sum = (snap) => snap.samples.filter((s) => s.name === name).reduce((t, s) => t + s.value, 0);
    return b.samples.some((s) => s.name === name) ? sum(b) - sum(a) : undefined;
  };
  const allPauses = counter('bench_gc_pauses_total'); // Socket.IO nodes: every GC entry, not just the first of a callback
  const out = {
    wallMs: Math.round(wallMs),
    eventLoopDelayMs: { p50: eld('nodejs_eventloop_lag_p50_seconds'), p99: eld('nodejs_eventloop_lag_p99_seconds'), max: eld('nodejs_eventloop_lag_max_seconds') },
    gc: {
      pauses: gc.count,
      totalMs: +(gc.sum * 1000).toFixed(1),
      percentOfWall: +((gc.sum * 1000 * 100) / wallMs).toFixed(2),
      largestBucketMs: gc.count ? bucketQuantile(gc.buckets, gc.count, 1) * 1000 : null,
      byKind,
      ...(allPauses !== undefined && { allEntries: { pauses: allPauses, totalMs: +(counter('bench_gc_seconds_total') * 1000).toFixed(1) } }),
    },
    histograms: {},
  };
  // chatmesh's own histograms (peer-link batch size, node-side delivery and store latency, and any added later).
  const families = new Set(b.samples.filter((s) => s.name.startsWith('chatmesh_') && s.name.endsWith('_bucket')).map((s) => s.name.slice(0, -'_bucket'.length)));
  for (const f of families) {
    const h = histogramDiff(a, b, f);
    const scale = f.endsWith('_seconds') ? 1000 : 1; // seconds → ms
    out.histograms[f] = {
      count: h.count,
      mean: h.count ? +((h.sum / h.count) * scale).toFixed(3) : null,
      p50AtMost: h.count ? bucketQuantile(h.buckets, h.count, 0.5) * scale : null,
      p99AtMost: h.count ? bucketQuantile(h.buckets, h.count, 0.99) * scale : null,
      ...(scale !== 1 && { unit: 'ms' }),
    };
  }
  return out;
}

/** Lines of the runtime figures of one phase: event loop, GC, chatmesh's histograms, per node. */
function runtimeLines(label, runtime, ids) {
  if (!runtime) return [];
  const f = (v) => (v == null ? '-' : v === Infinity ? 'inf' : v);
  const each = (g) => runtime.map((r, i) => (r ? `${ids[i]} ${g(r)}` : `${ids[i]} (no /metrics)`)).join('  ');
  const lines = [
    `  ${label}: event loop delay p50/p99/max (ms) ${each((r) => `${f(r.eventLoopDelayMs.p50)}/${f(r.eventLoopDelayMs.p99)}/${f(r.eventLoopDelayMs.max)}`)}`,
    `  ${' '.repeat(label.length)}  GC ${each((r) => `${r.gc.pauses} pauses, ${r.gc.totalMs} ms (${r.gc.percentOfWall}% of wall), largest bucket <= ${f(r.gc.largestBucketMs)} ms` +
      `${r.gc.byKind.major ? `, ${r.gc.byKind.major} major` : ''}${r.gc.allEntries ? ` [every entry: ${r.gc.allEntries.pauses} pauses, ${r.gc.allEntries.totalMs} ms]` : ''};`)}`,
  ];
  const names = [...new Set(runtime.flatMap((r) => (r ? Object.keys(r.histograms) : [])))].sort();
  for (const h of names) {
    lines.push(`  ${' '.repeat(label.length)}  ${h.replace(/^chatmesh_/, '')} mean/p50/p99${runtime.find((r) => r?.histograms[h])?.histograms[h].unit ? ' (ms)' : ''} ${each((r) => {
      const x = r.histograms[h];
      return x && x.count ? `${x.mean}/<=${f(x.p50AtMost)}/<=${f(x.p99AtMost)} (${x.count})` : '-';
    })}`);
  }
  return lines;
}

/**
 * The scheduler probe (sched-probe.mjs): an idle process measuring its own event-loop delay, so a
 * phase's node figures can be read against what the machine does to any process.
 */
function startProbe() {
  const child = track(fork(join(here, 'sched-probe.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }), 'scheduler probe');
  return {
    child,
    reset: () => child.connected && child.send({ cmd: 'reset' }),
    read: () => new Promise((resolve) => {
      if (!child.connected) return resolve(null);
      const timer = setTimeout(() => resolve(null), 2000);
      child.once('message', (m) => { clearTimeout(timer); resolve(m?.probe ?? null); });
      child.send({ cmd: 'read' });
    }),
  };
}

function floorLine(r) {
  const f = r.schedulerFloorMs;
  const l = r.loadgenCpu?.eventLoopDelayMs;
  return `  event loop delay p50/p99/max (ms) of an idle process on this machine meanwhile (the scheduler floor) ${f ? `${f.p50}/${f.p99}/${f.max}` : '-'}` +
    `; of the load generator (its late receives count as latency) ${l ? `${l.p50}/${l.p99}/${l.max}` : '-'}`;
}

/** "s0 85.1 s1 40.2 ..." from a phase's CPU shares. */
function cpuText(cpu, ids) {
  return cpu ? ids.map((id, i) => `${id} ${cpu.nodesPercentOfOneCore[i]}`).join(' ') : '-';
}

async function runScenario(name) {
  const storage = LOAD_SCENARIOS[name];
  const sio = storage === 'socketio';
  if (sio && !findOnPath('redis-server')) {
    log(`\n== scenario ${name}\n  ${NO_REDIS_NOTE}`);
    return { scenario: name, skipped: NO_REDIS_NOTE };
  }
  const cross = name !== 'same';
  const storageText = {
    memory: 'streams in memory (node defaults)', off: 'storage off (--history-size 0)', disk: 'streams on disk (--data-dir, fsync before ack)',
    socketio: 'Socket.IO + @socket.io/redis-adapter on one redis-server; keeps nothing, acks without knowing delivery',
  }[storage];
  const [s0, s1, s2] = sio ? ['s0', 's1', 's2'] : ['b0', 'b1', 'b2'];
  log(`\n== scenario ${name}: ${cross ? `senders on ${s0}, receivers on ${s1}/${s2}` : 'senders and receivers on b0 (b1, b2 idle)'}; ${storageText}`);
  const srv = await startServers(name, storage);
  const { nodes, servers } = srv;
  const pids = servers.map((n) => n.pid);
  const ids = servers.map((n) => n.id);
  const rssPeak = servers.map(() => 0);
  const rssTimer = setInterval(() => {
    servers.forEach((n, i) => {
      const r = readRss(n.pid).rssMiB;
      if (r && r > rssPeak[i]) rssPeak[i] = r;
    });
  }, 250);
  const lg = startLoadgen();
  const probe = startProbe();
  try {
    const receivers = [];
    const senders = [];
    for (let i = 0; i < cfg.pairs; i++) {
      const r = `${name}-r${i}`;
      receivers.push({ user: r, url: srv.url(cross ? 1 + (i % 2) : 0), protocol: srv.protocol });
      senders.push({ user: `${name}-s${i}`, url: srv.url(0), to: r, protocol: srv.protocol });
    }
    const ready = await lg.call({ cmd: 'setup', receivers, senders, bodyBytes: cfg.bodyBytes }, 'ready', 60_000);
    log(`  ${ready.connections} connections up in ${ready.setupMs} ms`);

    // CPU of the server processes and the machine, and each node's /metrics, over each measurement window.
    let snap;
    let windowCpu;
    let scrapes;
    let floor;
    lg.onMark((mark) => {
      if (mark === 'start') {
        snap = cpuSnapshot(pids);
        scrapes = { start: scrapeAll(nodes) };
        probe.reset();
      } else if (snap) {
        windowCpu = cpuBetween(snap, cpuSnapshot(pids));
        if (scrapes) scrapes.end = scrapeAll(nodes);
        floor = probe.read();
      }
    });
    const phaseTimeout = (cfg.warmup + cfg.seconds + 30) * 1000;
    const runPhase = async (cmd) => {
      snap = undefined;
      windowCpu = undefined;
      scrapes = undefined;
      floor = undefined;
      const r = (await lg.call(cmd, 'result', phaseTimeout)).result;
      if (floor) r.schedulerFloorMs = await floor;
      r.cpu = windowCpu;
      if (r.cpu) r.cpu.otherProcessesPercentOfOneCore = +(r.cpu.restPercentOfOneCore - r.loadgenCpu.percentOfOneCore).toFixed(1);
      if (scrapes?.end) {
        const [a, b] = await Promise.all([scrapes.start, scrapes.end]);
        r.runtime = nodes.map((_, i) => runtimeOf(a[i], b[i]));
      }
      return r;
    };
    const latText = (r) => `p50 ${r.latencyMs.p50} p90 ${r.latencyMs.p90} p99 ${r.latencyMs.p99} max ${r.latencyMs.max} ms`;

    const sat = await runPhase({ cmd: 'saturate', warmupMs: cfg.warmup * 1000, measureMs: cfg.seconds * 1000, window: cfg.window });
    log(`  saturation: ${sat.deliveredPerSec} delivered/s (acks ${sat.acksPerSec}/s), latency under saturation p50 ${sat.latencyMs.p50} ms p99 ${sat.latencyMs.p99} ms; ` +
      `server CPU ${cpuText(sat.cpu, ids)} (% of a core), ${usPerMsg(sat)} µs per msg; loadgen ${sat.loadgenCpu.percentOfOneCore}%, ` +
      `other processes ${sat.cpu?.otherProcessesPercentOfOneCore}%, machine ${sat.cpu?.machineBusyPercent}% busy`);
    if (sat.cpu?.otherProcessesPercentOfOneCore > 15) {
      log(`  WARNING: other processes used ${sat.cpu.otherProcessesPercentOfOneCore}% of a core during the measurement: the machine is not quiet, numbers are noisy`);
    }
    for (const l of runtimeLines('runtime at saturation', sat.runtime, ids)) log(l);
    log(floorLine(sat));

    const rate = Math.max(1, Math.round(sat.deliveredPerSec / 2));
    const paced = await runPhase({ cmd: 'paced', rate, warmupMs: Math.round((cfg.warmup * 1000) / 2), measureMs: cfg.seconds * 1000, window: cfg.window, label: 'paced' });
    log(`  paced at ${rate}/s: ${paced.deliveredPerSec} delivered/s, ${latText(paced)}; server CPU ${cpuText(paced.cpu, ids)}, ${usPerMsg(paced)} µs per msg; loadgen ${paced.loadgenCpu.percentOfOneCore}%`);
    for (const l of runtimeLines('runtime paced', paced.runtime, ids)) log(l);
    log(floorLine(paced));

    let fixed;
    if (cfg.fixedRate) {
      const above = sat.deliveredPerSec < cfg.fixedRate;
      fixed = await runPhase({ cmd: 'paced', rate: cfg.fixedRate, warmupMs: Math.round((cfg.warmup * 1000) / 2), measureMs: cfg.seconds * 1000, window: cfg.window, label: 'fixed' });
      fixed.aboveSaturation = above;
      log(`  fixed ${cfg.fixedRate}/s${above ? ` (ABOVE this scenario's saturation, ${sat.deliveredPerSec}/s: sends queue or are skipped, latency is backlog)` : ''}: ` +
        `${fixed.deliveredPerSec} delivered/s, ${latText(fixed)}; server CPU ${cpuText(fixed.cpu, ids)}, ${usPerMsg(fixed)} µs per msg; loadgen ${fixed.loadgenCpu.percentOfOneCore}%`);
      for (const l of runtimeLines('runtime fixed', fixed.runtime, ids)) log(l);
      log(floorLine(fixed));
    }

    const rss = servers.map((n, i) => ({ node: n.id, ...readRss(n.pid), peakSampledMiB: rssPeak[i] }));
    log(`  RSS at end: ${rss.map((r) => `${r.node} ${r.rssMiB} MiB`).join(', ')}`);
    // The stores at the end: once a stream holds --history-size entries, every append also trims.
    const store = storage === 'off' || sio ? undefined : await storeTotals(nodes);
    if (store) log(`  stores at end: ${store.storedMessages} entries, ${store.trimmed} trimmed by the bounds, ${store.replicationFailures} failed replicated writes`);
    for (const [label, r] of [['saturation', sat], ['paced', paced], ['fixed', fixed]]) {
      if (!r) continue;
      const t = r.totals;
      // Every receiver is online: `stored` (or `offline`) acks mean the routes were not what the scenario assumes.
      const bad = Object.keys(t.errors).length || t.missing || (t.ackStatus.offline ?? 0) || (t.ackStatus.stored ?? 0) || !r.drained || t.skippedWindowFull || t.lagCapped;
      if (bad) log(`  WARNING ${label}: ${JSON.stringify(t)} drained=${r.drained}`);
    }
    await lg.call({ cmd: 'close' }, 'closed', 10_000).catch(() => undefined);
    probe.child.disconnect();
    return { scenario: name, storage, servers: ids, saturation: sat, paced, ...(fixed && { fixed }), rss, ...(store && { store }) };
  } finally {
    clearInterval(rssTimer);
    await stopChild(lg.child, 3000);
    await srv.stop();
    for (const n of nodes) if (n.suppressed) log(`  [${name} ${n.id}] ${n.suppressed} more log lines not shown`);
  }
}

// ------------------------------------------------------------------ report

function pad(s, n) {
  s = String(s ?? '-');
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

/**
 * CPU µs the given server processes spent per delivered message over a phase's measurement window;
 * `idx` undefined: all of them (chatmesh: the 3 nodes; socketio: the 3 nodes and redis-server).
 */
function usPerMsg(phase, idx) {
  const pct = phase?.cpu?.nodesPercentOfOneCore;
  if (!pct || !phase.deliveredPerSec) return null;
  const cpuShare = (idx ?? pct.map((_, i) => i)).reduce((a, i) => a + (pct[i] ?? 0), 0) / 100; // cores busy
  return +((cpuShare * 1e6) / phase.deliveredPerSec).toFixed(1);
}

const q = (a, b) => (a != null && b ? +(a / b).toFixed(3) : null);

/**
 * Issue 11's figures. `today`: what the issue's table says of the code before the issue (the storage row: the
 * issue 9 and 10 notes). Each `measure(by, conns)`
 * returns { value, text, note? } or a string saying why it cannot (not run).
 */
const TARGETS = [
  {
    figure: 'server CPU per cross-node msg vs Socket.IO+Redis, at saturation', today: '1.3-1.7x cheaper', target: '>= 3x cheaper', need: ['cross', 'socketio'],
    measure: (by) => ratioRow(usPerMsg(by.socketio.saturation), usPerMsg(by.cross.saturation), 'µs, Socket.IO+Redis / chatmesh', (v) => v >= 3, vsNostore(by, 'saturation')),
  },
  {
    figure: `the same at a fixed ${cfg.fixedRate || 5000} msg/s`, today: '1.03-1.05x cheaper', target: '>= 3x cheaper', need: ['cross', 'socketio'], fixed: true,
    measure: (by) => ratioRow(usPerMsg(by.socketio.fixed), usPerMsg(by.cross.fixed), 'µs', (v) => v >= 3, `${vsNostore(by, 'fixed')} ${aboveNote(by, ['socketio', 'cross'])}`.trim()),
  },
  {
    figure: 'cross-node / same-node CPU per message (all nodes)', today: '2.2-2.5x', target: '<= 1.3x', need: ['cross', 'same'],
    measure: (by) => ratioRow(usPerMsg(by.cross.saturation), usPerMsg(by.same.saturation), 'µs', (v) => v <= 1.3),
  },
  {
    figure: 'cross-node / same-node saturation throughput', today: '0.50-0.61', target: '>= 0.8', need: ['cross', 'same'],
    measure: (by) => ratioRow(by.cross.saturation.deliveredPerSec, by.same.saturation.deliveredPerSec, 'msgs/s', (v) => v >= 0.8),
  },
  {
    figure: 'cross-node p99 at half of saturation, 3 nodes', today: '10-36 ms (at 5k/s)', target: '<= 5 ms', need: ['cross'],
    measure: (by) => {
      const v = by.cross.paced.latencyMs.p99;
      const floor = by.cross.paced.schedulerFloorMs?.p99;
      return v == null ? 'no samples' : {
        value: v,
        text: `${v} ms (at ${by.cross.paced.targetRate}/s)${floor != null ? ` [event-loop p99 of an idle process meanwhile: ${floor} ms]` : ''}`,
        met: v <= 5,
      };
    },
  },
  {
    figure: `server CPU per message at ${cfg.fixedRate || 5000} msg/s vs at saturation (cross)`, today: '3.4x', target: '<= 1.5x', need: ['cross'], fixed: true,
    measure: (by) => ratioRow(usPerMsg(by.cross.fixed), usPerMsg(by.cross.saturation), 'µs', (v) => v <= 1.5, aboveNote(by, ['cross'])),
  },
  {
    figure: 'RSS per idle connection (incl. chatmesh state)', today: '~11 KiB (ws alone)', target: '<= 12 KiB', need: ['conns'],
    measure: (by, conns) => (conns.rssPerIdleConnKiB == null ? 'not in the conns output' : {
      value: conns.rssPerIdleConnKiB,
      text: `${conns.rssPerIdleConnKiB} KiB${conns.chatmeshStatePerConnKiB != null ? ` (chatmesh state ${conns.chatmeshStatePerConnKiB} KiB)` : ''}`,
      met: conns.rssPerIdleConnKiB <= 12,
    }),
  },
  {
    figure: 'connections on one node, DMs still flowing', today: 'never tried', target: '~19,000', need: ['conns'],
    measure: (by, conns) => {
      const dm = conns.dmRoundTrip ?? {};
      return {
        value: conns.connections,
        text: `${conns.connections} (bench target ${conns.target ?? '-'}); DM round trip p99 ${dm.p99Ms ?? '-'} ms, ${dm.count ?? 0} sent, ${dm.lost ?? '?'} lost`,
        // "~19,000": at least 95% of it held, and DMs answered with none lost.
        met: conns.connections >= 0.95 * 19_000 && dm.count > 0 && dm.lost === 0,
      };
    },
  },
  {
    figure: 'storage on vs --history-size 0, CPU per message (cross, memory)', today: '2.6-4.0x', target: '<= 1.5x', need: ['cross', 'cross-nostore'],
    measure: (by) => ratioRow(usPerMsg(by.cross.saturation), usPerMsg(by['cross-nostore'].saturation), 'µs', (v) => v <= 1.5),
  },
];

function ratioRow(a, b, unit, ok, note) {
  const v = q(a, b);
  if (v == null) return 'no CPU figure (a phase did not measure)';
  return { value: v, text: `${v}x (${a} / ${b} ${unit})${note ? ` ${note}` : ''}`, met: ok(v) };
}

/** Socket.IO against chatmesh without storage (the same work: Socket.IO keeps nothing), when cross-nostore ran. */
function vsNostore(by, phase) {
  const v = by['cross-nostore'] ? q(usPerMsg(by.socketio[phase]), usPerMsg(by['cross-nostore'][phase])) : null;
  return v == null ? '' : `[vs cross-nostore: ${v}x]`;
}

/** "(above saturation: x)" when the fixed-rate phase of one of the scenarios ran above its saturation. */
function aboveNote(by, names) {
  const above = names.filter((n) => by[n].fixed?.aboveSaturation);
  return above.length ? `[${above.join(', ')} above saturation at this rate]` : '';
}

/** The targets table: rows { figure, today, measured, target, met } and its text. */
function targetsTable(by, others, skipped) {
  const conns = others.find((o) => o.bench === 'conns' && !o.skipped);
  const rows = TARGETS.map((t) => {
    const row = { figure: t.figure, today: t.today, target: t.target };
    const missing = t.need.filter((n) => (n === 'conns' ? !conns : !by[n]));
    if (missing.length) {
      const why = missing.map((n) => skipped[n] ?? others.find((o) => o.bench === n)?.skipped).filter(Boolean);
      return { ...row, measured: `not run (BENCH_SCENARIOS=${t.need.join(',')})${why.length ? `: ${why.join('; ')}` : ''}`, met: null };
    }
    if (t.fixed && !cfg.fixedRate) return { ...row, measured: 'not run (BENCH_FIXED_RATE=0)', met: null };
    const m = t.measure(by, conns);
    return typeof m === 'string' ? { ...row, measured: m, met: null } : { ...row, measured: m.text, value: m.value, met: m.met };
  });
  const cols = [['figure', 'figure'], ['today (issue)', 'today'], ['measured', 'measured'], ['target', 'target'], ['met?', 'met']];
  const cell = (r, k) => (k === 'met' ? (r.met == null ? '-' : r.met ? 'yes' : 'NO') : String(r[k]));
  const widths = cols.map(([h, k]) => Math.max(h.length, ...rows.map((r) => cell(r, k).length)));
  const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join(' | ');
  const text = [
    '',
    'issue 11 targets (this run)',
    line(cols.map(([h]) => h)),
    widths.map((w) => '-'.repeat(w)).join('-|-'),
    ...rows.map((r) => line(cols.map(([, k]) => cell(r, k)))),
  ];
  return { rows, text };
}

function report(results, others, skipped) {
  const by = Object.fromEntries(results.map((r) => [r.scenario, r]));
  const fixedCol = (f) => (r) => (r.fixed ? f(r.fixed) : '-');
  const rows = [
    ['throughput (delivered msgs/s)', (r) => r.saturation.deliveredPerSec],
    ['  sat. latency p50 (ms)', (r) => r.saturation.latencyMs.p50],
    ['  sat. latency p99 (ms)', (r) => r.saturation.latencyMs.p99],
    ['paced rate (msgs/s, 50% of sat.)', (r) => r.paced.targetRate],
    ['  delivered (msgs/s)', (r) => r.paced.deliveredPerSec],
    ['  latency p50 (ms)', (r) => r.paced.latencyMs.p50],
    ['  latency p90 (ms)', (r) => r.paced.latencyMs.p90],
    ['  latency p99 (ms)', (r) => r.paced.latencyMs.p99],
    ['  idle process event-loop p99 (ms)', (r) => r.paced.schedulerFloorMs?.p99 ?? '-'],
    ['  loadgen event-loop p99 (ms)', (r) => r.paced.loadgenCpu?.eventLoopDelayMs?.p99 ?? '-'],
    ['  latency max (ms)', (r) => r.paced.latencyMs.max],
    ...(cfg.fixedRate ? [
      [`fixed rate (msgs/s)`, fixedCol((f) => `${f.aboveSaturation ? '*' : ''}${f.targetRate}`)],
      ['  delivered (msgs/s)', fixedCol((f) => f.deliveredPerSec)],
      ['  latency p50 (ms)', fixedCol((f) => f.latencyMs.p50)],
      ['  latency p90 (ms)', fixedCol((f) => f.latencyMs.p90)],
      ['  latency p99 (ms)', fixedCol((f) => f.latencyMs.p99)],
      ['  latency max (ms)', fixedCol((f) => f.latencyMs.max)],
      ['  idle process event-loop p99 (ms)', fixedCol((f) => f.schedulerFloorMs?.p99 ?? '-')],
      ['  loadgen event-loop p99 (ms)', fixedCol((f) => f.loadgenCpu?.eventLoopDelayMs?.p99 ?? '-')],
    ] : []),
    ...[0, 1, 2].map((i) => [`RSS b${i} at end (MiB)`, (r) => r.rss[i]?.rssMiB]),
    ['RSS redis-server at end (MiB)', (r) => r.rss[3]?.rssMiB],
    ...[0, 1, 2].map((i) => [`CPU b${i} at sat. (% of 1 core)`, (r) => r.saturation.cpu?.nodesPercentOfOneCore[i]]),
    ['CPU redis-server at sat. (% of 1 core)', (r) => r.saturation.cpu?.nodesPercentOfOneCore[3]],
    ['  b0 kernel share of its CPU (%)', (r) => r.saturation.cpu?.nodesKernelPercentOfTheirCpu[0]],
    ['CPU loadgen at sat. (% of 1 core)', (r) => r.saturation.loadgenCpu.percentOfOneCore],
    ['  loadgen event-loop utilization', (r) => r.saturation.loadgenCpu.eventLoopUtilization],
    ['CPU loadgen paced (% of 1 core)', (r) => r.paced.loadgenCpu.percentOfOneCore],
    // CPU time per delivered message: far less sensitive to other load on the machine than rates.
    ['server CPU per msg at sat., b0 (µs)', (r) => usPerMsg(r.saturation, [0])],
    ['server CPU per msg at sat., all (µs)', (r) => usPerMsg(r.saturation)],
    ['server CPU per msg paced, all (µs)', (r) => usPerMsg(r.paced)],
    ...(cfg.fixedRate ? [['server CPU per msg fixed, all (µs)', fixedCol((f) => usPerMsg(f))]] : []),
    ['machine busy at sat. (% of all)', (r) => r.saturation.cpu?.machineBusyPercent],
    ['other processes at sat. (% of 1 core)', (r) => r.saturation.cpu?.otherProcessesPercentOfOneCore],
  ];
  const names = results.map((r) => r.scenario);
  const w = 40;
  const hr = '-'.repeat(w + 14 * names.length);
  const lines = [];
  if (results.length) {
    lines.push('');
    lines.push(`chatmesh bench  ${new Date().toISOString()}  pairs=${cfg.pairs} window=${cfg.window} body=${cfg.bodyBytes}B seconds=${cfg.seconds} warmup=${cfg.warmup} fixed=${cfg.fixedRate}/s`);
    lines.push(`${'metric'.padEnd(w)}${names.map((n) => pad(n, 14)).join('')}`);
    lines.push(hr);
    for (const [label, f] of rows) lines.push(`${label.padEnd(w)}${results.map((r) => pad(f(r), 14)).join('')}`);
  }
  const ratios = {};
  if (by.cross && by.same) {
    ratios.throughput = q(by.cross.saturation.deliveredPerSec, by.same.saturation.deliveredPerSec);
    ratios.p50 = q(by.cross.paced.latencyMs.p50, by.same.paced.latencyMs.p50);
    ratios.p99 = q(by.cross.paced.latencyMs.p99, by.same.paced.latencyMs.p99);
    ratios.nodeCpuPerMsgAll = q(usPerMsg(by.cross.saturation), usPerMsg(by.same.saturation));
    ratios.nodeCpuPerMsgB0 = q(usPerMsg(by.cross.saturation, [0]), usPerMsg(by.same.saturation, [0]));
    lines.push(hr);
    lines.push(`ratio cross/same: throughput ${ratios.throughput}  |  p50 ${ratios.p50}  |  p99 ${ratios.p99}  (latency at each scenario's own 50% rate)`);
    lines.push(`                  node CPU per msg: all nodes ${ratios.nodeCpuPerMsgAll}  |  b0 ${ratios.nodeCpuPerMsgB0}`);
  }
  // The cost of keeping messages: the same cross load with storage in memory / on disk vs off.
  for (const [key, on, label] of [['storeMemoryVsOff', 'cross', 'memory/off'], ['storeDiskVsOff', 'cross-disk', 'disk/off']]) {
    const off = by['cross-nostore'];
    if (!by[on] || !off) continue;
    const r = {
      nodeCpuPerMsgAll: q(usPerMsg(by[on].saturation), usPerMsg(off.saturation)),
      nodeCpuPerMsgB0: q(usPerMsg(by[on].saturation, [0]), usPerMsg(off.saturation, [0])),
      nodeCpuPerMsgPacedAll: q(usPerMsg(by[on].paced), usPerMsg(off.paced)),
      throughput: q(by[on].saturation.deliveredPerSec, off.saturation.deliveredPerSec),
      p50: q(by[on].paced.latencyMs.p50, off.paced.latencyMs.p50),
      p99: q(by[on].paced.latencyMs.p99, off.paced.latencyMs.p99),
      rssAll: q(by[on].rss.reduce((a, x) => a + (x.rssMiB ?? 0), 0), off.rss.reduce((a, x) => a + (x.rssMiB ?? 0), 0)),
    };
    ratios[key] = r;
    lines.push(hr);
    lines.push(`ratio ${on}/cross-nostore (storage ${label}): node CPU per msg at sat., all nodes ${r.nodeCpuPerMsgAll} (aim <= 1.5)  |  b0 ${r.nodeCpuPerMsgB0}  |  paced, all ${r.nodeCpuPerMsgPacedAll}`);
    lines.push(`${' '.repeat(6 + on.length + 15)}throughput ${r.throughput}  |  p50 ${r.p50}  |  p99 ${r.p99} (each at its own 50% rate)  |  RSS, all nodes ${r.rssAll}`);
  }
  // Socket.IO + Redis against chatmesh with storage (as deployed) and without (the same work as Socket.IO's).
  for (const base of ['cross', 'cross-nostore']) {
    const s = by.socketio;
    if (!s || !by[base]) continue;
    const c = by[base];
    const r = {
      serverCpuPerMsgSat: q(usPerMsg(s.saturation), usPerMsg(c.saturation)),
      serverCpuPerMsgFixed: q(usPerMsg(s.fixed), usPerMsg(c.fixed)),
      throughput: q(s.saturation.deliveredPerSec, c.saturation.deliveredPerSec),
      p99Paced: q(s.paced.latencyMs.p99, c.paced.latencyMs.p99),
      rssAll: q(s.rss.reduce((a, x) => a + (x.rssMiB ?? 0), 0), c.rss.reduce((a, x) => a + (x.rssMiB ?? 0), 0)),
    };
    ratios[base === 'cross' ? 'socketioVsCross' : 'socketioVsCrossNostore'] = r;
    lines.push(hr);
    const fixedText = cfg.fixedRate ? `  |  at ${cfg.fixedRate}/s ${r.serverCpuPerMsgFixed}${aboveNote(by, ['socketio', base]) ? ` ${aboveNote(by, ['socketio', base])}` : ''}` : '';
    lines.push(`ratio socketio/${base}: server CPU per msg at sat. ${r.serverCpuPerMsgSat} (aim >= 3)${fixedText}`);
    lines.push(`${' '.repeat(15 + base.length)}throughput ${r.throughput}  |  p99 ${r.p99Paced} (each at its own 50% rate)  |  RSS, all server processes ${r.rssAll}`);
  }
  const targets = targetsTable(by, others, skipped);
  lines.push(...targets.text);
  if (!results.length) return { text: lines.join('\n'), ratios, targets: targets.rows };
  lines.push('');
  lines.push(`NOTE: the load generator and all 3 nodes share this machine's ${cpus().length} cores; the numbers are`);
  lines.push('      for comparing runs and scenarios, not absolute capacity. In "same", b1/b2 hold no clients, so b0 and the');
  lines.push('      loadgen have most of the cores (with storage on, b1/b2 still keep stream replicas); in "cross" b1/b2 also');
  lines.push('      compete for them. Storage on/off ratios compare cross runs of the same run only. If the loadgen\'s CPU');
  lines.push('      is near 100% of a core (or its event-loop utilization near 1), the loadgen, not the server, limits the rate.');
  lines.push('      "other processes" is CPU used by anything else on the machine (e.g. a concurrent test run): well above');
  lines.push('      0 means the run was disturbed; rerun on a quiet machine.');
  if (by.socketio) {
    lines.push('      socketio: columns b0-b2 are its nodes s0-s2; its server CPU ("all") is the 3 nodes AND redis-server. Its');
    lines.push('      ack says `delivered` without knowing (a broadcast to a room is fire-and-forget) and it keeps nothing:');
    lines.push('      chatmesh\'s `cross` acks after the recipient\'s node wrote the frame and kept it; `cross-nostore` keeps nothing.');
  }
  if (cfg.fixedRate && results.some((r) => r.fixed?.aboveSaturation)) {
    lines.push(`      * fixed rate above that scenario's saturation: sends queue or are skipped, its latency is backlog.`);
  }
  return { text: lines.join('\n'), ratios, targets: targets.rows };
}

// ------------------------------------------------------------------ main

async function main() {
  const t0 = performance.now();
  log(`chatmesh bench: ${cfg.scenarios.join(', ')}; ${cfg.pairs} pairs, window ${cfg.window}, ${cfg.warmup}+${cfg.seconds} s per phase${cfg.profile ? `, profiling into ${profileDir}` : ''}` +
    `${process.env.BENCH_CLI ? `; chatmesh from BENCH_CLI=${cli}` : ''}${cfg.nodeFlags.length ? `; node flags ${cfg.nodeFlags.join(' ')}` : ''}${cfg.nodeArgs.length ? `; chatmesh flags ${cfg.nodeArgs.join(' ')}` : ''}`);
  const results = [];
  const others = [];
  /** Scenarios that could not run (socketio without redis-server): name → why. */
  const skipped = {};
  for (const s of cfg.scenarios) {
    if (s in CHILD_BENCHES) others.push(await runChildBench(s));
    else {
      const r = await runScenario(s);
      if (r.skipped) skipped[s] = r.skipped;
      else results.push(r);
    }
  }
  for (const o of others) if (o.skipped) skipped[o.bench] = o.skipped;
  const { text, ratios, targets } = results.length > 0 || others.some((o) => o.bench === 'conns')
    ? report(results, others, skipped)
    : { text: '', ratios: undefined, targets: undefined };
  log(text);
  for (const why of Object.values(skipped)) log(why);

  let profiles;
  if (cfg.profile) {
    profiles = {};
    for (const f of readdirSync(profileDir).filter((x) => x.endsWith('.cpuprofile')).sort()) {
      const s = summarizeProfile(join(profileDir, f), { top: 20, root });
      profiles[f] = s;
      log(`\n${formatSummary(s, f)}`);
    }
  }

  mkdirSync(resultsDir, { recursive: true });
  const out = join(resultsDir, `bench-${stamp}.json`);
  writeFileSync(out, `${JSON.stringify({
    date: new Date().toISOString(),
    git: gitState(root),
    config: { ...cfg, cli, nodes: NODES, cores: cpus().length, cpuModel: cpus()[0]?.model, node: process.version },
    note: `load generator and ${NODES} nodes share ${cpus().length} cores`,
    results,
    ratios,
    targets,
    skipped,
    others,
    ...(profiles && { profiles }),
    durationMs: Math.round(performance.now() - t0),
  }, null, 2)}\n`);
  log(`\nresults: ${out}  (run took ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

main().then(
  async () => {
    await cleanup();
    process.exit(0);
  },
  async (err) => {
    process.stderr.write(`bench failed: ${err?.stack ?? err}\n`);
    await cleanup();
    process.exit(1);
  },
);
