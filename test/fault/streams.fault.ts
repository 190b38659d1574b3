/**
 * Fault suite, issue 9 (durable message streams; protocol.md "Mailbox, resume and history"): users on
 * all three nodes send direct messages to each other while some go offline and back (so some sends
 * are acked `stored`), and
 *  (h) one node is SIGKILLed: its users reconnect elsewhere with `since`; every acked message reaches
 *      its recipient (live, mailbox or resume) and every history holds it exactly once;
 *  (i) nodes leave (SIGTERM) and join again (same id, new incarnation) one after the other: every
 *      history, paged with `before`, holds every acked message exactly once, in id order;
 *  (j) every node has a `--data-dir`; all are stopped and started again: every conversation and room
 *      history is what it was, the mailbox of a user who never connected is still there; a second
 *      node on a data dir in use refuses to start and names it.
 * Sizes: `CHATMESH_STREAMS_USERS` (60), `CHATMESH_STREAMS_SENDS_PER_SEC` (60), `CHATMESH_STREAMS_LOAD_MS`
 * (6000, each phase of (h) and (j)), `CHATMESH_STREAMS_CHURN_MS` (3000, each leave and join of (i)),
 * `CHATMESH_STREAMS_SETTLE_MS` (30000, the most settling may take), `CHATMESH_STREAMS_PAGE` (5, history
 * page size, small so that conversations take several pages).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { cliHasFlag, envNumber, sleep, startFaultMesh } from '../helpers/fault-mesh.js';
import type { FaultMesh } from '../helpers/fault-mesh.js';
import { report } from '../helpers/fault-scenarios.js';
import { DmLoad, StreamConn, checkHistory, pollHistories, readWholeHistory, runNodeUntilExit } from '../helpers/fault-streams.js';
import type { DmCounts, Frame, HistoriesResult, LoadNode, MessageWhen } from '../helpers/fault-streams.js';

const USERS = envNumber('CHATMESH_STREAMS_USERS', 60);
const SENDS_PER_SEC = envNumber('CHATMESH_STREAMS_SENDS_PER_SEC', 60);
const LOAD_MS = envNumber('CHATMESH_STREAMS_LOAD_MS', 6000);
const CHURN_MS = envNumber('CHATMESH_STREAMS_CHURN_MS', 3000);
const SETTLE_MS = envNumber('CHATMESH_STREAMS_SETTLE_MS', 30_000);
const PAGE = envNumber('CHATMESH_STREAMS_PAGE', 5);
/** `CHATMESH_STREAMS_LOG_LEVEL=debug` to read why a write failed in the kept node logs. */
const LOG_ARGS = process.env['CHATMESH_STREAMS_LOG_LEVEL'] ? ['--log-level', process.env['CHATMESH_STREAMS_LOG_LEVEL']] : [];

const skip = cliHasFlag('--data-dir') ? false : 'the CLI has no --data-dir flag yet (chatmesh node --help)';

/** Nodes a client may connect to: running, not stopped, not leaving. */
const liveNodes = (mesh: FaultMesh, leaving: ReadonlySet<number> = new Set()): LoadNode[] =>
  mesh.nodes.filter((n) => n.running && !n.stopped && !leaving.has(n.index)).map((n) => ({ index: n.index, url: n.url }));

/** Every (user, peer) pair of the load's acked conversations, each from both sides. */
function pairs(load: DmLoad): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [u, peers] of load.conversations()) for (const p of peers.keys()) out.push([u, p]);
  return out;
}

/** The asserts every load scenario shares: receipts complete, nothing misrouted. */
function assertReceipts(t: Test, c: DmCounts, missing: unknown[]): void {
  t.ok(c.delivered + c.stored > 0, `messages were acked (${c.delivered} delivered, ${c.stored} stored)`);
  t.equal(c.missing, 0, 'every message acked delivered or stored reached its recipient (live, mailbox or resume)', { missing });
  t.equal(c.misrouted, 0, 'no message at a user who is neither party');
  t.equal(c.firstBeforeWelcome, 0, 'the welcome is always a connection\'s first frame');
  t.equal(c.pending, 0, 'every send answered (or its connection closed first)');
  t.same(c.other, {}, 'no answer but delivered, stored, unavailable');
}

function assertHistories(t: Test, what: string, h: HistoriesResult): void {
  t.ok(h.conversations > 0, `${what}: conversations read (${h.conversations}, ${h.pages} pages, ${h.multiPage} of several pages)`);
  t.equal(h.failed, 0, `${what}: every history page answered`, { samples: h.samples });
  t.equal(h.missing, 0, `${what}: every acked message in the history of both parties`, { samples: h.samples });
  t.equal(h.duplicates, 0, `${what}: no message twice in a history`, { samples: h.samples });
  t.equal(h.outOfOrder, 0, `${what}: every history in id order`, { samples: h.samples });
}

t.test('(h) SIGKILL one of three nodes during a DM load: every acked message reaches its recipient, histories hold it once', { skip }, async (t) => {
  const t0 = Date.now();
  const mesh = await startFaultMesh(t, { extraArgs: () => ['--replicas', '2', ...LOG_ARGS], formTimeoutMs: 60_000 });
  const load = new DmLoad({ users: USERS, sendsPerSec: SENDS_PER_SEC, nodes: () => liveNodes(mesh) });
  t.teardown(() => load.close());
  await load.connect();
  load.phase = 'before';
  load.run();
  await sleep(LOAD_MS);
  load.phase = 'after-kill';
  // Users whose connection to node-1 is not being closed by themselves (those are moved by the kill).
  // A user that is leaving by choice may close its own connection before the kill (then it comes
  // back later, not as a move): only users staying online must move.
  const onNode1 = load.users.filter((u) => u.node === 1 && (u.state === 'online' || u.state === 'connecting')).length;
  const killAt = Date.now();
  await mesh.sigkill(1);
  await sleep(LOAD_MS);
  const answersMs = await load.stop(SETTLE_MS);
  const settleMs = await load.settle(SETTLE_MS);
  const counts = load.counts();
  const missing = load.missing().slice(0, 10).map((s) => load.describeMissing(s));
  const h = await pollHistories(pairs(load), (u, p) => load.conversations().get(u)!.get(p)!, (u) => load.connOf(u), SETTLE_MS, PAGE);
  report(t, '(h) streams sigkill', {
    ms: Date.now() - t0, usersOnKilledNode: onNode1, answersMs, settleMs, historyMs: h.ms, historyPasses: h.passes,
    counts, history: { ...h.result, bad: h.result.bad.length }, firstHistoryPass: { missing: h.first.missing, duplicates: h.first.duplicates },
    ...(missing.length > 0 && { missing }),
  });
  t.ok(settleMs >= 0, `every acked message arrived within ${SETTLE_MS} ms of the end (${settleMs} ms)`);
  t.ok(counts.stored > 0, `some sends were acked stored (${counts.stored})`);
  // A user may choose to leave between the count above and the kill (the load runs on): it then
  // comes back later through its mailbox or a resume ('back'), not as a move.
  const leftByChoice = load.users.filter((u) => {
    const i = u.conns.findIndex((c) => c.node === 1 && c.at < killAt && (c.closedAt ?? Infinity) >= killAt);
    return i >= 0 && u.conns[i + 1]?.mode === 'back';
  }).length;
  t.ok(counts.movedReconnects + leftByChoice >= onNode1,
    `the users of node-1 reconnected elsewhere with since (${counts.movedReconnects} moves, ${leftByChoice} left by choice, ${onNode1} users)`);
  assertReceipts(t, counts, missing);
  assertHistories(t, 'after the SIGKILL', h.result);
});

t.test('(i) churn while sending: nodes leave (SIGTERM) and rejoin one after the other; every history complete, once, in order', { skip }, async (t) => {
  const t0 = Date.now();
  const mesh = await startFaultMesh(t, { extraArgs: () => ['--replicas', '2', ...LOG_ARGS], formTimeoutMs: 60_000 });
  const leaving = new Set<number>();
  const load = new DmLoad({ users: USERS, sendsPerSec: SENDS_PER_SEC, nodes: () => liveNodes(mesh, leaving) });
  t.teardown(() => load.close());
  await load.connect();
  load.phase = 'steady';
  load.run();
  await sleep(CHURN_MS);
  const churn: Array<Record<string, unknown>> = [];
  for (const i of [1, 2, 0]) {
    load.phase = `node-${i} leaves`;
    leaving.add(i);
    const l0 = Date.now();
    const exitCode = await mesh.sigterm(i);
    const leaveMs = Date.now() - l0;
    await sleep(CHURN_MS);
    load.phase = `node-${i} rejoins`;
    const rejoinMs = await mesh.restart(i);
    leaving.delete(i);
    churn.push({ node: i, exitCode, leaveMs, rejoinMs });
    await sleep(CHURN_MS);
  }
  const answersMs = await load.stop(SETTLE_MS);
  const settleMs = await load.settle(SETTLE_MS);
  const counts = load.counts();
  const missing = load.missing().slice(0, 10).map((s) => load.describeMissing(s));
  const h = await pollHistories(pairs(load), (u, p) => load.conversations().get(u)!.get(p)!, (u) => load.connOf(u), SETTLE_MS, PAGE);
  report(t, '(i) streams churn', {
    ms: Date.now() - t0, churn, answersMs, settleMs, historyMs: h.ms, historyPasses: h.passes,
    counts, history: { ...h.result, bad: h.result.bad.length }, firstHistoryPass: { missing: h.first.missing, duplicates: h.first.duplicates },
    ...(missing.length > 0 && { missing }),
  });
  for (const c of churn) t.equal(c['exitCode'], 0, `node-${String(c['node'])} exits 0 on SIGTERM`);
  t.ok(settleMs >= 0, `every acked message arrived within ${SETTLE_MS} ms of the end (${settleMs} ms)`);
  assertReceipts(t, counts, missing);
  t.ok(h.result.multiPage > 0, `some conversations were read through several pages with before (${h.result.multiPage})`);
  assertHistories(t, 'after the churn', h.result);
});

/** A connection per user, welcomed and synced; `onMessage` gets every message frame (replayed: before synced). */
async function connectAll(t: Test, mesh: FaultMesh, users: readonly string[], onMessage?: (user: string, f: Frame, when: MessageWhen) => void): Promise<Map<string, { conn: StreamConn; synced: Frame }>> {
  const live = liveNodes(mesh);
  const out = new Map<string, { conn: StreamConn; synced: Frame }>();
  await Promise.all(users.map(async (u, k) => {
    const conn = new StreamConn(live[k % live.length]!.url, u, { ...(onMessage && { onMessage: (f, r) => onMessage(u, f, r) }) });
    t.teardown(() => conn.terminate());
    await conn.welcome;
    out.set(u, { conn, synced: await conn.synced });
  }));
  return out;
}

t.test('(j) full restart with --data-dir: every conversation, room and mailbox survives; a data dir in use is refused', { skip }, async (t) => {
  const t0 = Date.now();
  const dirs = [0, 1, 2].map((i) => mkdtempSync(join(tmpdir(), `chatmesh-data-${i}-`)));
  let mesh: FaultMesh | undefined;
  t.teardown(async () => {
    // The nodes go first: nothing may write to a directory being removed.
    for (const n of mesh?.nodes ?? []) n.signal('SIGKILL');
    await Promise.all((mesh?.nodes ?? []).map((n) => n.exited));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  mesh = await startFaultMesh(t, { extraArgs: (i) => ['--replicas', '2', '--data-dir', dirs[i]!, ...LOG_ARGS], formTimeoutMs: 60_000 });
  const m = mesh;

  // Direct messages under the usual load (with offline users: stored acks).
  const load = new DmLoad({ users: Math.max(12, Math.round(USERS / 2)), sendsPerSec: Math.max(10, Math.round(SENDS_PER_SEC / 2)), nodes: () => liveNodes(m), prefix: 'd' });
  t.teardown(() => load.close());
  await load.connect();
  load.phase = 'load';
  load.run();
  await sleep(LOAD_MS);
  await load.stop(SETTLE_MS);
  const settleMs = await load.settle(SETTLE_MS);

  // Users who never connect: what is sent to them waits in their mailbox, across the restart.
  const ghosts = ['ghost0', 'ghost1', 'ghost2'];
  const ghostSent = new Map<string, string[]>(ghosts.map((g) => [g, []]));
  const ghostOther: string[] = [];
  for (let k = 0; k < 15; k++) {
    const g = ghosts[k % 3]!;
    const a = await load.connOf(`d${k % 3}`)!.request({ type: 'send', to: g, body: `for ${g} ${k}` });
    if (a?.type === 'ack' && a['status'] === 'stored') ghostSent.get(g)!.push(a['msg'] as string);
    else ghostOther.push(JSON.stringify(a));
  }

  // A room with a member on every node; publish after join.
  const roomUsers = ['room0', 'room1', 'room2'];
  const roomConns = await connectAll(t, m, roomUsers);
  for (const u of roomUsers) {
    const a = await roomConns.get(u)!.conn.request({ type: 'join', room: 'lobby' });
    t.equal(a?.type, 'ack', `${u} joined lobby`);
  }
  const roomAcked = new Set<string>();
  const roomOther: string[] = [];
  for (let k = 0; k < 40; k++) {
    const a = await roomConns.get(roomUsers[k % 3]!)!.conn.request({ type: 'publish', room: 'lobby', body: `lobby ${k}` });
    if (a?.type === 'ack' && (a['status'] === 'delivered' || a['status'] === 'no_subscribers')) roomAcked.add(a['msg'] as string);
    else roomOther.push(JSON.stringify(a));
  }

  // Every history before the restart.
  const dmPairs = pairs(load);
  const expected = (u: string, p: string): ReadonlySet<string> => (u.startsWith('ghost') ? new Set(ghostSent.get(u)) : p.startsWith('ghost') ? new Set(ghostSent.get(p)) : load.conversations().get(u)!.get(p)!);
  const ghostPairs = ghosts.map((g, i) => [`d${i}`, g] as [string, string]);
  const before = new Map<string, string[]>();
  const readAll = async (conn: (u: string) => StreamConn | undefined, which: ReadonlyArray<readonly [string, string]>): Promise<number> => {
    let failed = 0;
    await Promise.all(which.map(async ([u, p]) => {
      const c = conn(u);
      const h = c ? await readWholeHistory(c, { with: p }, PAGE) : undefined;
      if (!h || h.failed) failed++;
      before.set(`${u}|${p}`, h?.ids ?? []);
    }));
    return failed;
  };
  const beforeFailed = await readAll((u) => load.connOf(u), [...dmPairs, ...ghostPairs]);
  const beforeCheck = [...dmPairs, ...ghostPairs].map(([u, p]) => checkHistory(before.get(`${u}|${p}`)!, expected(u, p)));
  const roomBefore = await Promise.all(roomUsers.map((u) => readWholeHistory(roomConns.get(u)!.conn, { room: 'lobby' }, PAGE)));

  // A second node on node-0's data dir, while node-0 runs: it must refuse, naming the dir.
  const intruder = await runNodeUntilExit(['--data-dir', dirs[0]!]);
  t.not(intruder.code, 'timeout', 'a node on a data dir in use stops (does not run on)');
  t.not(intruder.code, 0, `a node on a data dir in use exits non-zero (code ${String(intruder.code)})`);
  t.ok(intruder.out.includes(dirs[0]!), 'its message names the data dir', { out: intruder.out.slice(-2000) });
  t.ok(m.node(0).running, 'node-0 still runs');

  // Stop every node, start them again with the same ids and data dirs.
  load.close();
  for (const { conn } of roomConns.values()) conn.terminate();
  const s0 = Date.now();
  const exits = await Promise.all([0, 1, 2].map((i) => m.sigterm(i)));
  const stopMs = Date.now() - s0;
  t.same(exits, [0, 0, 0], 'every node exits 0 on SIGTERM');
  const r0 = Date.now();
  for (const n of m.nodes) n.start();
  await m.waitFormed(60_000);
  const restartMs = Date.now() - r0;

  // The ghosts' mailboxes, replayed to their first device now.
  const ghostGot = new Map<string, string[]>(ghosts.map((g) => [g, []]));
  const ghostConns = await connectAll(t, m, ghosts, (u, f, when) => {
    if (when === 'replay' && f.type === 'message') ghostGot.get(u)!.push(f['msg'] as string);
  });
  for (const g of ghosts) {
    t.same(ghostGot.get(g), ghostSent.get(g), `${g}'s mailbox replayed after the restart, oldest first (${ghostSent.get(g)!.length} messages)`);
    t.equal(ghostConns.get(g)!.synced['count'], ghostSent.get(g)!.length, `${g}: synced counts them`);
  }

  // Every history after the restart, read from fresh devices, against the one before and the acks.
  const users = [...new Set(dmPairs.map(([u]) => u))];
  const dmConns = await connectAll(t, m, users);
  const conns = new Map([...dmConns, ...ghostConns]);
  const afterResult = await pollHistories([...dmPairs, ...ghostPairs, ...ghostPairs.map(([u, g]) => [g, u] as [string, string])], expected, (u) => conns.get(u)?.conn, SETTLE_MS, PAGE);
  let changed = 0;
  const changedSamples: Array<Record<string, unknown>> = [];
  for (const [u, p] of [...dmPairs, ...ghostPairs]) {
    const h = await readWholeHistory(conns.get(u)!.conn, { with: p }, PAGE);
    const b = before.get(`${u}|${p}`)!;
    if (JSON.stringify(h.ids) !== JSON.stringify(b)) {
      changed++;
      if (changedSamples.length < 5) changedSamples.push({ user: u, peer: p, before: b, after: h.ids });
    }
  }
  const roomConns2 = await connectAll(t, m, roomUsers);
  const roomAfter = await Promise.all(roomUsers.map(async (u) => {
    const c = roomConns2.get(u)!.conn;
    const j = await c.request({ type: 'join', room: 'lobby' });
    return { join: j?.type, h: await readWholeHistory(c, { room: 'lobby' }, PAGE) };
  }));

  const c = load.counts();
  report(t, '(j) streams data-dir restart', {
    ms: Date.now() - t0, settleMs, stopMs, restartMs, counts: c,
    ghosts: Object.fromEntries(ghosts.map((g) => [g, ghostSent.get(g)!.length])), room: { acked: roomAcked.size, pagesEach: roomBefore.map((h) => h.pages) },
    historyBefore: { failed: beforeFailed, missing: beforeCheck.reduce((n, k) => n + k.missing.length, 0), duplicates: beforeCheck.reduce((n, k) => n + k.duplicates, 0) },
    historyAfter: { ...afterResult.result, bad: afterResult.result.bad.length, ms: afterResult.ms }, changed,
    intruder: { code: intruder.code, listened: intruder.listened, out: intruder.out.split('\n').slice(-3).join('\n') },
  });
  assertReceipts(t, c, load.missing().slice(0, 10).map((s) => load.describeMissing(s)));
  t.ok(c.stored > 0, `some sends were acked stored (${c.stored})`);
  t.same(ghostOther, [], 'every send to a user who never connected acked stored');
  t.same(roomOther, [], 'every publish acked delivered or no_subscribers');
  t.equal(beforeFailed, 0, 'before the restart: every history answered');
  t.equal(beforeCheck.reduce((n, k) => n + k.missing.length + k.duplicates + k.outOfOrder, 0), 0, 'before the restart: every history complete, once, in order');
  for (const [i, h] of roomBefore.entries()) {
    const k = checkHistory(h.ids, roomAcked);
    t.same({ failed: h.failed, missing: k.missing.length, duplicates: k.duplicates, outOfOrder: k.outOfOrder }, { failed: undefined, missing: 0, duplicates: 0, outOfOrder: 0 }, `before the restart: ${roomUsers[i]!} reads the whole room, once, in order`);
  }
  assertHistories(t, 'after the restart', afterResult.result);
  t.equal(changed, 0, 'after the restart every conversation history is what it was before', { samples: changedSamples });
  for (const [i, { join: j, h }] of roomAfter.entries()) {
    t.equal(j, 'ack', `${roomUsers[i]!} joined lobby again`);
    t.same(h.ids, roomBefore[i]!.ids, `after the restart ${roomUsers[i]!} reads the room history it read before (${h.ids.length} messages, ${h.pages} pages)`);
  }
});
