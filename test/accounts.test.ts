/**
 * Accounts through real sockets on a 3-node gRPC mesh: membership belongs to the user (every
 * device, now and later, on any node), `rooms`/`members`/`conversations` with unread counts,
 * `read` markers and receipts, `typing`, and the bad input the issue names.
 */
import t from 'tap';
import { connectAs, eventually } from './helpers/client.js';
import type { Frame, TestClient } from './helpers/client.js';
import { threeNodes as meshOf3, wsUrl } from './helpers/grpc-mesh.js';
import type { NodeConfigInput } from '../src/config/index.js';

const threeNodes = (t: Parameters<typeof meshOf3>[0], extra: NodeConfigInput = {}) => meshOf3(t, { meshSecret: 'accounts-test', ...extra });

let seq = 0;
const rid = (): string => `r${++seq}`;

async function ok(c: TestClient, frame: Record<string, unknown>): Promise<Frame> {
  const answer = await c.request({ ...frame, id: rid() });
  if (answer.type === 'error') throw new Error(`${String(frame['type'])} failed: ${JSON.stringify(answer)}`);
  return answer;
}

t.test('membership belongs to the user: every device on any node, now and later', async (t) => {
  const [a, b, c] = await threeNodes(t);
  const { c: alice1 } = await connectAs(wsUrl(a!), 'alice');
  t.teardown(() => alice1.close());
  const { c: alice2 } = await connectAs(wsUrl(b!), 'alice');
  t.teardown(() => alice2.close());
  const { c: bob } = await connectAs(wsUrl(c!), 'bob');
  t.teardown(() => bob.close());

  await ok(alice1, { type: 'join', room: 'lobby' });
  t.same(await alice2.next('joined'), { type: 'joined', room: 'lobby' }, 'the other device hears of the join');
  t.notOk(alice1.unread().some((f) => f.type === 'joined'), 'the joining device gets its ack, not an event');

  await ok(bob, { type: 'join', room: 'lobby' });
  const sent = await ok(bob, { type: 'publish', room: 'lobby', body: 'hi all' });
  t.equal(sent['status'], 'delivered');
  for (const dev of [alice1, alice2]) {
    const m = await dev.next('room_message');
    t.equal(m['body'], 'hi all', 'every device of a member gets room messages');
  }
  // A device that connects later, on a third node, is a member from its welcome on.
  const { c: alice3 } = await connectAs(wsUrl(c!), 'alice');
  t.teardown(() => alice3.close());
  await ok(bob, { type: 'publish', room: 'lobby', body: 'second' });
  t.equal((await alice3.next('room_message'))['body'], 'second', 'a new device gets the room without joining');
  t.equal((await ok(alice3, { type: 'publish', room: 'lobby', body: 'from 3' }))['status'], 'delivered', 'and may publish');

  await ok(alice2, { type: 'leave', room: 'lobby' });
  t.same(await alice1.next('left'), { type: 'left', room: 'lobby' });
  t.same(await alice3.next('left'), { type: 'left', room: 'lobby' });
  const notMember = await alice1.request({ type: 'publish', id: 'p-left', room: 'lobby', body: 'x' });
  t.equal(notMember['code'], 'not_member', 'after a leave on another device, publishing is refused');
  await ok(bob, { type: 'publish', room: 'lobby', body: 'after leave' });
  const { c: alice4 } = await connectAs(wsUrl(a!), 'alice');
  t.teardown(() => alice4.close());
  const rooms = await ok(alice4, { type: 'rooms' });
  t.same(rooms['rooms'], [], 'a new device after the leave has no rooms');
});

t.test('rooms, members and conversations with unread counts; read markers and receipts', async (t) => {
  const [a, b, c] = await threeNodes(t);
  const { c: alice } = await connectAs(wsUrl(a!), 'alice');
  t.teardown(() => alice.close());
  const { c: bob } = await connectAs(wsUrl(b!), 'bob');
  t.teardown(() => bob.close());
  const { c: carol } = await connectAs(wsUrl(c!), 'carol');
  t.teardown(() => carol.close());

  for (const room of ['lobby', 'dev']) await ok(alice, { type: 'join', room });
  await ok(bob, { type: 'join', room: 'lobby' });
  await ok(carol, { type: 'join', room: 'lobby' });
  await ok(bob, { type: 'publish', room: 'lobby', body: 'one' });
  const last = await ok(carol, { type: 'publish', room: 'lobby', body: 'two' });
  await ok(alice, { type: 'publish', room: 'dev', body: 'mine' });

  const rooms = (await ok(alice, { type: 'rooms' }))['rooms'] as Array<Record<string, unknown>>;
  t.same(rooms.map((r) => r['room']), ['dev', 'lobby'], 'most recent activity first');
  const lobby = rooms.find((r) => r['room'] === 'lobby')!;
  t.equal(lobby['members'], 3);
  t.equal(lobby['unread'], 2, 'two messages from others');
  t.equal((lobby['last'] as Frame)['body'], 'two');
  t.equal((lobby['last'] as Frame)['msg'], last['msg']);
  t.equal(rooms.find((r) => r['room'] === 'dev')!['unread'], 0, 'one\'s own messages are never unread');

  const members = await ok(alice, { type: 'members', room: 'lobby', limit: 2 });
  t.same(members['members'], [{ user: 'alice', status: 'online' }, { user: 'bob', status: 'online' }]);
  t.equal(members['more'], true);
  const rest = await ok(alice, { type: 'members', room: 'lobby', after: 'bob' });
  t.same(rest['members'], [{ user: 'carol', status: 'online' }]);
  t.equal(rest['more'], false);
  await carol.close();
  await eventually(async () => {
    const m = await ok(alice, { type: 'members', room: 'lobby', after: 'bob' });
    return (m['members'] as Frame[])[0]?.['status'] === 'offline';
  }, 5000, 'carol offline in the roster');

  // Mark the room read: every device of alice hears it, and the unread count drops on each.
  const { c: alice2 } = await connectAs(wsUrl(b!), 'alice');
  t.teardown(() => alice2.close());
  await ok(alice, { type: 'read', room: 'lobby', msg: last['msg'] });
  t.same(await alice.next('read'), { type: 'read', user: 'alice', room: 'lobby', msg: last['msg'] });
  t.same(await alice2.next('read'), { type: 'read', user: 'alice', room: 'lobby', msg: last['msg'] });
  for (const dev of [alice, alice2]) {
    const after = (await ok(dev, { type: 'rooms' }))['rooms'] as Array<Record<string, unknown>>;
    t.equal(after.find((r) => r['room'] === 'lobby')!['unread'], 0, 'read on one device, read on all');
  }
  // A room joined on another device is listed too (with its unread counted from that join).
  await ok(alice, { type: 'join', room: 'later' });
  await alice2.next('joined');
  await ok(bob, { type: 'join', room: 'later' });
  await ok(bob, { type: 'publish', room: 'later', body: 'new' });
  const seen = (await ok(alice2, { type: 'rooms' }))['rooms'] as Array<Record<string, unknown>>;
  t.same(seen.map((r) => [r['room'], r['unread']]), [['later', 1], ['dev', 0], ['lobby', 0]]);
  await ok(alice, { type: 'leave', room: 'later' });

  // Conversations: bob and carol write to alice; alice wrote a note to herself.
  const m1 = await ok(bob, { type: 'send', to: 'alice', body: 'b1' });
  await ok(bob, { type: 'send', to: 'alice', body: 'b2' });
  await ok(alice, { type: 'send', to: 'alice', body: 'note' }).then((ack) => t.equal(ack['status'], 'delivered', 'a note to oneself is delivered'));
  const { c: carol2 } = await connectAs(wsUrl(c!), 'carol');
  t.teardown(() => carol2.close());
  await ok(carol2, { type: 'send', to: 'alice', body: 'c1' });
  const convs = await ok(alice, { type: 'conversations' });
  const list = convs['conversations'] as Array<Record<string, unknown>>;
  t.same(list.map((v) => v['with']), ['carol', 'alice', 'bob'], 'most recent first, the note among them');
  t.same(list.map((v) => v['unread']), [1, 0, 2]);
  t.equal((list[2]!['last'] as Frame)['body'], 'b2');
  const page = await ok(alice, { type: 'conversations', limit: 1 });
  t.equal(page['more'], true);
  const next = await ok(alice, { type: 'conversations', limit: 2, before: ((page['conversations'] as Frame[])[0]!['last'] as Frame)['msg'] });
  t.same((next['conversations'] as Frame[]).map((v) => v['with']), ['alice', 'bob']);

  // A read receipt: bob's devices hear that alice read up to b1; markers only move forward.
  await ok(alice, { type: 'read', with: 'bob', msg: m1['msg'] });
  t.same(await bob.next('read'), { type: 'read', user: 'alice', with: 'bob', msg: m1['msg'] });
  const bobs = (await ok(bob, { type: 'conversations' }))['conversations'] as Array<Record<string, unknown>>;
  t.equal(bobs.find((v) => v['with'] === 'alice')!['seen'], m1['msg'], 'a reload shows how far the other party read');
  t.notOk('seen' in list.find((v) => v['with'] === 'carol')!, 'no marker, no seen');
  const v2 = (await ok(alice, { type: 'conversations' }))['conversations'] as Array<Record<string, unknown>>;
  t.equal(v2.find((v) => v['with'] === 'bob')!['unread'], 1, 'one unread after the marker');
  const older = (await ok(alice, { type: 'conversations' }))['conversations'] as Array<Record<string, unknown>>;
  t.equal(older.length, 3);
});

t.test('typing: forwarded, throttled, never to non-members', async (t) => {
  const [a, b] = await threeNodes(t);
  const { c: alice } = await connectAs(wsUrl(a!), 'alice');
  t.teardown(() => alice.close());
  const { c: bob } = await connectAs(wsUrl(b!), 'bob');
  t.teardown(() => bob.close());
  alice.send({ type: 'typing', to: 'bob' });
  t.same(await bob.next('typing'), { type: 'typing', from: 'alice', to: 'bob' });
  alice.send({ type: 'typing', to: 'bob' }); // within 2 s: dropped
  await ok(alice, { type: 'join', room: 'lobby' });
  await ok(bob, { type: 'join', room: 'lobby' });
  alice.send({ type: 'typing', room: 'lobby' });
  t.same(await bob.next('typing'), { type: 'typing', from: 'alice', room: 'lobby' });
  bob.send({ type: 'typing', room: 'elsewhere' }); // not a member: dropped silently
  const probe = await ok(bob, { type: 'presence', users: ['alice'] });
  t.equal(probe['type'], 'presence');
  t.equal(bob.unread().filter((f) => f.type === 'typing').length, 0, 'the throttled typing was not forwarded');
  t.notOk(bob.unread().some((f) => f.type === 'error'), 'typing to a room not joined draws no error');
  t.ok(b!.statsView().typingDropped >= 1, 'dropped typing is counted');
  t.ok(a!.statsView().typingDropped >= 1);
});

t.test('bad input', async (t) => {
  const [a] = await threeNodes(t);
  const { c: alice } = await connectAs(wsUrl(a!), 'alice');
  t.teardown(() => alice.close());
  const { c: bob } = await connectAs(wsUrl(a!), 'bob');
  t.teardown(() => bob.close());
  const bad = async (frame: Record<string, unknown>, code = 'bad_request'): Promise<Frame> => {
    const e = await alice.request({ ...frame, id: rid() });
    t.equal(e['code'], code, `${JSON.stringify(frame)} → ${code}`);
    return e;
  };
  await bad({ type: 'members' });
  await bad({ type: 'members', room: 'lobby', limit: 0 });
  await bad({ type: 'members', room: 'lobby', limit: 1001 });
  await bad({ type: 'members', room: 'lobby', after: 'bad id!' });
  await bad({ type: 'members', room: 'lobby' }, 'not_member');
  await bad({ type: 'conversations', limit: 101 });
  await bad({ type: 'conversations', before: 'nope' });
  await bad({ type: 'read', with: 'bob' });
  await bad({ type: 'read', with: 'bob', room: 'lobby', msg: '01ARZ3NDEKTSV4RRFFQ69G5FAV' });
  await bad({ type: 'read', msg: '01ARZ3NDEKTSV4RRFFQ69G5FAV' });
  await bad({ type: 'read', with: 'bob', msg: 'short' });
  await bad({ type: 'read', room: 'lobby', msg: '01ARZ3NDEKTSV4RRFFQ69G5FAV' }, 'not_member');
  // A read of a message that is not in that conversation.
  const m = await ok(bob, { type: 'send', to: 'carol', body: 'not yours' });
  const e = await bad({ type: 'read', with: 'bob', msg: m['msg'] });
  t.match(e['message'], /not a kept message/);
  await bad({ type: 'typing' });
  await bad({ type: 'typing', to: 'bob', room: 'lobby' });
});

t.test('more than 1000 memberships is refused with the limit in the message', async (t) => {
  const [a] = await threeNodes(t, { gateway: { rateLimitPerSec: 10_000, rateLimitBurst: 10_000 } });
  const { c: alice } = await connectAs(wsUrl(a!), 'alice');
  t.teardown(() => alice.close());
  const frames: string[] = [];
  for (let i = 0; i < 1000; i++) frames.push(JSON.stringify({ type: 'join', id: `j${i}`, room: `room-${i}` }));
  for (let i = 0; i < frames.length; i += 100) {
    for (const f of frames.slice(i, i + 100)) alice.send(f);
    for (let k = i; k < i + 100; k++) {
      const ack = await alice.answer(`j${k}`, 10_000);
      if (ack.type !== 'ack') t.fail(`join ${k}: ${JSON.stringify(ack)}`);
    }
  }
  const over = await alice.request({ type: 'join', id: 'j-over', room: 'one-too-many' });
  t.equal(over['code'], 'bad_request');
  t.match(over['message'], /1000/);
  const rooms = (await ok(alice, { type: 'rooms' }))['rooms'] as unknown[];
  t.equal(rooms.length, 1000);
});

t.test('memberships and read markers survive the loss of a node', async (t) => {
  const nodes = await threeNodes(t);
  const { c: alice } = await connectAs(wsUrl(nodes[0]!), 'alice');
  t.teardown(() => alice.close());
  const { c: bob } = await connectAs(wsUrl(nodes[1]!), 'bob');
  t.teardown(() => bob.close());
  for (const room of ['r1', 'r2', 'r3', 'r4']) await ok(alice, { type: 'join', room });
  await ok(bob, { type: 'join', room: 'r1' });
  const m = await ok(bob, { type: 'publish', room: 'r1', body: 'x' });
  await ok(alice, { type: 'read', room: 'r1', msg: m['msg'] });
  // alice's account has 2 replicas on 3 nodes: lose one of them (not the node alice uses).
  const replicas = nodes[0]!.streams.placement.writeSet('a:alice');
  const lost = nodes.find((n) => n !== nodes[0] && replicas.includes(n.id))!;
  await lost.kill();
  const survivors = nodes.filter((n) => n !== lost);
  await eventually(() => survivors.every((s) => s.peers.upLinks().size === 1), 10_000, 'the loss noticed');
  const { c: dev } = await connectAs(wsUrl(nodes[0]!), 'alice');
  t.teardown(() => dev.close());
  const rooms = (await ok(dev, { type: 'rooms' }))['rooms'] as Array<Record<string, unknown>>;
  t.same(rooms.map((r) => r['room']).sort(), ['r1', 'r2', 'r3', 'r4'], `rooms kept with replica ${lost.id} gone`);
  t.equal(rooms.find((r) => r['room'] === 'r1')!['unread'], 0, 'the read marker kept too');
  t.equal((await ok(dev, { type: 'publish', room: 'r2', body: 'still here' }))['status'], 'delivered', 'alice\'s first device still gets r2');
});

t.test('with --data-dir, memberships survive a restart', async (t) => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { startNode } = await import('../src/node.js');
  const dir = mkdtempSync(join(tmpdir(), 'accounts-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const opts = { host: '127.0.0.1', httpPort: 0, meshPort: 0, adminPort: 0, logLevel: 'silent' as const, dataDir: dir };
  let node = await startNode(opts);
  const url = (): string => `ws://127.0.0.1:${node.httpPort}/ws`;
  const { c: alice } = await connectAs(url(), 'alice');
  await ok(alice, { type: 'join', room: 'kept' });
  await ok(alice, { type: 'join', room: 'gone' });
  await ok(alice, { type: 'leave', room: 'gone' });
  await alice.close();
  await node.stop();
  node = await startNode(opts);
  t.teardown(() => node.stop());
  const { c: again } = await connectAs(url(), 'alice');
  t.teardown(() => again.close());
  const rooms = (await ok(again, { type: 'rooms' }))['rooms'] as Array<Record<string, unknown>>;
  t.same(rooms.map((r) => r['room']), ['kept']);
  t.equal((await ok(again, { type: 'publish', room: 'kept', body: 'still a member' }))['status'], 'no_subscribers');
});

t.test('with --history-size 0, accounts are still kept', async (t) => {
  const [a, b] = await threeNodes(t, { historySize: 0 });
  const { c: alice } = await connectAs(wsUrl(a!), 'alice');
  t.teardown(() => alice.close());
  await ok(alice, { type: 'join', room: 'lobby' });
  const { c: alice2 } = await connectAs(wsUrl(b!), 'alice');
  t.teardown(() => alice2.close());
  const rooms = (await ok(alice2, { type: 'rooms' }))['rooms'] as Array<Record<string, unknown>>;
  t.same(rooms, [{ room: 'lobby', members: 1, last: null, unread: 0 }]);
  t.equal((await ok(alice2, { type: 'send', to: 'nobody', body: 'x' }))['status'], 'offline', 'messages are still not kept');
});

t.test('rooms whose last messages are large still fit: answers come in chunks', async (t) => {
  const [a] = await threeNodes(t, { gateway: { rateLimitPerSec: 10_000, rateLimitBurst: 10_000 } });
  const { c: alice } = await connectAs(wsUrl(a!), 'alice');
  t.teardown(() => alice.close());
  const body = 'x'.repeat(16 * 1024);
  const n = 300; // 300 × 16 KiB = 4.8 MiB of last messages: more than one batch on a link
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, (_, k) => `big-${i + k}`);
    for (const room of batch) alice.send({ type: 'join', id: `j-${room}`, room });
    for (const room of batch) t.equal((await alice.answer(`j-${room}`, 10_000)).type, 'ack');
    for (const room of batch) alice.send({ type: 'publish', id: `p-${room}`, room, body });
    for (const room of batch) t.equal((await alice.answer(`p-${room}`, 10_000)).type, 'ack');
  }
  const rooms = (await alice.request({ type: 'rooms', id: 'all' }, 20_000))['rooms'] as Array<Record<string, unknown>>;
  t.equal(rooms.length, n);
  t.ok(rooms.every((r) => (r['last'] as Frame)['body'] === body), 'every last message whole');
});
