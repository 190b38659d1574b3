// A rolling upgrade: a mesh whose nodes speak different revisions of the mesh protocol. Node `old`
// runs as a release before revision 1 would (its hello says revision 0, it answers deliveries one
// `DeliverResult` each and must never be sent a `DeliverResults`, which it would not know). Over
// real gRPC links, direct messages and room messages between every pair of nodes arrive and are
// acked `delivered`; links between new nodes use revision 1 and answer with coalesced results.
import t from 'tap';
import type { Test } from 'tap';
import { startNode } from '../src/node.js';
import type { ChatNode } from '../src/node.js';
import { MESH_REVISION } from '../src/mesh/wire.js';
import { invalidEnvelope } from '../src/mesh/index.js';
import { MAX_RESULTS_PER_ENVELOPE, ResultBatch, forEachResult } from '../src/mesh/result-batch.js';
import { connectAs, eventually } from './helpers/client.js';
import type { TestClient } from './helpers/client.js';
import { meshAddr, wsUrl } from './helpers/grpc-mesh.js';

async function node(t: Test, id: string, revision: number, peers: string[]): Promise<ChatNode> {
  const n = await startNode({ id, host: '127.0.0.1', httpPort: 0, meshPort: 0, adminPort: 0, logLevel: 'silent', peers, meshSecret: 'mixed' }, {
    retryMinMs: 20, retryMaxMs: 300, link: { pingIntervalMs: 200, deadAfterMs: 2000, revision },
  });
  t.teardown(() => n.stop());
  return n;
}

t.test('a mesh of revision-1 nodes and a revision-0 node: every pair delivers, links agree on the lower revision', async (t) => {
  const a = await node(t, 'a', MESH_REVISION, []);
  const b = await node(t, 'b', MESH_REVISION, [meshAddr(a)]);
  const old = await node(t, 'old', 0, [meshAddr(a), meshAddr(b)]);
  const nodes = [a, b, old];
  await eventually(() => nodes.every((n) => n.peers.upLinks().size === 2), 10_000, 'full mesh');

  const revisionOf = (from: ChatNode, to: ChatNode): number => from.peers.upLinks().get(to.id)!.revision;
  t.equal(revisionOf(a, b), 1, 'a-b: both new');
  t.equal(revisionOf(b, a), 1);
  for (const n of [a, b]) {
    t.equal(revisionOf(n, old), 0, `${n.id}-old: the old node's revision`);
    t.equal(revisionOf(old, n), 0);
  }

  const clients = new Map<string, TestClient>();
  for (const n of nodes) clients.set(n.id, (await connectAs(wsUrl(n), `user-${n.id}`)).c);
  for (const c of clients.values()) t.teardown(() => c.close());

  // Every ordered pair, 20 messages each, pipelined so that deliveries share batches.
  let seq = 0;
  for (const from of nodes) {
    for (const to of nodes) {
      if (from === to) continue;
      const sender = clients.get(from.id)!;
      const receiver = clients.get(to.id)!;
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) {
        const id = `m${++seq}`;
        ids.push(id);
        sender.send({ type: 'send', id, to: `user-${to.id}`, body: `${from.id}->${to.id} #${i}` });
      }
      for (const id of ids) {
        const ack = await sender.next((f) => f.type === 'ack' && f.id === id);
        t.equal(ack.status, 'delivered', `${from.id} -> ${to.id}: ${id} delivered`);
      }
      for (let i = 0; i < 20; i++) {
        const m = await receiver.next((f) => f.type === 'message' && f.body === `${from.id}->${to.id} #${i}`);
        t.equal(m.from, `user-${from.id}`);
      }
    }
  }

  // A room spanning the three nodes: one publish from each reaches the two others.
  for (const c of clients.values()) {
    c.send({ type: 'join', id: 'j', room: 'mixed' });
    await c.next((f) => f.type === 'ack' && f.id === 'j');
  }
  for (const n of nodes) {
    clients.get(n.id)!.send({ type: 'publish', id: `p-${n.id}`, room: 'mixed', body: `hello from ${n.id}` });
    const ack = await clients.get(n.id)!.next((f) => f.type === 'ack' && f.id === `p-${n.id}`);
    t.equal(ack.status, 'delivered', `room publish from ${n.id}`);
    for (const other of nodes) {
      if (other === n) continue;
      await clients.get(other.id)!.next((f) => f.type === 'room_message' && f.body === `hello from ${n.id}`);
    }
  }

  // Nothing was refused or dropped as invalid on the way: every link is still the one from the start.
  t.ok(nodes.every((n) => n.peers.upLinks().size === 2), 'no link was dropped');
  t.equal(a.router.stats.unavailable + b.router.stats.unavailable + old.router.stats.unavailable, 0, 'nothing answered unavailable');
});

t.test('coalesced results: one envelope answers a batch, in order, and a malformed one is refused', (t) => {
  const batch = new ResultBatch();
  const given: Array<[number, number, boolean]> = [[5, 1, false], [6, 0, true], [9, 2, false], [4000, 0, true]];
  for (const [id, count, notHere] of given) t.ok(batch.add(id, count, notHere));
  t.notOk(batch.add(4000, 1, false), 'an id not above the last one starts a new envelope');
  const env = batch.take();
  t.equal(batch.size, 0);
  t.equal(invalidEnvelope({ kind: 'results', ...env } as never), undefined, 'what it makes is valid');
  const got: Array<[number, number, boolean]> = [];
  forEachResult(env.results as never, (id, count, notHere) => got.push([id, count, notHere]));
  t.same(got, given);

  const full = new ResultBatch();
  for (let i = 1; i <= MAX_RESULTS_PER_ENVELOPE; i++) full.add(i, 1, false);
  t.notOk(full.add(MAX_RESULTS_PER_ENVELOPE + 1, 1, false), 'at most MAX_RESULTS_PER_ENVELOPE per envelope');

  const ok = { firstId: 1, idGaps: [1], counts: [1, 1], notHere: [1] };
  const bad: Array<[string, object]> = [
    ['no entries', { ...ok, counts: [], idGaps: [] }],
    ['gaps that do not match the entries', { ...ok, idGaps: [] }],
    ['a zero gap', { ...ok, idGaps: [0] }],
    ['a count above the limit', { ...ok, counts: [1, 1e12] }],
    ['a not_here position past the entries', { ...ok, notHere: [2] }],
    ['not_here positions out of order', { ...ok, counts: [1, 1, 1], idGaps: [1, 1], notHere: [2, 1] }],
    ['an unsafe first id', { ...ok, firstId: 2 ** 60 }],
  ];
  for (const [what, results] of bad) t.type(invalidEnvelope({ kind: 'results', results } as never), 'string', `refused: ${what}`);
  t.end();
});
