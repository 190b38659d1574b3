/**
 * The mesh port under attack (issue "Trust under churn and attack"): what an unauthenticated caller
 * can cost (big messages, idle connections), the refusal to start an open mesh, mutual TLS, peers
 * that inject, and addresses peers make a node dial.
 */
import t from 'tap';
import type { Test } from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { connect as tcpConnect } from 'node:net';
import type { Socket } from 'node:net';
import { promisify } from 'node:util';
import { GrpcTransport, LinkRefusedError, MemoryNetwork, PeerLink, defaultLinkOptions } from '../src/mesh/index.js';
import type { GrpcTransportOptions, MeshTransport, NodeIdentity } from '../src/mesh/index.js';
import type { Envelope__Output } from '../src/mesh/wire.js';
import { startNode } from '../src/node.js';
import type { ChatNode } from '../src/node.js';
import type { NodeConfigInput } from '../src/config/index.js';
import { encodeMessage, encodeRoomMessage } from '../src/protocol/index.js';
import { connectAs, eventually } from './helpers/client.js';
import type { TestClient } from './helpers/client.js';
import { haveOpenssl, makeTestCerts, tlsInput } from './helpers/certs.js';
import { CLI, freePort, startCliNode } from './helpers/procs.js';

const run = promisify(execFile);
const SECRET = 'security-test-secret';

/** A node over real gRPC on port 0 with fast timings; stopped at the end of the test. */
async function node(t: Test, input: NodeConfigInput, grpc: GrpcTransportOptions = {}, transport?: MeshTransport): Promise<ChatNode> {
  const n = await startNode({ host: '127.0.0.1', httpPort: 0, meshPort: 0, adminPort: 0, logLevel: 'silent', ...input }, {
    retryMinMs: 20, retryMaxMs: 300, link: { pingIntervalMs: 200, deadAfterMs: 2000 }, grpc,
    ...(transport && { transport }),
  });
  t.teardown(() => n.stop());
  return n;
}

const ws = (n: ChatNode): string => `ws://127.0.0.1:${n.httpPort}/ws`;
const addr = (n: ChatNode): string => `127.0.0.1:${n.meshPort}`;

function identity(id: string, advertise = '127.0.0.1:1'): NodeIdentity {
  return { id, incarnation: `${id}-i`, advertise, httpPort: 0, adminPort: 0 };
}

/** Every raw text frame a client's socket receives (also what is not JSON). */
function rawFrames(c: TestClient): string[] {
  const got: string[] = [];
  c.ws.prependListener('message', (d) => got.push(d.toString()));
  return got;
}

/** A round trip through the client's node: frames sent to it before are in by then. */
async function sync(c: TestClient): Promise<void> {
  await c.request({ type: 'presence', id: `sync${Date.now()}${Math.random()}`, users: ['nobody'] });
}

// ------------------------------------------------------------------------------- pre-auth costs

/** Resident set (and its peak since the last reset) of a process, in bytes (Linux /proc). */
function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/**
 * One raw HTTP/2 `Link` call without the secret's proof that sends a single message of
 * `payload.length` bytes, whatever the server answers. Resolves with the grpc-status it got, or
 * `reset` when the stream was reset before a status could be read (the sender was still writing).
 */
function hugeCall(port: number, payload: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const session = h2connect(`http://127.0.0.1:${port}`);
    session.on('error', () => { /* the server may cut it */ });
    const req = session.request({ ':method': 'POST', ':path': '/chatmesh.mesh.v1.Mesh/Link', 'content-type': 'application/grpc', te: 'trailers' });
    let status: string | undefined;
    req.on('response', (h) => { status ??= h['grpc-status'] as string | undefined; });
    req.on('trailers', (h) => { status ??= h['grpc-status'] as string | undefined; });
    req.on('error', () => { /* reset by the server */ });
    req.on('close', () => {
      session.destroy();
      resolve(status ?? (req.rstCode ? 'reset' : 'none'));
    });
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(payload.length, 1);
    req.write(prefix);
    req.end(payload);
  });
}

t.test('six 60 MB messages without the secret are refused before they are read; the node\'s memory stays flat', { skip: process.platform !== 'linux' && 'reads /proc' }, async (t) => {
  const meshPort = await freePort();
  const n = await startCliNode(t, ['--http-port', '0', '--mesh-port', String(meshPort), '--admin-port', '0', '--mesh-secret', SECRET]);
  const pid = n.child.pid!;
  // Let start-up allocation settle, then reset the peak so it measures the attack alone.
  await new Promise((r) => setTimeout(r, 500));
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch { /* older kernels: the peak then includes start-up, which only makes this stricter */ }
  const before = memory(pid);
  let sampled = before.rss;
  const sampler = setInterval(() => { sampled = Math.max(sampled, memory(pid).rss); }, 20);
  t.teardown(() => clearInterval(sampler));
  const payload = Buffer.alloc(60_000_000, 0x41);
  const started = Date.now();
  const statuses = await Promise.all(Array.from({ length: 6 }, () => hugeCall(meshPort, payload)));
  const tookMs = Date.now() - started;
  clearInterval(sampler);
  const after = memory(pid);
  const growth = Math.max(after.peak, sampled) - before.rss;
  t.comment(`RSS before ${(before.rss / 1e6).toFixed(1)} MB, peak ${(Math.max(after.peak, sampled) / 1e6).toFixed(1)} MB, after ${(after.rss / 1e6).toFixed(1)} MB; calls ended in ${tookMs} ms`);
  t.ok(statuses.every((s) => s === '16' || s === 'reset'), `every call refused: UNAUTHENTICATED, or reset while it was still sending (${statuses.join(' ')})`);
  t.ok(growth < 30e6, `the node grew ${(growth / 1e6).toFixed(1)} MB (< 30 MB) while 360 MB were thrown at it`);
  t.equal(n.child.exitCode, null, 'still running');
});

t.test('2,000 idle TCP connections and idle HTTP/2 sessions on the mesh port are closed by the handshake deadline; peers still link', async (t) => {
  const deadlineMs = 1000;
  const a = await node(t, { id: 'a', meshSecret: SECRET }, { handshakeDeadlineMs: deadlineMs });
  const sockets: Socket[] = [];
  let closed = 0;
  let longest = 0;
  t.teardown(() => { for (const s of sockets) s.destroy(); });
  const started = Date.now();
  // 20 real HTTP/2 clients that answer keepalive pings but never start a call (first, so they get
  // pending slots rather than being refused at accept)...
  const sessions = Array.from({ length: 20 }, () => h2connect(`http://127.0.0.1:${a.meshPort}`));
  t.teardown(() => { for (const s of sessions) s.destroy(); });
  const sessionsClosed = sessions.map((s) => new Promise<number>((resolve) => {
    const at = Date.now();
    s.on('error', () => { /* reset */ });
    s.once('close', () => resolve(Date.now() - at));
  }));
  // ...then 2,000 sockets that say nothing at all.
  // In chunks, so the listen backlog does not overflow much (a dropped SYN is retried after 1 s).
  for (let i = 0; i < 2000; i += 200) {
    await Promise.all(Array.from({ length: 200 }, () => new Promise<void>((resolve) => {
      const s = tcpConnect(a.meshPort, '127.0.0.1');
      sockets.push(s);
      let connectedAt = Date.now();
      s.resume(); // read what the server sends, so its FIN is seen
      s.on('error', () => { /* reset */ });
      s.once('connect', () => {
        connectedAt = Date.now();
        resolve();
      });
      s.once('close', () => {
        closed++;
        longest = Math.max(longest, Date.now() - connectedAt);
        resolve();
      });
    })));
  }
  await eventually(() => closed === 2000, deadlineMs + 5000, `all closed (${closed} so far)`);
  const sessionLife = Math.max(...await Promise.all(sessionsClosed));
  t.ok(sessionLife < deadlineMs + 1000, `idle HTTP/2 sessions closed too (longest ${sessionLife} ms)`);
  t.comment(`2,000 idle connections: all closed ${Date.now() - started} ms after the first opened; each lived at most ${longest} ms (deadline ${deadlineMs} ms)`);
  t.ok(longest < deadlineMs + 1000, `none outlived the deadline by a second (longest ${longest} ms)`);
  // The caps are released: a real peer links.
  const b = await node(t, { id: 'b', meshSecret: SECRET, peers: [addr(a)] });
  await eventually(() => a.peers.upLinks().size === 1 && b.peers.upLinks().size === 1, 5000, 'a-b link');
  t.pass('a peer links afterwards');
});

t.test('the listener caps pending connections and calls, and releases them once a link is up', async (t) => {
  const server = new GrpcTransport({ secret: SECRET, maxPendingPerAddress: 4, handshakeDeadlineMs: 60_000 });
  t.teardown(() => server.close());
  const self = identity('b');
  const port = await server.listen('127.0.0.1', 0, (s) => {
    new PeerLink(s, 'acceptor', self, SECRET, defaultLinkOptions(), { onEnvelope() {}, onDown() {} });
  });
  const idle: Socket[] = [];
  t.teardown(() => { for (const s of idle) s.destroy(); });
  for (let i = 0; i < 4; i++) idle.push(tcpConnect(port, '127.0.0.1'));
  await eventually(() => server.pendingConnections === 4, 2000, 'four pending');
  const fifth = tcpConnect(port, '127.0.0.1');
  fifth.on('error', () => {});
  await new Promise((r) => fifth.once('close', r));
  t.equal(server.counters.connectionsRefused, 1, 'the fifth from one address is closed at once');
  for (const s of idle.splice(0)) s.destroy();
  await eventually(() => server.pendingConnections === 0, 2000, 'released when they close');
  const client = new GrpcTransport({ secret: SECRET });
  t.teardown(() => client.close());
  const link = new PeerLink(client.dial(`127.0.0.1:${port}`), 'dialer', identity('a'), SECRET, defaultLinkOptions(), { onEnvelope() {}, onDown() {} });
  await link.up;
  t.equal(server.pendingConnections, 0, 'a connection whose link is up is not pending');
  t.equal(server.openConnections, 1);
  link.close('done');
});

// ------------------------------------------------------------------------------- open mesh refused

t.test('a mesh on 0.0.0.0 without a secret or TLS refuses to start (exit 2); --insecure-mesh starts it with a warning', async (t) => {
  const ports = ['--http-port', '0', '--mesh-port', '0', '--admin-port', '0'];
  const refused = await run(process.execPath, [CLI, 'node', '--host', '0.0.0.0', ...ports]).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
  t.equal(refused.code, 2, 'exit 2');
  t.match(refused.stderr, /refusing to start an open mesh/);
  t.match(refused.stderr, /--mesh-secret/);
  t.match(refused.stderr, /--insecure-mesh/);
  const open = await startCliNode(t, ['--host', '0.0.0.0', '--insecure-mesh', ...ports]);
  t.ok(open.logs.some((r) => r['level'] === 'warn' && /MESH IS OPEN/.test(String(r['msg']))), 'a loud warning');
  open.child.kill('SIGTERM');
  t.equal(await open.exited, 0);
  const safe = await startCliNode(t, ['--host', '0.0.0.0', '--mesh-secret', SECRET, ...ports]);
  t.notOk(safe.logs.some((r) => /MESH IS OPEN/.test(String(r['msg']))), 'no warning with a secret');
  safe.child.kill('SIGTERM');
  t.equal(await safe.exited, 0);
});

t.test('mesh TLS flags: all three or none, files that exist and parse', { skip: !haveOpenssl() && 'no openssl' }, async (t) => {
  const certs = makeTestCerts(t, ['x']);
  const x = certs.nodes.get('x')!;
  const cases: Array<[string[], RegExp]> = [
    [['--mesh-tls-cert', x.cert], /go together: missing --mesh-tls-key, --mesh-tls-ca/],
    [['--mesh-tls-cert', x.cert, '--mesh-tls-key', x.key, '--mesh-tls-ca', '/nonexistent/ca.pem'], /--mesh-tls-ca: cannot read "\/nonexistent\/ca.pem" \(ENOENT\)/],
    [['--mesh-tls-cert', x.key, '--mesh-tls-key', x.key, '--mesh-tls-ca', x.ca], /--mesh-tls-cert: .* is not a PEM certificate/],
    [['--mesh-tls-cert', x.cert, '--mesh-tls-key', certs.rogue.key, '--mesh-tls-ca', x.ca], /is not the key of --mesh-tls-cert/],
  ];
  for (const [args, why] of cases) {
    const r = await run(process.execPath, [CLI, 'node', '--http-port', '0', '--mesh-port', '0', '--admin-port', '0', ...args])
      .then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, why);
  }
});

// ------------------------------------------------------------------------------- mutual TLS

t.test('mutual TLS: the mesh forms and carries DMs; a node with another CA\'s certificate is refused', { skip: !haveOpenssl() && 'no openssl' }, async (t) => {
  const certs = makeTestCerts(t, ['a', 'b', 'c', 'd']);
  const tls = (id: string): ReturnType<typeof tlsInput> => tlsInput(certs.nodes.get(id)!);
  for (const secret of [undefined, SECRET]) {
    t.test(secret ? 'TLS and a secret' : 'TLS alone', async (t) => {
      const [ia, ib] = secret ? ['c', 'd'] : ['a', 'b'];
      // A short handshake deadline: a link that is up must outlive it (its connection is trusted).
      const a = await node(t, { id: ia, meshSecret: secret, ...tls(ia!) }, { handshakeDeadlineMs: 500 });
      const b = await node(t, { id: ib, meshSecret: secret, peers: [addr(a)], ...tls(ib!) }, { handshakeDeadlineMs: 500 });
      await eventually(() => a.peers.upLinks().size === 1 && b.peers.upLinks().size === 1, 10_000, 'TLS link');
      const link = a.peers.upLinks().get(ib!)!;
      const alice = (await connectAs(ws(a), 'alice')).c;
      const bob = (await connectAs(ws(b), 'bob')).c;
      t.teardown(() => Promise.all([alice.close(), bob.close()]));
      t.equal((await alice.request({ type: 'send', id: 'd1', to: 'bob', body: 'over TLS' }))['status'], 'delivered');
      t.equal((await bob.next('message'))['body'], 'over TLS');
      await new Promise((r) => setTimeout(r, 1000));
      t.equal(a.peers.upLinks().get(ib!), link, 'the same link is up after the handshake deadline');
      t.equal((await bob.request({ type: 'send', id: 'd2', to: 'alice', body: 'still here' }))['status'], 'delivered');
    });
  }

  t.test('refused: another CA\'s certificate, and no certificate at all', async (t) => {
    const a = await node(t, { id: 'm', ...tls('a') });
    const b = await node(t, { id: 'n', peers: [addr(a)], ...tls('b') });
    await eventually(() => a.peers.upLinks().size === 1, 10_000, 'm-n link');
    // Trusts the mesh CA (so it would accept the nodes' certificates) but presents one the mesh CA did not sign.
    const rogue = await node(t, { id: 'a-rogue', peers: [addr(a), addr(b)], ...tlsInput({ ...certs.rogue, ca: certs.nodes.get('a')!.ca }) });
    // Presents nothing.
    const plain = await node(t, { id: 'a-plain', peers: [addr(a), addr(b)] });
    await eventually(() => [rogue, plain].every((n) => n.peers.view().length === 2 && n.peers.view().every((p) => p.lastError !== undefined)), 10_000, 'refused');
    t.equal(rogue.peers.upLinks().size, 0, 'the rogue has no link');
    t.equal(plain.peers.upLinks().size, 0, 'the plain node has no link');
    t.same([...a.peers.upLinks().keys()], ['n'], 'the mesh has only its own');
    t.same([...b.peers.upLinks().keys()], ['m']);
    t.comment(`rogue: ${rogue.peers.view()[0]!.lastError}; plain: ${plain.peers.view()[0]!.lastError}`);
  });
});

// ------------------------------------------------------------------------------- injection

t.test('a caller without the secret cannot inject: refused before its hello is read, nothing reaches users', async (t) => {
  const transport = new GrpcTransport({ secret: SECRET });
  const n = await node(t, { id: 'n', meshSecret: SECRET }, {}, transport);
  const bob = (await connectAs(ws(n), 'bob')).c;
  t.teardown(() => bob.close());
  const raw = rawFrames(bob);
  const forged = encodeMessage('01FORGED0000000000000000000', 'ceo', 'bob', 'wire the money', Date.now());
  for (const secret of [undefined, 'wrong']) {
    const client = new GrpcTransport({ secret });
    t.teardown(() => client.close());
    const link = new PeerLink(client.dial(addr(n)), 'dialer', identity('a-intruder'), secret, defaultLinkOptions(), { onEnvelope() {}, onDown() {} });
    link.send({ deliver: { id: 1, topic: 'u:bob', data: forged, exceptSession: '', acceptedAtMs: 0 } });
    const err = await link.up.catch((e: unknown) => e);
    t.ok(err instanceof LinkRefusedError && err.code === 'bad_secret', `secret ${String(secret)}: refused as bad_secret (${(err as Error).message})`);
  }
  t.equal(transport.counters.callsUnauthenticated, 2, 'both refused at the call\'s headers');
  t.equal(n.peers.upLinks().size, 0);
  await sync(bob);
  t.same(raw.filter((f) => !f.includes('"presence"')), [], 'nothing written to bob');
});

t.test('a peer that delivers an invalid or forged frame loses its link; nothing reaches the WebSocket', async (t) => {
  const n = await node(t, { id: 'n', meshSecret: SECRET });
  const bob = (await connectAs(ws(n), 'bob')).c;
  t.teardown(() => bob.close());
  const raw = rawFrames(bob);
  const client = new GrpcTransport({ secret: SECRET });
  t.teardown(() => client.close());
  const now = Date.now();
  const bad: Array<[string, string]> = [
    ['raw text', 'PWNED <script>alert(1)</script>'],
    ['a JSON string', '"hello"'],
    ['a message not to or from bob', encodeMessage('01AAAAAAAAAAAAAAAAAAAAAAAA', 'ceo', 'carol', 'hi', now)],
    ['a room message to a user', encodeRoomMessage('01AAAAAAAAAAAAAAAAAAAAAAAA', 'lobby', 'ceo', 'hi', now)],
    ['an unknown type', '{"type":"welcome","user":"ceo","node":"n","session":"x"}'],
    ['an extra field', '{"type":"message","msg":"01A","from":"ceo","to":"bob","body":"hi","ts":1,"html":"<b>"}'],
    ['a bad id', '{"type":"message","msg":"01A","from":"c e o","to":"bob","body":"hi","ts":1}'],
    ['a missing field', '{"type":"message","msg":"01A","from":"ceo","to":"bob","body":"hi"}'],
  ];
  let id = 0;
  for (const [what, data] of bad) {
    const link = new PeerLink(client.dial(addr(n)), 'dialer', identity('a-peer'), SECRET, defaultLinkOptions(), { onEnvelope() {}, onDown() {} });
    await link.up;
    link.send({ deliver: { id: ++id, topic: 'u:bob', data, exceptSession: '', acceptedAtMs: 0 } });
    await link.closed;
    t.match(link.stats.lastError ?? '', /invalid envelope: deliver/, `${what}: link dropped (${link.stats.lastError})`);
    await eventually(() => n.peers.upLinks().size === 0, 5000, 'gone on the node too');
  }
  await sync(bob);
  t.same(raw.filter((f) => !f.includes('"presence"')), [], 'nothing of them reached bob');
  // A well-formed frame from the same peer is delivered.
  const link = new PeerLink(client.dial(addr(n)), 'dialer', identity('a-peer'), SECRET, defaultLinkOptions(), { onEnvelope() {}, onDown() {} });
  t.teardown(() => link.close('done'));
  await link.up;
  const good = encodeMessage('01GOOD0000000000000000000000', 'alice', 'bob', 'hi bob', now);
  link.send({ deliver: { id: ++id, topic: 'u:bob', data: good, exceptSession: '', acceptedAtMs: 0 } });
  t.equal((await bob.next('message'))['body'], 'hi bob', 'a valid delivery is written');
});

// ------------------------------------------------------------------------------- learned addresses

/** A node on an in-memory network, and a listener at `watched` that counts the dials it gets. */
async function memoryNode(t: Test, secret: string | undefined): Promise<{ n: ChatNode; net: MemoryNetwork; dials: Map<string, number>; watch(address: string): Promise<void> }> {
  const net = new MemoryNetwork();
  const dials = new Map<string, number>();
  const n = await startNode({ id: 'n', host: '127.0.0.1', httpPort: 0, meshPort: 21_000, adminPort: 0, logLevel: 'silent', meshSecret: secret }, {
    transport: net.transport(), retryMinMs: 20, retryMaxMs: 100, link: { pingIntervalMs: 200, deadAfterMs: 2000 },
  });
  t.teardown(() => n.stop());
  const watch = async (address: string): Promise<void> => {
    const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
    dials.set(address, 0);
    await net.transport().listen(host, port, (s) => {
      dials.set(address, dials.get(address)! + 1);
      s.close();
    });
  };
  return { n, net, dials, watch };
}

/** A peer link to the memory node at 127.0.0.1:21000; `replies` collects what the node sends it. */
async function memoryPeer(t: Test, net: MemoryNetwork, id: string, secret: string | undefined, advertise: string): Promise<{ link: PeerLink; replies: Envelope__Output[] }> {
  const replies: Envelope__Output[] = [];
  const link = new PeerLink(net.transport().dial('127.0.0.1:21000'), 'dialer', identity(id, advertise), secret, defaultLinkOptions(), {
    onEnvelope: (_l, env) => replies.push(env), onDown() {},
  });
  t.teardown(() => link.close('done'));
  return { link, replies };
}

/** A round trip through the node's envelope handling (a lookup and its reply). */
async function roundTrip(link: PeerLink, replies: Envelope__Output[]): Promise<void> {
  const id = 1000 + replies.length;
  link.send({ lookup: { id, topics: ['u:nobody'] } });
  await eventually(() => replies.some((e) => e.lookupReply?.id === id), 5000, 'lookup reply');
}

t.test('open mesh: announced addresses and a dialer\'s advertised address are never dialed', async (t) => {
  const { n, net, dials, watch } = await memoryNode(t, undefined);
  await watch('127.0.0.1:29500');
  await watch('127.0.0.1:29501');
  const { link, replies } = await memoryPeer(t, net, 'a-peer', undefined, '127.0.0.1:29999');
  await link.up;
  link.send({ members: { addresses: ['127.0.0.1:29500', 'evil.example:80'] } });
  await roundTrip(link, replies);
  // A dialer with a larger id: on an open mesh its link is taken as it is, never dialed back.
  const { link: big, replies: bigReplies } = await memoryPeer(t, net, 'zz-peer', undefined, '127.0.0.1:29501');
  await big.up;
  t.pass('a larger-id dialer is accepted (not refused as wrong_direction and dialed back)');
  await roundTrip(big, bigReplies);
  await new Promise((r) => setTimeout(r, 300)); // several retry periods of the node's dial loops
  t.same(n.peers.learnedAddresses(), [], 'nothing learned');
  t.same(Object.fromEntries(dials), { '127.0.0.1:29500': 0, '127.0.0.1:29501': 0 }, 'nothing dialed');
});

t.test('authenticated mesh: announced addresses are dialed while a live peer announces them, then forgotten', async (t) => {
  const { n, net, dials, watch } = await memoryNode(t, SECRET);
  await watch('127.0.0.1:29500');
  await watch('127.0.0.1:29502');
  const { link, replies } = await memoryPeer(t, net, 'a-peer', SECRET, '127.0.0.1:29999');
  await link.up;
  link.send({ members: { addresses: ['127.0.0.1:29500'] } });
  await roundTrip(link, replies);
  await eventually(() => dials.get('127.0.0.1:29500')! >= 1, 5000, 'the announced address is dialed');
  t.same(n.peers.learnedAddresses(), ['127.0.0.1:29500']);
  // The announcing peer withdraws it: forgotten at once.
  link.send({ members: { addresses: [] } });
  await roundTrip(link, replies);
  t.same(n.peers.learnedAddresses(), [], 'forgotten when no live peer announces it');
  const after = dials.get('127.0.0.1:29500')!;
  // Announced again, then the announcing peer leaves: forgotten too.
  link.send({ members: { addresses: ['127.0.0.1:29500'] } });
  await roundTrip(link, replies);
  t.same(n.peers.learnedAddresses(), ['127.0.0.1:29500']);
  link.close('bye');
  await eventually(() => n.peers.upLinks().size === 0, 5000, 'peer gone');
  t.same(n.peers.learnedAddresses(), [], 'forgotten when its announcer is gone');
  const settled = dials.get('127.0.0.1:29500')!;
  await new Promise((r) => setTimeout(r, 400)); // several retry periods
  t.equal(dials.get('127.0.0.1:29500'), settled, `no dial after it was forgotten (${after} before the re-announcement)`);
  // wrong_direction: an authenticated dialer with a larger id is dialed back where it advertises.
  const { link: big } = await memoryPeer(t, net, 'zz-peer', SECRET, '127.0.0.1:29502');
  const err = await big.up.catch((e: unknown) => e);
  t.equal((err as LinkRefusedError).code, 'wrong_direction');
  await eventually(() => dials.get('127.0.0.1:29502')! >= 1, 5000, 'dialed back');
});
