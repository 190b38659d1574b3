// The web client on the server's accounts (protocol.md "Accounts"), in headless Chromium against a
// real in-process node: the sidebar from `conversations` and `rooms` with unread counts, previews
// and online dots; membership followed live on every device (`joined` / `left`); a room's roster
// (`members`, paged); typing; read state ("seen", badges cleared on every device).
// Skipped when Chromium is missing; screenshots of failing pages go to a temp dir.
import t, { type Test } from 'tap';
import type { Page } from 'playwright-core';
import { connectAs } from '../helpers/client.js';
import {
  convItem, joinRoom, launchChromium, messageEl, openDm, openPage, pageValue, post, setHidden, signIn,
  skipWithoutChromium as skip, visibilityStub, waitShown, waitUnread, waitUntil,
  startWebNode as start, wsClient as client,
} from '../helpers/web-page.js';

t.setTimeout(180_000);



/** The sidebar's conversation keys, top to bottom. */
const sidebar = (page: Page) => pageValue<string[]>(page,
  `[...document.querySelectorAll('#conv-list [data-testid="conv-item"]')].map((li) => li.dataset.conv)`);
const preview = (page: Page, key: string) => convItem(page, key).locator('[data-testid="conv-preview"]').textContent();

const browserReady = skip ? undefined : launchChromium(t);

t.test('sidebar: conversations and rooms from the server, unread, previews, dots; membership on every device', { skip }, async (t) => {
  const browser = await browserReady!;
  const { url, ws } = await start(t);
  const bob = await client(t, ws, 'bob');
  const carol = await client(t, ws, 'carol');
  t.match(await bob.request({ type: 'join', id: 'j1', room: 'lobby' }), { type: 'ack' });
  t.match(await bob.request({ type: 'publish', id: 'p1', room: 'lobby', body: 'room hello' }), { type: 'ack' });
  // Kept for alice (no device yet), bob's first, then carol's: carol's conversation is the most recent.
  for (const body of ['dm 1', 'dm 2']) t.match(await bob.request({ type: 'send', id: body, to: 'alice', body }), { status: 'stored' });
  t.match(await carol.request({ type: 'send', id: 'c1', to: 'alice', body: 'from carol' }), { status: 'stored' });
  await carol.close();

  const { page: one, errors } = await openPage(t, browser, 'alice-1');
  await signIn(one, url, 'alice');
  await waitUnread(one, 'dm:bob', 2);
  t.same(await sidebar(one), ['dm:carol', 'dm:bob'], 'most recent first');
  t.equal(await one.getAttribute('#conv-title', 'data-conv'), 'dm:carol', 'the most recent conversation is shown');
  t.equal(await preview(one, 'dm:bob'), 'dm 2', 'the last message as preview');
  await convItem(one, 'dm:bob').and(one.locator('[data-status="online"]')).waitFor();
  await convItem(one, 'dm:carol').and(one.locator('[data-status="offline"]')).waitFor();
  t.pass('online dots of the partners: bob online, carol offline');

  // A second device finds the same conversations, and the unread count the server keeps.
  const { page: two, errors: errors2 } = await openPage(t, browser, 'alice-2');
  await signIn(two, url, 'alice');
  await waitUnread(two, 'dm:bob', 2);
  t.same(await sidebar(two), ['dm:carol', 'dm:bob'], 'the second device: the same list');

  // Joining on one device shows the room on the other; leaving there removes it here.
  await joinRoom(one, 'lobby');
  await convItem(two, 'room:lobby').waitFor();
  t.pass('joined on device 1: the room shows on device 2');
  t.equal((await sidebar(two))[0], 'room:lobby', 'at the top');
  await convItem(two, 'room:lobby').locator('[data-testid="leave-btn"]').click();
  await convItem(one, 'room:lobby').waitFor({ state: 'detached' });
  t.pass('left on device 2: gone from device 1');
  await joinRoom(two, 'lobby');
  await waitShown(two, 1);
  await convItem(one, 'room:lobby').waitFor();
  // Neither device shows the room (one that did would read the next message at once, on both).
  await two.click('[data-testid="conv-item"][data-conv="dm:carol"]');
  await two.waitForSelector('#conv-title[data-conv="dm:carol"]');
  t.not(await one.getAttribute('#conv-title', 'data-conv'), 'room:lobby');
  bob.send({ type: 'publish', id: 'p2', room: 'lobby', body: 'welcome back' });
  await waitUnread(one, 'room:lobby', 1);
  await waitUnread(two, 'room:lobby', 1);
  t.equal(await preview(one, 'room:lobby'), 'bob: welcome back', 'a room\'s preview names the sender');

  // A new device: rooms and conversations, with members and unread, from the server.
  const { page: three, errors: errors3 } = await openPage(t, browser, 'alice-3');
  await signIn(three, url, 'alice');
  await convItem(three, 'room:lobby').waitFor();
  t.same(await sidebar(three), ['room:lobby', 'dm:carol', 'dm:bob'], 'the new device lists the room and the conversations');
  t.equal(await preview(three, 'room:lobby'), 'bob: welcome back');
  t.same([...errors, ...errors2, ...errors3], [], 'no page errors');
});

t.test('sidebar: "older conversations" pages back past the first 50', { skip }, async (t) => {
  const { url, ws } = await start(t);
  // 52 people each write to paula (kept for her), oldest first: u00 ... u51.
  for (let i = 0; i < 52; i++) {
    const { c } = await connectAs(ws, `u${String(i).padStart(2, '0')}`);
    await c.request({ type: 'send', id: 's', to: 'paula', body: `from u${i}` });
    await c.close();
  }
  const { page, errors } = await openPage(t, await browserReady!, 'paula');
  await signIn(page, url, 'paula');
  await page.locator('#conv-more').waitFor();
  const first = await sidebar(page);
  t.equal(first.length, 52, 'the mailbox brought all 52 (each conversation is listed once)');
  // A new device whose mailbox is empty lists the newest 50 from the server, then the rest.
  const { page: other, errors: errors2 } = await openPage(t, await browserReady!, 'paula-2');
  await signIn(other, url, 'paula');
  await other.locator('#conv-more').waitFor();
  const list = await sidebar(other);
  t.equal(list.length, 50, 'a second device: the newest 50');
  t.equal(list[0], 'dm:u51', 'most recent first');
  await other.click('#conv-more');
  await waitUntil(other, `document.querySelectorAll('#conv-list [data-testid="conv-item"]').length === 52`, 'all 52');
  await other.locator('#conv-more').waitFor({ state: 'hidden' });
  t.equal((await sidebar(other)).at(-1), 'dm:u00', 'the oldest last');
  t.same([...errors, ...errors2], [], 'no page errors');
});

t.test('roster: a room shows its members with online dots, a page at a time', { skip }, async (t) => {
  const { url, ws } = await start(t);
  const bob = await client(t, ws, 'bob');
  t.match(await bob.request({ type: 'join', id: 'j', room: 'big' }), { type: 'ack' });
  // 105 more members, offline (membership is the user's, not the connection's).
  const joins = Array.from({ length: 105 }, async (_, i) => {
    const { c } = await connectAs(ws, `m${String(i).padStart(3, '0')}`);
    await c.request({ type: 'join', id: 'j', room: 'big' });
    await c.close();
  });
  await Promise.all(joins);

  const { page, errors } = await openPage(t, await browserReady!, 'olga');
  await signIn(page, url, 'olga');
  await joinRoom(page, 'big');
  const members = page.locator('#roster-list [data-testid="member"]');
  await waitUntil(page, `document.querySelectorAll('#roster-list [data-testid="member"]').length === 100`, 'the first 100 members');
  t.ok(await page.isVisible('#roster-more'), '"more members" is offered');
  await page.click('#roster-more');
  await waitUntil(page, `document.querySelectorAll('#roster-list [data-testid="member"]').length === 107`, 'all 107 members');
  await page.locator('#roster-more').waitFor({ state: 'hidden' });
  t.pass('the second page brings the rest');
  const users = await members.evaluateAll((els) => els.map((e) => e.getAttribute('data-user')));
  t.same(users, [...users].sort(), 'in user id order');
  t.equal(await page.getAttribute('#roster-list [data-user="bob"]', 'data-status'), 'online', 'bob online');
  t.equal(await page.getAttribute('#roster-list [data-user="m000"]', 'data-status'), 'offline', 'm000 offline');
  t.equal(await page.getAttribute('#roster-list [data-user="olga"]', 'data-status'), 'online', 'and olga herself');
  await bob.close();
  await page.locator('#roster-list [data-user="bob"][data-status="offline"]').waitFor();
  t.pass('bob\'s dot follows him offline');
  await openDm(page, 'm000');
  t.equal(await page.isVisible('#roster'), false, 'a conversation shows no roster');
  t.same(errors, [], 'no page errors');
});

t.test('typing: "bob is typing…" for a few seconds, one frame per 2 s, not for one\'s own devices', { skip }, async (t) => {
  const browser = await browserReady!;
  const { url } = await start(t);
  // Counts the `typing` frames the page sends.
  const countTyping = `(() => {
    window.__typing = 0; window.__typingAt = 0;
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (d) {
      if (typeof d === 'string' && d.includes('"type":"typing"')) { window.__typing += 1; window.__typingAt = Date.now(); }
      return send.call(this, d);
    };
  })();`;
  const { page: bob, errors } = await openPage(t, browser, 'bob', { initScripts: [countTyping] });
  const { page: alice, errors: errors2 } = await openPage(t, browser, 'alice');
  const { page: alice2, errors: errors3 } = await openPage(t, browser, 'alice-2');
  await signIn(bob, url, 'bob');
  await signIn(alice, url, 'alice');
  await openDm(alice, 'bob');
  await openDm(bob, 'alice');

  await bob.locator('#compose-body').pressSequentially('hello the');
  await alice.locator('#typing', { hasText: /^bob is typing…$/ }).waitFor();
  t.pass('alice sees "bob is typing…"');
  t.equal(await pageValue(bob, 'window.__typing'), 1, 'nine keys within 2 s: one typing frame');
  t.equal(await convItem(alice, 'dm:bob').locator('[data-testid="conv-preview"]').textContent(), 'bob is typing…', 'in the sidebar too');
  await bob.keyboard.press('Enter');
  await messageEl(alice, 'bob', 'hello the').waitFor();
  await alice.locator('#typing', { hasText: 'typing' }).waitFor({ state: 'detached' }).catch(() => undefined);
  t.equal(await alice.textContent('#typing'), '', 'his message ends it');

  // The next one may go 2 s after the last (the server forwards no more either).
  await waitUntil(bob, 'Date.now() - window.__typingAt > 2300', '2.2 s since the last typing frame', 5000);
  await bob.locator('#compose-body').pressSequentially('x');
  await alice.locator('#typing', { hasText: 'bob is typing…' }).waitFor();
  t.equal(await pageValue(bob, 'window.__typing'), 2, 'a second typing frame');
  const shownAt = Date.now();
  await waitUntil(alice, `document.getElementById('typing').textContent === ''`, 'typing to go away', 15_000);
  const lasted = Date.now() - shownAt;
  t.ok(lasted > 3000 && lasted < 12_000, `without more typing it goes after about 5 s (${lasted} ms)`);

  // A room: members see "alice is typing…"; alice's other device does not.
  await joinRoom(alice, 'den');
  await joinRoom(bob, 'den');
  await signIn(alice2, url, 'alice');
  await alice2.click('[data-testid="conv-item"][data-conv="room:den"]');
  await alice2.waitForSelector('#conv-title[data-conv="room:den"]');
  await alice.locator('#compose-body').pressSequentially('hi all');
  await bob.locator('#typing', { hasText: /^alice is typing…$/ }).waitFor();
  t.pass('bob sees "alice is typing…" in the room');
  t.equal(await alice2.textContent('#typing'), '', 'alice\'s other device shows nothing for her own typing');
  t.same([...errors, ...errors2, ...errors3], [], 'no page errors');
});

t.test('read state: "seen" under the last message read, badges cleared on every device', { skip }, async (t) => {
  const browser = await browserReady!;
  const { url, ws } = await start(t);
  const carol = await client(t, ws, 'carol');
  const { page: alice, errors } = await openPage(t, browser, 'alice');
  const { page: bob1, errors: errors1 } = await openPage(t, browser, 'bob-1', { initScripts: [visibilityStub] });
  const { page: bob2, errors: errors2 } = await openPage(t, browser, 'bob-2');
  await signIn(alice, url, 'alice');
  await signIn(bob1, url, 'bob');
  await signIn(bob2, url, 'bob');
  await openDm(alice, 'bob');
  await openDm(bob1, 'alice');
  carol.send({ type: 'send', id: 'c1', to: 'bob', body: 'hi from carol' });
  await convItem(bob2, 'dm:carol').waitFor();
  await bob2.click('[data-testid="conv-item"][data-conv="dm:carol"]');

  // bob's first device shows the conversation but is hidden: nothing is read yet.
  await setHidden(bob1, true);
  await post(alice, 'one');
  await post(alice, 'two');
  await waitUnread(bob2, 'dm:alice', 2);
  await waitUnread(bob1, 'dm:alice', 2);
  t.pass('both of bob\'s devices count 2 unread');
  t.equal(await alice.locator('[data-testid="seen"]').count(), 0, 'not seen yet');

  // It becomes visible: it reads; every device of bob clears the badge; alice sees "seen".
  await setHidden(bob1, false);
  await waitUnread(bob2, 'dm:alice', 0);
  await waitUnread(bob1, 'dm:alice', 0);
  t.pass('badges cleared on both devices');
  const seen = messageEl(alice, 'alice', 'two').locator('[data-testid="seen"]');
  await seen.waitFor();
  t.equal(await alice.locator('[data-testid="seen"]').count(), 1, '"seen" under the last message read, once');

  // Another message while bob looks away: "seen" stays, then moves when he looks.
  await setHidden(bob1, true);
  await post(alice, 'three');
  await waitUnread(bob2, 'dm:alice', 1);
  t.ok(await seen.isVisible(), '"seen" stays under "two"');
  await setHidden(bob1, false);
  await messageEl(alice, 'alice', 'three').locator('[data-testid="seen"]').waitFor();
  t.equal(await alice.locator('[data-testid="seen"]').count(), 1, 'and moves to "three"');
  await waitUnread(bob2, 'dm:alice', 0);

  // A device that opens later starts with no unread for what was read, and reads what it shows.
  await post(alice, 'four');
  await waitUnread(bob2, 'dm:alice', 0); // bob1 reads it at once
  const { page: bob3, errors: errors3 } = await openPage(t, browser, 'bob-3');
  await signIn(bob3, url, 'bob');
  await convItem(bob3, 'dm:alice').waitFor();
  t.equal(await convItem(bob3, 'dm:alice').getAttribute('data-unread'), '0', 'a new device: nothing unread');
  // A new device of alice (or a reload) shows "seen" too: the conversations list says how far bob read.
  const { page: alice2, errors: errors4 } = await openPage(t, browser, 'alice-2');
  await signIn(alice2, url, 'alice');
  await openDm(alice2, 'bob');
  await messageEl(alice2, 'alice', 'four').locator('[data-testid="seen"]').waitFor();
  t.equal(await alice2.locator('[data-testid="seen"]').count(), 1, '"seen" after a reload, under the last message read');
  t.same([...errors, ...errors1, ...errors2, ...errors3, ...errors4], [], 'no page errors');
});
