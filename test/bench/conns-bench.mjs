#!/usr/bin/env node
// Connections per node (issue 11): how many idle WebSocket clients one chatmesh node holds, and
// what each costs. Starts ONE node (dist/cli.js node, dev auth, node defaults but for a shorter
// heartbeat so that the idle window sees it), then opens connections in steps (default 2k, 5k,
// 10k, then the target: the node's open-files limit minus a margin), each a distinct user signed in
// (hello -> welcome), spread over several forked client processes (conns-client.mjs; each process
// has its own open-files limit and its own loopback source address). At every step:
//   - connect rate: connections/s of that step (hello -> welcome included);
//   - node memory after a forced full GC (the node is preloaded with gc-on-signal.mjs): RSS from
//     /proc, V8 heap used, external (Buffers); the slope per connection between steps and a linear
//     fit over all of them, and what that gives at 100,000 connections;
//   - node CPU at idle over CONNS_IDLE_SECONDS, with heartbeats (ping/pong of every connection
//     every CONNS_HEARTBEAT_MS; the pings the clients got are counted, so CPU per ping and the idle
//     CPU at the default 30 s heartbeat are derived);
//   - a DM round trip between two connected users held by this process (a -> b, b answers, a
//     receives the answer): p50/p99 over CONNS_DMS round trips, one at a time, none may be lost.
// Then the same clients against a bare `ws` server set up like the gateway (conns-bare-server.mjs,
// same preloads, same heartbeat) at 0 and at the target: what a WebSocket costs without chatmesh;
// the difference of the heap slopes is chatmesh's own state per connection.
//
// Run: `npm run build && node test/bench/conns-bench.mjs` (or `BENCH_SCENARIOS=conns npm run bench`).
// Env (defaults in brackets):
//   CONNS_TARGET [node's open-files limit - CONNS_FD_MARGIN]  connections at the last step
//   CONNS_FD_MARGIN [1000]      file descriptors left to the node for everything else
//   CONNS_STEPS [2000,5000,10000]  intermediate steps (those below the target), then the target
//   CONNS_PROCS [4]             client processes (raised when a share would pass their own limit)
//   CONNS_CONCURRENCY [64]      connection attempts in flight per client process
//   CONNS_IDLE_SECONDS [10]     idle CPU window per step
//   CONNS_HEARTBEAT_MS [5000]   the node's --heartbeat-ms during the bench (default of a node: 30000)
//   CONNS_DMS [300]             DM round trips per step
//   CONNS_DM_INTERVAL_MS [20]   pause between two round trips (the node's rate limit is 100 frames/s per connection)
//   CONNS_MAX_CONNECTIONS [100000]  the node's --max-connections (its default)
//   CONNS_BARE [1]              0: skip the bare ws baseline (no chatmeshStatePerConnKiB then)
//   CONNS_TIMEOUT [900]         hard limit of the whole bench, seconds
// Prints a table and, last, one JSON line (run.mjs keeps it); also writes bench-results/conns-<date>.json.
import { fork, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { alive, benchCli, HOST, childChannel, freePort, gitState, httpGet, procCpuMs, runBench, stopChild } from './bench-util.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const cli = benchCli(root);
const DEFAULT_HEARTBEAT_MS = 30_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => process.stdout.write(`${s}\n`);

function envNum(name, def, min = 0, max = Infinity) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) {
    process.stderr.write(`conns-bench: ${name}=${raw} is not a number in [${min}, ${max}]\n`);
    process.exit(2);
  }
  return n;
}

function envSteps() {
  const raw = process.env.CONNS_STEPS;
  if (raw === undefined || raw === '') return [2000, 5000, 10_000];
  const steps = raw.split(',').map((s) => Number(s.trim()));
  if (steps.some((n) => !Number.isInteger(n) || n < 1)) {
    process.stderr.write(`conns-bench: CONNS_STEPS=${raw} is not a list of whole numbers\n`);
    process.exit(2);
  }
  return steps;
}

const cfg = {
  target: envNum('CONNS_TARGET', undefined, 10, 1_000_000),
  margin: envNum('CONNS_FD_MARGIN', 1000, 50, 100_000),
  steps: envSteps(),
  procs: envNum('CONNS_PROCS', 4, 1, 64),
  concurrency: envNum('CONNS_CONCURRENCY', 64, 1, 10_000),
  idleSeconds: envNum('CONNS_IDLE_SECONDS', 10, 1, 600),
  heartbeatMs: envNum('CONNS_HEARTBEAT_MS', 5000, 100, 600_000),
  dms: envNum('CONNS_DMS', 300, 1, 100_000),
  dmIntervalMs: envNum('CONNS_DM_INTERVAL_MS', 20, 10, 10_000),
  maxConnections: envNum('CONNS_MAX_CONNECTIONS', 100_000, 1, 10_000_000),
  bare: process.env.CONNS_BARE !== '0',
  timeout: envNum('CONNS_TIMEOUT', 900, 10, 7200),
};

// ------------------------------------------------------------------ processes and cleanup

const children = new Set();
let cleaningUp = false;

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}


async function cleanup() {
  cleaningUp = true;
  await Promise.all([...children].map((c) => stopChild(c)));
}

// ------------------------------------------------------------------ /proc

function procStatusKiB(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Soft "Max open files" of a process (Linux), or null. */
function openFilesLimit(pid) {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m ? (m[1] === 'unlimited' ? Infinity : Number(m[1])) : null;
  } catch {
    return null;
  }
}

/** Whole-machine busy and total jiffies (all cores). */
function systemCpu() {
  const v = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3] + (v[4] ?? 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** TcpExt ListenOverflows of the machine (/proc/net/netstat): SYNs dropped because an accept queue was full. */
function listenOverflows() {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
    const names = lines[0].trim().split(/\s+/);
    const values = lines[1].trim().split(/\s+/);
    const i = names.indexOf('ListenOverflows');
    return i > 0 ? Number(values[i]) : null;
  } catch {
    return null;
  }
}

function openFds(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ servers (chatmesh node, bare ws)

const preloads = ['--expose-gc', '--import', pathToFileURL(join(here, 'orphan-guard.mjs')).href, '--import', pathToFileURL(join(here, 'gc-on-signal.mjs')).href];

/** Wires a server process's output: keeps the last lines, hands `BENCH_GC` records to the waiter. */
function watchOutput(server) {
  server.lines = [];
  server.logLines = 0;
  server.warnings = [];
  for (const stream of [server.child.stdout, server.child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      if (line.startsWith('BENCH_GC ')) {
        const w = server.gcWaiter;
        server.gcWaiter = undefined;
        w?.(JSON.parse(line.slice(9)));
        return;
      }
      server.lines.push(line);
      if (server.lines.length > 50) server.lines.shift();
      server.logLines++;
      server.onLine?.(line);
    });
  }
  server.child.once('exit', (code, signal) => {
    server.exit = { code, signal };
    if (!server.stopping && !cleaningUp) process.stderr.write(`conns-bench: ${server.kind} exited unexpectedly (${code ?? signal})\n${server.lines.slice(-10).join('\n')}\n`);
  });
}

async function startNode() {
  const ports = { http: await freePort(), mesh: await freePort(), admin: await freePort() };
  const child = track(spawn(process.execPath, [
    ...preloads, cli, 'node', '--id', 'conns0', '--host', HOST,
    '--http-port', String(ports.http), '--mesh-port', String(ports.mesh), '--admin-port', String(ports.admin),
    '--discovery', 'static', '--auth', 'dev', '--log-level', 'info',
    '--max-connections', String(cfg.maxConnections), '--heartbeat-ms', String(cfg.heartbeatMs),
  ], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] }));
  const node = { kind: 'chatmesh node', child, pid: child.pid, http: ports.http };
  watchOutput(node);
  node.onLine = (line) => {
    if (/"level":("warn"|"error"|"fatal"|40|50|60)/.test(line)) {
      if (line.includes('AUTH IS OFF')) return; // expected: the bench uses --auth dev
      node.warnings.push(line);
      if (node.warnings.length <= 10) log(`  [node] ${line.slice(0, 600)}`);
    }
  };
  const t0 = performance.now();
  for (;;) {
    if (node.exit) throw new Error(`the node exited during startup: ${node.lines.slice(-5).join(' | ')}`);
    if (performance.now() - t0 > 30_000) throw new Error('the node is not ready after 30 s');
    try {
      const r = await httpGet(`http://${HOST}:${node.http}/healthz`, 1000);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  node.url = `ws://${HOST}:${node.http}/ws`;
  node.connections = async () => JSON.parse((await httpGet(`http://${HOST}:${node.http}/healthz`, 5000)).text).connections;
  return node;
}

async function startBare() {
  const port = await freePort();
  const child = track(spawn(process.execPath, [...preloads, join(here, 'conns-bare-server.mjs'), String(port), String(cfg.heartbeatMs)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] }));
  const bare = { kind: 'bare ws server', child, pid: child.pid };
  watchOutput(bare);
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('the bare ws server did not start within 10 s')), 10_000);
    bare.onLine = (line) => {
      if (line.startsWith('BARE_LISTENING ')) {
        clearTimeout(t);
        bare.onLine = undefined;
        resolve();
      }
    };
    child.once('exit', () => reject(new Error(`the bare ws server exited: ${bare.lines.join(' | ')}`)));
  });
  bare.url = `ws://${HOST}:${port}/ws`;
  return bare;
}

async function stopServer(server) {
  server.stopping = true;
  await stopChild(server.child, 20_000);
}

/** Full GC in the server, then its memory: `{ rssKiB, heapUsedKiB, externalKiB, ... }`. */
async function memoryAfterGc(server) {
  const rec = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${server.kind}: no BENCH_GC line within 60 s`)), 60_000);
    server.gcWaiter = (r) => {
      clearTimeout(t);
      resolve(r);
    };
    process.kill(server.pid, 'SIGUSR2');
  });
  if (!rec.gc) throw new Error(`${server.kind}: gc() is not exposed (--expose-gc missing)`);
  const k = (b) => Math.round(b / 1024);
  return { rssKiB: k(rec.rss), rssAnonKiB: k(rec.rssAnon), heapUsedKiB: k(rec.heapUsed), heapTotalKiB: k(rec.heapTotal), externalKiB: k(rec.external), arrayBuffersKiB: k(rec.arrayBuffers) };
}

// ------------------------------------------------------------------ client processes

function startClients(n) {
  return Array.from({ length: n }, (_, i) => {
    const child = track(fork(join(here, 'conns-client.mjs'), [], {
      cwd: root,
      env: { ...process.env, CONNS_CLIENT_ADDRESS: `127.0.0.${10 + i}` },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }));
    return childChannel(child, `client ${i}`);
  });
}

async function stopClients(clients) {
  await Promise.all(clients.map((c) => c.call({ cmd: 'close' }, 'closed', 30_000).catch(() => undefined)));
  await Promise.all(clients.map((c) => stopChild(c.child, 5000)));
}

async function clientStats(clients) {
  const all = await Promise.all(clients.map((c) => c.call({ cmd: 'stats' }, 'stats', 30_000)));
  const sum = (k) => all.reduce((a, s) => a + s[k], 0);
  const merge = (k) => all.reduce((acc, s) => {
    for (const [key, v] of Object.entries(s[k])) acc[key] = (acc[key] ?? 0) + v;
    return acc;
  }, {});
  return { open: sum('open'), pings: sum('pings'), dropped: sum('dropped'), failures: sum('failures'), dropCodes: merge('dropCodes'), frames: merge('frames'), failureReasons: merge('failureReasons'), rssMiB: all.map((s) => s.rssMiB) };
}

/** Opens `count` more connections (users `prefix<index>`), split evenly over the client processes. */
async function openMore(server, clients, prefix, from, count) {
  const per = Math.ceil(count / clients.length);
  const cpu0 = procCpuMs(server.pid);
  const sys0 = systemCpu();
  const overflows0 = listenOverflows();
  const t0 = performance.now();
  const results = await Promise.all(clients.map((c, i) => {
    const lo = from + i * per;
    const hi = Math.min(from + count, lo + per);
    const users = [];
    for (let u = lo; u < hi; u++) users.push(`${prefix}${u}`);
    if (users.length === 0) return { failures: 0 };
    return c.call({ cmd: 'open', url: server.url, users, concurrency: cfg.concurrency, timeoutMs: 30_000 }, 'opened', 600_000);
  }));
  const ms = performance.now() - t0;
  const cpu1 = procCpuMs(server.pid);
  const sys1 = systemCpu();
  const overflows1 = listenOverflows();
  return {
    ms,
    failures: results.reduce((a, r) => a + r.failures, 0),
    // Each process reports its own reasons (counted since it started): merged here.
    failureReasons: results.reduce((acc, r) => {
      for (const [k, v] of Object.entries(r.failureReasons ?? {})) acc[k] = (acc[k] ?? 0) + v;
      return acc;
    }, {}),
    serverCpuPercent: +(((cpu1.user + cpu1.sys - cpu0.user - cpu0.sys) / ms) * 100).toFixed(1),
    clientsCpuPercent: +((results.reduce((a, r) => a + (r.cpuMs ?? 0), 0) / ms) * 100).toFixed(1),
    machineBusyPercent: +(((sys1.busy - sys0.busy) / (sys1.total - sys0.total)) * 100).toFixed(1),
    listenOverflows: overflows0 === null || overflows1 === null ? null : overflows1 - overflows0,
  };
}

// ------------------------------------------------------------------ DM round trips

/** A connection of the parent, for the DM pair. */
function dmClient(url, user) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 10_000 });
    const c = { ws, user, onMessage: undefined, acks: {} };
    const t = setTimeout(() => reject(new Error(`${user}: no welcome within 10 s`)), 10_000);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', user })));
    ws.on('error', (err) => reject(err));
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString());
      if (f.type === 'welcome') {
        clearTimeout(t);
        resolve(c);
      } else if (f.type === 'ack') c.acks[f.status ?? 'none'] = (c.acks[f.status ?? 'none'] ?? 0) + 1;
      else if (f.type === 'error') c.acks[`error:${f.code}`] = (c.acks[`error:${f.code}`] ?? 0) + 1;
      else if (f.type === 'message') c.onMessage?.(f);
    });
  });
}

/**
 * `n` round trips a -> b -> a, one at a time, CONNS_DM_INTERVAL_MS apart (within a connection's
 * default rate limit, 100 frames/s); a round trip not back within 5 s is lost.
 */
async function dmRoundTrips(a, b, n) {
  b.onMessage = (f) => b.ws.send(JSON.stringify({ type: 'send', id: `r${f.body}`, to: a.user, body: f.body }));
  const rtts = [];
  let lost = 0;
  for (let i = 0; i < n; i++) {
    const body = `${Date.now()}-${i}`;
    const t0 = performance.now();
    const back = await new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), 5000);
      a.onMessage = (f) => {
        if (f.body !== body) return;
        clearTimeout(t);
        resolve(true);
      };
      a.ws.send(JSON.stringify({ type: 'send', id: `s${i}`, to: b.user, body }));
    });
    if (back) rtts.push(performance.now() - t0);
    else lost++;
    await sleep(cfg.dmIntervalMs);
  }
  a.onMessage = undefined;
  b.onMessage = undefined;
  rtts.sort((x, y) => x - y);
  const pct = (p) => (rtts.length ? +rtts[Math.min(rtts.length - 1, Math.ceil((p / 100) * rtts.length) - 1)].toFixed(2) : null);
  return { count: n, lost, p50Ms: pct(50), p99Ms: pct(99), maxMs: rtts.length ? +rtts.at(-1).toFixed(2) : null };
}

// ------------------------------------------------------------------ one server, all steps

/** Idle CPU of `pid` over `seconds` (% of one core) and the pings the clients got meanwhile. */
async function idleWindow(pid, clients, seconds) {
  const s0 = await clientStats(clients);
  const c0 = procCpuMs(pid);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const c1 = procCpuMs(pid);
  const wall = performance.now() - t0;
  const s1 = await clientStats(clients);
  const cpuMs = c1.user + c1.sys - c0.user - c0.sys;
  return { cpuMs, wallMs: wall, cpuPercentOfOneCore: +((cpuMs / wall) * 100).toFixed(2), pings: s1.pings - s0.pings };
}

async function runSteps(server, steps, { dm, label }) {
  const clients = startClients(cfg.procs);
  const rows = [];
  let pair;
  try {
    let opened = 0;
    if (dm) pair = [await dmClient(server.url, 'dm-a'), await dmClient(server.url, 'dm-b')];
    const held = dm ? 2 : 0;
    for (const want of [0, ...steps]) {
      const add = Math.max(0, want - held - opened);
      const linesBefore = server.logLines;
      const conn = add > 0 ? await openMore(server, clients, `${label}-`, opened, add) : { ms: 0, failures: 0 };
      opened += add;
      if (server.exit) throw new Error(`${server.kind} died while connecting (${JSON.stringify(server.exit)}): ${server.lines.slice(-5).join(' | ')}`);
      await sleep(2000); // the welcomes' `synced` and the connect's garbage settle
      const st = await clientStats(clients);
      const connections = server.connections ? await server.connections() : st.open;
      const rssBeforeGcKiB = procStatusKiB(server.pid, 'VmRSS');
      const mem = await memoryAfterGc(server);
      const idle = await idleWindow(server.pid, clients, cfg.idleSeconds);
      const dmr = pair ? await dmRoundTrips(pair[0], pair[1], cfg.dms) : undefined;
      const row = {
        connections,
        clientsOpen: st.open + held,
        added: add,
        connectMs: Math.round(conn.ms),
        connectRatePerSec: add > 0 ? Math.round(add / (conn.ms / 1000)) : null,
        connectFailures: conn.failures,
        connectServerCpuPercent: conn.serverCpuPercent ?? null,
        connectClientsCpuPercent: conn.clientsCpuPercent ?? null,
        connectMachineBusyPercent: conn.machineBusyPercent ?? null,
        // SYNs the kernel dropped meanwhile because an accept queue was full (machine-wide; each costs its client a 1 s+ retransmit).
        listenOverflows: conn.listenOverflows ?? null,
        droppedSoFar: st.dropped,
        rssBeforeGcKiB,
        ...mem,
        fds: openFds(server.pid),
        idleCpuPercentOfOneCore: idle.cpuPercentOfOneCore,
        idleCpuMs: Math.round(idle.cpuMs),
        idleWindowMs: Math.round(idle.wallMs),
        pingsInWindow: idle.pings,
        logLinesWhileConnecting: server.logLines - linesBefore,
        ...(dmr && { dmRoundTrip: dmr }),
      };
      rows.push(row);
      log(`  [${label}] ${row.connections} connections${add ? ` (+${add} in ${(conn.ms / 1000).toFixed(1)} s: ${row.connectRatePerSec}/s, ${conn.failures} failed; ` +
        `CPU ${label} ${conn.serverCpuPercent}%, clients ${conn.clientsCpuPercent}% of a core, machine ${conn.machineBusyPercent}% busy; ` +
        `${conn.listenOverflows} SYNs dropped on a full accept queue)` : ''}: ` +
        `RSS ${(mem.rssKiB / 1024).toFixed(1)} MiB after GC (${(rssBeforeGcKiB / 1024).toFixed(1)} before), heap ${(mem.heapUsedKiB / 1024).toFixed(1)} MiB, ` +
        `external ${(mem.externalKiB / 1024).toFixed(1)} MiB, fds ${row.fds}; idle CPU ${idle.cpuPercentOfOneCore}% (${idle.pings} pings)` +
        (dmr ? `; DM round trip p50 ${dmr.p50Ms} p99 ${dmr.p99Ms} ms, ${dmr.lost} lost` : ''));
      if (conn.failures) log(`  [${label}]   connect failures: ${JSON.stringify(conn.failureReasons)}`);
      if (st.dropped) log(`  [${label}]   connections dropped by the server so far: ${st.dropped} ${JSON.stringify(st.dropCodes)}`);
      if (conn.failures > add / 100) {
        log(`  [${label}]   more than 1% of the connections failed: stopping the steps here`);
        break;
      }
    }
    const end = await clientStats(clients);
    return { rows, clientFrames: end.frames, dropped: end.dropped, dropCodes: end.dropCodes, clientRssMiB: end.rssMiB, dmAcks: pair?.map((c) => c.acks) };
  } finally {
    for (const c of pair ?? []) c.ws.terminate();
    await stopClients(clients);
  }
}

// ------------------------------------------------------------------ numbers

/** Least-squares fit y = a + b x. */
function fit(points) {
  const n = points.length;
  if (n < 2) return { slope: null, intercept: null };
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  const slope = sxx > 0 ? sxy / sxx : null;
  return { slope, intercept: slope === null ? null : my - slope * mx };
}

const r2 = (x) => (x === null || x === undefined || !Number.isFinite(x) ? null : +x.toFixed(2));

function slopes(rows, key) {
  const f = fit(rows.map((r) => [r.connections, r[key]]));
  return { slope: f.slope, intercept: f.intercept };
}

function pad(s, n) {
  s = String(s ?? '-');
  return s.length >= n ? s : ' '.repeat(n - s.length) + s;
}

function table(node, bare, summary) {
  const lines = [];
  lines.push('');
  lines.push(`connections per node: one chatmesh node, ${cfg.procs} client processes, heartbeat every ${cfg.heartbeatMs} ms, ${cpus().length} cores shared by all`);
  const head = ['connections', 'conn/s', 'RSS MiB', 'ΔRSS/conn KiB', 'heap MiB', 'Δheap/conn KiB', 'ext MiB', 'fds', 'idle CPU %', 'pings', 'DM p50 ms', 'DM p99 ms', 'lost'];
  const w = [12, 8, 9, 14, 9, 15, 8, 7, 11, 7, 10, 10, 6];
  lines.push(head.map((h, i) => pad(h, w[i])).join(''));
  lines.push('-'.repeat(w.reduce((a, b) => a + b, 0)));
  node.rows.forEach((r, i) => {
    const prev = node.rows[i - 1];
    const d = (k) => (prev && r.connections > prev.connections ? r2((r[k] - prev[k]) / (r.connections - prev.connections)) : null);
    lines.push([r.connections, r.connectRatePerSec, r2(r.rssKiB / 1024), d('rssKiB'), r2(r.heapUsedKiB / 1024), d('heapUsedKiB'), r2(r.externalKiB / 1024), r.fds,
      r.idleCpuPercentOfOneCore, r.pingsInWindow, r.dmRoundTrip?.p50Ms, r.dmRoundTrip?.p99Ms, r.dmRoundTrip?.lost].map((v, j) => pad(v, w[j])).join(''));
  });
  if (bare) {
    lines.push('');
    lines.push('bare ws server (same clients, same heartbeat):');
    for (const r of bare.rows) lines.push([r.connections, r.connectRatePerSec, r2(r.rssKiB / 1024), '', r2(r.heapUsedKiB / 1024), '', r2(r.externalKiB / 1024), r.fds, r.idleCpuPercentOfOneCore, r.pingsInWindow].map((v, j) => pad(v, w[j])).join(''));
  }
  const s = summary;
  lines.push('');
  lines.push(`connections reached           ${s.connections} of target ${s.target} (node open-files limit ${s.nodeOpenFilesLimit}; ${s.connectFailures} connect failures, ${s.dropped} dropped)`);
  lines.push(`connect rate                  ${s.connectRatePerSec} connections/s (hello -> welcome, last step)`);
  lines.push(`RSS per idle connection       ${s.rssPerIdleConnKiB} KiB (0 -> ${s.connections}, after GC)   linear fit over the steps: ${s.rssSlopeKiBPerConn} KiB/conn`);
  lines.push(`  of which V8 heap            ${s.heapPerConnKiB} KiB/conn (fit), external ${s.externalPerConnKiB} KiB/conn`);
  if (bare) {
    lines.push(`bare ws server                RSS ${s.bareWs.rssPerConnKiB} KiB/conn, heap ${s.bareWs.heapPerConnKiB} KiB/conn, external ${s.bareWs.externalPerConnKiB} KiB/conn`);
    lines.push(`chatmesh state per connection ${s.chatmeshStatePerConnKiB} KiB (heap + external above the bare ws server; RSS difference ${s.chatmeshRssAboveBareKiB} KiB)`);
  }
  lines.push(`idle CPU with heartbeats      ${s.idleCpuPercentOfCore}% of a core at ${s.connections} connections, ping every ${cfg.heartbeatMs} ms (${s.cpuPerPingUs} µs per ping/pong; ` +
    `at the default 30 s heartbeat: ${s.idleCpuAtDefaultHeartbeatPercent}%)`);
  lines.push(`DM round trip                 p50 ${s.dmRoundTrip.p50Ms} ms, p99 ${s.dmRoundTrip.p99Ms} ms over ${s.dmRoundTrip.count}, ${s.dmRoundTrip.lost} lost (at ${s.connections} connections)`);
  lines.push(`100,000 connections           ~${s.extrapolated100kMiB} MiB RSS (fit: ${r2(s.rssFitInterceptKiB / 1024)} MiB + ${s.rssSlopeKiBPerConn} KiB x connections); open-files limit needed: >= 100,000 + headroom`);
  lines.push(`node log lines while connecting: ${s.logLinesWhileConnecting} (warn and above: ${s.nodeWarnings})`);
  return lines.join('\n');
}

// ------------------------------------------------------------------ main

async function main() {
  const t0 = performance.now();
  const load = loadavg();
  const node = await startNode();
  const nodeLimit = openFilesLimit(node.pid);
  const ownLimit = openFilesLimit(process.pid);
  const target = cfg.target ?? (Number.isFinite(nodeLimit) ? nodeLimit - cfg.margin : 19_000);
  // Every client process holds at most its own limit minus a margin.
  const perProcMax = Number.isFinite(ownLimit) ? ownLimit - 500 : Infinity;
  if (Math.ceil(target / cfg.procs) > perProcMax) cfg.procs = Math.ceil(target / perProcMax);
  const steps = [...new Set([...cfg.steps.filter((s) => s < target), target])].sort((a, b) => a - b);
  log(`connections bench: one node (pid ${node.pid}, open-files limit ${nodeLimit}, --max-connections ${cfg.maxConnections}, --heartbeat-ms ${cfg.heartbeatMs}); ` +
    `steps ${steps.join(', ')}; ${cfg.procs} client processes; ${cpus().length} cores; load average ${load.map((x) => x.toFixed(2)).join(' ')}`);

  let nodeRun;
  try {
    nodeRun = await runSteps(node, steps, { dm: true, label: 'node' });
  } finally {
    await stopServer(node);
  }
  let bareRun;
  if (cfg.bare) {
    const bare = await startBare();
    try {
      bareRun = await runSteps(bare, [steps.at(-1)], { dm: false, label: 'bare' });
    } finally {
      await stopServer(bare);
    }
  }

  const rows = nodeRun.rows;
  const first = rows[0];
  const last = rows.at(-1);
  const per = (a, b, k) => (b.connections > a.connections ? (b[k] - a[k]) / (b.connections - a.connections) : null);
  const rssFit = slopes(rows, 'rssKiB');
  const heapFit = slopes(rows, 'heapUsedKiB');
  const extFit = slopes(rows, 'externalKiB');
  const bareSlope = bareRun && {
    rss: per(bareRun.rows[0], bareRun.rows.at(-1), 'rssKiB'),
    heap: per(bareRun.rows[0], bareRun.rows.at(-1), 'heapUsedKiB'),
    ext: per(bareRun.rows[0], bareRun.rows.at(-1), 'externalKiB'),
  };
  // CPU per ping/pong: the idle CPU above the 0-connection baseline, over the pings of the window.
  const baseCpuPerMs = first.idleCpuMs / first.idleWindowMs;
  const cpuPerPingUs = last.pingsInWindow > 0 ? ((last.idleCpuMs - baseCpuPerMs * last.idleWindowMs) * 1000) / last.pingsInWindow : null;
  const atDefault = cpuPerPingUs === null ? null : baseCpuPerMs * 100 + ((last.connections * (1000 / DEFAULT_HEARTBEAT_MS)) * cpuPerPingUs) / 10_000;
  const summary = {
    bench: 'conns',
    connections: last.connections,
    target,
    nodeOpenFilesLimit: Number.isFinite(nodeLimit) ? nodeLimit : null,
    connectFailures: rows.reduce((a, r) => a + r.connectFailures, 0),
    dropped: nodeRun.dropped,
    connectRatePerSec: last.connectRatePerSec,
    rssPerIdleConnKiB: r2(per(first, last, 'rssKiB')),
    rssSlopeKiBPerConn: r2(rssFit.slope),
    rssFitInterceptKiB: Math.round(rssFit.intercept),
    heapPerConnKiB: r2(heapFit.slope),
    externalPerConnKiB: r2(extFit.slope),
    chatmeshStatePerConnKiB: bareSlope ? r2(heapFit.slope + extFit.slope - bareSlope.heap - bareSlope.ext) : null,
    chatmeshRssAboveBareKiB: bareSlope ? r2(per(first, last, 'rssKiB') - bareSlope.rss) : null,
    bareWs: bareSlope ? { rssPerConnKiB: r2(bareSlope.rss), heapPerConnKiB: r2(bareSlope.heap), externalPerConnKiB: r2(bareSlope.ext), idleCpuPercentOfCore: bareRun.rows.at(-1).idleCpuPercentOfOneCore, connectRatePerSec: bareRun.rows.at(-1).connectRatePerSec } : null,
    idleCpuPercentOfCore: last.idleCpuPercentOfOneCore,
    heartbeatMs: cfg.heartbeatMs,
    cpuPerPingUs: r2(cpuPerPingUs),
    idleCpuAtDefaultHeartbeatPercent: r2(atDefault),
    dmRoundTrip: { p50Ms: last.dmRoundTrip.p50Ms, p99Ms: last.dmRoundTrip.p99Ms, count: last.dmRoundTrip.count, lost: last.dmRoundTrip.lost },
    extrapolated100kMiB: rssFit.slope === null ? null : Math.round((rssFit.intercept + rssFit.slope * 100_000) / 1024),
    logLinesWhileConnecting: rows.reduce((a, r) => a + r.logLinesWhileConnecting, 0),
    nodeWarnings: node.warnings.length,
    nodeWarningLines: node.warnings.slice(0, 5),
    steps: rows,
    bareSteps: bareRun?.rows,
    clientFrames: nodeRun.clientFrames,
    dmAcks: nodeRun.dmAcks,
  };
  log(table(nodeRun, bareRun, summary));

  const ok = summary.connectFailures === 0 && summary.dropped === 0 && summary.dmRoundTrip.lost === 0 && rows.every((r) => r.dmRoundTrip.lost === 0);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const resultsDir = join(root, 'bench-results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `conns-${stamp}.json`);
  const out = {
    ...summary,
    ok,
    date: new Date().toISOString(),
    git: gitState(root),
    config: { ...cfg, steps, cores: cpus().length, cpuModel: cpus()[0]?.model, node: process.version },
    loadAverageAtStart: load,
    loadAverageAtEnd: loadavg(),
    durationMs: Math.round(performance.now() - t0),
  };
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  log(`\nresults: ${file}  (took ${(out.durationMs / 1000).toFixed(1)} s)`);
  log(JSON.stringify(out));
  if (!ok) throw new Error('connections failed or dropped, or DMs lost (see above)');
}

process.on('exit', () => {
  for (const c of children) if (alive(c)) c.kill('SIGKILL');
});
runBench('conns-bench', main, { cleanup, timeoutS: cfg.timeout, timeoutVar: 'CONNS_TIMEOUT' });
