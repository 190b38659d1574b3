// The web client (src/web) on message streams, in headless Chromium against a real in-process node:
// history on opening a conversation or room and paging back with "load older", `stored` acks,
// `synced`, and a node restart (same port, same --data-dir) during which messages arrive: after the
// reconnect (hello with `since`) they show once, and nothing already shown shows twice.
// Skipped when Chromium is missing. Screenshots of failing pages go to CHATMESH_SCREENSHOT_DIR
// (default: a folder in the OS temp dir, printed).
import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAs } from '../helpers/client.js';
import {
  joinRoom, launchChromium, openDm, openPage, pageValue, post, shown, signIn, skipWithoutChromium as skip, waitShown,
  type ShownMessage,
  startWebNode as start, wsClient as client, waitDisconnected,
} from '../helpers/web-page.js';

// Three browser pages and four nodes: on a busy machine this file takes longer than .taprc's 60 s.
t.setTimeout(180_000);

const MSG_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const pad = (i: number) => String(i).padStart(2, '0');
const range = (prefix: string, from: number, to: number) => Array.from({ length: to - from + 1 }, (_, k) => `${prefix}${pad(from + k)}`);
const bodies = (list: ShownMessage[]) => list.map((m) => m.body);



// Each message once, in message-id order (the order the page must show them in).
function inIdOrder(t: Test, list: ShownMessage[], what: string): void {
  const ids = list.map((m) => m.msg);
  t.ok(ids.every((id) => MSG_ID.test(id)), `${what}: every message has its id`);
  t.equal(new Set(ids).size, ids.length, `${what}: no message twice`);
  t.same(ids, [...ids].sort(), `${what}: in message-id order`);
}

// The ordering and de-duplication logic of the page, fed values (no browser).
t.test('timeline: id order, duplicates dropped, unacked messages in place, resume point', async (t) => {
  const tl = await import(new URL('../../src/web/timeline.js', import.meta.url).href) as {
    Timeline: new () => {
      items: Array<{ msg: string | null; body?: string }>;
      insert(m: object): number; insertLocal(m: object, nowMs: number): number; confirm(m: object, msg: string): number;
      oldestId(): string | null; newestId(): string | null;
    };
    idAtTime(ms: number): string; idTime(id: string): number; resumePoint(ids: string[], marginMs: number): string | null;
  };
  const now = 1_732_270_000_000;
  const id = (ms: number, n = 0) => `${tl.idAtTime(ms).slice(0, 10)}${String(n).padStart(4, '0')}ABCDEFGHJKMN`;
  t.equal(tl.idTime(id(now, 3)), now, 'idTime reads the ms of an id');
  t.ok(Number.isNaN(tl.idTime('not-an-id')), 'and NaN for anything else');

  const line = new tl.Timeline();
  for (const n of [5, 1, 3]) t.not(line.insert({ msg: id(now + n) }), -1);
  t.equal(line.insert({ msg: id(now + 3) }), -1, 'a second copy of an id is refused');
  const local = { msg: null, body: 'unacked' };
  line.insertLocal(local, now);
  t.same(line.items.map((m) => m.msg ?? m.body), [id(now + 1), id(now + 3), id(now + 5), 'unacked'], 'unacked after the newest');
  line.insert({ msg: id(now + 9) });
  t.equal(line.items.at(-1)!.msg, id(now + 9), 'a later message goes after the unacked one');
  t.equal(line.confirm(local, id(now + 2)), 1, 'its ack moves it to its id\'s place');
  t.equal(line.oldestId(), id(now + 1));
  t.equal(line.newestId(), id(now + 9));
  const dup = { msg: null };
  line.insertLocal(dup, now);
  t.equal(line.confirm(dup, id(now + 5)), -1, 'an ack for an id already shown: the local copy goes');
  t.equal(line.items.length, 5);

  t.equal(tl.resumePoint([], 2000), null, 'nothing shown: no since');
  t.equal(tl.resumePoint([id(now), id(now + 100)], 2000), id(now), 'all within the margin: the oldest');
  t.equal(tl.resumePoint([id(now - 5000), id(now - 2500), id(now - 1000), id(now)], 2000), id(now - 2500),
    'else the newest one at least the margin older than the newest');
});

const browserReady = skip ? undefined : launchChromium(t);

t.test('history: the newest 50 on opening a conversation, "load older" pages back; stored acks; synced', { skip }, async (t) => {
  // The page first: teardowns run in order, so a failure's screenshot is taken while the node runs.
  const { page, errors } = await openPage(t, await browserReady!, 'alice');
  const { url, ws } = await start(t);
  const bob = await client(t, ws, 'bob');
  // Another device of alice is online, so the 60 messages are delivered, not kept for her mailbox:
  // the page can only get them from history.
  const aliceElsewhere = await client(t, ws, 'alice');
  const statuses = new Set<unknown>();
  for (let i = 1; i <= 60; i++) statuses.add((await bob.request({ type: 'send', id: `s${i}`, to: 'alice', body: `m${pad(i)}` })).status);
  t.same([...statuses], ['delivered'], 'bob\'s 60 messages were delivered to alice\'s other device');
  await aliceElsewhere.close();

  await signIn(page, url, 'alice');
  await page.locator('#sync-status', { hasText: /^synced$/ }).waitFor();
  t.pass('synced (empty mailbox) shows as "synced"');
  t.equal(await pageValue(page, 'window.chatmesh.state.since'), null, 'a fresh tab sends no since: it gets the mailbox');
  // The sidebar comes from the server's list of alice's conversations (her other device got them).
  await page.locator('[data-testid="conv-item"][data-conv="dm:bob"]').waitFor();
  t.equal(await page.locator('[data-testid="conv-item"]').count(), 1, 'the sidebar lists the one conversation alice has');
  t.equal(await page.locator('#events', { hasText: '"type"' }).count(), 0, 'no raw frame in the events pane');

  await openDm(page, 'bob');
  const first = await waitShown(page, 50);
  t.same(bodies(first), range('m', 11, 60), 'opening the conversation shows the newest 50, oldest first');
  inIdOrder(t, first, 'first page');
  await page.locator('#load-older').waitFor();
  await page.click('#load-older');
  const all = await waitShown(page, 60);
  t.same(bodies(all), range('m', 1, 60), '"load older" brings the other 10, above');
  inIdOrder(t, all, 'both pages');
  await page.locator('#load-older').waitFor({ state: 'hidden' });
  t.pass('"load older" is gone: nothing older is kept');

  // A message to a user with no connection is kept for them: acked `stored`, shown as such.
  await openDm(page, 'carol');
  await post(page, 'hello carol');
  const stored = page.locator('#messages [data-testid="msg"][data-status="stored"]');
  await stored.waitFor();
  t.match(await stored.locator('[data-testid="msg-status"]').textContent(), /^stored\b.*\bcarol connects$/, 'the stored ack says when it will be delivered');
  const { c: carol, synced } = await connectAs(ws, 'carol');
  t.teardown(() => carol.close());
  t.match(await carol.next('message'), { from: 'alice', to: 'carol', body: 'hello carol' }, 'carol gets it from her mailbox');
  t.match(synced, { count: 1 });
  t.same(errors, [], 'no page errors');
});

t.test('reconnect: a node restart loses nothing on screen and shows nothing twice', { skip }, async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'chatmesh-web-history-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const { page, context, errors } = await openPage(t, await browserReady!, 'dora');
  let { node, url, ws } = await start(t, { dataDir });
  const port = node.httpPort;
  const erin = await client(t, ws, 'erin');
  t.match(await erin.request({ type: 'join', id: 'j1', room: 'den' }), { type: 'ack' });

  await signIn(page, url, 'dora');
  await joinRoom(page, 'den');
  t.match(await erin.request({ type: 'publish', id: 'p1', room: 'den', body: 'room before' }), { status: 'delivered' });
  await openDm(page, 'erin');
  await post(page, 'dm before');
  // Acked first: the server gives ids in the order it receives sends, and the page shows id order.
  await page.locator('#messages [data-testid="msg"][data-status="delivered"]').first().waitFor();
  for (const body of ['live 1', 'live 2']) await erin.request({ type: 'send', id: body, to: 'dora', body });
  const before = await waitShown(page, 3);
  t.same(bodies(before), ['dm before', 'live 1', 'live 2'], 'three messages before the restart');

  // The page goes offline (its reconnects fail) while the node restarts on the same port and
  // data dir, and erin writes: the messages are kept, since dora has no connection.
  await context.setOffline(true);
  await node.stop();
  await waitDisconnected(page);
  ({ node } = await start(t, { dataDir, httpPort: port }));
  const erin2 = await client(t, ws, 'erin');
  const acks = [];
  for (let i = 1; i <= 5; i++) acks.push((await erin2.request({ type: 'send', id: `m${i}`, to: 'dora', body: `meanwhile ${i}` })).status);
  t.same(acks, Array(5).fill('stored'), 'the messages sent meanwhile were stored for dora');
  t.match(await erin2.request({ type: 'join', id: 'j2', room: 'den' }), { type: 'ack' });
  t.match(await erin2.request({ type: 'publish', id: 'p2', room: 'den', body: 'room meanwhile' }), { type: 'ack' });
  await context.setOffline(false);

  await page.waitForSelector('#conn-status[data-state="online"]', { timeout: 20_000 });
  t.match(await pageValue(page, 'window.chatmesh.state.since'), MSG_ID, 'the hello of the reconnect carried since');
  await page.locator('#sync-status', { hasText: 'synced' }).waitFor();
  const after = await waitShown(page, 8);
  t.same(bodies(after), ['dm before', 'live 1', 'live 2', ...Array.from({ length: 5 }, (_, k) => `meanwhile ${k + 1}`)],
    'the 5 sent meanwhile show after the 3 shown before');
  inIdOrder(t, after, 'conversation after the restart');
  t.same(after.slice(0, 3).map((m) => m.msg), before.map((m) => m.msg), 'the messages shown before are the same ones');

  // The room is not in dora's stream: the page catches up on it from its history after re-joining.
  await page.click('[data-testid="conv-item"][data-conv="room:den"]');
  const room = await waitShown(page, 2);
  t.same(bodies(room), ['room before', 'room meanwhile'], 'the room shows what was published meanwhile, once');
  inIdOrder(t, room, 'room after the restart');

  // Live traffic after the reconnect still shows once.
  await page.click('[data-testid="conv-item"][data-conv="dm:erin"]');
  await erin2.request({ type: 'send', id: 'm6', to: 'dora', body: 'after' });
  const last = await waitShown(page, 9);
  t.equal(last.at(-1)!.body, 'after');
  inIdOrder(t, last, 'conversation at the end');

  // A reload of the tab resumes too (sessionStorage), and the conversation comes back from history.
  await page.reload();
  await page.click('#login-btn'); // the name is remembered
  await page.waitForSelector('#conn-status[data-state="online"]');
  t.match(await pageValue(page, 'window.chatmesh.state.since'), MSG_ID, 'after a reload the hello carries since');
  await openDm(page, 'erin');
  t.same((await waitShown(page, 9)).map((m) => m.msg), last.map((m) => m.msg), 'after a reload: the same 9 messages, once each');
  t.same(errors.filter((e) => !/ERR_INTERNET_DISCONNECTED|ERR_CONNECTION_REFUSED/.test(e)), [], 'no page errors');
});

t.test('room: its history on joining, paging back, and a history error shown beside it', { skip }, async (t) => {
  const { page, errors } = await openPage(t, await browserReady!, 'fay');
  const { url, ws } = await start(t);
  const bob = await client(t, ws, 'bob');
  t.match(await bob.request({ type: 'join', id: 'j1', room: 'lobby' }), { type: 'ack' });
  for (let i = 1; i <= 55; i++) await bob.request({ type: 'publish', id: `p${i}`, room: 'lobby', body: `p${pad(i)}` });

  await signIn(page, url, 'fay');
  await joinRoom(page, 'lobby');
  const first = await waitShown(page, 50);
  t.same(bodies(first), range('p', 6, 55), 'joining the room shows its newest 50');
  t.ok(first.every((m) => m.from === 'bob'), 'from bob');
  inIdOrder(t, first, 'room page');

  // The connection leaves the room behind the page's back: its next history page is refused.
  await pageValue(page, 'window.chatmesh.sendRaw({ type: "leave", id: "raw-leave", room: "lobby" })');
  await pageValue(page, 'window.chatmesh.sendRaw({ type: "history", id: "raw-check", room: "lobby", limit: 1 })');
  await page.locator('#events [data-kind="error"]', { hasText: 'raw-check' }).waitFor({ state: 'attached' });
  await page.click('#load-older');
  const error = page.locator('#history-bar #history-status.error', { hasText: 'not_member' });
  await error.waitFor();
  t.pass('the refused history request is shown beside the conversation');
  t.equal(await page.textContent('#load-older'), 'Retry', 'with a retry button');
  t.equal((await shown(page)).length, 50, 'what was shown stays');

  // Joined again, the retry pages back to the first message.
  await joinRoom(page, 'lobby');
  await page.click('#load-older');
  const all = await waitShown(page, 55);
  t.same(bodies(all), range('p', 1, 55), 'the retry brought the 5 oldest');
  inIdOrder(t, all, 'both room pages');
  await page.locator('#load-older').waitFor({ state: 'hidden' });
  await bob.request({ type: 'publish', id: 'p56', room: 'lobby', body: 'p56' });
  t.equal((await waitShown(page, 56)).at(-1)!.body, 'p56', 'a live message after the pages shows once, last');
  t.same(errors, [], 'no page errors');
});
