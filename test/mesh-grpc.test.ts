/**
 * Three nodes in this process over real gRPC links and real WebSocket clients, on port 0.
 */
import t from 'tap';
import { connectAs, eventually } from './helpers/client.js';
import { grpcNode as node, meshAddr, threeNodes, wsUrl as ws } from './helpers/grpc-mesh.js';
import { GrpcTransport, PeerLink, defaultLinkOptions } from '../src/mesh/index.js';

// Partial static lists close the mesh through peers' announcements, which only an authenticated
// mesh follows: these meshes have a secret.
const SECRET = { meshSecret: 'grpc-test-secret' };

t.test('a full mesh forms from partial static lists; DMs, rooms and presence work across nodes', async (t) => {
  const [a, b, c] = await threeNodes(t, SECRET);
  const alice = (await connectAs(ws(a!), 'alice')).c;
  const bob1 = (await connectAs(ws(b!), 'bob')).c;
  const bob2 = (await connectAs(ws(c!), 'bob')).c;
  const alice2 = (await connectAs(ws(c!), 'alice')).c;
  const carol = (await connectAs(ws(c!), 'carol')).c;
  t.teardown(() => Promise.all([alice, bob1, bob2, alice2, carol].map((x) => x.close())));

  // Presence settles across nodes.
  await eventually(async () => {
    const p = await carol.request({ type: 'presence', id: `p${Date.now()}`, users: ['alice', 'bob', 'nobody'] });
    return JSON.stringify(p['users']) === JSON.stringify({ alice: 'online', bob: 'online', nobody: 'offline' });
  }, 5000, 'presence across nodes');

  const ack = await alice.request({ type: 'send', id: 'd1', to: 'bob', body: 'across the mesh' });
  t.equal(ack['status'], 'delivered');
  for (const dev of [bob1, bob2, alice2]) t.equal((await dev.next('message'))['body'], 'across the mesh');
  await alice.request({ type: 'presence', id: 'sync', users: ['bob'] });
  t.same(alice.unread(), [], 'the sender gets no copy');
  t.equal((await alice.request({ type: 'send', id: 'd2', to: 'nobody', body: 'x' }))['status'], 'stored');

  // Order: 100 messages from alice to bob arrive in order on bob's remote devices.
  for (let i = 0; i < 100; i++) alice.send({ type: 'send', id: `o${i}`, to: 'bob', body: `#${i}` });
  for (const dev of [bob1, bob2]) {
    const got: string[] = [];
    for (let i = 0; i < 100; i++) got.push((await dev.next('message'))['body'] as string);
    t.same(got, Array.from({ length: 100 }, (_, i) => `#${i}`), 'in order');
  }

  // Rooms spanning three nodes.
  for (const [cl, id] of [[alice, 'j1'], [bob1, 'j2'], [carol, 'j3']] as const) await cl.request({ type: 'join', id, room: 'lobby' });
  await eventually(async () => (await alice.request({ type: 'publish', id: `r${Date.now()}`, room: 'lobby', body: 'probe' }))['status'] === 'delivered', 5000, 'room routed');
  await eventually(async () => {
    const n = (await b!.router.online(['r:lobby'])).get('r:lobby');
    return n === true;
  }, 5000, 'room known everywhere');
  const r = await alice.request({ type: 'publish', id: 'r1', room: 'lobby', body: 'hello all' });
  t.equal(r['status'], 'delivered');
  t.equal((await bob1.next((f) => f.type === 'room_message' && f['body'] === 'hello all'))['from'], 'alice');
  t.equal((await carol.next((f) => f.type === 'room_message' && f['body'] === 'hello all'))['from'], 'alice');

  // Watch across nodes: bob's devices leave one by one; exactly one offline event at the end.
  const w = (await connectAs(ws(a!), 'watcher')).c;
  t.teardown(() => w.close());
  t.same((await w.request({ type: 'watch', id: 'w', users: ['bob'] }))['users'], { bob: 'online' });
  await bob1.close();
  await w.request({ type: 'presence', id: 'x', users: ['bob'] });
  await bob2.close();
  t.same(await w.next('presence_change'), { type: 'presence_change', user: 'bob', status: 'offline' });
  const bob3 = (await connectAs(ws(b!), 'bob')).c;
  t.teardown(() => bob3.close());
  t.same(await w.next('presence_change'), { type: 'presence_change', user: 'bob', status: 'online' });
  t.same(w.unread(), [], 'no other event');
});

t.test('a node with the wrong --mesh-secret is refused and never gets traffic', async (t) => {
  const a = await node(t, { id: 'a', meshSecret: 'right' });
  const b = await node(t, { id: 'b', meshSecret: 'right', peers: [meshAddr(a)] });
  const m = await node(t, { id: 'm', meshSecret: 'wrong', peers: [meshAddr(a), meshAddr(b)] });
  await eventually(() => a.peers.upLinks().size === 1 && b.peers.upLinks().size === 1, 5000, 'a-b link');
  // Give the intruder several dial attempts; it must never get a link.
  await eventually(() => m.peers.view().every((p) => p.lastError !== undefined), 5000, 'intruder refused');
  t.equal(m.peers.upLinks().size, 0);
  t.same([...a.peers.upLinks().keys()], ['b']);
  t.match(m.peers.view()[0]!.lastError, /bad_secret/);
  const alice = (await connectAs(ws(m), 'alice')).c;
  t.teardown(() => alice.close());
  const bob = (await connectAs(ws(a), 'bob')).c;
  t.teardown(() => bob.close());
  t.equal((await alice.request({ type: 'send', id: 's', to: 'bob', body: 'x' }))['status'], 'stored', 'the intruder cannot see bob');
});

t.test('a peer that dies mid-flight: every frame still gets one answer, its users go offline', async (t) => {
  const [a, b] = await threeNodes(t, SECRET);
  const alice = (await connectAs(ws(a!), 'alice')).c;
  const bob = (await connectAs(ws(b!), 'bob')).c;
  t.teardown(() => alice.close());
  const w = (await connectAs(ws(a!), 'w')).c;
  t.teardown(() => w.close());
  await eventually(async () => (await w.request({ type: 'watch', id: `w${Date.now()}`, users: ['bob'] }))['users'] !== undefined && (await a!.router.online(['u:bob'])).get('u:bob') === true, 5000, 'bob online');
  for (let i = 0; i < 50; i++) alice.send({ type: 'send', id: `m${i}`, to: 'bob', body: `x${i}` });
  await b!.kill();
  await bob.closed;
  const answers = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const f = await alice.answer(`m${i}`, 10_000);
    t.ok(f['type'] === 'ack' || f['code'] === 'unavailable', `m${i}: ${f['type']} ${String(f['status'] ?? f['code'])}`);
    answers.add(f['id'] as string);
  }
  t.equal(answers.size, 50, 'exactly one answer each');
  await w.next((f) => f.type === 'presence_change' && f['status'] === 'offline', 5000);
  t.equal((await alice.request({ type: 'send', id: 'after', to: 'bob', body: 'x' }))['status'], 'stored');
});

t.test('a link dropped as silent releases the call and the channel on both ends', async (t) => {
  const opts = { ...defaultLinkOptions(), pingIntervalMs: 100_000, deadAfterMs: 300 };
  const self = { id: 'b', incarnation: 'i', advertise: '127.0.0.1:1', httpPort: 0, adminPort: 0 };
  const server = new GrpcTransport();
  t.teardown(() => server.close());
  const port = await server.listen('127.0.0.1', 0, (s) => { new PeerLink(s, 'acceptor', self, undefined, opts, { onEnvelope() {}, onDown() {} }); });
  const client = new GrpcTransport();
  t.teardown(() => client.close());
  const link = new PeerLink(client.dial(`127.0.0.1:${port}`), 'dialer', { ...self, id: 'a' }, undefined, opts, { onEnvelope() {}, onDown() {} });
  await link.up;
  t.equal(server.openStreams, 1);
  await link.closed; // neither side pings: both drop the other as silent
  await eventually(() => client.openStreams === 0 && client.openChannels === 0 && server.openStreams === 0, 5000, 'released');
  t.pass('both ends released');
});
