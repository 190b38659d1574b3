/**
 * Driving the web client (src/web) in Debian's Chromium through playwright-core (which downloads no
 * browser of its own): launch, sign in, read what a conversation shows.
 */
import type { Test } from 'tap';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

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

/**
 * A page in a browser context of its own (a background tab of a shared window gets no animation
 * frames, which slows every action on it), with its uncaught errors collected in `errors`. When `t`
 * fails, a screenshot goes to CHATMESH_SCREENSHOT_DIR (default .tap/screenshots).
 */
export async function openPage(t: Test, browser: Browser, name: string): Promise<{ page: Page; context: BrowserContext; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`${name} console: ${m.text()}`); });
  t.teardown(async () => {
    if (!t.passing() && !page.isClosed()) {
      const dir = process.env.CHATMESH_SCREENSHOT_DIR ?? join('.tap', 'screenshots');
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `web-history-${name}.png`);
      await page.screenshot({ path: file, fullPage: true }).then(() => t.comment(`screenshot: ${file}`), () => undefined);
    }
    await context.close();
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
