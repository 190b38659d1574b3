// The web client's connection and page chrome, in headless Chromium against real in-process nodes:
// a quick first reconnect, capped jittered backoff and "reconnect now"; moving to another node
// (from GET /nodes) when its node drains; the sign-in name kept per tab; a 390 px wide screen;
// the unread count in the title and notifications while the tab is hidden, permission asked once.
// Skipped when Chromium is missing; screenshots of failing pages go to a temp dir.
import t, { type Test } from 'tap';
import type { WebSocketRoute } from 'playwright-core';
import { eventually } from '../helpers/client.js';
import { grpcNode, meshAddr, wsUrl } from '../helpers/grpc-mesh.js';
import {
  convItem, launchChromium, messageEl, openDm, openPage, pageValue, post, setHidden, signIn, skipWithoutChromium as skip,
  visibilityStub, waitUntil,
  startWebNode as start, wsClient as client,
} from '../helpers/web-page.js';

t.setTimeout(120_000);



// Messages the browser itself logs about connections that fail on purpose in these tests.
const expectedNoise = /ERR_CONNECTION_REFUSED|response code: 503|closed before the connection is established/;

const browserReady = skip ? undefined : launchChromium(t);

t.test('reconnect: the first retry within 500 ms, then jittered backoff capped at 5 s; "reconnect now"', { skip }, async (t) => {
  const { page, errors } = await openPage(t, await browserReady!, 'rita');
  const { url } = await start(t);
  // Every socket of the page goes through here: passed to the node, or (failing) closed at once.
  const sockets: Array<{ at: number; route: WebSocketRoute }> = [];
  let failing = false;
  await page.routeWebSocket((u) => u.pathname === '/ws', (ws) => {
    sockets.push({ at: Date.now(), route: ws });
    if (failing) { void ws.close({ code: 1011, reason: 'test: down' }); return; }
    ws.connectToServer();
  });
  await signIn(page, url, 'rita');
  t.equal(await page.isVisible('#reconnect-btn'), false, 'no "reconnect now" while connected');

  // A drop: the page is back within half a second.
  const dropped = Date.now();
  await sockets[0]!.route.close({ code: 1006, reason: 'test: drop' });
  await eventually(() => sockets.length === 2, 5000, 'the reconnect');
  const first = await pageValue<number>(page, 'window.chatmesh.state.reconnectDelays[0]');
  t.ok(first < 500, `the first retry was planned after ${first} ms`);
  t.ok(sockets[1]!.at - dropped < 1500, `and came ${sockets[1]!.at - dropped} ms after the drop`);
  await page.waitForSelector('#conn-status[data-state="online"]');

  // The node is down: each attempt fails; "reconnect now" retries at once, the waits grow to 5 s.
  failing = true;
  await sockets[1]!.route.close({ code: 1006, reason: 'test: drop' });
  await page.locator('#reconnect-btn').waitFor();
  t.pass('"reconnect now" shows while disconnected');
  for (let i = 0; i < 7; i++) {
    const before = sockets.length;
    const planned = await pageValue<number>(page, 'window.chatmesh.state.reconnectDelays.length');
    await page.click('#reconnect-btn');
    await eventually(() => sockets.length > before, 2000, 'an attempt at once');
    await waitUntil(page, `window.chatmesh.state.reconnectDelays.length > ${planned}`, 'the next wait');
  }
  const delays = await pageValue<number[]>(page, 'window.chatmesh.state.reconnectDelays.slice(1)');
  t.ok(delays.every((d) => d > 0 && d <= 5000), `every wait within 5 s: ${delays.join(', ')}`);
  t.ok(delays.at(-1)! >= 2500, 'the waits grew to the cap (jittered within its upper half)');
  t.ok(new Set(delays).size > 1, 'jittered and growing');

  // Back up: the next attempt (or "reconnect now") gets in.
  failing = false;
  await page.click('#reconnect-btn');
  await page.waitForSelector('#conn-status[data-state="online"]');
  await page.locator('#reconnect-btn').waitFor({ state: 'hidden' });
  t.pass('online again; the button is gone');
  t.same(errors.filter((e) => !expectedNoise.test(e)), [], 'no page errors');
});

t.test('a connection that opens but is never welcomed is dropped after 15 s and retried', { skip }, async (t) => {
  const { page, errors } = await openPage(t, await browserReady!, 'noor');
  const { url } = await start(t);
  // The first socket opens (the route answers the upgrade) but nothing ever comes back: the hello
  // is swallowed, as by a network that lost the way back. The next one goes to the node.
  const opened: number[] = [];
  await page.routeWebSocket((u) => u.pathname === '/ws', (ws) => {
    opened.push(Date.now());
    if (opened.length === 1) { ws.onMessage(() => undefined); return; }
    ws.connectToServer();
  });
  await page.goto(url);
  await page.fill('#login-user', 'noor');
  await page.click('#login-btn');
  // The event log keeps the drop; the "reconnecting" status lasts only the first backoff (125-250
  // ms), too short to be sure a poll sees it.
  await page.locator('#events li', { hasText: 'no welcome within 15 s' }).waitFor({ state: 'attached', timeout: 25_000 });
  const waited = Date.now() - opened[0]!;
  t.ok(waited >= 14_000, `dropped after ${waited} ms without a welcome`);
  t.ok(await pageValue<number>(page, 'window.chatmesh.state.reconnectDelays.length') >= 1, 'and a retry was planned');
  await page.waitForSelector('#conn-status[data-state="online"]');
  t.equal(opened.length, 2, 'the retry got in');
  t.same(errors.filter((e) => !expectedNoise.test(e)), [], 'no page errors');
});

t.test('drain: the page moves to another node from GET /nodes, and messages still work', { skip }, async (t) => {
  const { page, errors } = await openPage(t, await browserReady!, 'ada');
  const a = await grpcNode(t, { id: 'node-a', auth: 'dev' });
  const b = await grpcNode(t, { id: 'node-b', auth: 'dev', peers: [meshAddr(a)] });
  await eventually(() => a.peers.upLinks().size === 1 && b.peers.upLinks().size === 1, 10_000, 'a and b linked');
  const bob = await client(t, wsUrl(b), 'bob');

  await signIn(page, `http://127.0.0.1:${a.httpPort}/`, 'ada');
  t.equal(await page.textContent('#me-node'), 'node-a');
  const nodes = await waitUntil<Array<{ id: string; url: string }>>(page,
    'window.chatmesh.state.nodes.length === 2 && window.chatmesh.state.nodes', 'the list of nodes');
  t.same(nodes.map((n) => n.id).sort(), ['node-a', 'node-b'], 'the page read GET /nodes');
  await openDm(page, 'bob');
  await post(page, 'before the drain');
  t.match(await bob.next('message'), { from: 'ada', body: 'before the drain' });

  await a.drain();
  await page.locator('#me-node', { hasText: /^node-b$/ }).waitFor({ timeout: 15_000 });
  await page.waitForSelector('#conn-status[data-state="online"]');
  t.equal(await pageValue(page, 'window.chatmesh.state.url'), wsUrl(b), 'the page moved to node b\'s URL');
  t.equal(b.stats.connections, 2, 'b holds the page and bob');

  await post(page, 'after the drain');
  await messageEl(page, 'ada', 'after the drain').and(page.locator('[data-status="delivered"]')).waitFor();
  t.match(await bob.next('message'), { from: 'ada', body: 'after the drain' }, 'bob got the message sent through b');
  bob.send({ type: 'send', id: 's1', to: 'ada', body: 'welcome to b' });
  await messageEl(page, 'bob', 'welcome to b').waitFor();
  t.pass('and the reply');

  // The page's own node goes away for good: reading the list fails (node a refuses; node b is
  // another origin, which the page's Content-Security-Policy may refuse), harmlessly.
  const listBefore = await pageValue(page, 'window.chatmesh.state.nodes');
  await a.stop();
  t.equal(await pageValue(page, 'window.chatmesh.refreshNodes()'), await pageValue(page, 'window.chatmesh.refreshNodes()'),
    'a second read of the list ends like the first');
  const ids = await pageValue<string[]>(page, 'window.chatmesh.state.nodes.map((n) => n.id)');
  t.ok(JSON.stringify(await pageValue(page, 'window.chatmesh.state.nodes')) === JSON.stringify(listBefore) || ids.join() === 'node-b',
    `the list stays as it was (or is b's own, where the policy allows reading it): ${ids.join(', ')}`);
  t.ok(errors.filter((e) => /Connecting to .*\/nodes.*Content Security Policy/.test(e)).length <= 1,
    'a read the policy refuses is not tried again');
  t.equal(await pageValue(page, 'window.chatmesh.state.url'), wsUrl(b), 'the page stays on b');
  await page.waitForSelector('#conn-status[data-state="online"]');
  t.same(errors.filter((e) => !expectedNoise.test(e) && !/Content Security Policy|ERR_CONNECTION_REFUSED|Failed to fetch/.test(e)), [], 'no page errors');
});

t.test('the sign-in name is kept per tab, not per browser', { skip }, async (t) => {
  const browser = await browserReady!;
  const { url } = await start(t);
  const { page: one, context, errors } = await openPage(t, browser, 'tab-alice');
  await signIn(one, url, 'alice');
  const { page: two, errors: errors2 } = await openPage(t, browser, 'tab-bob', { context });
  await two.goto(url);
  t.equal(await two.inputValue('#login-user'), '', 'a new tab of the same browser does not open as alice');
  await signIn(two, url, 'bob');
  await one.reload();
  t.equal(await one.inputValue('#login-user'), 'alice', 'alice\'s tab, reloaded, still says alice');
  await two.reload();
  t.equal(await two.inputValue('#login-user'), 'bob', 'bob\'s tab says bob');
  t.same([...errors, ...errors2], [], 'no page errors');
});

t.test('390 px wide: no horizontal scrolling, the box and Send visible, the sidebar behind a toggle', { skip }, async (t) => {
  const { page, errors } = await openPage(t, await browserReady!, 'phone', { viewport: { width: 390, height: 844 } });
  const { url, ws } = await start(t);
  const bob = await client(t, ws, 'bob');
  const noSideScroll = () => pageValue<boolean>(page, 'document.documentElement.scrollWidth <= 390');
  await page.goto(url);
  t.ok(await noSideScroll(), 'the sign-in form fits');
  await signIn(page, url, 'pia');
  t.ok(await noSideScroll(), 'signed in: no horizontal scrollbar');
  t.equal(await page.isVisible('#sidebar'), false, 'the sidebar is folded away');
  await page.click('#sidebar-toggle');
  await page.locator('#sidebar').waitFor();
  t.ok(await noSideScroll(), 'the sidebar open fits too');
  await openDm(page, 'bob');
  await page.locator('#sidebar').waitFor({ state: 'hidden' });
  t.pass('picking a conversation folds the sidebar again');
  t.ok(await page.isVisible('#compose-body'), 'the message box is visible');
  t.ok(await page.isVisible('#compose-send'), 'the Send button is visible');
  const send = await page.locator('#compose-send').boundingBox();
  t.ok(send && send.x + send.width <= 390, 'Send is within the screen');
  bob.send({ type: 'send', id: 'long', to: 'pia', body: `a-long-word-${'x'.repeat(300)} and a line` });
  await page.locator('#messages [data-testid="msg"][data-from="bob"]').waitFor();
  await post(page, 'fits');
  await messageEl(page, 'pia', 'fits').waitFor();
  t.ok(await noSideScroll(), 'a long message wraps: still no horizontal scrollbar');
  t.same(errors, [], 'no page errors');
});

// A stub of the Notification API that records what the page does with it.
const notificationStub = (answer: 'granted' | 'denied') => `(() => {
  window.__notes = []; window.__asks = 0;
  let permission = 'default';
  class Stub {
    constructor(title, opts) { window.__notes.push({ title, body: opts && opts.body }); }
    close() {}
    static get permission() { return permission; }
    static requestPermission() { window.__asks += 1; permission = ${JSON.stringify(answer)}; return Promise.resolve(permission); }
  }
  window.Notification = Stub;
})();`;
const stubs = (answer: 'granted' | 'denied') => [visibilityStub, notificationStub(answer)];

t.test('hidden tab: unread count in the title, a notification per message; permission asked once, on a user action', { skip }, async (t) => {
  const browser = await browserReady!;
  const { url, ws } = await start(t);
  const bob = await client(t, ws, 'bob');
  const { page, errors } = await openPage(t, browser, 'hana', { initScripts: stubs('granted') });
  await page.goto(url);
  t.equal(await pageValue(page, 'window.__asks'), 0, 'not asked on load');
  await signIn(page, url, 'hana');
  t.equal(await pageValue(page, 'window.__asks'), 1, 'asked at the first user action');
  await openDm(page, 'bob');
  await page.click('#conv-title');
  t.equal(await pageValue(page, 'window.__asks'), 1, 'and never again');

  bob.send({ type: 'send', id: 'v1', to: 'hana', body: 'while you look' });
  await messageEl(page, 'bob', 'while you look').waitFor();
  t.equal(await page.title(), 'chatmesh', 'visible: a plain title');
  t.same(await pageValue(page, 'window.__notes'), [], 'and no notification');

  await setHidden(page, true);
  for (let i = 1; i <= 3; i++) bob.send({ type: 'send', id: `h${i}`, to: 'hana', body: `hidden ${i}` });
  await waitUntil(page, 'document.title === "(3) chatmesh"', 'the title to count 3');
  t.pass('hidden: "(3) chatmesh"');
  t.same(await pageValue(page, 'window.__notes'), [1, 2, 3].map((i) => ({ title: 'bob', body: `hidden ${i}` })), 'a notification for each');
  await setHidden(page, false);
  await waitUntil(page, 'document.title === "chatmesh"', 'the plain title');
  t.pass('visible again: the count goes');
  t.same(errors, [], 'no page errors');

  // Denied: asked once, no notifications, never asked again (also after a reload).
  const { page: other, errors: errors2 } = await openPage(t, browser, 'ivy', { initScripts: stubs('denied') });
  await signIn(other, url, 'ivy');
  await other.click('#conv-title');
  t.equal(await pageValue(other, 'window.__asks'), 1, 'asked once');
  await setHidden(other, true);
  bob.send({ type: 'send', id: 'd1', to: 'ivy', body: 'denied' });
  await waitUntil(other, 'document.title === "(1) chatmesh"', 'the title to count 1');
  t.same(await pageValue(other, 'window.__notes'), [], 'denied: no notification, the title still counts');
  await other.reload();
  await other.click('#login-btn');
  await other.waitForSelector('#conn-status[data-state="online"]');
  await other.click('#conv-title');
  t.equal(await pageValue(other, 'window.__asks'), 0, 'after a reload: not asked again');
  t.equal(await convItem(other, 'dm:bob').count(), 1, 'the conversation is listed after the reload');
  t.same(errors2, [], 'no page errors');
});
