// Token lifetime, seen from the client (protocol.md §2): with --auth jwt a connection lives as long as
// its token; `refresh` swaps in a new token of the same user; a token that expires without one ends
// the connection with `token_expired` and 4401. Real short-lived JWTs and real time: each test waits
// for the event (bounded), never a blind sleep.
import t from 'tap';
import { signToken } from '../src/auth/index.js';
import { TestClient, connectAs, eventually, within } from './helpers/client.js';
import { testNode } from './helpers/node.js';

const secret = 'token-test-secret-0123456789';

/** The `exp` claim of a JWT, in ms since the epoch. */
function expMs(token: string): number {
  const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { exp: number };
  return payload.exp * 1000;
}

async function connectWithToken(url: string, token: string): Promise<TestClient> {
  const c = new TestClient(url);
  await c.opened;
  c.send({ type: 'hello', token });
  await c.next('welcome');
  await c.next('synced');
  return c;
}

t.test('a token that expires without a refresh: error token_expired, then close 4401', async (t) => {
  const { url, node } = await testNode(t, { auth: 'jwt', jwtSecret: secret });
  const token = await signToken({ user: 'ida', secret, ttl: 2 });
  const c = await connectWithToken(url, token);
  t.equal((await c.request({ type: 'presence', id: 'p', users: ['ida'] }))['type'], 'presence', 'works before the expiry');
  const err = await c.next('error', 5000);
  const at = Date.now();
  t.same(err, { type: 'error', code: 'token_expired', message: err['message'] }, 'token_expired, without id');
  t.ok(at >= expMs(token) - 50, `not before the token's exp (${at - expMs(token)} ms after it)`);
  const closed = await within(c.closed, 5000, 'the close');
  t.equal(closed.code, 4401);
  t.equal(closed.reason, 'token expired');
  t.equal(node.stats.tokensExpired, 1);
});

t.test('refresh with a longer token: ack, and the connection outlives the old expiry', async (t) => {
  const { url, node } = await testNode(t, { auth: 'jwt', jwtSecret: secret });
  const short = await signToken({ user: 'jo', secret, ttl: 2 });
  const c = await connectWithToken(url, short);
  t.teardown(() => c.close());
  // 30 days: longer than one setTimeout can wait (2^31 ms), so this also checks the timer is capped.
  const long = await signToken({ user: 'jo', secret, ttl: '30d' });
  t.same(await c.request({ type: 'refresh', id: 'r1', token: long }), { type: 'ack', id: 'r1' });
  await eventually(() => Date.now() > expMs(short) + 500, 5000, 'the first token\'s expiry to pass');
  t.equal((await c.request({ type: 'presence', id: 'p', users: ['jo'] }))['type'], 'presence', 'still works');
  t.same(c.unread(), [], 'no token_expired');
  t.equal(c.ws.readyState, c.ws.OPEN);
  t.equal(node.stats.tokensRefreshed, 1);
});

t.test('refresh re-arms the one expiry timer: the new token\'s exp ends the connection', async (t) => {
  const { url } = await testNode(t, { auth: 'jwt', jwtSecret: secret });
  const first = await signToken({ user: 'kim', secret, ttl: 2 });
  const c = await connectWithToken(url, first);
  const second = await signToken({ user: 'kim', secret, ttl: 4 });
  t.equal((await c.request({ type: 'refresh', id: 'r1', token: second }))['type'], 'ack');
  const err = await c.next('error', 8000);
  t.equal(err['code'], 'token_expired');
  t.ok(Date.now() >= expMs(second) - 50, 'at the refreshed token\'s exp, not the first one\'s');
  t.equal((await within(c.closed, 5000, 'the close')).code, 4401);
});

t.test('refresh with another user\'s token: error unauthorized with the id, close 4401', async (t) => {
  const { url } = await testNode(t, { auth: 'jwt', jwtSecret: secret });
  const c = await connectWithToken(url, await signToken({ user: 'lea', secret, ttl: '5m' }));
  const other = await signToken({ user: 'mallory', secret, ttl: '5m' });
  const err = await c.request({ type: 'refresh', id: 'r1', token: other });
  t.match(err, { type: 'error', id: 'r1', code: 'unauthorized', message: /another user/ });
  t.equal((await within(c.closed, 5000, 'the close')).code, 4401);
});

t.test('refresh with a garbage, expired or foreign-signed token: error unauthorized, close 4401', async (t) => {
  const { url } = await testNode(t, { auth: 'jwt', jwtSecret: secret });
  const cases: Array<[string, string, RegExp]> = [
    ['garbage', 'not.a.jwt', /invalid token/],
    ['expired', await signToken({ user: 'max', secret, ttl: -10 }), /expired/],
    ['wrong secret', await signToken({ user: 'max', secret: 'another-secret', ttl: '5m' }), /invalid token/],
  ];
  for (const [name, token, why] of cases) {
    const c = await connectWithToken(url, await signToken({ user: 'max', secret, ttl: '5m' }));
    const err = await c.request({ type: 'refresh', id: 'r', token });
    t.match(err, { type: 'error', id: 'r', code: 'unauthorized', message: why }, name);
    t.equal((await within(c.closed, 5000, 'the close')).code, 4401, name);
  }
});

t.test('dev mode: a connection without a token never expires; refresh is a bad_request and changes nothing', async (t) => {
  const { url } = await testNode(t);
  const { c } = await connectAs(url, 'dev');
  t.teardown(() => c.close());
  const token = await signToken({ user: 'dev', secret, ttl: '5m' });
  const err = await c.request({ type: 'refresh', id: 'r', token });
  t.match(err, { type: 'error', id: 'r', code: 'bad_request', message: /without a token/ });
  t.equal((await c.request({ type: 'presence', id: 'p', users: ['dev'] }))['type'], 'presence', 'the connection stays open');
});
