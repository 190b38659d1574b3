/**
 * Peer-link handshake and anti-entropy, over the in-memory transport.
 */
import t from 'tap';
import { MAX_BATCH_BYTES, MAX_MESSAGE_BYTES, MemoryNetwork, PeerLink, PROTOCOL_VERSION, defaultLinkOptions, loadMeshProto } from '../src/mesh/index.js';
import type { LinkStream } from '../src/mesh/index.js';
import type { Batch, Envelope__Output } from '../src/mesh/wire.js';
import { startNode } from '../src/node.js';
import type { ChatNode } from '../src/node.js';
import { userTopic } from '../src/core/index.js';
import { connectAs, eventually } from './helpers/client.js';
import { FakeSub, MemoryMesh } from './helpers/mesh.js';
import { bodyOf, frameFor } from './helpers/frames.js';

const self = { id: 'b', incarnation: 'i1', advertise: '127.0.0.1:1', httpPort: 0, adminPort: 0 };

async function acceptor(net: MemoryNetwork, secret: string | undefined): Promise<{ address: string; refused: Promise<Error> }> {
  const transport = net.transport();
  let refusedResolve!: (e: Error) => void;
  const refused = new Promise<Error>((r) => { refusedResolve = r; });
  const port = await transport.listen('127.0.0.1', 0, (stream) => {
    const link = new PeerLink(stream, 'acceptor', self, secret, defaultLinkOptions(), { onEnvelope() {}, onDown() {} });
    link.up.catch(refusedResolve);
  });
  return { address: `127.0.0.1:${port}`, refused };
}

t.test('a dialer with another protocol version is refused with bad_version', async (t) => {
  const net = new MemoryNetwork();
  const { address, refused } = await acceptor(net, undefined);
  const stream = net.transport().dial(address);
  const got: Envelope__Output[] = [];
  stream.onBatch((b) => got.push(...b.items));
  stream.onClose(() => {});
  stream.onDrain(() => {});
  stream.send({ items: [{ hello: { protocolVersion: PROTOCOL_VERSION + 1, nodeId: 'a', incarnation: 'x', secret: '', advertise: '127.0.0.1:2' } }] });
  t.match((await refused).message, /protocol version/);
  await eventually(() => got.length > 0, 2000, 'refusal');
  t.equal(got[0]!.refuse?.code, 'bad_version');
  t.equal(got.some((e) => e.kind === 'welcome'), false, 'never welcomed');
});

t.test('a dialer with a wrong secret is refused with bad_secret; the right one is welcomed', async (t) => {
  const net = new MemoryNetwork();
  const { address } = await acceptor(net, 's3cret');
  const wrong = new PeerLink(net.transport().dial(address), 'dialer', { ...self, id: 'a' }, 'guess', defaultLinkOptions(), { onEnvelope() {}, onDown() {} });
  const err = await wrong.up.catch((e: Error & { code?: string }) => e);
  t.equal((err as { code?: string }).code, 'bad_secret');
  const right = new PeerLink(net.transport().dial(address), 'dialer', { ...self, id: 'a' }, 's3cret', defaultLinkOptions(), { onEnvelope() {}, onDown() {} });
  t.equal((await right.up).id, 'b');
  right.close('done');
});

t.test('anti-entropy: a home that lost an owner\'s delta heals from the digest exchange', async (t) => {
  const mesh = new MemoryMesh(t, { nodes: 3, deps: { mesh: { antiEntropyMs: 100 } } });
  await mesh.startAll();
  await eventually(() => mesh.connected(), 10_000, 'full mesh');
  // Find a user homed on n0 and connect it on n1.
  const n0 = mesh.node(0);
  const n1 = mesh.node(1);
  let user = '';
  for (let i = 0; !user; i++) if (n0.router.homeOf(userTopic(`ae${i}`)) === 'n0') user = `ae${i}`;
  const sub = new FakeSub(user, 'n1');
  n1.router.subscribe(userTopic(user), sub);
  await eventually(() => n0.router.directory.get(userTopic(user))?.owners.get('n1') === 1, 5000, 'home knows');
  // Lose the delta: the home forgets n1 owns it (as if the message had been dropped).
  n0.router.directory.setOwner(userTopic(user), 'n1', 0);
  t.equal(n0.router.directory.get(userTopic(user)), undefined, 'home lost it');
  await eventually(() => n0.router.directory.get(userTopic(user))?.owners.get('n1') === 1, 5000, 'healed by anti-entropy');
  t.ok(n0.router.stats.digestMismatches >= 1, 'a digest mismatch was found');
  t.equal(await mesh.node(2).router.publish(userTopic(user), frameFor(userTopic(user), 'after healing')), 1, 'routable again from a third node');
  t.same(sub.received.map(bodyOf), ['after healing']);
});

t.test('a peer that sends an invalid envelope is cut off; valid traffic from it is served', async (t) => {
  const mesh = new MemoryMesh(t, { nodes: 1 });
  await mesh.startAll();
  const node = mesh.node(0);
  const sub = new FakeSub('zed', 'n0');
  node.router.subscribe(userTopic('zed'), sub);
  const results: Envelope__Output[] = [];
  const dial = (): PeerLink => new PeerLink(mesh.net.transport().dial('127.0.0.1:21000'), 'dialer',
    { id: 'a-peer', incarnation: 'i', advertise: '127.0.0.1:29999', httpPort: 0, adminPort: 0 }, undefined, defaultLinkOptions(),
    { onEnvelope: (_l, env) => results.push(env), onDown() {} });
  const good = dial();
  await good.up;
  const hello = frameFor('u:zed', 'hello');
  good.send({ deliver: { id: 7, topic: 'u:zed', data: hello, exceptSession: '', acceptedAtMs: Date.now() } });
  await eventually(() => results.some((e) => e.kind === 'results'), 5000, 'result');
  t.same(sub.received, [hello], 'a valid delivery is written');
  t.match(results.find((e) => e.kind === 'results')!.results, { firstId: 7, idGaps: [], counts: [1], notHere: [] }, 'answered with coalesced results (both ends speak revision 1)');
  good.send({ deliver: { id: 8, topic: 'not a topic', data: 'x', exceptSession: '', acceptedAtMs: 0 } });
  await good.closed;
  t.equal(good.state, 'closed', 'the node closed the link');
  t.same(sub.received, [hello], 'nothing of the invalid envelope was delivered');
  t.equal(node.peers.upLinks().size, 0);
});

t.test('watches still in flight when their connection closes leave no pin or listener behind', async (t) => {
  const mesh = new MemoryMesh(t, { nodes: 2 });
  await mesh.startAll();
  await eventually(() => mesh.connected(), 10_000, 'mesh');
  const n0 = mesh.node(0);
  const url = `ws://127.0.0.1:${n0.httpPort}/ws`;
  for (let k = 0; k < 5; k++) {
    const c = (await connectAs(url, `w${k}`)).c;
    // Half of these users are homed on n1, so their watches wait for a lookup when the client goes.
    c.send({ type: 'watch', id: 'w', users: Array.from({ length: 100 }, (_, i) => `ghost${i}`) });
    c.ws.terminate();
    await c.closed;
  }
  await eventually(() => n0.stats.connections === 0, 5000, 'clients gone');
  await eventually(() => n0.router.table.pinnedSize === 0, 5000, `no pins left (have ${n0.router.table.pinnedSize})`).catch(() => undefined);
  t.equal(n0.router.table.pinnedSize, 0, 'no pinned routes left');
});

t.test('an owner node that stops answering: the sender gets error unavailable, with its id', async (t) => {
  // Storage off: this is about the delivery to a hung owner (a hung stream replica is in streams-mesh.test.ts).
  const mesh = new MemoryMesh(t, { nodes: 1, input: { historySize: 0 }, deps: { mesh: { deliveryTimeoutMs: 300, lookupTimeoutMs: 300 } } });
  await mesh.startAll();
  const node = mesh.node(0);
  // A peer that completes the handshake, claims a connection of zed, then never answers anything.
  const mute = new PeerLink(mesh.net.transport().dial('127.0.0.1:21000'), 'dialer',
    { id: 'a-mute', incarnation: 'i', advertise: '127.0.0.1:29998', httpPort: 0, adminPort: 0 }, undefined,
    { ...defaultLinkOptions(), deadAfterMs: 60_000 }, { onEnvelope() {}, onDown() {} });
  t.teardown(() => mute.close('done'));
  await mute.up;
  await eventually(() => node.peers.upLinks().size === 1, 5000, 'mute peer linked');
  mute.send({ owner: { topic: 'u:zed', count: 1 } });
  const { c } = await connectAs(`ws://127.0.0.1:${node.httpPort}/ws`, 'alice');
  t.teardown(() => c.close());
  const answer = await c.request({ type: 'send', id: 's1', to: 'zed', body: 'anyone?' });
  t.same({ type: answer['type'], id: answer['id'], code: answer['code'] }, { type: 'error', id: 's1', code: 'unavailable' });
  t.match(answer['message'], /nothing was delivered/);
  t.ok(node.router.stats.unavailable >= 1);
});

t.test('a delivery withdrawn while still queued is never written', async (t) => {
  const net = new MemoryNetwork();
  const got: Envelope__Output[] = [];
  const transport = net.transport();
  const port = await transport.listen('127.0.0.1', 0, (stream) => {
    new PeerLink(stream, 'acceptor', self, undefined, defaultLinkOptions(), { onEnvelope: (_l, env) => got.push(env), onDown() {} });
  });
  const link = new PeerLink(net.transport().dial(`127.0.0.1:${port}`), 'dialer', { ...self, id: 'a' }, undefined, defaultLinkOptions(), { onEnvelope() {}, onDown() {} });
  t.teardown(() => link.close('done'));
  // Queued before the handshake completes, so both wait in the link's queue.
  const withdrawn = { deliver: { id: 1, topic: 'u:x', data: 'late', exceptSession: '', acceptedAtMs: 0 } };
  const kept = { deliver: { id: 2, topic: 'u:x', data: 'kept', exceptSession: '', acceptedAtMs: 0 } };
  t.ok(link.send(withdrawn));
  t.ok(link.send(kept));
  link.cancel(withdrawn);
  await link.up;
  await eventually(() => got.length > 0, 5000, 'delivery arrives');
  t.same(got.map((e) => e.deliver?.data), ['kept'], 'only the kept delivery was written');
});

t.test('batches are bounded in bytes: 12 MB queued in one turn leave in batches of at most 4 MiB; a larger envelope is refused', async (t) => {
  const net = new MemoryNetwork();
  const got: Envelope__Output[] = [];
  const port = await net.transport().listen('127.0.0.1', 0, (stream) => {
    new PeerLink(stream, 'acceptor', self, undefined, defaultLinkOptions(), { onEnvelope: (_l, env) => got.push(env), onDown() {} });
  });
  const codec = loadMeshProto().Mesh.service.Link;
  const sizes: number[] = [];
  const inner = net.transport().dial(`127.0.0.1:${port}`);
  const recording: LinkStream = {
    remote: inner.remote,
    send(b: Batch): boolean {
      sizes.push(codec.requestSerialize(b).length);
      return inner.send(b);
    },
    close: () => inner.close(),
    onBatch: (cb) => inner.onBatch(cb),
    onClose: (cb) => inner.onClose(cb),
    onDrain: (cb) => inner.onDrain(cb),
  };
  const link = new PeerLink(recording, 'dialer', { ...self, id: 'a' }, undefined, defaultLinkOptions(), { onEnvelope() {}, onDown() {} });
  t.teardown(() => link.close('done'));
  await link.up;
  const data = 'x'.repeat(100_000);
  for (let i = 0; i < 120; i++) t.ok(link.send({ deliver: { id: i, topic: 'u:x', data, exceptSession: '', acceptedAtMs: 0 } }), `queued ${i}`);
  t.notOk(link.send({ deliver: { id: 999, topic: 'u:x', data: 'y'.repeat(MAX_BATCH_BYTES), exceptSession: '', acceptedAtMs: 0 } }), 'an envelope over the batch limit is refused');
  await eventually(() => got.length === 120, 5000, 'all delivered');
  const big = sizes.filter((s) => s > 1_000_000);
  t.ok(big.length >= 3, `split into ${big.length} batches`);
  t.ok(Math.max(...sizes) <= MAX_BATCH_BYTES, `largest batch ${Math.max(...sizes)} bytes <= ${MAX_BATCH_BYTES}`);
  t.ok(Math.max(...sizes) < MAX_MESSAGE_BYTES, 'below the transport\'s message limit');
  t.same(got.map((e) => e.deliver!.id), Array.from({ length: 120 }, (_, i) => i), 'in order');
});

t.test('open mesh: a node that only the other knows still links to it (its link is taken, never dialed back)', async (t) => {
  const net = new MemoryNetwork();
  const start = async (id: string, port: number, peers: string[]): Promise<ChatNode> => {
    const n = await startNode({ id, host: '127.0.0.1', httpPort: 0, meshPort: port, adminPort: 0, logLevel: 'silent', peers }, {
      transport: net.transport(), retryMinMs: 20, retryMaxMs: 200, link: { pingIntervalMs: 200, deadAfterMs: 2000 },
    });
    t.teardown(() => n.stop());
    return n;
  };
  const a = await start('a', 21_100, []);
  const b = await start('b', 21_101, ['127.0.0.1:21100']);
  await eventually(() => a.peers.upLinks().size === 1 && b.peers.upLinks().size === 1, 5000, 'a-b link');
  t.equal(a.peers.upLinks().get('b')!.role, 'acceptor', 'a took b\'s link');
  t.same(a.peers.learnedAddresses(), [], 'a dials nothing');
  const sub = new FakeSub('zed', 'b');
  await b.router.subscribe(userTopic('zed'), sub);
  await eventually(async () => (await a.router.publish(userTopic('zed'), frameFor('u:zed', 'hi'))) === 1, 5000, 'routable across the link');
});

t.test('linger: a batch due right after the previous one waits for company (--mesh-linger-ms); a lone one leaves at once', async (t) => {
  const net = new MemoryNetwork();
  const got: Envelope__Output[] = [];
  const port = await net.transport().listen('127.0.0.1', 0, (stream) => {
    new PeerLink(stream, 'acceptor', self, undefined, defaultLinkOptions(), { onEnvelope: (_l, env) => got.push(env), onDown() {} });
  });
  const batches: number[] = [];
  const inner = net.transport().dial(`127.0.0.1:${port}`);
  const recording: LinkStream = {
    remote: inner.remote,
    send(b: Batch): boolean {
      batches.push(b.items?.length ?? 0);
      return inner.send(b);
    },
    close: () => inner.close(),
    onBatch: (cb) => inner.onBatch(cb),
    onClose: (cb) => inner.onClose(cb),
    onDrain: (cb) => inner.onDrain(cb),
  };
  const link = new PeerLink(recording, 'dialer', { ...self, id: 'a' }, undefined, { ...defaultLinkOptions(), lingerMs: 40 }, { onEnvelope() {}, onDown() {} });
  t.teardown(() => link.close('done'));
  await link.up;
  const deliver = (id: number): void => { link.send({ deliver: { id, topic: 'u:x', data: '{}', exceptSession: '', acceptedAtMs: 0 } }); };
  await new Promise((r) => setTimeout(r, 60));
  batches.length = 0;
  // One envelope long after the last batch: it leaves in this turn's batch.
  deliver(1);
  await eventually(() => got.length === 1, 2000, 'the first delivery');
  t.same(batches, [1], 'a lone envelope is not held');
  // Five more, one per event-loop turn, right after it: they wait together for the linger.
  for (let i = 2; i <= 6; i++) {
    deliver(i);
    await new Promise((r) => setImmediate(r));
  }
  t.equal(got.length, 1, 'held while the linger runs');
  await eventually(() => got.length === 6, 2000, 'the held deliveries');
  t.same(batches, [1, 5], 'the five left as one batch');
  t.same(got.map((e) => e.deliver!.id), [1, 2, 3, 4, 5, 6], 'in order');
});
