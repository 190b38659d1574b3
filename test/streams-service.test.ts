/**
 * The replicated stream service and hand-off over a fake mesh of in-process nodes (each a memory
 * store; calls go through the real protobuf codec and the real validation): reads merge replicas,
 * writes need every replica, hand-off moves streams and drops what moved away.
 */
import t from 'tap';
import { loadMeshProto, invalidEnvelope } from '../src/mesh/index.js';
import type { StreamCallBody, StreamReply__Output } from '../src/mesh/index.js';
import type { Batch__Output } from '../src/mesh/wire.js';
import { ChatError } from '../src/protocol/index.js';
import { HandOff, MessageClock, Placement, StreamService, StreamStats } from '../src/streams/index.js';
import type { StreamItem } from '../src/streams/index.js';
import { MemoryStreamStore } from '../src/streams/store/index.js';
import { createLogger } from '../src/log.js';

const link = loadMeshProto().Mesh.service.Link;
const log = createLogger('silent');
const LIMITS = { maxPerStream: 1000, ttlMs: 30 * 86_400_000, maxMessages: 1_000_000 };

interface FakeNode { id: string; service: StreamService; store: MemoryStreamStore; placement: Placement; handoff: HandOff; stats: StreamStats; foreign: string[] }

/** N nodes; `down` names nodes whose calls fail; `refuse` nodes that answer errors. */
function fakeMesh(ids: string[], replicas = 2, opts: { maxReplyBytes?: number } = {}) {
  const nodes = new Map<string, FakeNode>();
  const down = new Set<string>();
  const refuse = new Set<string>();
  const roundTrip = (env: object): Batch__Output['items'][number] => {
    const out = (link.requestDeserialize(link.requestSerialize({ items: [env] })) as Batch__Output).items[0]!;
    const bad = invalidEnvelope(out);
    if (bad) throw new Error(`invalid envelope: ${bad}`);
    return out;
  };
  const callsFor = (self: string) => ({
    async call(peer: string, body: StreamCallBody): Promise<StreamReply__Output> {
      if (down.has(peer)) throw new Error(`no link to ${peer}`);
      const env = roundTrip({ streamCall: { ...body, id: 1 } });
      if (refuse.has(peer)) throw new Error(`${peer}: refused`);
      const reply = await nodes.get(peer)!.service.serve(self, env.streamCall!);
      return roundTrip({ streamReply: { ...reply, id: 1 } }).streamReply!;
    },
    tell(peer: string, body: StreamCallBody): boolean {
      if (down.has(peer)) return false;
      void nodes.get(peer)!.service.serve(self, roundTrip({ streamCall: { ...body, id: 0 } }).streamCall!);
      return true;
    },
  });
  for (const id of ids) {
    const store = new MemoryStreamStore(LIMITS);
    const placement = new Placement({ selfId: id, replicas, monotonic: () => performance.now() });
    placement.membersChanged(ids);
    const stats = new StreamStats();
    const foreign: string[] = [];
    const calls = callsFor(id);
    const service = new StreamService({
      selfId: id, store, calls, placement, stats, log, monotonic: () => performance.now(), observe: () => undefined,
      onForeignAppend: (s) => foreign.push(s), ...opts,
    });
    const handoff = new HandOff({ selfId: id, service, placement, calls, stats, log, settleMs: 0, entriesPerSec: 1e9, periodMs: 3_600_000 });
    nodes.set(id, { id, service, store, placement, handoff, stats, foreign });
  }
  return { nodes, down, refuse, close: () => { for (const n of nodes.values()) n.handoff.close(); } };
}

const clock = new MessageClock({ now: () => Date.now(), monotonic: () => performance.now() });
function dm(from: string, to: string, body: string, pending = true): { id: string; items: StreamItem[] } {
  const id = clock.next();
  const frame = `{"type":"message","msg":"${id}","from":"${from}","to":"${to}","body":"${body}","ts":1}`;
  return { id, items: [{ stream: `u:${to}`, entry: { id, with: from, frame, pending } }, { stream: `u:${from}`, entry: { id, with: to, frame, pending: false } }] };
}

t.test('a write reaches every replica of each stream before it resolves; reads merge the replicas', async (t) => {
  const m = fakeMesh(['a', 'b', 'c', 'd']);
  t.teardown(m.close);
  const a = m.nodes.get('a')!;
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) {
    const { id, items } = dm('alice', 'bob', `m${i}`);
    await a.service.write(items);
    ids.push(id);
  }
  const replicas = a.placement.writeSet('u:bob');
  t.equal(replicas.length, 2);
  for (const n of m.nodes.values()) {
    t.equal(n.store.digest('u:bob')?.count ?? 0, replicas.includes(n.id) ? 10 : 0, `${n.id} holds u:bob iff it is a replica`);
  }
  // Each replica loses a different half (as after a partial failure): the read is their union.
  const [r1, r2] = replicas.map((id) => m.nodes.get(id)!);
  await r1!.store.drop('u:bob');
  const copy = (await r2!.store.range('u:bob', { limit: 100, from: 'oldest' })).entries;
  await r1!.store.append(copy.slice(0, 5).map((entry) => ({ stream: 'u:bob', entry })));
  await r2!.store.drop('u:bob');
  await r2!.store.append(copy.slice(5).map((entry) => ({ stream: 'u:bob', entry })));
  const page = await m.nodes.get('c')!.service.read('u:bob', { limit: 4, from: 'newest' });
  t.same(page.entries.map((e) => e.id), ids.slice(6), 'the newest 4 of the union');
  t.equal(page.more, true);
  const all = await a.service.read('u:bob', { limit: 100, from: 'oldest', with: 'alice' });
  t.same(all.entries.map((e) => e.id), ids);
  t.equal(all.more, false);
  // One replica down: the other answers; both down: unavailable.
  m.down.add(r1!.id);
  const reader = [...m.nodes.values()].find((n) => !replicas.includes(n.id))!;
  t.equal((await reader.service.read('u:bob', { limit: 100, from: 'oldest' })).entries.length, 5, 'one replica down: the other\'s half');
  m.down.add(r2!.id);
  await t.rejects(reader.service.read('u:bob', { limit: 1, from: 'oldest' }), { code: 'unavailable' }, 'no replica answers: unavailable');
});

t.test('a mailbox mark cleared on one replica wins over a copy that still says pending', async (t) => {
  const m = fakeMesh(['a', 'b']);
  t.teardown(m.close);
  const a = m.nodes.get('a')!;
  const { id, items } = dm('alice', 'bob', 'x');
  await a.service.write(items);
  await m.nodes.get('b')!.store.clearPending('u:bob', [id]);
  const r = await a.service.read('u:bob', { limit: 10, from: 'oldest' });
  t.equal(r.entries[0]!.pending, false);
  a.service.clear('u:bob', [id]);
  t.equal((await a.service.read('u:bob', { limit: 10, from: 'oldest', pendingOnly: true })).entries.length, 0);
});

t.test('a write that a replica refuses rejects with unavailable and clears the mailbox mark where it did land', async (t) => {
  const m = fakeMesh(['a', 'b']);
  t.teardown(m.close);
  const a = m.nodes.get('a')!;
  m.refuse.add('b');
  const { items } = dm('alice', 'bob', 'x');
  const err = await a.service.write(items).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof ChatError && err.code === 'unavailable', 'unavailable');
  t.equal(a.stats.replicationFailures, 1);
  t.equal(a.store.digest('u:bob')?.pending ?? 0, 0, 'not in the mailbox');
});

t.test('a read answer is capped in bytes; the caller pages on with more', async (t) => {
  const m = fakeMesh(['a', 'b'], 1, { maxReplyBytes: 2000 });
  t.teardown(m.close);
  const home = m.nodes.get('a')!.placement.writeSet('u:bob')[0]!;
  const other = home === 'a' ? m.nodes.get('b')! : m.nodes.get('a')!;
  for (let i = 0; i < 30; i++) await other.service.write(dm('alice', 'bob', 'y'.repeat(200)).items);
  const first = await other.service.read('u:bob', { limit: 100, from: 'oldest' });
  t.ok(first.entries.length < 30 && first.entries.length > 0, `one answer holds ${first.entries.length} of 30`);
  t.equal(first.more, true);
});

t.test('an append at a node that is not a replica is kept and handed on, then dropped there', async (t) => {
  const m = fakeMesh(['a', 'b', 'c']);
  t.teardown(m.close);
  const stray = [...m.nodes.values()].find((n) => !n.placement.isReplica('u:bob'))!;
  const sender = [...m.nodes.values()].find((n) => n !== stray)!;
  const { id, items } = dm('alice', 'bob', 'stray');
  // Another node's view put `stray` in the replica set: it sent the entry there.
  await stray.service.serve(sender.id, {
    id: 0, body: 'append', append: { entries: [{ stream: 'u:bob', id, with: 'alice', frame: items[0]!.entry.frame, pending: true }], handoff: false, last: false, clears: [] },
  });
  t.same(stray.foreign, ['u:bob'], 'the stray append is noticed');
  t.equal(stray.store.digest('u:bob')?.count, 1, 'and kept');
  stray.handoff.schedule(0);
  const deadline = Date.now() + 5000;
  while ((stray.store.digest('u:bob') || stray.handoff.busy) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  t.equal(stray.store.digest('u:bob'), undefined, 'dropped once the replicas have it');
  for (const r of stray.placement.writeSet('u:bob')) {
    const n = m.nodes.get(r)!;
    t.equal(n.store.digest('u:bob')?.count, 1, `replica ${r} holds it`);
    t.equal(n.store.digest('u:bob')?.pending, 1, 'still in the mailbox');
  }
  t.ok(stray.stats.handoffEntries >= 1);
});
