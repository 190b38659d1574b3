#!/usr/bin/env node
// Junk-flood benchmark: `npm run bench:junk` (builds, then runs this file).
//
// Does a junk flooder hurt the other users of its node? One node (dist/cli.js, default gateway
// limits, --auth dev). Two users, alice and bob, exchange direct messages at a fixed rate (JUNK_RATE
// in all, half each way: the default limit is 100 frames/s per connection) and the runner measures
//   ack  send -> its ack at the sender (the round trip)
//   dlv  send -> the message at the recipient (same process, so one clock)
// first with no flooders, then while JUNK_FLOODERS flooders (in a child process of their own, so
// their CPU is not the measurer's) each sign in and send JUNK_FRAME_BYTES junk text frames as fast
// as their socket takes them, reconnecting whenever they are closed. Prints a table.
//
// Compare builds: JUNK_ROOT=/path/to/other/checkout runs that checkout's dist/cli.js (build it there
// first) with this runner, e.g. a `git worktree add /tmp/base HEAD` of the commit before a change.
//
// Env (defaults in brackets):
//   JUNK_SECONDS [8]          measured seconds of each phase
//   JUNK_WARMUP [1]           seconds before each measurement (flooders start at its beginning)
//   JUNK_RATE [200]           DMs per second, alice and bob together
//   JUNK_FLOODERS [4]
//   JUNK_FRAME_BYTES [64512]  63 KiB: under the 64 KiB frame limit
//   JUNK_ROOT [this repo]     checkout whose dist/cli.js is benchmarked
//   JUNK_TIMEOUT [120]        hard limit of the whole run, seconds
//   JUNK_NODE_ARGS []         extra flags of the node process (e.g. --cpu-prof); its log lines are then shown
import { fork, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WebSocket from 'ws';

const here = dirname(fileURLToPath(import.meta.url));
const HOST = '127.0.0.1';

function envNum(name, def, min, max) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) {
    process.stderr.write(`junk-flood: ${name}=${raw} is not a number in [${min}, ${max}]\n`);
    process.exit(2);
  }
  return n;
}

const cfg = {
  seconds: envNum('JUNK_SECONDS', 8, 1, 120),
  warmup: envNum('JUNK_WARMUP', 1, 0, 30),
  rate: envNum('JUNK_RATE', 200, 2, 10_000),
  flooders: envNum('JUNK_FLOODERS', 4, 0, 64),
  frameBytes: envNum('JUNK_FRAME_BYTES', 63 * 1024, 1, 64 * 1024),
  root: resolve(process.env.JUNK_ROOT || join(here, '..', '..')),
  timeout: envNum('JUNK_TIMEOUT', 120, 10, 3600),
  nodeArgs: (process.env.JUNK_NODE_ARGS || '').split(' ').filter(Boolean),
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => process.stdout.write(`${s}\n`);

// ------------------------------------------------------------------ flooder (child process)

function runFlooders() {
  const url = process.argv[3];
  const n = Number(process.argv[4]);
  // Printable junk that is not JSON (random bytes would be invalid UTF-8: ws closes those with 1007).
  const junk = Buffer.alloc(Number(process.argv[5]));
  for (let i = 0; i < junk.length; i++) junk[i] = 0x61 + Math.floor(Math.random() * 26);
  const stats = { frames: 0, connections: 0, closes: {}, answers: 0 };
  const zeroMask = (mask) => mask.fill(0); // ws skips masking with a zero mask: flooding costs us nothing
  let stopping = false;
  const sockets = new Set();

  function flood(i) {
    if (stopping) return;
    const ws = new WebSocket(url, { perMessageDeflate: false, generateMask: zeroMask });
    sockets.add(ws);
    stats.connections++;
    const pump = () => {
      while (!stopping && ws.readyState === WebSocket.OPEN && ws.bufferedAmount < 1024 * 1024) {
        stats.frames++;
        ws.send(junk, { binary: false });
      }
      if (!stopping && ws.readyState === WebSocket.OPEN) setTimeout(pump, 1);
    };
    ws.on('open', () => {
      ws.send(JSON.stringify({ type: 'hello', user: `flooder${i}` }));
      pump();
    });
    ws.on('message', () => { stats.answers++; });
    ws.on('error', () => { /* counted by close */ });
    ws.on('close', (code) => {
      sockets.delete(ws);
      stats.closes[code] = (stats.closes[code] ?? 0) + 1;
      if (!stopping) setImmediate(() => flood(i));
    });
  }

  process.on('message', (m) => {
    if (m.cmd !== 'stop') return;
    stopping = true;
    for (const ws of sockets) ws.terminate();
    process.send({ ev: 'stats', stats }, () => process.exit(0));
  });
  process.on('disconnect', () => process.exit(0));
  for (let i = 0; i < n; i++) flood(i);
  process.send({ ev: 'started' });
}

// ------------------------------------------------------------------ runner

const children = new Set();
function cleanup() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}
process.on('exit', cleanup);

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Whole-machine busy and total jiffies (Linux /proc), or undefined. */
function readLoad() {
  try {
    const v = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    return { busy: total - v[3] - (v[4] ?? 0), total };
  } catch {
    return undefined;
  }
}

/** utime + stime of a process, in ms (Linux /proc; NaN elsewhere). */
function cpuMs(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

async function startNode() {
  const cli = join(cfg.root, 'dist', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} not found: run npm run build (in ${cfg.root})`);
  const [http, mesh, admin] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(process.execPath, [
    ...cfg.nodeArgs, '--import', pathToFileURL(join(here, 'orphan-guard.mjs')).href, cli, 'node', '--id', 'junk', '--host', HOST,
    '--http-port', String(http), '--mesh-port', String(mesh), '--admin-port', String(admin), '--auth', 'dev', '--log-level', 'warn', '--max-connections', '10000',
  ], { cwd: cfg.root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const lines = [];
  for (const s of [child.stdout, child.stderr]) {
    s.on('data', (d) => {
      for (const line of String(d).split('\n').filter(Boolean)) {
        if (cfg.nodeArgs.length && !line.includes('AUTH IS OFF')) log(`  [node] ${line.slice(0, 200)}`);
        lines.push(line);
      }
      lines.splice(0, Math.max(0, lines.length - 20));
    });
  }
  const t0 = performance.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`node exited during startup:\n${lines.join('\n')}`);
    if (performance.now() - t0 > 20_000) throw new Error('node not ready after 20 s');
    try {
      if ((await fetch(`http://${HOST}:${http}/healthz`)).status === 200) break;
    } catch { /* not listening yet */ }
    await sleep(50);
  }
  return { child, url: `ws://${HOST}:${http}/ws`, lines };
}

/** A chat user: sends DMs on a schedule, records ack and delivery latencies. */
function user(url, name, peer, rec) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const sentAt = new Map();
    let n = 0;
    ws.on('error', reject);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', user: name })));
    ws.on('close', (code) => { rec.closes[code] = (rec.closes[code] ?? 0) + 1; });
    ws.on('message', (data) => {
      const now = performance.now();
      const f = JSON.parse(String(data));
      if (f.type === 'welcome') {
        resolve({
          ws,
          send() {
            const id = `${name}-${n++}`;
            const t = performance.now();
            sentAt.set(id, t);
            ws.send(JSON.stringify({ type: 'send', id, to: peer, body: `${t}` }));
            rec.sent++;
          },
        });
      } else if (f.type === 'ack' && sentAt.has(f.id)) {
        const t = sentAt.get(f.id);
        sentAt.delete(f.id);
        rec.acks++;
        if (rec.measuring) rec.ack.push(now - t);
      } else if (f.type === 'message') {
        rec.received++;
        if (rec.measuring) rec.dlv.push(now - Number(f.body));
      } else if (f.type === 'error') {
        rec.errors[f.code] = (rec.errors[f.code] ?? 0) + 1;
      }
    });
  });
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  return +sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))].toFixed(2);
}

async function phase(node, name, flooders) {
  const rec = { sent: 0, acks: 0, received: 0, ack: [], dlv: [], errors: {}, closes: {}, measuring: false };
  const a = await user(node.url, 'alice', 'bob', rec);
  const b = await user(node.url, 'bob', 'alice', rec);
  let flood;
  if (flooders > 0) {
    flood = fork(fileURLToPath(import.meta.url), ['flooder', node.url, String(flooders), String(cfg.frameBytes)], { stdio: 'inherit' });
    children.add(flood);
    await new Promise((r) => flood.once('message', r));
  }
  // Paced on an absolute schedule: never ahead of the rate, so never over the per-connection limit.
  const interval = 1000 / cfg.rate;
  const start = performance.now();
  const measureFrom = start + cfg.warmup * 1000;
  const end = measureFrom + cfg.seconds * 1000;
  const cpu0 = { t: 0, ms: 0 };
  let floodCpu0 = 0;
  let load0;
  let i = 0;
  let lateMax = 0;
  while (performance.now() < end) {
    const due = start + i * interval;
    const now = performance.now();
    if (now < due) {
      await sleep(Math.max(0, due - now - 0.5));
      continue;
    }
    lateMax = Math.max(lateMax, now - due);
    if (!rec.measuring && now >= measureFrom) {
      rec.measuring = true;
      Object.assign(cpu0, { t: now, ms: cpuMs(node.child.pid) });
      if (flood) floodCpu0 = cpuMs(flood.pid);
      load0 = readLoad();
    }
    (i % 2 === 0 ? a : b).send();
    i++;
    if (i % 16 === 0) await new Promise((r) => setImmediate(r));
  }
  rec.measuring = false;
  const nodeCpu = ((cpuMs(node.child.pid) - cpu0.ms) / (performance.now() - cpu0.t)) * 100;
  const floodCpu = flood ? ((cpuMs(flood.pid) - floodCpu0) / (performance.now() - cpu0.t)) * 100 : undefined;
  let floodStats;
  if (flood) {
    flood.send({ cmd: 'stop' });
    floodStats = await new Promise((r) => flood.on('message', (m) => { if (m.ev === 'stats') r(m.stats); }));
  }
  // Let the last acks arrive, then close.
  const drainUntil = performance.now() + 3000;
  while (rec.acks < rec.sent && performance.now() < drainUntil) await sleep(20);
  a.ws.close();
  b.ws.close();
  rec.ack.sort((x, y) => x - y);
  rec.dlv.sort((x, y) => x - y);
  const load = readLoad();
  // Busy share of the whole machine in the window, less node and flooders: the runner and anything else.
  const machine = load && load0 ? ((load.busy - load0.busy) / (load.total - load0.total)) * 100 * cpus().length : NaN;
  const others = machine - nodeCpu - (floodCpu ?? 0);
  return {
    name, rec, nodeCpu: +nodeCpu.toFixed(1), floodCpu: floodCpu === undefined ? undefined : +floodCpu.toFixed(1),
    othersCpu: Number.isFinite(others) ? +others.toFixed(1) : undefined, floodStats, lateMax: +lateMax.toFixed(1),
  };
}

async function main() {
  const hard = setTimeout(() => {
    process.stderr.write(`junk-flood: JUNK_TIMEOUT (${cfg.timeout} s) reached\n`);
    cleanup();
    process.exit(1);
  }, cfg.timeout * 1000);
  hard.unref();
  log(`junk-flood: ${cfg.root}/dist; ${cfg.rate} DMs/s between alice and bob; ${cfg.warmup}+${cfg.seconds} s per phase; ` +
    `${cfg.flooders} flooders of ${cfg.frameBytes}-byte junk frames`);
  const node = await startNode();
  const results = [];
  try {
    results.push(await phase(node, 'no flooders', 0));
    if (cfg.flooders > 0) results.push(await phase(node, `${cfg.flooders} flooders`, cfg.flooders));
  } finally {
    // A graceful stop (it writes a --cpu-prof profile on exit), bounded.
    const exited = new Promise((r) => node.child.once('exit', r));
    node.child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
  }
  const w = 14;
  const row = (label, f) => `${label.padEnd(30)}${results.map((r) => String(f(r) ?? '-').padStart(w)).join('')}`;
  log('');
  log(row('', (r) => r.name));
  log('-'.repeat(30 + w * results.length));
  log(row('DMs sent / acked', (r) => `${r.rec.sent}/${r.rec.acks}`));
  log(row('ack round trip p50 (ms)', (r) => pct(r.rec.ack, 50)));
  log(row('ack round trip p90 (ms)', (r) => pct(r.rec.ack, 90)));
  log(row('ack round trip p99 (ms)', (r) => pct(r.rec.ack, 99)));
  log(row('ack round trip max (ms)', (r) => pct(r.rec.ack, 100)));
  log(row('delivery p50 (ms)', (r) => pct(r.rec.dlv, 50)));
  log(row('delivery p99 (ms)', (r) => pct(r.rec.dlv, 99)));
  log(row('chat errors', (r) => JSON.stringify(r.rec.errors)));
  log(row('node CPU (% of a core)', (r) => r.nodeCpu));
  log(row('flooders CPU (% of a core)', (r) => r.floodCpu));
  log(row('runner + rest of machine (%)', (r) => r.othersCpu));
  log(row('sender timer lag max (ms)', (r) => r.lateMax));
  log(row('junk frames sent', (r) => r.floodStats?.frames));
  log(row('flooder connections', (r) => r.floodStats?.connections));
  log(row('answers to flooders', (r) => r.floodStats?.answers));
  log(row('flooder closes by code', (r) => (r.floodStats ? JSON.stringify(r.floodStats.closes) : undefined)));
  log('');
  log(`NOTE: node, flooders and the measuring runner share this machine's ${cpus().length} cores; "runner + rest" well above`);
  log('      ~10% means other processes competed for them (numbers noisy): compare runs made the same way.');
  return 0;
}

if (process.argv[2] === 'flooder') {
  runFlooders();
} else {
  main().then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`junk-flood failed: ${err?.stack ?? err}\n`);
      cleanup();
      process.exit(1);
    },
  );
}
