/**
 * Driving the web client (src/web) in Debian's Chromium through playwright-core (which downloads no
 * browser of its own): launch, sign in, read what a conversation shows.
 */
import type { Test } from 'tap';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startNode, type ChatNode } from '../../src/node.js';
import type { NodeConfigInput } from '../../src/config/index.js';
import { connectAs, type TestClient } from './client.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** A tap `skip` reason when Chromium is missing, else false. */
export const skipWithoutChromium: string | false = existsSync(CHROMIUM)
  ? false
  : `Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;

/** Launches headless Chromium; closed at the end of `t`. */
export async function launchChromium(t: Test): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  t.teardown(() => browser.close());
  return browser;
}

/** Where screenshots of failing pages go: CHATMESH_SCREENSHOT_DIR, else a folder in the OS temp dir. */
export const SCREENSHOT_DIR = process.env.CHATMESH_SCREENSHOT_DIR ?? join(tmpdir(), 'chatmesh-web-screenshots');

/** Options of a test page. */
export interface PageOptions {
  /** Viewport (default 1100x720). */
  readonly viewport?: { width: number; height: number };
  /** Scripts run in the page before its own (e.g. stubs of browser APIs). */
  readonly initScripts?: readonly string[];
  /** An existing context to open the page in (a second tab of the same browser profile). */
  readonly context?: BrowserContext;
}

/**
 * A page in a browser context of its own (a background tab of a shared window gets no animation
 * frames, which slows every action on it), with its uncaught errors collected in `errors`. When `t`
 * fails, a screenshot goes to SCREENSHOT_DIR (outside the repo) and its path is printed.
 */
export async function openPage(t: Test, browser: Browser, name: string, opts: PageOptions = {}): Promise<{ page: Page; context: BrowserContext; errors: string[] }> {
  const own = !opts.context;
  const context = opts.context ?? await browser.newContext({ viewport: opts.viewport ?? { width: 1100, height: 720 } });
  for (const script of opts.initScripts ?? []) await context.addInitScript(script);
  const page = await context.newPage();
  if (opts.context && opts.viewport) await page.setViewportSize(opts.viewport);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`${name} console: ${m.text()}`); });
  t.teardown(async () => {
    if (!t.passing() && !page.isClosed()) {
      mkdirSync(SCREENSHOT_DIR, { recursive: true });
      const file = join(SCREENSHOT_DIR, `${basename(process.argv[1] ?? 'web', '.ts').replace(/\.test$/, '')}-${name}-${Date.now()}.png`);
      await page.screenshot({ path: file, fullPage: true }).then(() => {
        t.comment(`screenshot: ${file}`);
        console.error(`screenshot of the failing page ${name}: ${file}`);
      }, () => undefined);
      // What the page saw, for a failure seen only in CI's log: its status and its last events.
      const seen = await page.evaluate<{ status: string; events: string[] }>(`({
        status: document.querySelector('#conn-status')?.textContent ?? '',
        events: [...document.querySelectorAll('#events li')].slice(-20).map((li) => li.textContent ?? ''),
      })`).catch(() => null);
      if (seen) console.error(`page ${name}: status "${seen.status}"; last events:\n  ${seen.events.join('\n  ')}\npage errors: ${errors.join('; ') || 'none'}`);
    }
    if (own) await context.close(); else await page.close().catch(() => undefined);
  });
  return { page, context, errors };
}

/** Signs in with a name (dev auth) and waits for the welcome. */
export async function signIn(page: Page, url: string, user: string): Promise<void> {
  await page.goto(url);
  await page.fill('#login-user', user);
  await page.click('#login-btn');
  await page.locator('#me-user', { hasText: new RegExp(`^${user}$`) }).waitFor();
  await page.waitForSelector('#conn-status[data-state="online"]');
}

/** Opens the direct conversation with `user` from the sidebar form. */
export async function openDm(page: Page, user: string): Promise<void> {
  await page.fill('#dm-to', user);
  await page.click('#dm-open');
  await page.waitForSelector(`#conv-title[data-conv="dm:${user}"]`);
}

/** Joins `room` from the sidebar form; the room is then shown. */
export async function joinRoom(page: Page, room: string): Promise<void> {
  await page.fill('#join-room', room);
  await page.click('#join-btn');
  await page.waitForSelector(`#conv-title[data-conv="room:${room}"]`);
}

/** Writes `body` in the compose box and sends it. */
export async function post(page: Page, body: string): Promise<void> {
  await page.waitForSelector('#compose-body:not([disabled])');
  await page.fill('#compose-body', body);
  await page.click('#compose-send');
}

/** One message as the shown conversation lists it. */
export interface ShownMessage { msg: string; from: string; body: string; status: string }

/** The messages of the shown conversation, top to bottom. */
export function shown(page: Page): Promise<ShownMessage[]> {
  return pageValue<ShownMessage[]>(page, `[...document.querySelectorAll('#messages [data-testid="msg"]')].map((li) => ({
    msg: li.dataset.msg ?? '', from: li.dataset.from ?? '', status: li.dataset.status ?? '',
    body: li.querySelector('[data-testid="msg-body"]')?.textContent ?? '',
  }))`);
}

/** Waits until the shown conversation lists exactly `n` messages; resolves with them. */
export async function waitShown(page: Page, n: number, timeoutMs = 10_000): Promise<ShownMessage[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const list = await shown(page);
    if (list.length === n) return list;
    if (Date.now() > deadline) throw new Error(`expected ${n} messages on screen, got ${list.length}: ${list.map((m) => m.body).join(', ')}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A page expression's value (evaluated through the debugger, so the page's CSP allows it). */
export function pageValue<T>(page: Page, expression: string): Promise<T> {
  return page.evaluate(expression) as Promise<T>;
}

/**
 * Waits until the page has noticed that its connection dropped and is retrying: not welcomed, and
 * at least one attempt planned since (both stay so until the next welcome; the "reconnecting"
 * status alone alternates with "connecting" and can be too brief for a poll to see).
 */
export async function waitDisconnected(page: Page, timeoutMs = 30_000): Promise<void> {
  await waitUntil(page, '!window.chatmesh.state.welcomed && window.chatmesh.state.attempt > 0', 'the page to notice the drop and retry', timeoutMs);
}

/**
 * Waits until a page expression is truthy (polled through the debugger: the node's CSP refuses
 * string predicates evaluated in the page); resolves with its value. No sleeps in tests: a deadline.
 */
export async function waitUntil<T>(page: Page, expression: string, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pageValue<T>(page, expression);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${expression})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The sidebar entry of conversation `key` ("dm:bob", "room:lobby"). */
export function convItem(page: Page, key: string) {
  return page.locator(`[data-testid="conv-item"][data-conv="${key}"]`);
}

/** The unread count the sidebar shows for `key` (0 without a badge). */
export async function unreadOf(page: Page, key: string): Promise<number> {
  return Number(await convItem(page, key).getAttribute('data-unread') ?? '0');
}

/** Waits until the sidebar shows `n` unread for `key`. */
export async function waitUnread(page: Page, key: string, n: number): Promise<void> {
  await convItem(page, key).and(page.locator(`[data-unread="${n}"]`)).waitFor();
}

/** Escapes a string for a RegExp. */
export const reEscape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The message of the shown conversation from `from` whose body is exactly `body`. */
export function messageEl(page: Page, from: string, body: string) {
  return page.locator(`#messages [data-testid="msg"][data-from="${from}"]`)
    .filter({ has: page.locator('[data-testid="msg-body"]', { hasText: new RegExp(`^${reEscape(body)}$`) }) });
}

/**
 * An init script that makes the tab's visibility settable: `document.visibilityState` is "hidden"
 * while `window.__hidden` is true (see setHidden).
 */
export const visibilityStub = `(() => {
  window.__hidden = false;
  Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get() { return window.__hidden ? 'hidden' : 'visible'; } });
  Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get() { return Boolean(window.__hidden); } });
})();`;

/** Hides or shows the tab (a page opened with visibilityStub), firing `visibilitychange`. */
export function setHidden(page: Page, hidden: boolean): Promise<unknown> {
  return pageValue(page, `window.__hidden = ${hidden}; document.dispatchEvent(new Event('visibilitychange')); true`);
}

/** A node for a page to sign in to (in this process, dev auth, free ports); stopped with the test. */
export async function startWebNode(t: Test, input: NodeConfigInput = {}): Promise<{ node: ChatNode; url: string; ws: string }> {
  const node = await startNode({ host: '127.0.0.1', httpPort: 0, meshPort: 0, adminPort: 0, auth: 'dev', logLevel: 'silent', ...input });
  t.teardown(() => node.stop());
  return { node, url: `http://127.0.0.1:${node.httpPort}/`, ws: `ws://127.0.0.1:${node.httpPort}/ws` };
}

/** A WebSocket client signed in as `user` (the other party of a page); closed with the test. */
export async function wsClient(t: Test, ws: string, user: string): Promise<TestClient> {
  const { c } = await connectAs(ws, user);
  t.teardown(() => c.close());
  return c;
}
