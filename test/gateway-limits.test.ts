import t from 'tap';
import { TestClient, connectAs, eventually } from './helpers/client.js';
import { testNode } from './helpers/node.js';

t.test('every bad frame gets exactly one error with its id, and the connection stays open', async (t) => {
  const { url } = await testNode(t);
  const c = (await connectAs(url, 'alice')).c;
  t.teardown(() => c.close());
  c.send('this is not json');
  t.same(await c.next('error'), { type: 'error', code: 'bad_request', message: 'frame must be a JSON object' });
  t.equal((await c.request({ type: 'shout', id: 'u1' }))['code'], 'unknown_type');
  t.equal((await c.request({ type: 'send', id: 'b1', to: 'no spaces', body: 'x' }))['code'], 'bad_request');
  t.equal((await c.request({ type: 'send', id: 'b2', to: 'bob', body: 42 }))['code'], 'bad_request');
  t.equal((await c.request({ type: 'join', id: 'b3', room: 'x'.repeat(65) }))['code'], 'bad_request');
  t.equal((await c.request({ type: 'presence', id: 'b4', users: Array.from({ length: 101 }, (_, i) => `u${i}`) }))['code'], 'bad_request');
  const big = await c.request({ type: 'send', id: 't1', to: 'bob', body: 'x'.repeat(16 * 1024 + 1) });
  t.same({ type: big['type'], id: big['id'], code: big['code'] }, { type: 'error', id: 't1', code: 'too_large' });
  c.send({ type: 'send', id: 'x'.repeat(65), to: 'bob', body: 'x' });
  const badId = await c.next('error');
  t.equal(badId['code'], 'bad_request');
  t.notOk('id' in badId, 'an invalid id is not echoed');
  c.ws.send(Buffer.from('{"type":"send"}'), { binary: true });
  t.equal((await c.next('error'))['code'], 'bad_request', 'binary frames are refused');
  t.equal((await c.request({ type: 'presence', id: 'still', users: ['alice'] }))['type'], 'presence', 'connection still works');
  t.same(c.unread(), []);
});

t.test('a frame over 64 KiB closes the connection with 1009', async (t) => {
  const { url } = await testNode(t);
  const c = (await connectAs(url, 'alice')).c;
  c.send({ type: 'send', id: 'huge', to: 'bob', body: 'x'.repeat(70 * 1024) });
  t.equal((await c.closed).code, 1009);
});

t.test('frames past the burst are answered rate_limited with their id, not handled; then it recovers', async (t) => {
  const { url, node } = await testNode(t, { gateway: { rateLimitPerSec: 5, rateLimitBurst: 3 } });
  const c = (await connectAs(url, 'alice')).c;
  t.teardown(() => c.close());
  // The hello took one token: two joins pass, the other four are over the limit.
  for (let i = 0; i < 6; i++) c.send({ type: 'join', id: `j${i}`, room: 'r' });
  t.same([await c.answer('j0'), await c.answer('j1')], [{ type: 'ack', id: 'j0' }, { type: 'ack', id: 'j1' }]);
  for (let i = 2; i < 6; i++) {
    const e = await c.answer(`j${i}`);
    t.equal(e['code'], 'rate_limited', `j${i}: rate_limited with its id (every frame with an id gets one answer)`);
    t.match(e['message'], /5 frames\/s, burst 3/);
  }
  // Poll until the bucket has a token again (a poll over the limit is answered rate_limited).
  let n = 0;
  await eventually(async () => (await c.request({ type: 'leave', id: `l${n++}`, room: 'r' }, 1000).catch(() => undefined))?.['type'] === 'ack', 5000, 'refill');
  t.ok(node.stats.framesDropped >= 4, 'the frames over the limit are counted');
  t.notOk(node.router.isSubscribed('r:r', 'nobody'), 'sanity');
});

t.test('a slow consumer is dropped with 4008 instead of buffering without bound', async (t) => {
  const { url, node } = await testNode(t, { gateway: { maxBufferedBytes: 256 * 1024, rateLimitPerSec: 1e6, rateLimitBurst: 1e6 } });
  const slow = (await connectAs(url, 'slow')).c;
  const fast = (await connectAs(url, 'fast')).c;
  t.teardown(() => fast.close());
  // Stop reading: the kernel buffers fill, then the server's send buffer grows.
  const sock = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
  sock.pause();
  const body = 'y'.repeat(16 * 1024);
  let sent = 0;
  while (node.stats.slowConsumers === 0 && sent < 4000) {
    for (let i = 0; i < 50; i++) fast.send({ type: 'send', to: 'slow', body });
    sent += 50;
    for (let i = 0; i < 50; i++) await fast.next('ack');
  }
  t.equal(node.stats.slowConsumers, 1, `dropped after ${sent} messages of 16 KiB`);
  sock.resume();
  t.equal((await slow.closed).code, 4008);
  const after = await fast.request({ type: 'send', id: 'after', to: 'slow', body: 'x' });
  t.equal(after['status'], 'stored', 'the dropped consumer is gone from routing');
});

t.test('the heartbeat terminates a client that stops answering pings', async (t) => {
  const { url, node } = await testNode(t, { gateway: { heartbeatMs: 100 } });
  const live = (await connectAs(url, 'live')).c;
  const dead = (await connectAs(url, 'dead')).c;
  t.teardown(() => live.close());
  const sock = (dead.ws as unknown as { _socket: { pause(): void } })._socket;
  sock.pause();
  await eventually(() => node.stats.heartbeatTimeouts === 1, 5000, 'heartbeat timeout');
  t.same((await live.request({ type: 'presence', id: 'p', users: ['dead', 'live'] }))['users'], { dead: 'offline', live: 'online' });
  t.equal(node.stats.connections, 1, 'the answering client is kept');
});

t.test('connections over --max-connections get HTTP 503', async (t) => {
  const { url } = await testNode(t, { gateway: { maxConnections: 1 } });
  const a = (await connectAs(url, 'a')).c;
  t.teardown(() => a.close());
  const b = new TestClient(url);
  const status = await new Promise<number>((resolve) => b.ws.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0)));
  t.equal(status, 503);
});

t.test('drain: /healthz goes 503, clients get 1012, new upgrades are refused', async (t) => {
  const { url, node, base } = await testNode(t);
  t.equal((await fetch(`${base}/healthz`)).status, 200);
  const a = (await connectAs(url, 'alice')).c;
  await node.drain();
  t.equal((await a.closed).code, 1012);
  const h = await fetch(`${base}/healthz`);
  t.equal(h.status, 503);
  t.match(await h.json(), { status: 'unavailable', draining: true });
  const b = new TestClient(url);
  const status = await new Promise<number>((resolve) => b.ws.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0)));
  t.equal(status, 503);
});
