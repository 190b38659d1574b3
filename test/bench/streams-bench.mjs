#!/usr/bin/env node
// The message streams (mailbox, resume, history) at scale: 3 node processes (dist/cli.js, static
// discovery, --replicas 2, 127.0.0.1), driven by WebSocket clients in this process. For each store
// (memory, and disk: --data-dir in a fresh temp dir per node, removed after; and `off`, nodes with
// --history-size 0, for the memory a node grows by just carrying the same load) it measures
//   (a) fill: BENCH_STREAMS_MESSAGES direct messages to users that are offline (acked `stored`),
//       spread over BENCH_STREAMS_USERS recipients; store rate (acks/s) and node CPU µs per message;
//       then memory per 100k entries of a node's store: RSS and V8 heap after a full GC on every node
//       (the nodes run with --expose-gc and gc-on-signal.mjs; SIGUSR2 makes them collect and
//       report), against the store's own count `chatmesh_stored_messages` from /metrics. Every
//       message is 4 entries: the recipient's and the sender's stream, on 2 replicas each.
//   (b) mailbox replay: BENCH_STREAMS_REPLAY_USERS users with BENCH_STREAMS_REPLAY_K stored messages
//       each (default 1000 = the default --history-size) connect one at a time, each to another node;
//       time from `welcome` to `synced`, messages/s.
//   (c) hand-off: with everything above stored on 3 nodes, a 4th node starts (every node's static
//       peers list names all 4 from the start); time until the streams settle (no hand-off in
//       progress, /metrics chatmesh_handoff_entries_total and every node's stored count unchanged
//       for BENCH_STREAMS_SETTLE_MS), entries handed off and entries/s. Hand-off pushes at most
//       20000 entries/s per sending node (streams/handoff.ts), so this is bounded by that too.
//
// Run: `npm run build && node test/bench/streams-bench.mjs` (also `BENCH_SCENARIOS=streams npm run bench`).
// Env (defaults in brackets):
//   BENCH_STREAMS_STORES [off,memory,disk]  which stores to measure, each on a fresh cluster (off: the
//                                        fill only, as the baseline of the memory numbers)
//   BENCH_STREAMS_MESSAGES [100000]      messages stored by the fill
//   BENCH_STREAMS_USERS [10000]          offline recipients of the fill
//   BENCH_STREAMS_SENDERS [200]          connected senders of the fill (each sender's stream keeps what it sent)
//   BENCH_STREAMS_WINDOW [4]             un-acked sends per sender (more overloads a busy machine:
//                                        replicated writes time out after 5 s and are answered `unavailable`)
//   BENCH_STREAMS_REPLAY_USERS [6]       users whose mailbox replay is timed
//   BENCH_STREAMS_REPLAY_K [1000]        stored messages of each of them (at most --history-size)
//   BENCH_STREAMS_SETTLE_MS [3000]       hand-off: quiet time that counts as settled
//   BENCH_BODY_BYTES [64]                message body size
//   BENCH_PROFILE [0]                    1: the nodes run with --cpu-prof; top functions printed
// Prints a table per store and, last, one JSON line (run.mjs keeps it in its results file).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { formatSummary, summarizeProfile } from './profile-summary.mjs';
import { alive, benchCli, HOST, freePort, httpGet, nodeMetrics, procCpuMs, runBench, stopChild } from './bench-util.mjs';

/** utime + stime of a process, ms. */
const cpuMsOf = (pid) => {
  const c = procCpuMs(pid);
  return c.user + c.sys;
};

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const cli = benchCli(root);

function envNum(name, def, min = 0) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) {
    process.stderr.write(`streams-bench: ${name}=${raw} is not a number >= ${min}\n`);
    process.exit(2);
  }
  return n;
}

const cfg = {
  stores: (process.env.BENCH_STREAMS_STORES || 'off,memory,disk').split(',').map((s) => s.trim()).filter(Boolean),
  messages: envNum('BENCH_STREAMS_MESSAGES', 100_000, 1),
  users: envNum('BENCH_STREAMS_USERS', 10_000, 1),
  senders: envNum('BENCH_STREAMS_SENDERS', 200, 1),
  window: envNum('BENCH_STREAMS_WINDOW', 4, 1),
  replayUsers: envNum('BENCH_STREAMS_REPLAY_USERS', 6, 0),
  replayK: envNum('BENCH_STREAMS_REPLAY_K', 1000, 1),
  settleMs: envNum('BENCH_STREAMS_SETTLE_MS', 3000, 500),
  bodyBytes: envNum('BENCH_BODY_BYTES', 64, 16),
  profile: process.env.BENCH_PROFILE === '1' || process.env.BENCH_PROFILE === 'true',
};
for (const s of cfg.stores) {
  if (s !== 'memory' && s !== 'disk' && s !== 'off') {
    process.stderr.write(`streams-bench: unknown store "${s}" in BENCH_STREAMS_STORES (off, memory, disk)\n`);
    process.exit(2);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => process.stdout.write(`${s}\n`);
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const profileDir = join(root, 'bench-results', `profiles-streams-${stamp}`);

// ------------------------------------------------------------------ processes and cleanup

const children = new Set();
const tempDirs = new Set();
let cleaningUp = false;


function removeDir(d) {
  try {
    rmSync(d, { recursive: true, force: true });
  } catch (err) {
    process.stderr.write(`streams-bench: could not remove ${d}: ${err.message}\n`);
  }
  tempDirs.delete(d);
}

async function cleanup() {
  cleaningUp = true;
  await Promise.all([...children].map((c) => stopChild(c)));
  for (const d of [...tempDirs]) removeDir(d);
}
process.on('exit', () => {
  for (const c of children) if (alive(c)) c.kill('SIGKILL');
  for (const d of [...tempDirs]) removeDir(d);
});

// ------------------------------------------------------------------ /proc and /metrics




const M = {
  stored: 'chatmesh_stored_messages',
  streams: 'chatmesh_stored_streams',
  pending: 'chatmesh_mailbox_pending',
  appends: 'chatmesh_stream_appends_total',
  handoffEntries: 'chatmesh_handoff_entries_total',
  handoffStreams: 'chatmesh_handoff_streams_total',
  handoffsInProgress: 'chatmesh_handoffs_in_progress',
  trimmed: 'chatmesh_store_trimmed_total',
  replicationFailures: 'chatmesh_replication_failures_total',
};

// ------------------------------------------------------------------ cluster

/** A node process; `all` is every node's ports (the static peers list names them all). */
async function startNode(i, all, store, label) {
  const id = `s${i}`;
  const p = all[i];
  const peers = all.map((x) => `${HOST}:${x.mesh}`).join(',');
  const nodeArgs = ['--expose-gc', '--import', pathToFileURL(join(here, 'orphan-guard.mjs')).href, '--import', pathToFileURL(join(here, 'gc-on-signal.mjs')).href];
  if (cfg.profile) {
    mkdirSync(profileDir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${label}-${id}.cpuprofile`);
  }
  let dataDir;
  const storeArgs = [];
  if (store === 'off') storeArgs.push('--history-size', '0');
  if (store === 'disk') {
    dataDir = mkdtempSync(join(tmpdir(), `chatmesh-streams-bench-${id}-`));
    tempDirs.add(dataDir);
    storeArgs.push('--data-dir', dataDir);
  }
  const child = spawn(process.execPath, [
    ...nodeArgs, cli, 'node', '--id', id, '--host', HOST,
    '--http-port', String(p.http), '--mesh-port', String(p.mesh), '--admin-port', String(p.admin),
    '--discovery', 'static', '--peers', peers, '--auth', 'dev', '--log-level', 'warn', '--max-connections', '10000',
    '--rate-limit', '1000000', '--rate-burst', '1000000', ...storeArgs,
  ], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const node = { id, ...p, child, pid: child.pid, dataDir, lines: [], shown: 0, gcWaiters: [] };
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      if (line.startsWith('BENCH_GC ')) {
        const w = node.gcWaiters.shift();
        if (w) w(JSON.parse(line.slice(9)));
        return;
      }
      node.lines.push(line);
      if (node.lines.length > 50) node.lines.shift();
      if (line.includes('AUTH IS OFF') || node.stopping || cleaningUp) return;
      if (node.shown++ < 10) log(`  [${label} ${id}] ${line.slice(0, 300)}`);
    });
  }
  child.once('exit', (code, signal) => {
    node.exit = { code, signal };
    if (!node.stopping && !cleaningUp) process.stderr.write(`streams-bench: node ${id} exited unexpectedly (${code ?? signal})\n${node.lines.slice(-10).join('\n')}\n`);
  });
  return node;
}

/** Resolves once the node answers /healthz 200 with `peers` up links (bounded); fails at once when a node of `group` exits. */
async function ready(node, peers, group = [node], timeoutMs = 30_000) {
  const t0 = performance.now();
  let last;
  for (;;) {
    const dead = group.find((n) => n.exit);
    if (dead) throw new Error(`node ${dead.id} exited during startup: ${dead.lines.slice(-5).join(' | ')}`);
    if (performance.now() - t0 > timeoutMs) throw new Error(`node ${node.id} not ready after ${timeoutMs} ms; last /healthz: ${last}`);
    try {
      const r = await httpGet(`http://${HOST}:${node.http}/healthz`, 1000);
      last = r.text;
      if (r.status === 200 && JSON.parse(r.text).peers === peers) return;
    } catch (err) {
      last = String(err);
    }
    await sleep(50);
  }
}

async function stopNodes(nodes) {
  for (const n of nodes) n.stopping = true;
  await Promise.all(nodes.map((n) => stopChild(n.child)));
  for (const n of nodes) if (n.dataDir) removeDir(n.dataDir);
}

/** Full GC on the node, then its memory (bytes). */
function gcAndMeasure(node) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`node ${node.id}: no BENCH_GC answer`)), 10_000);
    node.gcWaiters.push((m) => {
      clearTimeout(t);
      resolve(m);
    });
    node.child.kill('SIGUSR2');
  });
}

// ------------------------------------------------------------------ clients

/** Opens a dev-auth connection; resolves after `welcome`. `onFrame` gets every later frame (parsed). */
function connect(url, user, onFrame, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`${user}: no welcome within ${timeoutMs} ms`));
    }, timeoutMs);
    const c = { ws, user, tOpen: 0, tWelcome: 0 };
    ws.on('open', () => {
      c.tOpen = performance.now();
      ws.send(JSON.stringify({ type: 'hello', user }));
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    let welcomed = false;
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString());
      if (!welcomed) {
        clearTimeout(timer);
        if (f.type !== 'welcome') {
          reject(new Error(`${user}: expected welcome, got ${JSON.stringify(f).slice(0, 200)}`));
          return;
        }
        welcomed = true;
        c.tWelcome = performance.now();
        resolve(c);
        return;
      }
      onFrame(f, c);
    });
  });
}

async function closeAll(conns) {
  for (const c of conns) c.ws.close(1000);
  await sleep(100);
  for (const c of conns) c.ws.terminate();
}

/**
 * Sends `plan` (per sender: a list of recipients) with `window` un-acked sends per sender; resolves
 * with the ack statuses and errors once every send is answered.
 */
async function sendAll(nodes, plan, label) {
  const padding = 'x'.repeat(Math.max(0, cfg.bodyBytes - 16));
  const statuses = {};
  const errors = {};
  let acked = 0;
  const total = plan.reduce((n, p) => n + p.to.length, 0);
  let done;
  const finished = new Promise((r) => (done = r));
  const conns = [];
  const sendNext = (c) => {
    const i = c.next++;
    if (i >= c.to.length) return;
    c.ws.send(`{"type":"send","id":"${i}","to":"${c.to[i]}","body":"${performance.now().toFixed(3)}|${padding}"}`);
  };
  const onFrame = (f, c) => {
    if (f.type !== 'ack' && f.type !== 'error') return;
    const key = f.type === 'ack' ? f.status : f.code;
    if (f.type === 'ack') statuses[key] = (statuses[key] ?? 0) + 1;
    else errors[key] = (errors[key] ?? 0) + 1;
    c.answers[key] = (c.answers[key] ?? 0) + 1;
    if (++acked === total) done();
    sendNext(c);
  };
  for (let i = 0; i < plan.length; i += 20) {
    const batch = plan.slice(i, i + 20);
    conns.push(...await Promise.all(batch.map((p, j) => connect(`ws://${HOST}:${nodes[(i + j) % nodes.length].http}/ws`, p.from, onFrame)
      .then((c) => Object.assign(c, { to: p.to, next: 0, answers: {} })))));
  }
  const t0 = performance.now();
  const cpu0 = nodes.map((n) => cpuMsOf(n.pid));
  for (const c of conns) for (let k = 0; k < cfg.window; k++) sendNext(c);
  const progress = setInterval(() => log(`  ${label}: ${acked}/${total} acked`), 5000);
  try {
    await Promise.race([finished, sleep(300_000).then(() => { throw new Error(`${label}: only ${acked}/${total} acked after 300 s`); })]);
  } finally {
    clearInterval(progress);
  }
  const ms = performance.now() - t0;
  const cpuMs = nodes.reduce((a, n, i) => a + cpuMsOf(n.pid) - cpu0[i], 0);
  await closeAll(conns);
  const bySender = Object.fromEntries(conns.map((c) => [c.user, c.answers]));
  return { sent: total, ms: Math.round(ms), perSec: Math.round((total / ms) * 1000), nodeCpuUsPerMsg: +((cpuMs * 1000) / total).toFixed(1), statuses, errors, bySender };
}

/** Polls until every node's stored count is unchanged for `quietMs` and no hand-off runs (bounded). */
async function settle(nodes, quietMs, timeoutMs = 120_000) {
  const t0 = performance.now();
  let last = '';
  let since = performance.now();
  for (;;) {
    const ms = await Promise.all(nodes.map((n) => nodeMetrics(n.http)));
    const key = JSON.stringify(ms.map((m) => [m[M.stored], m[M.handoffEntries], m[M.appends], m[M.handoffsInProgress]]));
    if (key !== last) {
      last = key;
      since = performance.now();
    } else if (performance.now() - since >= quietMs && ms.every((m) => !m[M.handoffsInProgress])) {
      return ms;
    }
    if (performance.now() - t0 > timeoutMs) throw new Error(`not settled after ${timeoutMs} ms: ${key}`);
    await sleep(200);
  }
}

// ------------------------------------------------------------------ one store

const sum = (xs) => xs.reduce((a, b) => a + b, 0);
const MiB = 2 ** 20;

async function benchStore(store) {
  log(`\n-- store: ${store}${{ disk: ' (--data-dir, fsync before the ack)', memory: ' (in memory, node defaults)', off: ' (--history-size 0: the fill only, as a baseline)' }[store]}`);
  // Free ports are picked, released, then bound by the node: another process may take one meanwhile
  // (EADDRINUSE), so a node that dies during startup is started again on other ports (the mesh
  // port of the 4th node is in every node's peers list from the start: only its others change).
  const used = new Set();
  const newPort = async () => {
    for (;;) {
      const p = await freePort();
      if (!used.has(p)) {
        used.add(p);
        return p;
      }
    }
  };
  const ports = [];
  for (let i = 0; i < 4; i++) ports.push({ http: await newPort(), mesh: await newPort(), admin: await newPort() });
  const label = `streams-${store}`;
  const nodes = [];
  try {
    for (let attempt = 1; ; attempt++) {
      for (let i = 0; i < 3; i++) nodes.push(await startNode(i, ports, store, label));
      try {
        for (const n of nodes) await ready(n, 2, nodes);
        break;
      } catch (err) {
        if (attempt >= 3) throw err;
        log(`  cluster start failed (${err.message.slice(0, 120)}); again on other ports`);
        await stopNodes(nodes.splice(0));
        for (let i = 0; i < 3; i++) ports[i] = { http: await newPort(), mesh: await newPort(), admin: await newPort() };
      }
    }
    log(`  3 nodes up: ${nodes.map((n) => `${n.id} pid ${n.pid} http ${n.http}`).join(' | ')}`);
    await sleep(500);

    // (a) fill: senders online, recipients never connected.
    const before = await Promise.all(nodes.map(gcAndMeasure));
    const m0 = await Promise.all(nodes.map((n) => nodeMetrics(n.http)));
    const plan = Array.from({ length: cfg.senders }, (_, s) => ({ from: `sender${s}`, to: [] }));
    for (let i = 0; i < cfg.messages; i++) plan[i % cfg.senders].to.push(`user${(i * 7919) % cfg.users}`);
    // The replay users' mailboxes, each from a sender of its own.
    for (let u = 0; u < cfg.replayUsers; u++) plan.push({ from: `rsender${u}`, to: Array(cfg.replayK).fill(`replay${u}`) });
    const { bySender, ...fill } = await sendAll(nodes, plan, 'fill');
    log(`  fill: ${fill.sent} messages in ${fill.ms} ms = ${fill.perSec} acked/s, node CPU ${fill.nodeCpuUsPerMsg} µs per message (all nodes); acks ${JSON.stringify(fill.statuses)}${Object.keys(fill.errors).length ? ` errors ${JSON.stringify(fill.errors)}` : ''}`);
    const m1 = await settle(nodes, 1000);
    const after = await Promise.all(nodes.map(gcAndMeasure));
    const stored = m1.map((m, i) => (m[M.stored] ?? 0) - (m0[i][M.stored] ?? 0));
    const storedTotal = sum(stored);
    const per100k = (bytesDelta, entries) => (entries > 0 ? +((bytesDelta / MiB) * (100_000 / entries)).toFixed(1) : null);
    const memory = nodes.map((n, i) => ({
      node: n.id,
      storedEntries: stored[i],
      streams: m1[i][M.streams] ?? null,
      rssMiBBefore: +(before[i].rss / MiB).toFixed(1),
      rssMiBAfter: +(after[i].rss / MiB).toFixed(1),
      heapMiBAfter: +(after[i].heapUsed / MiB).toFixed(1),
      rssMiBPer100kEntries: per100k(after[i].rss - before[i].rss, stored[i]),
      heapMiBPer100kEntries: per100k(after[i].heapUsed - before[i].heapUsed, stored[i]),
    }));
    const rssDelta = sum(after.map((a, i) => a.rss - before[i].rss));
    // Anonymous RSS only: without the file-backed pages (the disk store's memory-mapped tables).
    const anonDelta = sum(after.map((a, i) => (a.rssAnon ?? NaN) - (before[i].rssAnon ?? NaN)));
    const heapDelta = sum(after.map((a, i) => a.heapUsed - before[i].heapUsed));
    const mem = {
      storedEntries: storedTotal,
      // Entries beyond 4 per message acked `stored`: messages answered `unavailable` but kept anyway.
      entriesBeyondStoredAcks: storedTotal - 4 * (fill.statuses.stored ?? 0),
      messages: fill.sent,
      entriesPerMessage: +(storedTotal / fill.sent).toFixed(2),
      trimmed: sum(m1.map((m, i) => (m[M.trimmed] ?? 0) - (m0[i][M.trimmed] ?? 0))),
      rssMiBPer100kEntries: per100k(rssDelta, storedTotal),
      rssAnonMiBPer100kEntries: per100k(anonDelta, storedTotal),
      heapMiBPer100kEntries: per100k(heapDelta, storedTotal),
      rssMiBPer100kMessages: per100k(rssDelta, fill.sent),
      gcAvailable: after.every((a) => a.gc),
      nodes: memory,
    };
    if (Object.keys(fill.errors).length) {
      log(`  WARNING: ${JSON.stringify(fill.errors)} answered to the fill, yet the stores hold ${mem.entriesBeyondStoredAcks} entries beyond 4 per \`stored\` ack ` +
        `(${(mem.entriesBeyondStoredAcks / 4).toFixed(0)} messages' worth): a write answered unavailable may still be kept (and replayed)`);
    }
    if (store !== 'off') log(`  stored: ${storedTotal} entries (${mem.entriesPerMessage} per message; ${mem.trimmed} trimmed) on ${nodes.length} nodes: ` +
      `RSS +${(rssDelta / MiB).toFixed(1)} MiB (anonymous +${(anonDelta / MiB).toFixed(1)}), heap +${(heapDelta / MiB).toFixed(1)} MiB after GC = ${mem.rssMiBPer100kEntries} MiB RSS (${mem.heapMiBPer100kEntries} MiB heap) per 100k entries, ` +
      `${mem.rssMiBPer100kMessages} MiB RSS per 100k messages (cluster)`);
    if (store !== 'off') for (const x of memory) log(`    ${x.node}: ${x.storedEntries} entries in ${x.streams} streams, RSS ${x.rssMiBBefore} -> ${x.rssMiBAfter} MiB (${x.rssMiBPer100kEntries} MiB / 100k), heap ${x.heapMiBAfter} MiB (${x.heapMiBPer100kEntries} MiB / 100k)`);
    mem.rssDeltaMiB = +(rssDelta / MiB).toFixed(1);
    mem.rssAnonDeltaMiB = +(anonDelta / MiB).toFixed(1);
    mem.heapDeltaMiB = +(heapDelta / MiB).toFixed(1);
    if (store === 'off') {
      log(`  baseline (nothing stored): RSS +${mem.rssDeltaMiB} MiB, heap +${mem.heapDeltaMiB} MiB after GC over ${nodes.length} nodes for ${fill.sent} messages`);
      return { store, fill, memory: mem };
    }

    // (b) mailbox replay, one user at a time, each on another node.
    const replays = [];
    const replayCpu0 = nodes.map((n) => cpuMsOf(n.pid));
    for (let u = 0; u < cfg.replayUsers; u++) {
      const node = nodes[u % nodes.length];
      let count = 0;
      let synced;
      let gotSynced;
      const done = new Promise((r) => (gotSynced = r));
      const c = await connect(`ws://${HOST}:${node.http}/ws`, `replay${u}`, (f) => {
        if (f.type === 'message') count++;
        else if (f.type === 'synced') {
          synced = { t: performance.now(), count: f.count };
          gotSynced();
        } else if (f.type === 'error') {
          synced = { t: performance.now(), error: f.code };
          gotSynced();
        }
      });
      await Promise.race([done, sleep(60_000)]);
      await closeAll([c]);
      if (!synced) throw new Error(`replay${u}: no synced within 60 s (${count} messages)`);
      const ms = synced.t - c.tWelcome;
      replays.push({
        user: `replay${u}`, node: node.id, messages: count, syncedCount: synced.count ?? null, error: synced.error, senderGot: bySender[`rsender${u}`],
        welcomeToSyncedMs: +ms.toFixed(1), helloToWelcomeMs: +(c.tWelcome - c.tOpen).toFixed(1), msgsPerSec: Math.round((count / ms) * 1000),
      });
    }
    const replayCpuMs = sum(nodes.map((n, i) => cpuMsOf(n.pid) - replayCpu0[i]));
    const replayed = sum(replays.map((r) => r.messages));
    const rates = replays.map((r) => r.msgsPerSec).sort((a, b) => a - b);
    const replay = { k: cfg.replayK, nodeCpuUsPerMsg: replayed ? +((replayCpuMs * 1000) / replayed).toFixed(1) : null, users: replays, medianMsgsPerSec: rates[Math.floor(rates.length / 2)] ?? null, medianMs: replays.map((r) => r.welcomeToSyncedMs).sort((a, b) => a - b)[Math.floor(replays.length / 2)] ?? null };
    if (replays.length) {
      log(`  mailbox replay of ${cfg.replayK}: median ${replay.medianMs} ms welcome→synced = ${replay.medianMsgsPerSec} msgs/s, node CPU ${replay.nodeCpuUsPerMsg} µs per message; ` +
        replays.map((r) => `${r.node} ${r.messages}${r.error ? ` (${r.error})` : ''} in ${r.welcomeToSyncedMs} ms`).join(', '));
      // Every message acked `stored` must come back; more than that means some answered `unavailable` were kept.
      const odd = replays.filter((r) => r.messages !== cfg.replayK || r.syncedCount !== r.messages || (r.senderGot?.stored ?? 0) !== r.messages);
      if (odd.length) log(`  WARNING: replayed counts differ from the sender's \`stored\` acks: ${JSON.stringify(odd)}`);
    }

    // (c) hand-off to a 4th node.
    const h0 = await settle(nodes, 1000);
    const t0 = performance.now();
    let n4;
    for (let attempt = 1; ; attempt++) {
      n4 = await startNode(3, ports, store, label);
      try {
        await ready(n4, 3);
        break;
      } catch (err) {
        await stopNodes([n4]);
        if (attempt >= 3 || !n4.exit) throw err;
        log(`  4th node failed to start (${err.message.slice(0, 120)}); again on other http/admin ports`);
        ports[3] = { ...ports[3], http: await newPort(), admin: await newPort() };
      }
    }
    nodes.push(n4);
    const tReady = performance.now();
    const handoffCpu0 = nodes.map((n) => cpuMsOf(n.pid));
    const base = h0.map((m) => m[M.handoffEntries] ?? 0);
    let tFirst;
    let tLast;
    let lastKey = '';
    let lastChange = performance.now();
    let final;
    for (;;) {
      const ms = await Promise.all(nodes.map((n) => nodeMetrics(n.http)));
      const now = performance.now();
      const sent = sum(ms.map((m, i) => (m[M.handoffEntries] ?? 0) - (base[i] ?? 0)));
      if (sent > 0 && tFirst === undefined) tFirst = now;
      const key = JSON.stringify(ms.map((m) => [m[M.stored], m[M.handoffEntries], m[M.handoffsInProgress]]));
      if (key !== lastKey) {
        lastKey = key;
        lastChange = now;
        if (sent > 0) tLast = now;
      }
      if (tFirst !== undefined && now - lastChange >= cfg.settleMs && ms.every((m) => !m[M.handoffsInProgress])) {
        final = ms;
        break;
      }
      if (now - tReady > 180_000) throw new Error(`hand-off not settled after 180 s: ${key}`);
      await sleep(200);
    }
    const handoffCpuMs = sum(nodes.map((n, i) => cpuMsOf(n.pid) - handoffCpu0[i]));
    const sentEntries = sum(final.map((m, i) => (m[M.handoffEntries] ?? 0) - (base[i] ?? 0)));
    const received = final[3][M.stored] ?? 0;
    const activeMs = (tLast ?? tFirst) - (tFirst ?? 0);
    const handoff = {
      entriesBefore: sum(h0.map((m) => m[M.stored] ?? 0)),
      entriesAfter: sum(final.map((m) => m[M.stored] ?? 0)),
      storedPerNodeAfter: final.map((m) => m[M.stored] ?? 0),
      entriesSent: sentEntries,
      streamsSent: sum(final.map((m, i) => (m[M.handoffStreams] ?? 0) - (h0[i]?.[M.handoffStreams] ?? 0))),
      newNodeEntries: received,
      startToReadyMs: Math.round(tReady - t0),
      readyToFirstEntryMs: tFirst !== undefined ? Math.round(tFirst - tReady) : null,
      readyToSettledMs: Math.round((tLast ?? tReady) - tReady),
      // Poll resolution is 100 ms plus the time of the poll itself.
      activeMs: Math.round(activeMs),
      entriesSentPerSec: activeMs > 0 ? Math.round((sentEntries / activeMs) * 1000) : null,
      newNodeEntriesPerSecFromReady: tLast ? Math.round((received / (tLast - tReady)) * 1000) : null,
      // All 4 nodes from ready to settled (includes this bench's /metrics polls, 5 per second per node).
      nodeCpuUsPerEntrySent: sentEntries ? +((handoffCpuMs * 1000) / sentEntries).toFixed(1) : null,
    };
    log(`  hand-off to a 4th node: ${handoff.entriesSent} entries sent (${handoff.streamsSent} streams), new node holds ${handoff.newNodeEntries}; ` +
      `ready ${handoff.startToReadyMs} ms after spawn, first entry ${handoff.readyToFirstEntryMs} ms after ready, settled ${handoff.readyToSettledMs} ms after ready ` +
      `(active ${handoff.activeMs} ms = ${handoff.entriesSentPerSec} entries/s sent, node CPU ${handoff.nodeCpuUsPerEntrySent} µs per entry); entries ${handoff.entriesBefore} -> ${handoff.entriesAfter} (${handoff.storedPerNodeAfter.join('/')})`);
    return { store, fill, memory: mem, replay, handoff };
  } finally {
    await stopNodes(nodes);
  }
}

// ------------------------------------------------------------------ main

async function main() {
  const t0 = performance.now();
  log(`streams bench: stores ${cfg.stores.join(', ')}; fill ${cfg.messages} messages to ${cfg.users} offline users from ${cfg.senders} senders (window ${cfg.window}), ` +
    `${cfg.replayUsers} mailboxes of ${cfg.replayK}; 3 nodes + 1 joining, --replicas 2, ${cpus().length} cores shared with this process`);
  const results = [];
  for (const s of cfg.stores) results.push(await benchStore(s));
  // Net of what carrying the same load grows a node by (the `off` baseline, scaled to the messages sent).
  const off = results.find((r) => r.store === 'off');
  for (const r of results) {
    if (!off || r === off || !r.memory.storedEntries) continue;
    const scale = r.fill.sent / off.fill.sent;
    const net = (delta, base) => +(((delta - base * scale) * 100_000) / r.memory.storedEntries).toFixed(1);
    r.memory.rssMiBPer100kEntriesNet = net(r.memory.rssDeltaMiB, off.memory.rssDeltaMiB);
    r.memory.rssAnonMiBPer100kEntriesNet = net(r.memory.rssAnonDeltaMiB, off.memory.rssAnonDeltaMiB);
    r.memory.heapMiBPer100kEntriesNet = net(r.memory.heapDeltaMiB, off.memory.heapDeltaMiB);
  }
  const rows = [
    ['fill: acked msgs/s (stored; off: offline)', (r) => r.fill.perSec],
    ['fill: node CPU per msg, all (µs)', (r) => r.fill.nodeCpuUsPerMsg],
    ['entries per message (2 streams x 2)', (r) => r.memory.entriesPerMessage],
    ['RSS growth after GC, 3 nodes (MiB)', (r) => r.memory.rssDeltaMiB],
    ['  of it anonymous (not file-backed)', (r) => r.memory.rssAnonDeltaMiB],
    ['heap growth after GC, 3 nodes (MiB)', (r) => r.memory.heapDeltaMiB],
    ['RSS per 100k entries (MiB)', (r) => r.memory.rssMiBPer100kEntries],
    ['  net of the off baseline (MiB)', (r) => r.memory.rssMiBPer100kEntriesNet],
    ['anon RSS per 100k entries, net (MiB)', (r) => r.memory.rssAnonMiBPer100kEntriesNet],
    ['heap per 100k entries (MiB)', (r) => r.memory.heapMiBPer100kEntries],
    ['  net of the off baseline (MiB)', (r) => r.memory.heapMiBPer100kEntriesNet],
    ['RSS per 100k messages, cluster (MiB)', (r) => r.memory.rssMiBPer100kMessages],
    [`mailbox replay ${cfg.replayK}: median ms`, (r) => r.replay?.medianMs],
    ['mailbox replay: median msgs/s', (r) => r.replay?.medianMsgsPerSec],
    ['mailbox replay: node CPU per msg (µs)', (r) => r.replay?.nodeCpuUsPerMsg],
    ['hand-off: entries sent', (r) => r.handoff?.entriesSent],
    ['hand-off: new node entries', (r) => r.handoff?.newNodeEntries],
    ['hand-off: ready -> settled (ms)', (r) => r.handoff?.readyToSettledMs],
    ['hand-off: entries sent/s (active)', (r) => r.handoff?.entriesSentPerSec],
    ['  new node entries/s (ready -> settled)', (r) => r.handoff?.newNodeEntriesPerSecFromReady],
    ['hand-off: node CPU per entry (µs)', (r) => r.handoff?.nodeCpuUsPerEntrySent],
  ];
  log('');
  log(`${'streams bench'.padEnd(40)}${results.map((r) => r.store.padStart(12)).join('')}`);
  log('-'.repeat(40 + 12 * results.length));
  for (const [label, f] of rows) log(`${label.padEnd(40)}${results.map((r) => String(f(r) ?? '-').padStart(12)).join('')}`);
  log('note: "entries" count each stream copy in a node\'s store (chatmesh_stored_messages); a DM is 4 of them.');
  log('      RSS and heap are measured after a full GC on every node; "net" subtracts the growth of the off run (same load, nothing kept).');
  log('      hand-off pushes at most 20000 entries/s per sending node (streams/handoff.ts default).');

  let profiles;
  if (cfg.profile) {
    profiles = {};
    for (const f of readdirSync(profileDir).filter((x) => x.endsWith('.cpuprofile')).sort()) {
      const s = summarizeProfile(join(profileDir, f), { top: 20, root });
      profiles[f] = s;
      log(`\n${formatSummary(s, f)}`);
    }
  }
  log(JSON.stringify({ bench: 'streams', config: cfg, results, durationMs: Math.round(performance.now() - t0), ...(profiles && { profileDir }) }));
}

// run.mjs allows the streams bench 600 s; alone it may take a little longer on a busy machine.
runBench('streams-bench', main, { cleanup, timeoutS: 900 });
