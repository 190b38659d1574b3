// End-to-end test of the web client (src/web) in a real browser: Debian's Chromium driven by
// playwright-core (which downloads no browser of its own). Skipped when Chromium is missing.
//
// Part 1 runs two tabs against a real in-process chatmesh node.
// Part 2 runs the page against a small scripted WebSocket server to check the client's connection
// handling (reconnect after close 1012, re-watch, and re-join on a server without accounts; no
// retry loop after 4401).
//
// Set CHATMESH_SCREENSHOT_DIR=/some/dir to save screenshots of the two tabs.
import t, { type Test } from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { WebSocketServer, type WebSocket } from 'ws';
import { signToken } from '../../src/auth/index.js';
import { startNode } from '../../src/node.js';
import { eventually } from '../helpers/client.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const WEB_DIR = fileURLToPath(new URL('../../src/web/', import.meta.url));
const SCREENSHOT_DIR = process.env.CHATMESH_SCREENSHOT_DIR;
const skip = existsSync(CHROMIUM) ? false : `Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;

async function launch(t: Test): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  t.teardown(() => browser.close());
  return browser;
}

// Collects uncaught page errors so the test can assert the client threw none.
function watchErrors(page: Page, name: string, errors: string[]): void {
  page.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`${name} console: ${m.text()}`); });
}

// Waits until the element's text is exactly `text`. A locator, not waitForFunction: a string
// predicate is eval'd in the page, which the node's Content-Security-Policy (no 'unsafe-eval') refuses.
async function waitText(page: Page, selector: string, text: string): Promise<void> {
  await page.locator(selector).filter({ hasText: new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }).waitFor();
}

async function signIn(page: Page, url: string, user: string): Promise<void> {
  await page.goto(url);
  await page.fill('#login-user', user);
  await page.click('#login-btn');
  await waitText(page, '#me-user', user);
  await page.waitForSelector('#conn-status[data-state="online"]');
}

async function post(page: Page, body: string): Promise<void> {
  await page.waitForSelector('#compose-body:not([disabled])');
  await page.fill('#compose-body', body);
  await page.click('#compose-send');
}

// Resolves to the message element in the shown conversation from `from` whose body is `body`.
function message(page: Page, from: string, body: string) {
  return page.locator(`#messages [data-testid="msg"][data-from="${from}"]`)
    .filter({ has: page.locator('[data-testid="msg-body"]', { hasText: body }) });
}

t.test('two tabs chat through a real node', { skip }, async (t) => {
  const node = await startNode({
    httpPort: 0, meshPort: 0, adminPort: 0, host: '127.0.0.1', auth: 'dev', logLevel: 'silent',
  });
  t.teardown(() => node.stop());
  const url = `http://127.0.0.1:${node.httpPort}/`;

  const browser = await launch(t);
  // One browser context (window) per user: a tab in the background of a shared window gets no
  // animation frames, which makes every Playwright action on it wait for seconds.
  const newTab = async () => (await browser.newContext({ viewport: { width: 1100, height: 720 } })).newPage();
  const alice = await newTab();
  const bob = await newTab();
  const errors: string[] = [];
  watchErrors(alice, 'alice', errors);
  watchErrors(bob, 'bob', errors);

  await signIn(alice, url, 'alice');
  t.ok(await alice.textContent('#me-node'), 'welcome shows the node id');
  t.ok(await alice.textContent('#me-session'), 'welcome shows the session');

  // Watch bob before he is online: the dot starts offline and turns online when he signs in.
  await alice.fill('#watch-user', 'bob');
  await alice.click('#watch-btn');
  await alice.waitForSelector('[data-testid="watch-item"][data-user="bob"][data-status="offline"]');
  await signIn(bob, url, 'bob');
  await alice.waitForSelector('[data-testid="watch-item"][data-user="bob"][data-status="online"]');
  t.pass('presence dot went online');

  // Direct message alice -> bob, with markup that must show as text.
  const dm = 'hi bob <b>bold?</b> & <img src=x onerror="alert(1)">';
  await alice.fill('#dm-to', 'bob');
  await alice.click('#dm-open');
  await alice.waitForSelector('#conv-title[data-conv="dm:bob"]');
  await post(alice, dm);
  await message(alice, 'alice', dm).and(alice.locator('[data-status="delivered"]')).waitFor();
  t.pass('alice sees her DM acked as delivered');

  await bob.click('[data-testid="conv-item"][data-conv="dm:alice"]');
  const got = message(bob, 'alice', dm);
  await got.waitFor();
  t.equal(await got.locator('[data-testid="msg-body"]').textContent(), dm, 'bob sees the DM verbatim');
  t.equal(await bob.locator('#messages b, #messages img').count(), 0, 'message markup is not interpreted');

  await post(bob, 'hello alice');
  await message(alice, 'bob', 'hello alice').waitFor();
  t.pass('alice sees bob\'s reply');

  // Both join a room and post in it.
  for (const page of [alice, bob]) {
    await page.fill('#join-room', 'lobby');
    await page.click('#join-btn');
    await page.waitForSelector('[data-testid="conv-item"][data-conv="room:lobby"]');
    await page.waitForSelector('#conv-title[data-conv="room:lobby"]');
  }
  await post(alice, 'hi room');
  await message(alice, 'alice', 'hi room').and(alice.locator('[data-status="delivered"]')).waitFor();
  await message(bob, 'alice', 'hi room').waitFor();
  await post(bob, 'hey all');
  await message(alice, 'bob', 'hey all').waitFor();
  t.pass('room messages go both ways');

  // An error frame from the server is shown with its code.
  await alice.evaluate('window.chatmesh.sendRaw({ type: "no_such_frame", id: "x1" })');
  // The events pane is hidden by default (a debugging aid): the entry is there all the same.
  const errorEvent = alice.locator('#events [data-kind="error"]', { hasText: 'x1' });
  await errorEvent.waitFor({ state: 'attached' });
  t.equal(await alice.isVisible('#events-pane'), false, 'the events pane is hidden by default');
  await alice.click('#events-toggle');
  await errorEvent.waitFor();
  t.pass('the toggle shows it');
  t.match(await errorEvent.textContent(), /unknown_type/, 'error frame shown with its code');

  if (SCREENSHOT_DIR) {
    await alice.screenshot({ path: join(SCREENSHOT_DIR, 'chatmesh-alice.png') });
    await bob.screenshot({ path: join(SCREENSHOT_DIR, 'chatmesh-bob.png') });
  }

  // Bob's tab closes: his only connection is gone, alice's dot goes offline.
  await bob.close();
  await alice.waitForSelector('[data-testid="watch-item"][data-user="bob"][data-status="offline"]');
  t.pass('presence dot went offline');

  t.same(errors, [], 'no page errors');
});

// A scripted server: static files of src/web plus a WebSocket endpoint whose behaviour the test controls.
interface Scripted { url: string; sockets: WebSocket[]; frames: Array<{ conn: number; frame: Record<string, unknown> }> }

async function startScripted(t: Test): Promise<Scripted> {
  const http: Server = createServer((req, res) => {
    const name = req.url === '/' ? 'index.html' : (req.url ?? '').slice(1);
    const types: Record<string, string> = { html: 'text/html', js: 'text/javascript', css: 'text/css' };
    const type = types[name.split('.').pop() ?? ''];
    if (!/^[a-z]+\.(html|js|css)$/.test(name) || !type) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': `${type}; charset=utf-8` }).end(readFileSync(join(WEB_DIR, name)));
  });
  const wss = new WebSocketServer({ server: http, path: '/ws' });
  const s: Scripted = { url: '', sockets: [], frames: [] };
  wss.on('connection', (ws) => {
    const conn = s.sockets.push(ws);
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Record<string, unknown>;
      s.frames.push({ conn, frame });
      const send = (f: object) => ws.send(JSON.stringify(f));
      if (frame.type === 'hello') {
        if (frame.token === 'good-token') {
          send({ type: 'welcome', user: 'erin', node: 'scripted', session: `s${conn}` });
          send({ type: 'synced', count: 0 });
        } else if (frame.user === 'mallory' || frame.token !== undefined) {
          send({ type: 'error', code: 'unauthorized', message: 'no such user' });
          ws.close(4401, 'unauthorized');
        } else {
          send({ type: 'welcome', user: frame.user, node: 'scripted', session: `s${conn}` });
          send({ type: 'synced', count: 0 });
        }
      } else if (frame.type === 'rooms') {
        // A server from before accounts: joins hold per connection, so the page joins again itself.
        send({ type: 'error', id: frame.id, code: 'unknown_type', message: 'unknown frame type "rooms"' });
      } else if (frame.type === 'watch') {
        send({ type: 'ack', id: frame.id, users: Object.fromEntries((frame.users as string[]).map((u) => [u, 'online'])) });
      } else {
        send({ type: 'ack', id: frame.id });
      }
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  s.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`;
  t.teardown(async () => {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
    await new Promise((resolve) => http.close(resolve));
  });
  return s;
}

t.test('client reconnects after 1012 and stops after 4401', { skip }, async (t) => {
  const server = await startScripted(t);
  const browser = await launch(t);
  const page = await browser.newPage();
  const errors: string[] = [];
  watchErrors(page, 'carol', errors);

  await signIn(page, server.url, 'carol');
  await waitText(page, '#me-session', 's1');
  await page.fill('#join-room', 'r1');
  await page.click('#join-btn');
  await page.waitForSelector('[data-testid="conv-item"][data-conv="room:r1"]');
  await page.fill('#watch-user', 'dave');
  await page.click('#watch-btn');
  await page.waitForSelector('[data-testid="watch-item"][data-user="dave"][data-status="online"]');
  const ids = server.frames.filter((f) => f.conn === 1 && f.frame.type !== 'hello').map((f) => `${f.frame.type} ${f.frame.id}`);
  t.same(ids, ['rooms c1', 'join c2', 'history c3', 'watch c4'], 'requests carry ids c1, c2, ... (rooms first, at synced)');

  // The server restarts: the client shows the code, reconnects and sets its subscriptions up again.
  server.sockets[0]!.close(1012, 'restart');
  await page.locator('#events li', { hasText: '1012' }).waitFor({ state: 'attached' });
  await waitText(page, '#me-session', 's2');
  await page.waitForSelector('#conn-status[data-state="online"]');
  await page.waitForFunction('window.chatmesh.state.pending.size === 0');
  const again = server.frames.filter((f) => f.conn === 2).map((f) => f.frame);
  t.match(again, [{ type: 'hello', user: 'carol' }, { type: 'watch', users: ['dave'] }, { type: 'join', room: 'r1' }],
    'after the reconnect: hello, then watch and (a server without accounts) join again');

  // Bad auth: shows the login form with the reason, and does not retry.
  await page.click('#signout-btn');
  await page.waitForSelector('#login-form', { state: 'visible' });
  await page.fill('#login-user', 'mallory');
  await page.click('#login-btn');
  await page.locator('#login-error', { hasText: '4401' }).waitFor();
  t.equal(await page.evaluate('window.chatmesh.state.reconnectTimer === null && !window.chatmesh.state.wantConnected'), true,
    'no reconnect scheduled after 4401');
  t.equal(server.sockets.length, 3, 'three connections in all');

  // JWT mode: the token field goes into hello as `token`, the user comes from the welcome.
  await page.fill('#login-token', 'good-token');
  await page.click('#login-btn');
  await waitText(page, '#me-user', 'erin');
  const hello = server.frames.find((f) => f.conn === 4 && f.frame.type === 'hello');
  t.match(hello, { conn: 4, frame: { type: 'hello', token: 'good-token' } }, 'hello carries the token');
  t.notOk('user' in hello!.frame, 'and no user');
  // The scripted server has no GET /nodes: the page's reads of it fail (the browser logs the 404s), harmlessly.
  t.same(errors.filter((e) => !/status of 404/.test(e)), [], 'no page errors');
});

t.test('jwt: the page renews its token from the token URL before it expires; token_expired asks for a new one', { skip }, async (t) => {
  const secret = 'web-test-secret-0123456789';
  const node = await startNode({
    httpPort: 0, meshPort: 0, adminPort: 0, host: '127.0.0.1', auth: 'jwt', jwtSecret: secret, logLevel: 'silent',
  });
  t.teardown(() => node.stop());
  // The token source, on the page's own origin (the node's CSP allows fetches to 'self' only, so a
  // real deployment serves it beside the node, e.g. through its reverse proxy): short-lived tokens
  // (3 s), so the page renews about every 2 s; `down` breaks it.
  const issued: string[] = [];
  let down = false;
  const tokenUrl = '/auth/chat-token';
  const expMs = (token: string) => (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp * 1000;

  const browser = await launch(t);
  const page = await browser.newPage();
  const errors: string[] = [];
  watchErrors(page, 'tess', errors);
  await page.route(`**${tokenUrl}`, async (route) => {
    if (down) return route.fulfill({ status: 503, body: 'down' });
    const token = await signToken({ user: 'tess', secret, ttl: 3 });
    issued.push(token);
    return route.fulfill({ status: 200, contentType: 'text/plain', body: token });
  });
  await page.goto(`http://127.0.0.1:${node.httpPort}/?token_url=${encodeURIComponent(tokenUrl)}`);
  t.equal(await page.inputValue('#login-token-url'), tokenUrl, '?token_url fills the token URL field');
  await page.click('#login-btn');
  await waitText(page, '#me-user', 'tess');
  const first = issued[0]!;

  // Past the first token's exp the page is still connected, on a refreshed token.
  await eventually(() => Date.now() > expMs(first) + 500, 10_000, 'the first token\'s exp to pass');
  await page.waitForSelector('#conn-status[data-state="online"]');
  t.ok(node.stats.tokensRefreshed >= 1, `${node.stats.tokensRefreshed} refresh(es) accepted by the node`);
  t.equal(node.stats.tokensExpired, 0, 'no token expired');
  t.equal(await page.evaluate('window.chatmesh.state.creds.token === ' + JSON.stringify(first)), false, 'the page holds a newer token');
  t.ok(await page.locator('#events li', { hasText: 'token refreshed' }).count() >= 1, 'the renewal is logged');
  await page.fill('#watch-user', 'tess');
  await page.click('#watch-btn');
  await page.waitForSelector('[data-testid="watch-item"][data-user="tess"][data-status="online"]');
  t.pass('requests still work on the refreshed connection');

  // The token source goes away: the token runs out, the server says token_expired, the page asks for a new one.
  down = true;
  await page.locator('#login-error', { hasText: 'token expired' }).waitFor({ timeout: 10_000 });
  t.equal(node.stats.tokensExpired, 1, 'the node expired the connection');
  t.equal(await page.evaluate('window.chatmesh.state.wantConnected'), false, 'no reconnect loop');
  t.equal(await page.inputValue('#login-token'), '', 'the token field is cleared for a new token');
  // The browser itself logs the token URL's 503s; the page threw nothing.
  t.same(errors.filter((e) => !/Failed to load resource.*503/.test(e)), [], 'no page errors');
});
