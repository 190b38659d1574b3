import t from 'tap';
import { WebSocket } from 'ws';
import { signToken } from '../src/auth/index.js';
import { TestClient, connectAs } from './helpers/client.js';
import { testNode } from './helpers/node.js';

t.test('dev hello is answered with welcome naming user, node and session', async (t) => {
  const { url, node } = await testNode(t, { id: 'n1' });
  const { c, welcome } = await connectAs(url, 'alice');
  t.teardown(() => c.close());
  t.equal(welcome['user'], 'alice');
  t.equal(welcome['node'], 'n1');
  t.match(welcome['session'], /^[0-9A-Z]{26}$/);
  const { c: c2, welcome: w2 } = await connectAs(url, 'alice');
  t.teardown(() => c2.close());
  t.not(w2['session'], welcome['session'], 'every connection has its own session');
  t.equal(node.stats.authenticated, 2);
});

t.test('no hello within the deadline: error unauthorized, close 4401', async (t) => {
  const { url } = await testNode(t, { gateway: { helloTimeoutMs: 150 } });
  const c = new TestClient(url);
  const err = await c.next('error');
  t.equal(err['code'], 'unauthorized');
  t.equal((await c.closed).code, 4401);
});

t.test('a first frame other than hello closes with 4401', async (t) => {
  const { url } = await testNode(t);
  for (const first of ['{"type":"send","id":"c1","to":"bob","body":"hi"}', 'garbage', '{"type":"hello","user":"bad name"}']) {
    const c = new TestClient(url);
    await c.opened;
    c.send(first);
    t.equal((await c.next('error'))['code'], 'unauthorized', first);
    t.equal((await c.closed).code, 4401, first);
  }
  const b = new TestClient(url);
  await b.opened;
  b.ws.send(Buffer.from([1, 2, 3]));
  t.equal((await b.closed).code, 4401, 'binary first frame');
});

t.test('jwt mode: valid token welcomes its sub; bad, expired, foreign and missing tokens get 4401', async (t) => {
  const secret = 'test-secret-0123456789';
  const { url } = await testNode(t, { auth: 'jwt', jwtSecret: secret });
  const good = await signToken({ user: 'carol', secret, ttl: '5m' });
  const c = new TestClient(url);
  t.teardown(() => c.close());
  await c.opened;
  c.send({ type: 'hello', token: good });
  t.equal((await c.next('welcome'))['user'], 'carol');

  const expired = await signToken({ user: 'carol', secret, ttl: -10 });
  const foreign = await signToken({ user: 'carol', secret: 'another-secret', ttl: '5m' });
  const cases: Array<[string, object, RegExp]> = [
    ['expired', { type: 'hello', token: expired }, /expired/],
    ['wrong secret', { type: 'hello', token: foreign }, /invalid/],
    ['garbage token', { type: 'hello', token: 'not.a.jwt' }, /invalid/],
    ['dev hello on a jwt node', { type: 'hello', user: 'mallory' }, /token is required/],
  ];
  for (const [name, hello, why] of cases) {
    const x = new TestClient(url);
    await x.opened;
    x.send(hello);
    const err = await x.next('error');
    t.equal(err['code'], 'unauthorized', name);
    t.match(err['message'], why, name);
    t.equal((await x.closed).code, 4401, name);
  }
});

t.test('frames pipelined behind hello are handled after the welcome, in order', async (t) => {
  const { url } = await testNode(t);
  const c = new TestClient(url);
  t.teardown(() => c.close());
  await c.opened;
  c.send({ type: 'hello', id: 'h1', user: 'pip' });
  c.send({ type: 'join', id: 'j', room: 'r1' });
  c.send({ type: 'publish', id: 'p', room: 'r1', body: 'x' });
  t.equal((await c.next('welcome'))['id'], 'h1', 'the welcome answers the hello\'s id');
  t.same(await c.answer('j'), { type: 'ack', id: 'j' });
  t.equal((await c.answer('p'))['status'], 'no_subscribers');
  c.send({ type: 'hello', id: 'h2', user: 'pip' });
  t.same(await c.answer('h2'), { type: 'error', id: 'h2', code: 'bad_request', message: 'already authenticated' });
});

t.test('frames pipelined past the pre-welcome bound get rate_limited, each with its id', async (t) => {
  const { url } = await testNode(t, { gateway: { maxPendingBeforeWelcome: 2 } });
  const c = new TestClient(url);
  t.teardown(() => c.close());
  await c.opened;
  // One TCP write, so the server reads every frame before the hello is answered.
  const sock = (c.ws as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
  sock.cork();
  c.send({ type: 'hello', user: 'eager' });
  for (let i = 0; i < 4; i++) c.send({ type: 'join', id: `j${i}`, room: 'r' });
  sock.uncork();
  await c.next('welcome');
  const answers = [];
  for (let i = 0; i < 4; i++) answers.push(await c.answer(`j${i}`));
  t.same(answers.map((a) => a['type']), ['ack', 'ack', 'error', 'error']);
  t.equal(answers[2]!['code'], 'rate_limited');
});

t.test('upgrade on another path is refused; /ws without upgrade answers 426', async (t) => {
  const { node, base } = await testNode(t);
  const ws = new WebSocket(`ws://127.0.0.1:${node.httpPort}/other`);
  const status = await new Promise<number>((resolve) => ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)).on('error', () => resolve(-1)));
  t.equal(status, 404);
  t.equal((await fetch(`${base}/ws`)).status, 426);
});
