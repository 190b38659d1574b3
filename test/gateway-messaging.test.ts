import t from 'tap';
import { connectAs } from './helpers/client.js';
import { testNode } from './helpers/node.js';

t.test('send: every device of the recipient and the sender\'s other devices get it, the sender does not', async (t) => {
  const { url } = await testNode(t);
  const a1 = (await connectAs(url, 'alice')).c;
  const a2 = (await connectAs(url, 'alice')).c;
  const b1 = (await connectAs(url, 'bob')).c;
  const b2 = (await connectAs(url, 'bob')).c;
  const x = (await connectAs(url, 'xavier')).c;
  t.teardown(() => Promise.all([a1, a2, b1, b2, x].map((c) => c.close())));

  const ack = await a1.request({ type: 'send', id: 'c1', to: 'bob', body: 'hi bob' });
  t.equal(ack['type'], 'ack');
  t.equal(ack['status'], 'delivered');
  t.match(ack['msg'], /^[0-9A-Z]{26}$/);
  t.type(ack['ts'], 'number');
  const expected = { type: 'message', msg: ack['msg'], from: 'alice', to: 'bob', body: 'hi bob', ts: ack['ts'] };
  t.same(await b1.next('message'), expected, 'bob device 1');
  t.same(await b2.next('message'), expected, 'bob device 2');
  t.same(await a2.next('message'), expected, 'alice\'s other device gets a copy');
  // Round-trip a request on the sender and a bystander to prove nothing else arrived.
  await a1.request({ type: 'presence', id: 'sync', users: ['bob'] });
  await x.request({ type: 'presence', id: 'sync', users: ['bob'] });
  t.same(a1.unread(), [], 'the sending connection gets no copy');
  t.same(x.unread(), [], 'a bystander gets nothing');
});

t.test('send to a user with no connection is acked stored (kept for their first device)', async (t) => {
  const { url } = await testNode(t);
  const a = (await connectAs(url, 'alice')).c;
  t.teardown(() => a.close());
  const ack = await a.request({ type: 'send', id: 'c1', to: 'nobody', body: 'hello?' });
  t.equal(ack['status'], 'stored');
  t.ok(ack['msg']);
});

t.test('send to oneself reaches one\'s other devices only', async (t) => {
  const { url } = await testNode(t);
  const a1 = (await connectAs(url, 'alice')).c;
  const a2 = (await connectAs(url, 'alice')).c;
  t.teardown(() => Promise.all([a1.close(), a2.close()]));
  t.equal((await a1.request({ type: 'send', id: 's', to: 'alice', body: 'note' }))['status'], 'delivered');
  t.equal((await a2.next('message'))['body'], 'note');
  await a2.request({ type: 'presence', id: 'sync', users: ['alice'] });
  t.same(a2.unread(), [], 'exactly one copy');
});

t.test('messages from one connection arrive in order, with unique increasing ids', async (t) => {
  const { url } = await testNode(t);
  const a = (await connectAs(url, 'alice')).c;
  const b = (await connectAs(url, 'bob')).c;
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const n = 150;
  for (let i = 0; i < n; i++) a.send({ type: 'send', id: `m${i}`, to: 'bob', body: String(i) });
  const got: string[] = [];
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const m = await b.next('message');
    got.push(m['body'] as string);
    ids.push(m['msg'] as string);
  }
  t.same(got, Array.from({ length: n }, (_, i) => String(i)));
  t.same([...ids].sort(), ids, 'ids sort in send order');
  t.equal(new Set(ids).size, n);
  const answers = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const f = await a.next('ack');
    answers.set(f['id'] as string, (answers.get(f['id'] as string) ?? 0) + 1);
  }
  t.equal(answers.size, n, 'one ack per request id');
  t.ok([...answers.values()].every((v) => v === 1));
});

t.test('rooms: join, publish to the others, no_subscribers, not_member, leave', async (t) => {
  const { url } = await testNode(t);
  const a1 = (await connectAs(url, 'alice')).c;
  const a2 = (await connectAs(url, 'alice')).c;
  const b = (await connectAs(url, 'bob')).c;
  const c = (await connectAs(url, 'carol')).c;
  t.teardown(() => Promise.all([a1, a2, b, c].map((x) => x.close())));

  t.same(await c.request({ type: 'join', id: 'j0', room: 'solo' }), { type: 'ack', id: 'j0' });
  const alone = await c.request({ type: 'publish', id: 'p0', room: 'solo', body: 'anyone?' });
  t.equal(alone['status'], 'no_subscribers', 'no other connection of any member');
  t.ok(alone['msg']);

  // Membership belongs to the user: a1's join makes every device of alice a member.
  t.same(await a1.request({ type: 'join', id: 'j1', room: 'lobby' }), { type: 'ack', id: 'j1' });
  t.same(await a2.next('joined'), { type: 'joined', room: 'lobby' });
  await b.request({ type: 'join', id: 'j2', room: 'lobby' });
  t.same(await a2.request({ type: 'join', id: 'j3', room: 'lobby' }), { type: 'ack', id: 'j3' }, 'joining a room one is in is acked');
  const ack = await a1.request({ type: 'publish', id: 'p1', room: 'lobby', body: 'hello all' });
  t.equal(ack['status'], 'delivered');
  const expected = { type: 'room_message', msg: ack['msg'], room: 'lobby', from: 'alice', body: 'hello all', ts: ack['ts'] };
  t.same(await b.next('room_message'), expected);
  t.same(await a2.next('room_message'), expected, 'the publisher\'s other device gets it');

  const nm = await c.request({ type: 'publish', id: 'p2', room: 'lobby', body: 'let me in' });
  t.equal(nm['type'], 'error');
  t.equal(nm['code'], 'not_member');
  t.equal(nm['id'], 'p2');

  t.same(await b.request({ type: 'leave', id: 'l1', room: 'lobby' }), { type: 'ack', id: 'l1' });
  t.equal((await b.request({ type: 'publish', id: 'p3', room: 'lobby', body: 'x' }))['code'], 'not_member');
  await a1.request({ type: 'publish', id: 'p4', room: 'lobby', body: 'after leave' });
  t.equal((await a2.next('room_message'))['body'], 'after leave');
  await b.request({ type: 'presence', id: 'sync', users: ['alice'] });
  await a1.request({ type: 'presence', id: 'sync', users: ['alice'] });
  t.same(b.unread(), [], 'a member who left gets nothing');
  t.same(a1.unread(), [], 'the publishing connection gets no copy');
});

t.test('a closed connection leaves its rooms', async (t) => {
  const { url } = await testNode(t);
  const a = (await connectAs(url, 'alice')).c;
  const b = (await connectAs(url, 'bob')).c;
  t.teardown(() => a.close());
  await a.request({ type: 'join', id: 'j', room: 'r' });
  await b.request({ type: 'join', id: 'j', room: 'r' });
  await b.close();
  t.equal((await a.request({ type: 'publish', id: 'p', room: 'r', body: 'x' }))['status'], 'no_subscribers');
});

t.test('presence answers online/offline for each user', async (t) => {
  const { url } = await testNode(t);
  const a = (await connectAs(url, 'alice')).c;
  const b = (await connectAs(url, 'bob')).c;
  t.teardown(() => Promise.all([a.close(), b.close()]));
  t.same(await a.request({ type: 'presence', id: 'q', users: ['bob', 'carol', 'alice'] }), {
    type: 'presence', id: 'q', users: { bob: 'online', carol: 'offline', alice: 'online' },
  });
});

t.test('watch: ack with status, online/offline transitions across devices, unwatch stops them', async (t) => {
  const { url } = await testNode(t);
  const w = (await connectAs(url, 'watcher')).c;
  t.teardown(() => w.close());
  t.same(await w.request({ type: 'watch', id: 'w1', users: ['bob', 'carol'] }), { type: 'ack', id: 'w1', users: { bob: 'offline', carol: 'offline' } });

  const b1 = (await connectAs(url, 'bob')).c;
  t.same(await w.next('presence_change'), { type: 'presence_change', user: 'bob', status: 'online' });
  const b2 = (await connectAs(url, 'bob')).c;
  await b1.close();
  await w.request({ type: 'presence', id: 'sync1', users: ['bob'] });
  t.same(w.unread(), [], 'no event while another device of bob remains');
  await b2.close();
  t.same(await w.next('presence_change'), { type: 'presence_change', user: 'bob', status: 'offline' });

  t.same(await w.request({ type: 'watch', id: 'w2', users: ['bob'] }), { type: 'ack', id: 'w2', users: { bob: 'offline' } }, 'watching again is harmless');
  t.same(await w.request({ type: 'unwatch', id: 'u1', users: ['bob'] }), { type: 'ack', id: 'u1' });
  const c1 = (await connectAs(url, 'carol')).c;
  t.same(await w.next('presence_change'), { type: 'presence_change', user: 'carol', status: 'online' });
  const b3 = (await connectAs(url, 'bob')).c;
  await b3.close();
  await c1.close();
  t.same(await w.next('presence_change'), { type: 'presence_change', user: 'carol', status: 'offline' });
  t.same(w.unread(), [], 'no events for bob after unwatch');
});

t.test('a connection may watch at most 1000 users', async (t) => {
  const { url } = await testNode(t);
  const w = (await connectAs(url, 'w')).c;
  t.teardown(() => w.close());
  const first = Array.from({ length: 1000 }, (_, i) => `u${i}`);
  const ok = await w.request({ type: 'watch', id: 'a', users: first });
  t.equal(Object.keys(ok['users'] as object).length, 1000);
  const err = await w.request({ type: 'watch', id: 'b', users: ['one-more'] });
  t.equal(err['code'], 'bad_request');
  t.match(err['message'], /at most 1000/);
  await w.request({ type: 'unwatch', id: 'c', users: ['u0'] });
  t.equal((await w.request({ type: 'watch', id: 'd', users: ['one-more'] }))['type'], 'ack', 'room again after unwatch');
});

