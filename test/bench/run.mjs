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
// The report prints cross/same and, for the cost of storage, cross/cross-nostore (memory/off) and
// cross-disk/cross-nostore (disk/off): CPU per delivered message and throughput. Compare ratios
// measured in the same run (identical runs on a busy machine differ by up to 40%).
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
//   3. RSS of each node at the end of the scenario (/proc/<pid>/status)
// Prints a table and the cross/same ratios, writes JSON to bench-results/ (gitignored). Besides
// rates it reports CPU from /proc: each node's and the loadgen's share of a core, CPU µs per
// delivered message (robust against a busy machine), and "other processes" (anything else on the
// machine, e.g. a concurrent test run: a disturbed run says so). The nodes are preloaded with
// orphan-guard.mjs so none outlives a runner that is killed outright.
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
//   BENCH_WINDOW [32]      un-acked sends per sender
//   BENCH_BODY_BYTES [64]  message body size
//   BENCH_SCENARIOS [cross-nostore,cross,cross-disk,same,membership,accounts]
//                          also: streams (stream bench, several minutes), junk (other users' latency under junk flooders)
//   BENCH_BASE_PORT [0]    0: free ports picked at random; else HTTP P+i, mesh P+100+i, admin P+200+i
//   BENCH_PROFILE [0]      1: run the nodes with --cpu-prof, write profiles next to the results and
//                          print the top self-time functions of each node
//   BENCH_TIMEOUT [60 + 60 per scenario, 600 for streams, 180 for accounts]  hard limit of the whole run, seconds
import { execFileSync, fork, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { formatSummary, summarizeProfile } from './profile-summary.mjs';
import { HOST, childChannel, freePort, procCpuMs } from './bench-util.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const cli = join(root, 'dist', 'cli.js');
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

const DEFAULT_SCENARIOS = 'cross-nostore,cross,cross-disk,same,membership,accounts';
const scenarioList = (process.env.BENCH_SCENARIOS || DEFAULT_SCENARIOS).split(',').map((s) => s.trim()).filter(Boolean);
const cfg = {
  seconds: envNum('BENCH_SECONDS', 8, { min: 1, max: 120 }),
  warmup: envNum('BENCH_WARMUP', 2, { min: 0, max: 60 }),
  pairs: envNum('BENCH_PAIRS', 50, { min: 1, max: 2000 }),
  window: envNum('BENCH_WINDOW', 32, { min: 1, max: 10_000 }),
  bodyBytes: envNum('BENCH_BODY_BYTES', 64, { min: 16, max: 16_000 }),
  basePort: envNum('BENCH_BASE_PORT', 0, { min: 0, max: 65_000 }),
  profile: process.env.BENCH_PROFILE === '1' || process.env.BENCH_PROFILE === 'true',
  // About a minute a scenario on a busy 2-core machine; the stream bench (two 3-node fills of 100k messages) up to 10;
  // the accounts bench (set-up of a big account, 1000 typing connections) up to 3.
  timeout: envNum('BENCH_TIMEOUT', 60 + scenarioList.reduce((t, s) => t + ({ streams: 600, accounts: 180 }[s] ?? 60), 0), { min: 10, max: 3600 }),
  scenarios: scenarioList,
};
/** Load scenarios (runScenario) → the storage of their nodes: node defaults (memory), off, disk. */
const LOAD_SCENARIOS = { cross: 'memory', 'cross-nostore': 'off', 'cross-disk': 'disk', same: 'memory' };
/** Scenarios that are benchmarks of their own, run as a child process: name → file beside this one. */
const CHILD_BENCHES = { membership: 'membership-bench.mjs', junk: 'junk-flood.mjs', streams: 'streams-bench.mjs', accounts: 'accounts-bench.mjs' };
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
    const child = spawn(process.execPath, [join(here, CHILD_BENCHES[name])], { stdio: ['ignore', 'pipe', 'inherit'] });
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

function alive(child) {
  return child.exitCode === null && child.signalCode === null;
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL. */
async function stopChild(child, graceMs = 5000) {
  if (!alive(child)) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => {
    if (alive(child)) child.kill('SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(t);
}

let cleaningUp = false;
async function cleanup() {
  if (cleaningUp) return;
  cleaningUp = true;
  await Promise.all([...children].map((c) => stopChild(c)));
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
    const nodeArgs = ['--import', pathToFileURL(join(here, 'orphan-guard.mjs')).href];
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

async function runScenario(name) {
  const storage = LOAD_SCENARIOS[name];
  const cross = name.startsWith('cross');
  const storageText = { memory: 'streams in memory (node defaults)', off: 'storage off (--history-size 0)', disk: 'streams on disk (--data-dir, fsync before ack)' }[storage];
  log(`\n== scenario ${name}: ${cross ? 'senders on b0, receivers on b1/b2' : 'senders and receivers on b0 (b1, b2 idle)'}; ${storageText}`);
  const nodes = await startCluster(name, storage);
  const pids = nodes.map((n) => n.pid);
  const rssPeak = nodes.map(() => 0);
  const rssTimer = setInterval(() => {
    nodes.forEach((n, i) => {
      const r = readRss(n.pid).rssMiB;
      if (r && r > rssPeak[i]) rssPeak[i] = r;
    });
  }, 250);
  const lg = startLoadgen();
  try {
    const url = (i) => `ws://${HOST}:${nodes[i].http}/ws`;
    const receivers = [];
    const senders = [];
    for (let i = 0; i < cfg.pairs; i++) {
      const r = `${name}-r${i}`;
      receivers.push({ user: r, url: url(cross ? 1 + (i % 2) : 0) });
      senders.push({ user: `${name}-s${i}`, url: url(0), to: r });
    }
    const ready = await lg.call({ cmd: 'setup', receivers, senders, bodyBytes: cfg.bodyBytes }, 'ready', 60_000);
    log(`  ${ready.connections} connections up in ${ready.setupMs} ms`);

    // CPU of the nodes and the machine over each measurement window.
    let snap;
    let windowCpu;
    lg.onMark((mark) => {
      if (mark === 'start') snap = cpuSnapshot(pids);
      else if (snap) windowCpu = cpuBetween(snap, cpuSnapshot(pids));
    });
    const phaseTimeout = (cfg.warmup + cfg.seconds + 30) * 1000;

    const sat = (await lg.call({ cmd: 'saturate', warmupMs: cfg.warmup * 1000, measureMs: cfg.seconds * 1000, window: cfg.window }, 'result', phaseTimeout)).result;
    sat.cpu = windowCpu;
    if (sat.cpu) sat.cpu.otherProcessesPercentOfOneCore = +(sat.cpu.restPercentOfOneCore - sat.loadgenCpu.percentOfOneCore).toFixed(1);
    log(`  saturation: ${sat.deliveredPerSec} delivered/s (acks ${sat.acksPerSec}/s), latency under saturation p50 ${sat.latencyMs.p50} ms p99 ${sat.latencyMs.p99} ms; ` +
      `node CPU ${sat.cpu?.nodesPercentOfOneCore.join('/')}% of a core, loadgen ${sat.loadgenCpu.percentOfOneCore}%, ` +
      `other processes ${sat.cpu?.otherProcessesPercentOfOneCore}%, machine ${sat.cpu?.machineBusyPercent}% busy`);
    if (sat.cpu?.otherProcessesPercentOfOneCore > 15) {
      log(`  WARNING: other processes used ${sat.cpu.otherProcessesPercentOfOneCore}% of a core during the measurement: the machine is not quiet, numbers are noisy`);
    }

    const rate = Math.max(1, Math.round(sat.deliveredPerSec / 2));
    windowCpu = undefined;
    const paced = (await lg.call({ cmd: 'paced', rate, warmupMs: Math.round((cfg.warmup * 1000) / 2), measureMs: cfg.seconds * 1000, window: cfg.window }, 'result', phaseTimeout)).result;
    paced.cpu = windowCpu;
    if (paced.cpu) paced.cpu.otherProcessesPercentOfOneCore = +(paced.cpu.restPercentOfOneCore - paced.loadgenCpu.percentOfOneCore).toFixed(1);
    log(`  paced at ${rate}/s: ${paced.deliveredPerSec} delivered/s, p50 ${paced.latencyMs.p50} p90 ${paced.latencyMs.p90} p99 ${paced.latencyMs.p99} max ${paced.latencyMs.max} ms; ` +
      `node CPU ${paced.cpu?.nodesPercentOfOneCore.join('/')}% of a core, loadgen ${paced.loadgenCpu.percentOfOneCore}%`);

    const rss = nodes.map((n, i) => ({ node: n.id, ...readRss(n.pid), peakSampledMiB: rssPeak[i] }));
    log(`  RSS at end: ${rss.map((r) => `${r.node} ${r.rssMiB} MiB`).join(', ')}`);
    // The stores at the end: once a stream holds --history-size entries, every append also trims.
    const store = storage === 'off' ? undefined : await storeTotals(nodes);
    if (store) log(`  stores at end: ${store.storedMessages} entries, ${store.trimmed} trimmed by the bounds, ${store.replicationFailures} failed replicated writes`);
    for (const [label, r] of [['saturation', sat], ['paced', paced]]) {
      const t = r.totals;
      // Every receiver is online: `stored` (or `offline`) acks mean the routes were not what the scenario assumes.
      const bad = Object.keys(t.errors).length || t.missing || (t.ackStatus.offline ?? 0) || (t.ackStatus.stored ?? 0) || !r.drained || t.skippedWindowFull || t.lagCapped;
      if (bad) log(`  WARNING ${label}: ${JSON.stringify(t)} drained=${r.drained}`);
    }
    await lg.call({ cmd: 'close' }, 'closed', 10_000).catch(() => undefined);
    return { scenario: name, storage, saturation: sat, paced, rss, ...(store && { store }) };
  } finally {
    clearInterval(rssTimer);
    await stopChild(lg.child, 3000);
    await stopCluster(nodes);
    for (const n of nodes) if (n.suppressed) log(`  [${name} ${n.id}] ${n.suppressed} more log lines not shown`);
  }
}

// ------------------------------------------------------------------ report

function pad(s, n) {
  s = String(s ?? '-');
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

/** CPU µs the given nodes spent per delivered message over a phase's measurement window. */
function usPerMsg(phase, idx) {
  const pct = phase.cpu?.nodesPercentOfOneCore;
  if (!pct || !phase.deliveredPerSec) return null;
  const cpuShare = idx.reduce((a, i) => a + pct[i], 0) / 100; // cores busy
  return +((cpuShare * 1e6) / phase.deliveredPerSec).toFixed(1);
}

function report(results) {
  const by = Object.fromEntries(results.map((r) => [r.scenario, r]));
  const rows = [
    ['throughput (delivered msgs/s)', (r) => r.saturation.deliveredPerSec],
    ['  sat. latency p50 (ms)', (r) => r.saturation.latencyMs.p50],
    ['  sat. latency p99 (ms)', (r) => r.saturation.latencyMs.p99],
    ['paced rate (msgs/s, 50% of sat.)', (r) => r.paced.targetRate],
    ['  delivered (msgs/s)', (r) => r.paced.deliveredPerSec],
    ['  latency p50 (ms)', (r) => r.paced.latencyMs.p50],
    ['  latency p90 (ms)', (r) => r.paced.latencyMs.p90],
    ['  latency p99 (ms)', (r) => r.paced.latencyMs.p99],
    ['  latency max (ms)', (r) => r.paced.latencyMs.max],
    ...[0, 1, 2].map((i) => [`RSS b${i} at end (MiB)`, (r) => r.rss[i]?.rssMiB]),
    ...[0, 1, 2].map((i) => [`CPU b${i} at sat. (% of 1 core)`, (r) => r.saturation.cpu?.nodesPercentOfOneCore[i]]),
    ['  b0 kernel share of its CPU (%)', (r) => r.saturation.cpu?.nodesKernelPercentOfTheirCpu[0]],
    ['CPU loadgen at sat. (% of 1 core)', (r) => r.saturation.loadgenCpu.percentOfOneCore],
    ['  loadgen event-loop utilization', (r) => r.saturation.loadgenCpu.eventLoopUtilization],
    ['CPU loadgen paced (% of 1 core)', (r) => r.paced.loadgenCpu.percentOfOneCore],
    // CPU time per delivered message: far less sensitive to other load on the machine than rates.
    ['node CPU per msg at sat., b0 (µs)', (r) => usPerMsg(r.saturation, [0])],
    ['node CPU per msg at sat., all (µs)', (r) => usPerMsg(r.saturation, [0, 1, 2])],
    ['node CPU per msg paced, all (µs)', (r) => usPerMsg(r.paced, [0, 1, 2])],
    ['machine busy at sat. (% of all)', (r) => r.saturation.cpu?.machineBusyPercent],
    ['other processes at sat. (% of 1 core)', (r) => r.saturation.cpu?.otherProcessesPercentOfOneCore],
  ];
  const names = results.map((r) => r.scenario);
  const w = 36;
  const lines = [];
  lines.push('');
  lines.push(`chatmesh bench  ${new Date().toISOString()}  pairs=${cfg.pairs} window=${cfg.window} body=${cfg.bodyBytes}B seconds=${cfg.seconds} warmup=${cfg.warmup}`);
  lines.push(`${'metric'.padEnd(w)}${names.map((n) => pad(n, 12)).join('')}`);
  lines.push('-'.repeat(w + 12 * names.length));
  for (const [label, f] of rows) lines.push(`${label.padEnd(w)}${results.map((r) => pad(f(r), 12)).join('')}`);
  const ratios = {};
  if (by.cross && by.same) {
    const q = (a, b) => (a != null && b ? +(a / b).toFixed(3) : null);
    ratios.throughput = q(by.cross.saturation.deliveredPerSec, by.same.saturation.deliveredPerSec);
    ratios.p50 = q(by.cross.paced.latencyMs.p50, by.same.paced.latencyMs.p50);
    ratios.p99 = q(by.cross.paced.latencyMs.p99, by.same.paced.latencyMs.p99);
    ratios.nodeCpuPerMsgAll = q(usPerMsg(by.cross.saturation, [0, 1, 2]), usPerMsg(by.same.saturation, [0, 1, 2]));
    ratios.nodeCpuPerMsgB0 = q(usPerMsg(by.cross.saturation, [0]), usPerMsg(by.same.saturation, [0]));
    lines.push('-'.repeat(w + 12 * names.length));
    lines.push(`ratio cross/same: throughput ${ratios.throughput}  |  p50 ${ratios.p50}  |  p99 ${ratios.p99}  (latency at each scenario's own 50% rate)`);
    lines.push(`                  node CPU per msg: all nodes ${ratios.nodeCpuPerMsgAll}  |  b0 ${ratios.nodeCpuPerMsgB0}`);
  }
  // The cost of keeping messages: the same cross load with storage in memory / on disk vs off.
  for (const [key, on, label] of [['storeMemoryVsOff', 'cross', 'memory/off'], ['storeDiskVsOff', 'cross-disk', 'disk/off']]) {
    const off = by['cross-nostore'];
    if (!by[on] || !off) continue;
    const q = (a, b) => (a != null && b ? +(a / b).toFixed(3) : null);
    const r = {
      nodeCpuPerMsgAll: q(usPerMsg(by[on].saturation, [0, 1, 2]), usPerMsg(off.saturation, [0, 1, 2])),
      nodeCpuPerMsgB0: q(usPerMsg(by[on].saturation, [0]), usPerMsg(off.saturation, [0])),
      nodeCpuPerMsgPacedAll: q(usPerMsg(by[on].paced, [0, 1, 2]), usPerMsg(off.paced, [0, 1, 2])),
      throughput: q(by[on].saturation.deliveredPerSec, off.saturation.deliveredPerSec),
      p50: q(by[on].paced.latencyMs.p50, off.paced.latencyMs.p50),
      p99: q(by[on].paced.latencyMs.p99, off.paced.latencyMs.p99),
      rssAll: q(by[on].rss.reduce((a, x) => a + (x.rssMiB ?? 0), 0), off.rss.reduce((a, x) => a + (x.rssMiB ?? 0), 0)),
    };
    ratios[key] = r;
    lines.push('-'.repeat(w + 12 * names.length));
    lines.push(`ratio ${on}/cross-nostore (storage ${label}): node CPU per msg at sat., all nodes ${r.nodeCpuPerMsgAll} (aim <= 1.5)  |  b0 ${r.nodeCpuPerMsgB0}  |  paced, all ${r.nodeCpuPerMsgPacedAll}`);
    lines.push(`${' '.repeat(6 + on.length + 15)}throughput ${r.throughput}  |  p50 ${r.p50}  |  p99 ${r.p99} (each at its own 50% rate)  |  RSS, all nodes ${r.rssAll}`);
  }
  lines.push('');
  lines.push(`NOTE: the load generator and all 3 nodes share this machine's ${cpus().length} cores; the numbers are`);
  lines.push('      for comparing runs and scenarios, not absolute capacity. In "same", b1/b2 hold no clients, so b0 and the');
  lines.push('      loadgen have most of the cores (with storage on, b1/b2 still keep stream replicas); in "cross" b1/b2 also');
  lines.push('      compete for them. Storage on/off ratios compare cross runs of the same run only. If the loadgen\'s CPU');
  lines.push('      is near 100% of a core (or its event-loop utilization near 1), the loadgen, not the server, limits the rate.');
  lines.push('      "other processes" is CPU used by anything else on the machine (e.g. a concurrent test run): well above');
  lines.push('      0 means the run was disturbed; rerun on a quiet machine.');
  return { text: lines.join('\n'), ratios };
}

// ------------------------------------------------------------------ main

/** The commit measured, and whether the work tree had changes (results of a dirty tree are not a commit's). */
function gitState() {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8' }).trim() !== '';
    return { commit, dirty };
  } catch {
    return undefined;
  }
}

async function main() {
  const t0 = performance.now();
  log(`chatmesh bench: ${cfg.scenarios.join(', ')}; ${cfg.pairs} pairs, window ${cfg.window}, ${cfg.warmup}+${cfg.seconds} s per phase${cfg.profile ? `, profiling into ${profileDir}` : ''}`);
  const results = [];
  const others = [];
  for (const s of cfg.scenarios) {
    if (s in CHILD_BENCHES) others.push(await runChildBench(s));
    else results.push(await runScenario(s));
  }
  const { text, ratios } = results.length > 0 ? report(results) : { text: '', ratios: undefined };
  log(text);

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
    git: gitState(),
    config: { ...cfg, nodes: NODES, cores: cpus().length, cpuModel: cpus()[0]?.model, node: process.version },
    note: `load generator and ${NODES} nodes share ${cpus().length} cores`,
    results,
    ratios,
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
