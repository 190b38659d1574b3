#!/usr/bin/env node
// The account frames at scale (protocol.md section 2, "Accounts"): 3 node processes (dist/cli.js,
// static discovery, node defaults: --replicas 2, streams in memory, --history-size 1000; only the
// rate limit is raised so that the set-up can go fast), driven by real WebSocket clients.
//   1. first screen: user u0 is a member of BENCH_ACCOUNTS_ROOMS rooms (each with
//      BENCH_ACCOUNTS_ROOM_MEMBERS other members and BENCH_ACCOUNTS_ROOM_MESSAGES messages, some
//      read, some not) and has BENCH_ACCOUNTS_PEERS direct conversations (peer j sent u0 1 + j % 3
//      messages, u0 replied to every 5th, read every 4th unless j % 3 == 0); all set up through
//      WebSocket clients (join, publish, send, read). Then BENCH_ACCOUNTS_CONNECTS fresh connections
//      of u0, one at a time, round robin over the 3 nodes (after one unmeasured warm-up connection
//      per node), each sending `rooms` and `conversations` (limit 50) as soon as its `welcome`
//      arrives: ms hello -> welcome, welcome -> both answers, p50/p99/max, the bytes of the two
//      answers, node CPU per first screen. Every answer is checked against what the set-up did
//      (rooms, members, last message, unread counts, order; the first 50 conversations, their
//      unread counts and `more`), and the conversations are paged to the end once: a wrong answer
//      fails the bench instead of being timed. A conversation is listed while one of its messages
//      is kept in u0's stream, which holds the newest --history-size (1000) messages: with ~1100
//      direct messages some 30 of the 500 conversations are gone, and the bench expects exactly that.
//   2. typing: BENCH_ACCOUNTS_TYPISTS connections (in a process of their own: this file, forked),
//      spread over the 3 nodes; half of them in pairs typing to each other (`to`), half in rooms of
//      BENCH_ACCOUNTS_TYPING_ROOM_SIZE typing to the room; each sends `typing` every
//      BENCH_ACCOUNTS_TYPING_INTERVAL_MS (random phase). After an idle window (connected, quiet:
//      the baseline CPU), BENCH_ACCOUNTS_TYPING_SECONDS are measured: typing frames received per
//      second, node CPU µs per forwarded typing event (raw, and net of the idle baseline), and how
//      many were throttled (/metrics chatmesh_typing_forwarded_total / chatmesh_typing_dropped_total;
//      the server forwards at most one per target per 2 s from a connection). Every forwarded event
//      must reach every other connection of its target: the received count is checked against the
//      nodes' forwarded count. CPU per event depends on how many events a node handles per event-loop
//      turn (per mesh batch, per socket write), so on a busy machine it varies by 2x between runs;
//      compare runs made back to back. Sockets: 1000 in the typists process, ~340 per node (limit
//      20,000 per process).
//
// Run: `BENCH_SCENARIOS=accounts npm run bench` (part of the default `npm run bench`), or
//      `npm run build && node test/bench/accounts-bench.mjs`.
// Env (defaults in brackets):
//   BENCH_ACCOUNTS_ROOMS [200]               rooms of u0
//   BENCH_ACCOUNTS_ROOM_MEMBERS [3]          other members of each room (drawn from the peers)
//   BENCH_ACCOUNTS_ROOM_MESSAGES [5]         messages per room (u0 wrote the last of every 5th room)
//   BENCH_ACCOUNTS_PEERS [500]               users with a direct conversation with u0
//   BENCH_ACCOUNTS_CONNECTS [30]             measured first-screen connections
//   BENCH_ACCOUNTS_TYPISTS [1000]            typing connections (<= 15000: one process holds them; 0: no typing part)
//   BENCH_ACCOUNTS_TYPING_ROOM_SIZE [5]      members of each typing room
//   BENCH_ACCOUNTS_TYPING_INTERVAL_MS [1000] typing frames per connection: one every this many ms
//   BENCH_ACCOUNTS_TYPING_SECONDS [8]        measured seconds (after 2 s of warm-up)
//   BENCH_ACCOUNTS_IDLE_SECONDS [2]          idle baseline window
//   BENCH_ACCOUNTS_TIMEOUT [300]             hard limit of the whole bench, seconds
//   BENCH_PROFILE [0]                        1: the nodes run with --cpu-prof; top functions printed
// Prints a table and, last, one JSON line (run.mjs keeps it in its results file); also writes
// bench-results/accounts-<date>.json.
import { fork, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { alive, benchCli, HOST, childChannel, freePort, gitState, httpGet, nodeMetrics, procCpuMs as procCpu, runBench, stopChild } from './bench-util.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const self = fileURLToPath(import.meta.url);
const root = join(here, '..', '..');
const cli = benchCli(root);
/** The nodes run with the default --history-size: a user stream keeps its newest 1000 messages. */
const HISTORY_SIZE = 1000;
/** The server forwards at most one `typing` per target per this many ms from one connection. */
const TYPING_THROTTLE_MS = 2000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** CLOCK_MONOTONIC in µs: the clock of V8 .cpuprofile timestamps, to find a phase in a profile. */
const monoUs = () => Number(process.hrtime.bigint() / 1000n);
const log = (s) => process.stdout.write(`${s}\n`);

function envNum(name, def, min = 0, max = Infinity) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) {
    process.stderr.write(`accounts-bench: ${name}=${raw} is not a number in [${min}, ${max}]\n`);
    process.exit(2);
  }
  return n;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return +sorted[i].toFixed(2);
}

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s.length ? +s[s.length - 1].toFixed(2) : null, min: s.length ? +s[0].toFixed(2) : null };
}

/**
 * One WebSocket client (dev auth). `request` sends a frame with an `id` and resolves with the frame
 * that answers it; every other frame goes to `onEvent`.
 */
class Client {
  constructor(user, url, onEvent = () => {}) {
    this.user = user;
    this.url = url;
    this.onEvent = onEvent;
    this.pending = new Map();
    this.seq = 0;
    this.closing = false;
  }

  open(timeoutMs = 15_000) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
      this.ws = ws;
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`${this.user}: no welcome within ${timeoutMs} ms`));
      }, timeoutMs);
      ws.on('open', () => {
        this.tHello = performance.now();
        ws.send(JSON.stringify({ type: 'hello', user: this.user }));
      });
      ws.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      ws.on('close', (code) => {
        clearTimeout(timer);
        for (const [, w] of this.pending) w.reject(new Error(`${this.user}: connection closed (${code})`));
        this.pending.clear();
        if (!this.closing) reject(new Error(`${this.user}: connection closed (${code})`));
      });
      let welcomed = false;
      ws.on('message', (data) => {
        const text = data.toString();
        const f = JSON.parse(text);
        if (!welcomed) {
          clearTimeout(timer);
          if (f.type !== 'welcome') {
            reject(new Error(`${this.user}: expected welcome, got ${text.slice(0, 200)}`));
            return;
          }
          welcomed = true;
          this.tWelcome = performance.now();
          this.onWelcome?.(this);
          resolve(this);
          return;
        }
        const w = f.id !== undefined ? this.pending.get(f.id) : undefined;
        if (w) {
          this.pending.delete(f.id);
          w.resolve(f, data.length, performance.now());
          return;
        }
        this.onEvent(f, this, data.length);
      });
    });
  }

  /** Sends `frame` with a fresh id; resolves with the answer `{ f, bytes, t }` (bounded). */
  request(frame, timeoutMs = 30_000) {
    const id = `q${++this.seq}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.user}: no answer to ${frame.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (f, bytes, t) => {
          clearTimeout(timer);
          resolve({ f, bytes, t });
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.ws.send(JSON.stringify({ ...frame, id }));
    });
  }

  close() {
    this.closing = true;
    try {
      this.ws?.close(1000);
    } catch {
      // already gone
    }
  }
}

/** Runs `fns` (functions returning promises) with at most `n` at once; resolves with their results in order. */
async function pool(fns, n) {
  const out = new Array(fns.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, fns.length) }, async () => {
    while (next < fns.length) {
      const i = next++;
      out[i] = await fns[i]();
    }
  }));
  return out;
}

/** Opens clients in batches of `batch`; resolves once all are welcomed. */
async function openAll(clients, batch = 50) {
  for (let i = 0; i < clients.length; i += batch) await Promise.all(clients.slice(i, i + batch).map((c) => c.open()));
}

async function closeAll(clients) {
  for (const c of clients) c.close();
  await sleep(200);
  for (const c of clients) c.ws?.terminate();
}

// ================================================================== typists (forked child)

async function typistsMain() {
  const send = (m) => process.send(m);
  let clients = [];
  let running = false;
  let inWindow = false;
  let tick;
  const tot = { sent: 0, pairReceived: 0, roomReceived: 0, bad: 0, errors: {}, otherFrames: {} };
  const win = { sent: 0, pairReceived: 0, roomReceived: 0 };
  let closing = false;

  const onEvent = (f, c) => {
    if (f.type === 'typing') {
      const ok = c.spec.to !== undefined
        ? f.to === c.user && f.from === c.spec.to && f.room === undefined
        : f.room === c.spec.room && f.to === undefined && c.spec.roomMembers.includes(f.from) && f.from !== c.user;
      if (!ok) {
        tot.bad++;
        return;
      }
      if (c.spec.to !== undefined) {
        tot.pairReceived++;
        if (inWindow) win.pairReceived++;
      } else {
        tot.roomReceived++;
        if (inWindow) win.roomReceived++;
      }
      return;
    }
    if (f.type === 'error') tot.errors[f.code] = (tot.errors[f.code] ?? 0) + 1;
    else tot.otherFrames[f.type] = (tot.otherFrames[f.type] ?? 0) + 1;
  };

  const handlers = {
    async setup(m) {
      const t0 = performance.now();
      clients = m.typists.map((spec) => Object.assign(new Client(spec.user, spec.url, onEvent), { spec }));
      await openAll(clients, 50);
      for (const c of clients) {
        c.ws.on('close', (code) => {
          if (!closing) send({ ev: 'error', message: `${c.user}: connection closed (${code})` });
        });
      }
      // Room typists join their rooms (acked once the room's home knows the member).
      const joins = clients.filter((c) => c.spec.room !== undefined).map((c) => async () => {
        const { f } = await c.request({ type: 'join', room: c.spec.room });
        if (f.type !== 'ack') throw new Error(`${c.user}: join ${c.spec.room} answered ${JSON.stringify(f)}`);
      });
      await pool(joins, 100);
      // `synced` and `joined` frames of the set-up are not what is counted.
      await sleep(200);
      tot.otherFrames = {};
      send({ ev: 'ready', connections: clients.length, setupMs: Math.round(performance.now() - t0) });
    },

    async run(m) {
      const frames = clients.map((c) => (c.spec.to !== undefined ? `{"type":"typing","to":"${c.spec.to}"}` : `{"type":"typing","room":"${c.spec.room}"}`));
      const t0 = performance.now();
      const next = clients.map(() => t0 + Math.random() * m.intervalMs);
      running = true;
      tick = setInterval(() => {
        if (!running) return;
        const now = performance.now();
        for (let i = 0; i < clients.length; i++) {
          if (next[i] > now) continue;
          clients[i].ws.send(frames[i]);
          tot.sent++;
          if (inWindow) win.sent++;
          next[i] += m.intervalMs;
          if (next[i] < now) next[i] = now + m.intervalMs; // fell far behind: no burst
        }
      }, 5);
      await sleep(m.warmupMs);
      const cpu0 = process.cpuUsage();
      const elu0 = performance.eventLoopUtilization();
      const w0 = performance.now();
      inWindow = true;
      send({ ev: 'mark', mark: 'start' });
      await sleep(m.measureMs);
      inWindow = false;
      const w1 = performance.now();
      send({ ev: 'mark', mark: 'end' });
      const cpu = process.cpuUsage(cpu0);
      const elu = performance.eventLoopUtilization(elu0);
      running = false;
      clearInterval(tick);
      // Forwarded events still under way arrive; then the totals are final.
      await sleep(1000);
      const secs = (w1 - w0) / 1000;
      send({
        ev: 'result',
        result: {
          windowMs: Math.round(w1 - w0),
          sentPerSec: Math.round(win.sent / secs),
          receivedPerSec: Math.round((win.pairReceived + win.roomReceived) / secs),
          pairReceivedPerSec: Math.round(win.pairReceived / secs),
          roomReceivedPerSec: Math.round(win.roomReceived / secs),
          window: { ...win },
          totals: tot,
          clientCpu: { percentOfOneCore: +(((cpu.user + cpu.system) / 1000 / (w1 - w0)) * 100).toFixed(1), eventLoopUtilization: +elu.utilization.toFixed(3) },
        },
      });
    },

    async close() {
      closing = true;
      await closeAll(clients);
      send({ ev: 'closed' });
      process.disconnect();
      setTimeout(() => process.exit(0), 100).unref();
    },
  };

  process.on('message', (m) => {
    const h = handlers[m.cmd];
    if (!h) return send({ ev: 'error', message: `unknown command ${m.cmd}` });
    h(m).catch((err) => send({ ev: 'error', message: String(err?.stack ?? err) }));
  });
  process.on('disconnect', () => {
    if (!closing) process.exit(1);
  });
}

// ================================================================== the bench (parent)

function benchConfig() {
  const typists = envNum('BENCH_ACCOUNTS_TYPISTS', 1000, 0, 15_000);
  return {
    rooms: envNum('BENCH_ACCOUNTS_ROOMS', 200, 1, 1000),
    roomMembers: envNum('BENCH_ACCOUNTS_ROOM_MEMBERS', 3, 1, 100),
    roomMessages: envNum('BENCH_ACCOUNTS_ROOM_MESSAGES', 5, 2, 100),
    peers: envNum('BENCH_ACCOUNTS_PEERS', 500, 100, 5000),
    connects: envNum('BENCH_ACCOUNTS_CONNECTS', 30, 1, 1000),
    typists,
    typingRoomSize: envNum('BENCH_ACCOUNTS_TYPING_ROOM_SIZE', 5, 2, 100),
    typingIntervalMs: envNum('BENCH_ACCOUNTS_TYPING_INTERVAL_MS', 1000, 50, 60_000),
    typingSeconds: envNum('BENCH_ACCOUNTS_TYPING_SECONDS', 8, 1, 300),
    typingWarmupSeconds: 2,
    idleSeconds: envNum('BENCH_ACCOUNTS_IDLE_SECONDS', 2, 0, 60),
    timeout: envNum('BENCH_ACCOUNTS_TIMEOUT', 300, 10, 3600),
    profile: process.env.BENCH_PROFILE === '1' || process.env.BENCH_PROFILE === 'true',
  };
}

// ------------------------------------------------------------------ processes and cleanup

const children = new Set();
let cleaningUp = false;


async function cleanup() {
  cleaningUp = true;
  await Promise.all([...children].map((c) => stopChild(c)));
}

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

// ------------------------------------------------------------------ /proc and /metrics

/** Whole-machine busy and total jiffies (all cores). */
function systemCpu() {
  const v = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3] + (v[4] ?? 0);
  return { busy: v.reduce((a, b) => a + b, 0) - idle, total: v.reduce((a, b) => a + b, 0) };
}

function readRssMiB(pid) {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? +(Number(m[1]) / 1024).toFixed(1) : null;
  } catch {
    return null;
  }
}

function cpuSnap(pids) {
  return { t: performance.now(), nodes: pids.map(procCpu), sys: systemCpu() };
}

/** Between two snapshots: each node's ms of CPU (and the kernel's share of it), % of one core, the machine's busy %. */
function cpuDelta(a, b) {
  const wall = b.t - a.t;
  const ms = b.nodes.map((x, i) => x.user + x.sys - a.nodes[i].user - a.nodes[i].sys);
  const sys = b.nodes.map((x, i) => x.sys - a.nodes[i].sys);
  return {
    wallMs: wall,
    nodesMs: ms,
    totalMs: ms.reduce((x, y) => x + y, 0),
    kernelPercent: ms.map((x, i) => (x > 0 ? +((sys[i] / x) * 100).toFixed(1) : null)),
    nodesPercentOfOneCore: ms.map((x) => +((x / wall) * 100).toFixed(1)),
    machineBusyPercent: +(((b.sys.busy - a.sys.busy) / (b.sys.total - a.sys.total)) * 100).toFixed(1),
  };
}



const TYPING_FWD = 'chatmesh_typing_forwarded_total';
const TYPING_DROP = 'chatmesh_typing_dropped_total';

async function typingCounters(nodes) {
  const ms = await Promise.all(nodes.map((n) => nodeMetrics(n.http)));
  for (const [i, m] of ms.entries()) {
    if (m[TYPING_FWD] === undefined || m[TYPING_DROP] === undefined) throw new Error(`node ${nodes[i].id}: /metrics has no ${TYPING_FWD} / ${TYPING_DROP}`);
  }
  return { forwarded: ms.map((m) => m[TYPING_FWD]), dropped: ms.map((m) => m[TYPING_DROP]) };
}

// ------------------------------------------------------------------ cluster

async function startCluster(cfg, profileDir) {
  for (let attempt = 1; ; attempt++) {
    const used = new Set();
    const port = async () => {
      for (;;) {
        const p = await freePort();
        if (!used.has(p)) {
          used.add(p);
          return p;
        }
      }
    };
    const ports = [];
    for (let i = 0; i < 3; i++) ports.push({ http: await port(), mesh: await port(), admin: await port() });
    const peers = ports.map((p) => `${HOST}:${p.mesh}`).join(',');
    const nodes = ports.map((p, i) => {
      const id = `a${i}`;
      const nodeArgs = ['--import', pathToFileURL(join(here, 'orphan-guard.mjs')).href];
      if (cfg.profile) {
        mkdirSync(profileDir, { recursive: true });
        nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=accounts-${id}.cpuprofile`);
      }
      const child = track(spawn(process.execPath, [
        ...nodeArgs, cli, 'node', '--id', id, '--host', HOST,
        '--http-port', String(p.http), '--mesh-port', String(p.mesh), '--admin-port', String(p.admin),
        '--discovery', 'static', '--peers', peers, '--auth', 'dev', '--log-level', 'warn', '--max-connections', '10000',
        '--rate-limit', '1000000', '--rate-burst', '1000000',
      ], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] }));
      const node = { id, ...p, child, pid: child.pid, lines: [], shown: 0, suppressed: 0 };
      for (const stream of [child.stdout, child.stderr]) {
        createInterface({ input: stream }).on('line', (line) => {
          node.lines.push(line);
          if (node.lines.length > 50) node.lines.shift();
          if (line.includes('AUTH IS OFF') || node.stopping || cleaningUp) return;
          if (node.shown < 10) {
            node.shown++;
            log(`  [${id}] ${line.slice(0, 300)}`);
          } else node.suppressed++;
        });
      }
      child.once('exit', (code, signal) => {
        node.exit = { code, signal };
        if (!node.stopping && !cleaningUp) process.stderr.write(`accounts-bench: node ${id} exited unexpectedly (${code ?? signal})\n${node.lines.slice(-10).join('\n')}\n`);
      });
      return node;
    });
    const t0 = performance.now();
    try {
      for (const n of nodes) {
        let last;
        for (;;) {
          const dead = nodes.find((x) => x.exit);
          if (dead) throw new Error(`node ${dead.id} exited during startup: ${dead.lines.slice(-5).join(' | ')}`);
          if (performance.now() - t0 > 30_000) throw new Error(`node ${n.id} not ready after 30 s; last /healthz: ${last}`);
          try {
            const r = await httpGet(`http://${HOST}:${n.http}/healthz`, 1000);
            last = r.text;
            if (r.status === 200 && JSON.parse(r.text).peers === 2) break;
          } catch (err) {
            last = String(err);
          }
          await sleep(50);
        }
      }
      log(`  3 nodes up in ${Math.round(performance.now() - t0)} ms: ${nodes.map((n) => `${n.id} pid ${n.pid} http ${n.http}`).join(' | ')}`);
      return nodes;
    } catch (err) {
      await stopNodes(nodes);
      // A free port picked, released, then taken by another process before the node bound it.
      if (attempt >= 3) throw err;
      log(`  cluster start failed (${err.message.slice(0, 160)}); again on other ports`);
    }
  }
}

async function stopNodes(nodes) {
  for (const n of nodes) n.stopping = true;
  await Promise.all(nodes.map((n) => stopChild(n.child)));
  for (const n of nodes) if (n.suppressed) log(`  [${n.id}] ${n.suppressed} more log lines not shown`);
}

const urlOf = (node) => `ws://${HOST}:${node.http}/ws`;

// ------------------------------------------------------------------ 1. first screen

/** Throws unless `f` is an `ack` (the set-up must not silently fail). */
function mustAck(what, f) {
  if (f.type !== 'ack') throw new Error(`set-up: ${what} answered ${JSON.stringify(f).slice(0, 300)}`);
  return f;
}

/**
 * Builds u0's account through WebSocket clients; returns what the answers must say:
 * `rooms` (in order) and the conversations (all of them, most recent first, as kept).
 */
async function setupAccount(cfg, nodes) {
  const U0 = 'acc-u0';
  const peerName = (j) => `acc-p${j}`;
  const roomName = (i) => `acc-r${i}`;
  const steps = {};
  let t = performance.now();
  const step = (name) => {
    const now = performance.now();
    steps[name] = Math.round(now - t);
    t = now;
  };
  const events = { frames: 0, errors: {} };
  const onEvent = (f) => {
    events.frames++;
    if (f.type === 'error') events.errors[f.code] = (events.errors[f.code] ?? 0) + 1;
  };
  const u0 = new Client(U0, urlOf(nodes[0]), onEvent);
  const peers = Array.from({ length: cfg.peers }, (_, j) => new Client(peerName(j), urlOf(nodes[j % nodes.length]), onEvent));
  await u0.open();
  await openAll(peers, 50);
  step('connectMs');

  // Memberships: u0 in every room; room i's other members are peers (i*M + k) % P.
  const membersOf = (i) => Array.from({ length: cfg.roomMembers }, (_, k) => (i * cfg.roomMembers + k) % cfg.peers);
  const joins = [];
  for (let i = 0; i < cfg.rooms; i++) {
    joins.push(async () => mustAck(`${U0} join`, (await u0.request({ type: 'join', room: roomName(i) })).f));
    for (const j of membersOf(i)) joins.push(async () => mustAck(`${peerName(j)} join`, (await peers[j].request({ type: 'join', room: roomName(i) })).f));
  }
  await pool(joins, 200);
  step('joinsMs');

  // Room messages, in rounds (a room's messages keep the round order); u0 wrote the last one of every 5th room.
  const roomMsgs = Array.from({ length: cfg.rooms }, () => []);
  for (let k = 0; k < cfg.roomMessages; k++) {
    await pool(Array.from({ length: cfg.rooms }, (_, i) => async () => {
      const byU0 = k === cfg.roomMessages - 1 && i % 5 === 0;
      const c = byU0 ? u0 : peers[membersOf(i)[k % cfg.roomMembers]];
      const { f } = await c.request({ type: 'publish', room: roomName(i), body: `room ${i} message ${k}` });
      mustAck(`${c.user} publish`, f);
      roomMsgs[i].push({ id: f.msg, from: c.user });
    }), 200);
  }
  step('publishesMs');

  // Direct messages: peer j sends u0 1 + j % 3 messages over 3 rounds; u0 replies to every 5th after round 0.
  const dms = []; // { id, peer, incoming }
  const dmRound = async (r) => pool(peers.map((c, j) => async () => {
    if (r >= 1 + (j % 3)) return;
    const { f } = await c.request({ type: 'send', to: U0, body: `dm ${r} from ${c.user}` });
    mustAck(`${c.user} send`, f);
    dms.push({ id: f.msg, peer: j, incoming: true });
  }), 200);
  await dmRound(0);
  await pool(peers.map((c, j) => async () => {
    if (j % 5 !== 0) return;
    const { f } = await u0.request({ type: 'send', to: c.user, body: `reply to ${c.user}` });
    mustAck(`${U0} send`, f);
    dms.push({ id: f.msg, peer: j, incoming: false });
  }), 100);
  await dmRound(1);
  await dmRound(2);
  step('directMessagesMs');

  // Read markers: rooms i % 3 == 0 read to their newest message, i % 3 == 1 to their 2nd; peers
  // j % 4 == 0 (but j % 3 != 0, whose only message may be trimmed from u0's stream) read to their newest.
  const roomMarker = new Map();
  const convMarker = new Map();
  const reads = [];
  for (let i = 0; i < cfg.rooms; i++) {
    const sorted = [...roomMsgs[i]].sort((a, b) => (a.id < b.id ? -1 : 1));
    const at = i % 3 === 0 ? sorted[sorted.length - 1] : i % 3 === 1 ? sorted[1] : undefined;
    if (!at) continue;
    roomMarker.set(i, at.id);
    reads.push(async () => mustAck(`${U0} read room`, (await u0.request({ type: 'read', room: roomName(i), msg: at.id })).f));
  }
  for (let j = 0; j < cfg.peers; j++) {
    if (j % 4 !== 0 || j % 3 === 0) continue;
    const newest = dms.filter((d) => d.peer === j && d.incoming).sort((a, b) => (a.id < b.id ? 1 : -1))[0];
    convMarker.set(j, newest.id);
    reads.push(async () => mustAck(`${U0} read ${peerName(j)}`, (await u0.request({ type: 'read', with: peerName(j), msg: newest.id })).f));
  }
  await pool(reads, 100);
  step('readsMs');
  await sleep(300); // events of the set-up still under way
  await closeAll([u0, ...peers]);
  if (Object.keys(events.errors).length) throw new Error(`set-up: error events ${JSON.stringify(events.errors)}`);

  // What `rooms` must say: every room, most recent activity first (every room had messages after u0 joined).
  const expectRooms = roomMsgs.map((msgs, i) => {
    const sorted = [...msgs].sort((a, b) => (a.id < b.id ? -1 : 1));
    const last = sorted[sorted.length - 1];
    const marker = roomMarker.get(i) ?? '';
    return { room: roomName(i), members: 1 + cfg.roomMembers, last: last.id, lastFrom: last.from, unread: sorted.filter((m) => m.id > marker && m.from !== U0).length };
  }).sort((a, b) => (a.last < b.last ? 1 : -1));

  // What `conversations` must say: u0's stream keeps its newest HISTORY_SIZE messages; a
  // conversation is listed while one of its messages is kept; unread = kept incoming after the marker.
  const kept = [...dms].sort((a, b) => (a.id < b.id ? -1 : 1)).slice(-HISTORY_SIZE);
  const convs = new Map();
  for (const d of kept) {
    let c = convs.get(d.peer);
    if (!c) convs.set(d.peer, (c = { with: peerName(d.peer), last: d.id, unread: 0 }));
    if (d.id > c.last) c.last = d.id;
    if (d.incoming && d.id > (convMarker.get(d.peer) ?? '')) c.unread++;
  }
  const expectConvs = [...convs.values()].sort((a, b) => (a.last < b.last ? 1 : -1));
  return {
    U0,
    expectRooms,
    expectConvs,
    facts: {
      rooms: cfg.rooms,
      roomMessages: roomMsgs.reduce((a, m) => a + m.length, 0),
      memberships: cfg.rooms * (1 + cfg.roomMembers),
      directMessages: dms.length,
      directMessagesToU0: dms.filter((d) => d.incoming).length,
      repliesByU0: dms.filter((d) => !d.incoming).length,
      u0StreamKept: kept.length,
      conversationsKept: expectConvs.length,
      peers: cfg.peers,
      roomsWithUnread: expectRooms.filter((r) => r.unread > 0).length,
      readMarkers: roomMarker.size + convMarker.size,
      setupEventFrames: events.frames,
    },
    steps,
  };
}

/** Differences between a `rooms` answer and the expectation (empty when right). */
function checkRooms(f, expect) {
  const bad = [];
  if (f.type !== 'rooms' || !Array.isArray(f.rooms)) return [`not a rooms answer: ${JSON.stringify(f).slice(0, 200)}`];
  if (f.rooms.length !== expect.length) bad.push(`${f.rooms.length} rooms, expected ${expect.length}`);
  f.rooms.forEach((r, i) => {
    const e = expect[i];
    if (!e) return;
    if (r.room !== e.room) bad.push(`rooms[${i}] is ${r.room}, expected ${e.room} (order: most recent activity first)`);
    else {
      if (r.members !== e.members) bad.push(`${r.room}: members ${r.members}, expected ${e.members}`);
      if (r.unread !== e.unread) bad.push(`${r.room}: unread ${r.unread}, expected ${e.unread}`);
      if (r.last?.type !== 'room_message' || r.last?.msg !== e.last || r.last?.from !== e.lastFrom || r.last?.room !== e.room) bad.push(`${r.room}: last ${JSON.stringify(r.last).slice(0, 150)}, expected msg ${e.last} from ${e.lastFrom}`);
    }
  });
  return bad;
}

/** Differences between a `conversations` page and the expectation (the `expect` slice it should show, and `more`). */
function checkConvs(f, expect, more, U0) {
  const bad = [];
  if (f.type !== 'conversations' || !Array.isArray(f.conversations)) return [`not a conversations answer: ${JSON.stringify(f).slice(0, 200)}`];
  if (f.conversations.length !== expect.length) bad.push(`${f.conversations.length} conversations, expected ${expect.length}`);
  if (f.more !== more) bad.push(`more ${f.more}, expected ${more}`);
  f.conversations.forEach((c, i) => {
    const e = expect[i];
    if (!e) return;
    if (c.with !== e.with) bad.push(`conversations[${i}] with ${c.with}, expected ${e.with} (order: most recent first)`);
    else {
      if (c.unread !== e.unread) bad.push(`${c.with}: unread ${c.unread}, expected ${e.unread}`);
      const l = c.last;
      const parties = l && ((l.from === c.with && l.to === U0) || (l.from === U0 && l.to === c.with));
      if (l?.type !== 'message' || l?.msg !== e.last || !parties) bad.push(`${c.with}: last ${JSON.stringify(l).slice(0, 150)}, expected msg ${e.last}`);
    }
  });
  return bad;
}

/** One fresh connection of u0: hello → welcome → `rooms` + `conversations` (sent at once). */
function firstScreen(node, user) {
  return new Promise((resolve, reject) => {
    const got = {};
    const extra = { synced: undefined, other: {} };
    const c = new Client(user, urlOf(node), (f) => {
      if (f.type === 'synced') extra.synced = f.count;
      else {
        const k = f.type === 'error' ? `error:${f.code}` : f.type;
        extra.other[k] = (extra.other[k] ?? 0) + 1;
      }
    });
    const timer = setTimeout(() => {
      c.ws?.terminate();
      reject(new Error(`first screen on ${node.id}: not complete within 30 s`));
    }, 30_000);
    c.onWelcome = () => {
      const done = () => {
        if (!got.rooms || !got.convs) return;
        clearTimeout(timer);
        c.close();
        resolve({
          node: node.id,
          helloToWelcomeMs: c.tWelcome - c.tHello,
          welcomeToRoomsMs: got.rooms.t - c.tWelcome,
          welcomeToConversationsMs: got.convs.t - c.tWelcome,
          welcomeToBothMs: Math.max(got.rooms.t, got.convs.t) - c.tWelcome,
          roomsBytes: got.rooms.bytes,
          conversationsBytes: got.convs.bytes,
          rooms: got.rooms.f,
          conversations: got.convs.f,
          ...extra,
        });
      };
      // Both right after the welcome, as a client's first screen does.
      c.request({ type: 'rooms' }).then((r) => { got.rooms = r; done(); }, reject);
      c.request({ type: 'conversations', limit: 50 }).then((r) => { got.convs = r; done(); }, reject);
    };
    c.open().catch((err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Pages through all of u0's conversations (limit 50) on `node`; returns the pages' answers. */
async function allConversations(node, user) {
  const c = new Client(user, urlOf(node));
  await c.open();
  const pages = [];
  let before;
  try {
    for (let i = 0; i < 1000; i++) {
      const { f } = await c.request({ type: 'conversations', limit: 50, ...(before && { before }) });
      pages.push(f);
      if (f.type !== 'conversations' || !f.more || f.conversations.length === 0) break;
      before = f.conversations[f.conversations.length - 1].last.msg;
    }
  } finally {
    await closeAll([c]);
  }
  return pages;
}

async function benchFirstScreen(cfg, nodes) {
  log(`\n-- 1. first screen: u0 in ${cfg.rooms} rooms (${cfg.roomMembers} other members, ${cfg.roomMessages} messages each), ${cfg.peers} direct conversations`);
  const t0 = performance.now();
  const acct = await setupAccount(cfg, nodes);
  const setupMs = Math.round(performance.now() - t0);
  log(`  set-up through WebSocket clients in ${setupMs} ms (${Object.entries(acct.steps).map(([k, v]) => `${k.replace(/Ms$/, '')} ${v}`).join(', ')} ms): ` +
    `${acct.facts.memberships} memberships, ${acct.facts.roomMessages} room messages, ${acct.facts.directMessages} direct messages ` +
    `(${acct.facts.directMessagesToU0} to u0, ${acct.facts.repliesByU0} replies), ${acct.facts.readMarkers} read markers`);
  log(`  u0's stream keeps ${acct.facts.u0StreamKept} of ${acct.facts.directMessages} direct messages (--history-size ${HISTORY_SIZE}): ${acct.facts.conversationsKept} of ${cfg.peers} conversations can be listed`);
  await sleep(500);

  const firstPage = acct.expectConvs.slice(0, 50);
  const moreExpected = acct.expectConvs.length > 50;
  const problems = [];
  const check = (r, label) => {
    const bad = [...checkRooms(r.rooms, acct.expectRooms), ...checkConvs(r.conversations, firstPage, moreExpected, acct.U0)];
    if (r.synced !== 0) bad.push(`synced ${r.synced}, expected 0 (the mailbox was drained by the set-up)`);
    if (Object.keys(r.other).some((k) => k.startsWith('error'))) bad.push(`error frames ${JSON.stringify(r.other)}`);
    if (bad.length) problems.push({ connection: label, node: r.node, count: bad.length, first: bad.slice(0, 5) });
  };

  // Warm-up: one connection per node (JIT, first routes), not measured.
  const warm = [];
  for (const n of nodes) {
    const r = await firstScreen(n, acct.U0);
    check(r, `warm-up ${n.id}`);
    warm.push({ node: r.node, helloToWelcomeMs: +r.helloToWelcomeMs.toFixed(2), welcomeToBothMs: +r.welcomeToBothMs.toFixed(2) });
  }
  await sleep(200);
  const runs = [];
  const clockUs = { start: monoUs() };
  const cpu0 = cpuSnap(nodes.map((n) => n.pid));
  for (let i = 0; i < cfg.connects; i++) {
    const r = await firstScreen(nodes[i % nodes.length], acct.U0);
    check(r, `#${i}`);
    runs.push(r);
  }
  const cpu = cpuDelta(cpu0, cpuSnap(nodes.map((n) => n.pid)));
  clockUs.end = monoUs();
  await sleep(200);

  // All of u0's conversations, paged: every listed conversation, in order, once.
  const pages = await allConversations(nodes[1 % nodes.length], acct.U0);
  const listed = pages.flatMap((p) => p.conversations ?? []);
  const pagingBad = [];
  pages.forEach((p, k) => {
    const bad = checkConvs(p, acct.expectConvs.slice(50 * k, 50 * k + 50), acct.expectConvs.length > 50 * (k + 1), acct.U0);
    if (bad.length) pagingBad.push(`page ${k}: ${bad.slice(0, 3).join('; ')}`);
  });
  if (listed.length !== acct.expectConvs.length) pagingBad.push(`${listed.length} conversations listed over ${pages.length} pages, expected ${acct.expectConvs.length}`);
  if (pagingBad.length) problems.push({ connection: 'paging', count: pagingBad.length, first: pagingBad.slice(0, 5) });

  const byNode = Object.fromEntries(nodes.map((n) => {
    const mine = runs.filter((r) => r.node === n.id);
    return [n.id, { helloToWelcomeP50Ms: stats(mine.map((r) => r.helloToWelcomeMs)).p50, welcomeToBothP50Ms: stats(mine.map((r) => r.welcomeToBothMs)).p50 }];
  }));
  const result = {
    setupMs,
    setupSteps: acct.steps,
    account: acct.facts,
    connections: runs.length,
    helloToWelcomeMs: stats(runs.map((r) => r.helloToWelcomeMs)),
    welcomeToRoomsMs: stats(runs.map((r) => r.welcomeToRoomsMs)),
    welcomeToConversationsMs: stats(runs.map((r) => r.welcomeToConversationsMs)),
    welcomeToBothMs: stats(runs.map((r) => r.welcomeToBothMs)),
    helloToBothMs: stats(runs.map((r) => r.helloToWelcomeMs + r.welcomeToBothMs)),
    byNode,
    warmup: warm,
    roomsBytes: stats(runs.map((r) => r.roomsBytes)),
    conversationsBytes: stats(runs.map((r) => r.conversationsBytes)),
    nodeCpuMsPerConnection: +(cpu.totalMs / runs.length).toFixed(2),
    nodeCpu: { nodesMs: cpu.nodesMs, nodesKernelPercentOfTheirCpu: cpu.kernelPercent, machineBusyPercent: cpu.machineBusyPercent },
    clockUs,
    answers: {
      rooms: runs[0]?.rooms.rooms.length,
      roomsWithUnread: runs[0]?.rooms.rooms.filter((r) => r.unread > 0).length,
      unreadInRooms: runs[0]?.rooms.rooms.reduce((a, r) => a + r.unread, 0),
      conversations: runs[0]?.conversations.conversations.length,
      conversationsMore: runs[0]?.conversations.more,
      conversationsWithUnread: runs[0]?.conversations.conversations.filter((c) => c.unread > 0).length,
      conversationsListedAllPages: listed.length,
      conversationPages: pages.length,
    },
    verification: { ok: problems.length === 0, checkedConnections: runs.length + warm.length, problems },
  };
  log(`  ${runs.length} connections (after ${warm.length} warm-up): hello->welcome p50 ${result.helloToWelcomeMs.p50} p99 ${result.helloToWelcomeMs.p99} max ${result.helloToWelcomeMs.max} ms; ` +
    `welcome->rooms+conversations p50 ${result.welcomeToBothMs.p50} p99 ${result.welcomeToBothMs.p99} max ${result.welcomeToBothMs.max} ms; ` +
    `answers ${result.roomsBytes.p50} + ${result.conversationsBytes.p50} bytes; node CPU ${result.nodeCpuMsPerConnection} ms per first screen (all nodes)`);
  log(`  answers: ${result.answers.rooms} rooms (${result.answers.roomsWithUnread} with unread, ${result.answers.unreadInRooms} unread in all), ` +
    `${result.answers.conversations} conversations more=${result.answers.conversationsMore} (${result.answers.conversationsWithUnread} with unread); ` +
    `paged to the end: ${listed.length} conversations in ${pages.length} pages; verification ${result.verification.ok ? 'OK' : 'FAILED'}`);
  for (const p of problems) log(`  WRONG ANSWER (${p.connection}${p.node ? ` on ${p.node}` : ''}): ${p.count} differences: ${p.first.join(' | ')}`);
  return result;
}

// ------------------------------------------------------------------ 2. typing

function startTypists() {
  return childChannel(track(fork(self, [], { cwd: root, env: { ...process.env, ACCOUNTS_BENCH_ROLE: 'typists' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })), 'typists');
}

async function benchTyping(cfg, nodes) {
  const S = cfg.typingRoomSize;
  let pairUsers = Math.floor(cfg.typists / 2);
  if (pairUsers % 2) pairUsers--;
  const roomUsers = Math.floor((cfg.typists - pairUsers) / S) * S;
  const total = pairUsers + roomUsers;
  log(`\n-- 2. typing: ${total} connections over ${nodes.length} nodes (one process of their own): ${pairUsers / 2} pairs typing to each other, ` +
    `${roomUsers / S} rooms of ${S} typing to the room; one typing frame per ${cfg.typingIntervalMs} ms per connection`);
  const typists = [];
  for (let k = 0; k < pairUsers; k++) typists.push({ user: `t${k}`, url: urlOf(nodes[k % nodes.length]), to: `t${k ^ 1}` });
  for (let k = 0; k < roomUsers; k++) {
    const r = Math.floor(k / S);
    const u = pairUsers + k;
    typists.push({ user: `t${u}`, url: urlOf(nodes[u % nodes.length]), room: `tr${r}`, roomMembers: Array.from({ length: S }, (_, x) => `t${pairUsers + r * S + x}`) });
  }
  const pids = nodes.map((n) => n.pid);
  const tp = startTypists();
  try {
    const ready = await tp.call({ cmd: 'setup', typists }, 'ready', 120_000);
    log(`  ${ready.connections} connections up and room members joined in ${ready.setupMs} ms`);
    await sleep(1000);
    // Idle baseline: connected, nobody typing.
    let idle;
    if (cfg.idleSeconds > 0) {
      const a = cpuSnap(pids);
      await sleep(cfg.idleSeconds * 1000);
      idle = cpuDelta(a, cpuSnap(pids));
    }
    let snapStart;
    let snapEnd;
    const marksDone = [];
    const clockUs = {};
    tp.onMark((mark) => {
      const cpu = cpuSnap(pids);
      clockUs[mark] = monoUs();
      marksDone.push(typingCounters(nodes).then((c) => {
        if (mark === 'start') snapStart = { cpu, c };
        else snapEnd = { cpu, c };
      }));
    });
    const before = await typingCounters(nodes);
    const { result } = await tp.call({
      cmd: 'run', warmupMs: cfg.typingWarmupSeconds * 1000, measureMs: cfg.typingSeconds * 1000, intervalMs: cfg.typingIntervalMs,
    }, 'result', (cfg.typingWarmupSeconds + cfg.typingSeconds + 60) * 1000);
    await Promise.all(marksDone);
    const after = await typingCounters(nodes);
    if (!snapStart || !snapEnd) throw new Error('typing: the measurement window marks did not arrive');
    const cpu = cpuDelta(snapStart.cpu, snapEnd.cpu);
    const sum = (xs) => xs.reduce((a, b) => a + b, 0);
    const winFwd = sum(snapEnd.c.forwarded) - sum(snapStart.c.forwarded);
    const winDrop = sum(snapEnd.c.dropped) - sum(snapStart.c.dropped);
    const allFwd = sum(after.forwarded) - sum(before.forwarded);
    const allDrop = sum(after.dropped) - sum(before.dropped);
    const secs = cpu.wallMs / 1000;
    const idleMsPerSec = idle ? idle.totalMs / (idle.wallMs / 1000) : 0;
    const received = result.window.pairReceived + result.window.roomReceived;
    // Every forwarded `typing` reaches the one connection of the partner, or the S-1 other members' connections.
    const impliedForwarded = result.totals.pairReceived + result.totals.roomReceived / (S - 1);
    const t = {
      connections: total,
      pairs: pairUsers / 2,
      rooms: roomUsers / S,
      roomSize: S,
      intervalMs: cfg.typingIntervalMs,
      measuredMs: result.windowMs,
      sentPerSec: result.sentPerSec,
      forwardedPerSec: Math.round(winFwd / secs),
      droppedPerSec: Math.round(winDrop / secs),
      receivedPerSec: result.receivedPerSec,
      pairReceivedPerSec: result.pairReceivedPerSec,
      roomReceivedPerSec: result.roomReceivedPerSec,
      throttledPercent: winFwd + winDrop ? +((winDrop / (winFwd + winDrop)) * 100).toFixed(1) : null,
      nodesPercentOfOneCore: cpu.nodesPercentOfOneCore,
      nodesKernelPercentOfTheirCpu: cpu.kernelPercent,
      nodeCpuMsPerSec: +(cpu.totalMs / secs).toFixed(1),
      idleNodeCpuMsPerSec: idle ? +idleMsPerSec.toFixed(1) : null,
      idleNodesPercentOfOneCore: idle?.nodesPercentOfOneCore ?? null,
      nodeCpuUsPerForwarded: winFwd ? +((cpu.totalMs * 1000) / winFwd).toFixed(1) : null,
      nodeCpuUsPerForwardedNetOfIdle: winFwd ? +(((cpu.totalMs - idleMsPerSec * secs) * 1000) / winFwd).toFixed(1) : null,
      nodeCpuUsPerReceived: received ? +((cpu.totalMs * 1000) / received).toFixed(1) : null,
      nodeCpuUsPerTypingFrameIn: result.window.sent ? +((cpu.totalMs * 1000) / result.window.sent).toFixed(1) : null,
      machineBusyPercent: cpu.machineBusyPercent,
      clientCpu: result.clientCpu,
      totals: {
        sent: result.totals.sent,
        forwarded: allFwd,
        dropped: allDrop,
        pairReceived: result.totals.pairReceived,
        roomReceived: result.totals.roomReceived,
        impliedForwarded,
        // Forwarded by the nodes but not received by a target connection (negative: received more than forwarded).
        lost: +(allFwd - impliedForwarded).toFixed(1),
        badFrames: result.totals.bad,
        errors: result.totals.errors,
        otherFrames: result.totals.otherFrames,
      },
      rssMiB: nodes.map((n) => readRssMiB(n.pid)),
      clockUs,
    };
    const problems = [];
    if (t.totals.sent !== allFwd + allDrop) problems.push(`nodes counted ${allFwd} forwarded + ${allDrop} dropped = ${allFwd + allDrop} typing frames, ${t.totals.sent} were sent`);
    if (Math.abs(t.totals.lost) > 0.5) problems.push(`${t.totals.lost} forwarded typing events did not reach (all) their target connections (received ${t.totals.pairReceived} pair + ${t.totals.roomReceived} room = ${impliedForwarded.toFixed(1)} forwarded, nodes say ${allFwd})`);
    if (t.totals.badFrames) problems.push(`${t.totals.badFrames} typing frames with the wrong from/to/room`);
    if (Object.keys(t.totals.errors).length) problems.push(`error frames ${JSON.stringify(t.totals.errors)}`);
    t.verification = { ok: problems.length === 0, problems };
    log(`  idle (connected, quiet): node CPU ${t.idleNodesPercentOfOneCore?.join('/')}% of a core`);
    log(`  typing: ${t.sentPerSec} frames/s sent, ${t.forwardedPerSec}/s forwarded, ${t.droppedPerSec}/s throttled (${t.throttledPercent}%), ` +
      `${t.receivedPerSec} typing events/s received (${t.pairReceivedPerSec} pair, ${t.roomReceivedPerSec} room); node CPU ${t.nodesPercentOfOneCore.join('/')}% of a core ` +
      `= ${t.nodeCpuUsPerForwarded} µs per forwarded event (${t.nodeCpuUsPerForwardedNetOfIdle} net of idle), ${t.nodeCpuUsPerReceived} µs per event received; ` +
      `clients ${t.clientCpu.percentOfOneCore}% of a core`);
    log(`  totals: ${t.totals.sent} sent = ${allFwd} forwarded + ${allDrop} dropped; received ${t.totals.pairReceived} + ${t.totals.roomReceived}; verification ${t.verification.ok ? 'OK' : 'FAILED'}`);
    for (const p of problems) log(`  WRONG: ${p}`);
    await tp.call({ cmd: 'close' }, 'closed', 15_000).catch(() => undefined);
    return t;
  } finally {
    await stopChild(tp.child, 3000);
  }
}

// ------------------------------------------------------------------ main

function table(first, typing, load) {
  const rows = [
    ['first screen (u0: rooms / conversations)', `${first.account.rooms} / ${first.account.conversationsKept} listed of ${first.account.peers}`],
    ['  connections measured', `${first.connections} (round robin over 3 nodes, after ${first.warmup.length} warm-up)`],
    ['  hello -> welcome (ms)', `p50 ${first.helloToWelcomeMs.p50}  p99 ${first.helloToWelcomeMs.p99}  max ${first.helloToWelcomeMs.max}`],
    ['  welcome -> rooms (ms)', `p50 ${first.welcomeToRoomsMs.p50}  p99 ${first.welcomeToRoomsMs.p99}  max ${first.welcomeToRoomsMs.max}`],
    ['  welcome -> conversations (ms)', `p50 ${first.welcomeToConversationsMs.p50}  p99 ${first.welcomeToConversationsMs.p99}  max ${first.welcomeToConversationsMs.max}`],
    ['  welcome -> both answers (ms)', `p50 ${first.welcomeToBothMs.p50}  p99 ${first.welcomeToBothMs.p99}  max ${first.welcomeToBothMs.max}`],
    ['  hello -> both answers (ms)', `p50 ${first.helloToBothMs.p50}  p99 ${first.helloToBothMs.p99}  max ${first.helloToBothMs.max}`],
    ['  p50 by node (hello->welcome / ->both)', Object.entries(first.byNode).map(([k, v]) => `${k} ${v.helloToWelcomeP50Ms}/${v.welcomeToBothP50Ms}`).join('  ')],
    ['  rooms answer (bytes)', `${first.roomsBytes.p50}`],
    ['  conversations answer, 50 (bytes)', `${first.conversationsBytes.p50}`],
    ['  node CPU per first screen (ms)', `${first.nodeCpuMsPerConnection} (all 3 nodes; kernel ${first.nodeCpu.nodesKernelPercentOfTheirCpu.join('/')}%)`],
    ['  answers verified', first.verification.ok ? 'OK' : `FAILED (${first.verification.problems.length} answers wrong)`],
  ];
  if (typing) {
    rows.push(
      ['typing connections', `${typing.connections} (${typing.pairs} pairs, ${typing.rooms} rooms of ${typing.roomSize}), 1 per ${typing.intervalMs} ms`],
      ['  typing frames sent (/s)', typing.sentPerSec],
      ['  forwarded by the nodes (/s)', typing.forwardedPerSec],
      ['  throttled (/s)', `${typing.droppedPerSec} (${typing.throttledPercent}%)`],
      ['  typing events received (/s)', `${typing.receivedPerSec} (${typing.pairReceivedPerSec} pair, ${typing.roomReceivedPerSec} room)`],
      ['  node CPU (% of 1 core)', `${typing.nodesPercentOfOneCore.join(' / ')} (idle ${typing.idleNodesPercentOfOneCore?.join(' / ') ?? '-'})`],
      ['  kernel share of node CPU (%)', typing.nodesKernelPercentOfTheirCpu.join(' / ')],
      ['  node CPU per forwarded event (µs)', `${typing.nodeCpuUsPerForwarded} (net of idle ${typing.nodeCpuUsPerForwardedNetOfIdle})`],
      ['  node CPU per received event (µs)', typing.nodeCpuUsPerReceived],
      ['  clients CPU (% of 1 core)', typing.clientCpu.percentOfOneCore],
      ['  delivery verified', typing.verification.ok ? 'OK' : `FAILED: ${typing.verification.problems.join('; ')}`],
    );
  }
  rows.push(['machine', `${cpus().length} cores, load average ${load.map((x) => x.toFixed(2)).join(' ')} at start`]);
  const w = 42;
  const lines = ['', `accounts bench  ${new Date().toISOString()}`, '-'.repeat(100)];
  for (const [k, v] of rows) lines.push(`${k.padEnd(w)}${v}`);
  lines.push('note: nodes, clients and this process share the machine; on a busy machine latencies are noisy, CPU per event less so.');
  return lines.join('\n');
}

async function benchMain(cfg) {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const resultsDir = join(root, 'bench-results');
  const profileDir = join(resultsDir, `profiles-accounts-${stamp}`);
  const t0 = performance.now();
  const load = loadavg();
  log(`accounts bench: 3 nodes (--replicas 2, in memory), ${cpus().length} cores shared with the clients; load average ${load.map((x) => x.toFixed(2)).join(' ')}`);
  const nodes = await startCluster(cfg, profileDir);
  let first;
  let typing;
  try {
    first = await benchFirstScreen(cfg, nodes);
    typing = cfg.typists > 0 ? await benchTyping(cfg, nodes) : undefined;
    for (const n of nodes) if (n.exit) throw new Error(`node ${n.id} died during the bench`);
  } finally {
    await stopNodes(nodes);
  }
  log(table(first, typing, load));

  let profiles;
  if (cfg.profile) {
    const { formatSummary, summarizeProfile } = await import('./profile-summary.mjs');
    profiles = {};
    for (const f of readdirSync(profileDir).filter((x) => x.endsWith('.cpuprofile')).sort()) {
      const s = summarizeProfile(join(profileDir, f), { top: 20, root });
      profiles[f] = s;
      log(`\n${formatSummary(s, f)}`);
    }
  }
  const ok = first.verification.ok && (!typing || typing.verification.ok);
  const out = {
    bench: 'accounts',
    date: new Date().toISOString(),
    git: gitState(root),
    config: { ...cfg, nodes: 3, replicas: 2, historySize: HISTORY_SIZE, typingThrottleMs: TYPING_THROTTLE_MS, cores: cpus().length, cpuModel: cpus()[0]?.model, node: process.version },
    loadAverageAtStart: load,
    loadAverageAtEnd: loadavg(),
    ok,
    firstScreen: first,
    typing,
    durationMs: Math.round(performance.now() - t0),
    ...(profiles && { profileDir, profiles }),
  };
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `accounts-${stamp}.json`);
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  log(`\nresults: ${file}  (took ${(out.durationMs / 1000).toFixed(1)} s)`);
  log(JSON.stringify(out));
  if (!ok) throw new Error('wrong answers (see WRONG above): the numbers do not measure what they claim');
}

if (process.env.ACCOUNTS_BENCH_ROLE === 'typists') {
  if (!process.send) {
    process.stderr.write('the typists role is forked by accounts-bench.mjs\n');
    process.exit(2);
  }
  typistsMain();
} else {
  const cfg = benchConfig();
  process.on('exit', () => {
    for (const c of children) if (alive(c)) c.kill('SIGKILL');
  });
  runBench('accounts-bench', () => benchMain(cfg), { cleanup, timeoutS: cfg.timeout, timeoutVar: 'BENCH_ACCOUNTS_TIMEOUT' });
}
