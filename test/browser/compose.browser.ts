// The web client's compose box, in headless Chromium against a real in-process node: errors show
// beside the input and never erase the text (too large, a bad room name, `not_member`,
// `unavailable`); while disconnected the box stays open, messages wait ("waiting to send") and go
// out in order on reconnect, and each conversation keeps its unsent text; a note to oneself shows
// as delivered. Skipped when Chromium is missing; screenshots of failing pages go to a temp dir.
import t, { type Test } from 'tap';
import {
  joinRoom, launchChromium, messageEl, openDm, openPage, pageValue, post, signIn, skipWithoutChromium as skip,
  waitDisconnected, waitShown, waitUntil,
  startWebNode as start, wsClient as client,
} from '../helpers/web-page.js';

t.setTimeout(120_000);



const browserReady = skip ? undefined : launchChromium(t);

t.test('errors show beside the input and the text stays: too large, bad room name, not_member, unavailable', { skip }, async (t) => {
  const { page, errors } = await openPage(t, await browserReady!, 'alice');
  const { url } = await start(t);
  // The page's socket goes through the test: a `send` whose body is "please fail" is answered
  // `unavailable` here (as when the mesh cannot route it); everything else passes to the node.
  await page.routeWebSocket((u) => u.pathname === '/ws', (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((data) => {
      const f = JSON.parse(String(data)) as { type: string; id?: string; body?: string };
      if (f.type === 'send' && f.body === 'please fail') {
        ws.send(JSON.stringify({ type: 'error', id: f.id, code: 'unavailable', message: 'no route to bob right now' }));
      } else server.send(data);
    });
  });
  await signIn(page, url, 'alice');
  await openDm(page, 'bob');

  // Over 16 KiB of UTF-8 (8,193 two-byte characters): refused here, with the reason, text kept.
  const big = 'é'.repeat(8193);
  await page.fill('#compose-body', big);
  const tooLong = page.locator('#compose-error', { hasText: /Too long: 16,386 bytes.*16 KiB/ });
  await tooLong.waitFor();
  t.pass('the size shows as soon as it is too long');
  await page.click('#compose-send');
  t.equal(await page.inputValue('#compose-body'), big, 'the text stays in the box');
  t.ok(await tooLong.isVisible(), 'the reason shows beside it');
  t.equal((await waitShown(page, 0)).length, 0, 'nothing was sent');
  await page.fill('#compose-body', 'é'.repeat(8192));
  await page.locator('#compose-error').waitFor({ state: 'hidden' });
  t.pass('exactly 16 KiB is fine: the reason goes');
  await page.click('#compose-send');
  await page.locator('#messages [data-testid="msg"][data-status="delivered"], #messages [data-testid="msg"][data-status="stored"]').waitFor();
  t.equal(await page.inputValue('#compose-body'), '', 'a message sent leaves the box empty');

  // A bad room name: the reason beside the join form, the name stays to be corrected.
  await page.fill('#join-room', 'no spaces!');
  await page.click('#join-btn');
  await page.locator('#join-error', { hasText: 'not a valid room name' }).waitFor();
  t.equal(await page.inputValue('#join-room'), 'no spaces!', 'the room name stays in its field');
  await page.fill('#dm-to', 'bob smith');
  await page.click('#dm-open');
  await page.locator('#dm-error', { hasText: 'not a valid user name' }).waitFor();
  t.equal(await page.inputValue('#dm-to'), 'bob smith', 'the user name stays in its field');
  t.pass('a bad user name is explained beside its field');

  // not_member: the room was left behind the page's back; the refused message comes back into the box.
  await joinRoom(page, 'den');
  t.equal(await page.inputValue('#join-room'), '', 'a join accepted clears its field');
  t.equal(await page.isVisible('#join-error'), false, 'and its error');
  await pageValue(page, 'window.chatmesh.sendRaw({ type: "leave", id: "raw-leave", room: "den" })');
  await post(page, 'hello den');
  const notMember = page.locator('#compose-error', { hasText: 'not_member' });
  await notMember.waitFor();
  t.equal(await page.inputValue('#compose-body'), 'hello den', 'not_member: the text is back in the box');
  t.equal((await waitShown(page, 0)).length, 0, 'and not in the list');
  t.match(await page.getAttribute('#compose-body', 'aria-describedby'), 'compose-error', 'the box is described by its error');

  // unavailable, in a conversation: the text comes back, the next send works.
  await openDm(page, 'bob');
  t.equal(await page.isVisible('#compose-error'), false, 'another conversation shows its own (no) error');
  await post(page, 'please fail');
  await page.locator('#compose-error', { hasText: 'unavailable' }).waitFor();
  t.equal(await page.inputValue('#compose-body'), 'please fail', 'unavailable: the text is back in the box');
  await page.fill('#compose-body', 'second try');
  await page.click('#compose-send');
  await messageEl(page, 'alice', 'second try').waitFor();
  await page.locator('#compose-error').waitFor({ state: 'hidden' });
  t.pass('a message sent clears the error');

  await page.click('[data-testid="conv-item"][data-conv="room:den"]');
  await notMember.waitFor();
  t.equal(await page.inputValue('#compose-body'), 'hello den', 'back in the room: its text and its error are still there');
  t.same(errors, [], 'no page errors');
});

t.test('disconnected: the box stays open, messages wait and go out in order on reconnect; drafts per conversation', { skip }, async (t) => {
  const { page, errors } = await openPage(t, await browserReady!, 'dora');
  let { node, url, ws } = await start(t);
  const port = node.httpPort;
  await signIn(page, url, 'dora');
  await openDm(page, 'carol');
  await page.fill('#compose-body', 'a draft for carol');
  await openDm(page, 'erin');
  t.equal(await page.inputValue('#compose-body'), '', 'another conversation: an empty box');

  await node.stop();
  await waitDisconnected(page);
  await page.locator('#reconnect-btn').waitFor();
  t.pass('"reconnect now" shows while disconnected');
  t.equal(await page.isEnabled('#compose-body'), true, 'the message box stays enabled');
  for (const body of ['queued 1', 'queued 2', 'queued 3']) await post(page, body);
  const waiting = await waitShown(page, 3);
  t.same(waiting.map((m) => [m.body, m.status]), [['queued 1', 'queued'], ['queued 2', 'queued'], ['queued 3', 'queued']],
    'they wait, in order');
  t.equal(await page.locator('#messages [data-testid="msg-status"]', { hasText: 'waiting to send' }).count(), 3, 'shown as "waiting to send"');
  await openDm(page, 'carol');
  t.equal(await page.inputValue('#compose-body'), 'a draft for carol', 'carol\'s unsent text survived switching conversations');
  await page.fill('#compose-body', 'a draft for carol, longer');
  await openDm(page, 'erin');
  await openDm(page, 'carol');
  t.equal(await page.inputValue('#compose-body'), 'a draft for carol, longer', 'and its edits');
  await openDm(page, 'erin');

  ({ node } = await start(t, { httpPort: port }));
  const erin = await client(t, ws, 'erin');
  await page.waitForSelector('#conn-status[data-state="online"]', { timeout: 20_000 });
  await page.locator('#reconnect-btn').waitFor({ state: 'hidden' });
  const got: string[] = [];
  for (let i = 0; i < 3; i++) got.push(String((await erin.next('message', 10_000)).body));
  t.same(got, ['queued 1', 'queued 2', 'queued 3'], 'erin got them in the order they were written');
  await waitUntil(page, `[...document.querySelectorAll('#messages [data-testid="msg"]')].every((li) => li.dataset.status === 'delivered' || li.dataset.status === 'stored')`, 'the three acked');
  t.same(await pageValue(page, 'window.chatmesh.state.outbox.length'), 0, 'the outbox is empty');
  // The browser logs the refused attempts while the node is down (draining: 503; stopped: refused).
  t.same(errors.filter((e) => !/ERR_CONNECTION_REFUSED|response code: 503/.test(e)), [], 'no page errors');
});

t.test('a note to oneself shows as delivered', { skip }, async (t) => {
  const { page, errors } = await openPage(t, await browserReady!, 'nina');
  const { url } = await start(t);
  await signIn(page, url, 'nina');
  await openDm(page, 'nina');
  t.equal(await page.textContent('#conv-title'), 'Notes to yourself');
  await post(page, 'remember the milk');
  const note = messageEl(page, 'nina', 'remember the milk');
  await note.and(page.locator('[data-status="delivered"]')).waitFor();
  t.equal(await note.locator('[data-testid="msg-status"]').textContent(), 'delivered', 'delivered, not "recipient offline"');
  t.same(errors, [], 'no page errors');
});
