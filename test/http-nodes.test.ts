/**
 * `GET /nodes` (protocol.md §2 "Accounts") and `--public-url` (§1) through real sockets: nodes on
 * 127.0.0.1:0 linked over real gRPC, a hostile peer dialing with a junk `Hello.public_url`.
 */
import t from 'tap';
import type { Test } from 'tap';
import { GrpcTransport, PeerLink, defaultLinkOptions } from '../src/mesh/index.js';
import type { NodeIdentity } from '../src/mesh/index.js';
import { ConfigError } from '../src/config/index.js';
import { startNode } from '../src/node.js';
import type { ChatNode } from '../src/node.js';
import { eventually } from './helpers/client.js';
import { grpcNode, meshAddr, wsUrl } from './helpers/grpc-mesh.js';

interface NodeEntry { id: string; url: string }

const base = (n: ChatNode): string => `http://127.0.0.1:${n.httpPort}`;

async function nodesOf(n: ChatNode): Promise<NodeEntry[]> {
  const res = await fetch(`${base(n)}/nodes`);
  if (res.status !== 200) throw new Error(`GET /nodes on ${n.id}: ${res.status}`);
  return (await res.json()) as NodeEntry[];
}

const ids = async (n: ChatNode): Promise<string> => (await nodesOf(n)).map((e) => e.id).join(',');

/**
 * a, b, c over gRPC (b knows a, c knows b: the secret lets peers' member lists close the mesh),
 * `a` with a public URL; resolves once fully meshed.
 */
async function mesh(t: Test): Promise<ChatNode[]> {
  const meshSecret = 'nodes-test-secret';
  const a = await grpcNode(t, { id: 'a', meshSecret, publicUrl: 'wss://chat.example.com/a/ws' });
  const b = await grpcNode(t, { id: 'b', meshSecret, peers: [meshAddr(a)] });
  const c = await grpcNode(t, { id: 'c', meshSecret, peers: [meshAddr(b)] });
  await eventually(() => [a, b, c].every((n) => n.peers.upLinks().size === 2), 10_000, 'full mesh over gRPC');
  return [a, b, c];
}

t.test('GET /nodes on each node lists all three, itself first, then by id, with their public URLs', async (t) => {
  const [a, b, c] = await mesh(t);
  const url = { a: 'wss://chat.example.com/a/ws', b: wsUrl(b!), c: wsUrl(c!) };
  t.same(await nodesOf(a!), [{ id: 'a', url: url.a }, { id: 'b', url: url.b }, { id: 'c', url: url.c }]);
  t.same(await nodesOf(b!), [{ id: 'b', url: url.b }, { id: 'a', url: url.a }, { id: 'c', url: url.c }], 'a\'s --public-url as b sees it');
  t.same(await nodesOf(c!), [{ id: 'c', url: url.c }, { id: 'a', url: url.a }, { id: 'b', url: url.b }], 'a\'s --public-url as c sees it');
  t.equal(b!.config.publicUrl, undefined, 'no --public-url: the default, with the bound port');
});

t.test('GET /nodes headers, HEAD, and other methods', async (t) => {
  const n = await grpcNode(t, { id: 'solo' });
  const res = await fetch(`${base(n)}/nodes`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^application\/json/);
  t.equal(res.headers.get('access-control-allow-origin'), '*', 'a web client served by another node may read it');
  t.equal(res.headers.get('cache-control'), 'no-store');
  t.same(await res.json(), [{ id: 'solo', url: wsUrl(n) }]);
  const head = await fetch(`${base(n)}/nodes`, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(await head.text(), '', 'HEAD: no body');
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
    const r = await fetch(`${base(n)}/nodes`, { method });
    t.equal(r.status, 405, method);
    t.equal(r.headers.get('allow'), 'GET, HEAD', method);
    await r.arrayBuffer();
  }
});

t.test('a node that stops disappears from the others\' lists', async (t) => {
  const [a, b, c] = await mesh(t);
  await c!.stop();
  await eventually(async () => await ids(a!) === 'a,b' && await ids(b!) === 'b,a', 10_000, 'c gone from a and b');
  t.pass('c no longer listed');
});

t.test('a node that crashes disappears from the others\' lists', async (t) => {
  const [a, b, c] = await mesh(t);
  await c!.kill();
  await eventually(async () => await ids(a!) === 'a,b' && await ids(b!) === 'b,a', 10_000, 'c gone from a and b');
  t.pass('c no longer listed');
});

t.test('a draining node leaves itself out of its own list, so its clients move away', async (t) => {
  const [, b, c] = await mesh(t);
  t.equal(await ids(b!), 'b,a,c');
  await b!.drain();
  t.same(await nodesOf(b!), [{ id: 'a', url: 'wss://chat.example.com/a/ws' }, { id: 'c', url: wsUrl(c!) }]);
});

t.test('a peer whose hello carries a junk public_url is listed with its fallback URL, never the junk', async (t) => {
  const node = await grpcNode(t, { id: 'z' });
  const transport = new GrpcTransport({});
  t.teardown(() => transport.close());
  const junk: ReadonlyArray<readonly [string, string, number]> = [
    ['a1', 'javascript:alert(1)', 4001],
    ['a2', `wss://evil.example/${'x'.repeat(600)}`, 4002],
    ['a3', 'wss://evil.example/ws\r\nSet-Cookie: x=1', 4003],
    ['a4', 'http://evil.example/ws', 4004],
    ['a5', 'not a url', 0],
  ];
  for (const [id, publicUrl, httpPort] of junk) {
    const self: NodeIdentity = { id, incarnation: 'fake', advertise: `127.0.0.1:${httpPort + 10_000}`, httpPort, adminPort: 0, publicUrl };
    const link = new PeerLink(transport.dial(meshAddr(node)), 'dialer', self, undefined, defaultLinkOptions(), { onEnvelope() {}, onDown() {} });
    t.teardown(() => link.close('done'));
    await link.up;
  }
  await eventually(() => node.peers.upLinks().size === junk.length, 5000, 'fake peers linked');
  t.same(await nodesOf(node), [
    { id: 'z', url: wsUrl(node) },
    { id: 'a1', url: 'ws://127.0.0.1:4001/ws' },
    { id: 'a2', url: 'ws://127.0.0.1:4002/ws' },
    { id: 'a3', url: 'ws://127.0.0.1:4003/ws' },
    { id: 'a4', url: 'ws://127.0.0.1:4004/ws' },
  ], 'fallback URLs; a5 (no URL, no http port) is not listed');
  t.equal(node.peers.upLinks().get('a1')!.peer!.publicUrlRefused, 'must start with ws:// or wss://, not javascript://');
});

t.test('a bad --public-url stops the node before it listens, with a one-line ConfigError', async (t) => {
  const err = await startNode({ host: '127.0.0.1', httpPort: 0, meshPort: 0, adminPort: 0, logLevel: 'silent', publicUrl: 'http://chat.example.com/ws' })
    .then((n) => n.stop().then(() => undefined), (e: unknown) => e);
  t.type(err, ConfigError);
  t.equal((err as ConfigError).message,
    '--public-url must be a ws:// or wss:// URL clients can reach this node at (like wss://chat.example.com/ws): "http://chat.example.com/ws" must start with ws:// or wss://, not http://');
});
