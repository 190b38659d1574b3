import t from 'tap';
import {
  OwnerDirectory,
  RouteTable,
  digestEquals,
  ownerDigest,
  type RouteEntry,
} from '../src/routing/index.js';

const ownersOf = (e: RouteEntry | undefined): Record<string, number> | undefined =>
  e && Object.fromEntries(e.owners);
const newDir = (): OwnerDirectory => new OwnerDirectory({ nodeId: 'home', incarnation: 'inc-1' });

t.test('construction', async (t) => {
  t.throws(() => new OwnerDirectory({ nodeId: '', incarnation: 'x' }), TypeError);
  const d = newDir();
  t.equal(d.nodeId, 'home');
  t.equal(d.incarnation, 'inc-1');
  t.equal(d.size, 0);
  t.equal(d.seq, 0);
});

t.test('setOwner: complete sets with a rising seq', async (t) => {
  const d = newDir();
  const e1 = d.setOwner('u:bob', 'n1', 1)!;
  t.same(e1, { owners: new Map([['n1', 1]]), home: 'home', incarnation: 'inc-1', seq: 1 });
  const e2 = d.setOwner('u:bob', 'n2', 3)!;
  t.same(ownersOf(e2), { n1: 1, n2: 3 }, 'the full set, not a delta');
  t.equal(e2.seq, 2);
  t.equal(d.setOwner('u:bob', 'n2', 3), undefined, 'no change: no version');
  t.equal(d.seq, 2);
  const e3 = d.setOwner('u:bob', 'n1', 2)!;
  t.ok(e3.seq > e2.seq);
  t.same(ownersOf(e1), { n1: 1 }, 'published sets are never mutated');
  t.equal(d.get('u:bob'), e3);
  t.equal(d.setOwner('u:alice', 'n1', 0), undefined, 'removing a non-owner changes nothing');
  t.throws(() => d.setOwner('u:bob', 'n1', -1), RangeError);
  t.throws(() => d.setOwner('u:bob', 'n1', 0.5), RangeError);

  const e4 = d.setOwner('u:bob', 'n1', 0)!;
  const e5 = d.setOwner('u:bob', 'n2', 0)!;
  t.same(ownersOf(e4), { n2: 3 });
  t.same(ownersOf(e5), {}, 'the last removal publishes an empty set');
  t.ok(e5.seq > e4.seq && e4.seq > e3.seq);
  t.equal(d.get('u:bob'), undefined, 'an unowned topic is forgotten');
  t.equal(d.size, 0);
  const e6 = d.setOwner('u:bob', 'n3', 1)!;
  t.ok(e6.seq > e5.seq, 'a topic that comes back never reuses a seq');
  t.same([...d.topics()], ['u:bob']);
});

t.test('lookup answers unknown topics with an empty set no cache ignores', async (t) => {
  const d = newDir();
  const rt = new RouteTable({ maxEntries: 10 });
  rt.applyFull('u:bob', d.setOwner('u:bob', 'n1', 1)!);
  const gone = d.setOwner('u:bob', 'n1', 0)!; // this broadcast is lost
  d.setOwner('u:x', 'n1', 1);
  const answer = d.lookup('u:bob');
  t.same(ownersOf(answer), {});
  t.ok(answer.seq >= gone.seq);
  t.ok(rt.applyFull('u:bob', answer), 'the lookup answer replaces the stale set');
  const back = d.setOwner('u:bob', 'n2', 1)!;
  t.ok(rt.applyFull('u:bob', back), 'and any later change is newer still');
  t.equal(d.lookup('u:bob'), back, 'a known topic answers its own set');
  t.equal(newDir().lookup('u:y').seq, 0);
});

t.test('removeNode and syncNode', async (t) => {
  const d = newDir();
  d.setOwner('u:a', 'n1', 1);
  d.setOwner('u:b', 'n1', 2);
  d.setOwner('u:b', 'n2', 1);
  d.setOwner('u:c', 'n2', 1);
  const removed = d.removeNode('n1');
  t.same(
    removed.map((c) => [c.topic, ownersOf(c.entry)]),
    [['u:a', {}], ['u:b', { n2: 1 }]],
  );
  t.same([...d.topics()].sort(), ['u:b', 'u:c']);
  t.same(d.digest('n1'), { topics: 0, hash: 0 });
  t.same(d.removeNode('n1'), [], 'idempotent');

  const before = d.seq;
  const synced = d.syncNode('n2', [['u:b', 1], ['u:d', 4], ['u:z', 0]]);
  t.same(
    synced.map((c) => [c.topic, ownersOf(c.entry)]).sort(),
    [['u:c', {}], ['u:d', { n2: 4 }]],
    'only real changes: c dropped, d added, b unchanged, z ignored',
  );
  t.equal(d.seq, before + 2);
  t.same(Object.fromEntries(d.nodeTopics('n2')), { 'u:b': 1, 'u:d': 4 });
  t.same(Object.fromEntries(d.nodeTopics('nobody')), {});
  t.throws(() => d.syncNode('n2', [['u:q', 1], ['u:b', -2]]), RangeError);
  t.equal(d.seq, before + 2, 'a bad snapshot changes nothing');
  t.notOk(d.get('u:q'));
});

t.test('digests agree between owner and home, and catch one difference', async (t) => {
  const d = newDir();
  const held = new Map<string, number>();
  for (let i = 0; i < 500; i++) {
    const count = (i % 3) + 1;
    held.set(`u:user${i}`, count);
    d.setOwner(`u:user${i}`, 'n1', count);
    d.setOwner(`u:user${i}`, 'n2', 1); // another owner's topics do not affect n1's digest
  }
  const home = d.digest('n1');
  t.equal(home.topics, 500);
  t.ok(Number.isSafeInteger(home.hash) && home.hash > 0);
  t.ok(digestEquals(home, ownerDigest(held)), 'same set');
  t.ok(digestEquals(home, ownerDigest([...held].reverse())), 'order does not matter');
  t.ok(digestEquals(home, ownerDigest([...held, ['u:extra', 0]])), 'zero counts are ignored');

  const renamed = new Map(held);
  renamed.delete('u:user7');
  renamed.set('u:user7x', held.get('u:user7')!);
  t.notOk(digestEquals(home, ownerDigest(renamed)), 'one topic differs');
  t.equal(ownerDigest(renamed).topics, 500, '...with the same count of topics');
  const recounted = new Map(held).set('u:user7', held.get('u:user7')! + 1);
  t.notOk(digestEquals(home, ownerDigest(recounted)), 'one count differs');
  const missing = new Map(held);
  missing.delete('u:user7');
  t.notOk(digestEquals(home, ownerDigest(missing)), 'one topic missing');

  // Incremental maintenance: change and change back gives the same digest.
  d.setOwner('u:user7', 'n1', 9);
  t.notOk(digestEquals(d.digest('n1'), home));
  d.setOwner('u:user7', 'n1', 0);
  t.ok(digestEquals(d.digest('n1'), ownerDigest(missing)));
  d.setOwner('u:user7', 'n1', held.get('u:user7')!);
  t.same(d.digest('n1'), home);

  t.same(ownerDigest([]), { topics: 0, hash: 0 });
  // Frozen value: owners and homes of different versions must compute the same digest.
  t.same(ownerDigest([['u:alice', 1], ['r:lobby', 2], ['u:bob', 3]]), { topics: 3, hash: 6075212314404742 });
  t.throws(() => ownerDigest([['u:a', -1]]), RangeError);
  t.notOk(digestEquals({ topics: 1, hash: 5 }, { topics: 2, hash: 5 }));
});

t.test('digests stay equal through random churn (lane wrap-around included)', async (t) => {
  const d = newDir();
  const truth = new Map<string, Map<string, number>>();
  let x = 12345;
  const rand = (n: number): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x % n;
  };
  for (let i = 0; i < 20_000; i++) {
    const node = `n${rand(4)}`;
    const topic = `r:${rand(300)}`;
    const count = rand(4);
    const held = truth.get(node) ?? new Map<string, number>();
    truth.set(node, held);
    if (count === 0) held.delete(topic);
    else held.set(topic, count);
    d.setOwner(topic, node, count);
    if (i % 5000 === 4999) {
      d.removeNode('n3');
      truth.delete('n3');
    }
  }
  let mismatches = 0;
  for (const node of ['n0', 'n1', 'n2', 'n3']) {
    const held = truth.get(node) ?? new Map<string, number>();
    if (!digestEquals(d.digest(node), ownerDigest(held))) mismatches++;
    t.same(Object.fromEntries(d.nodeTopics(node)), Object.fromEntries(held), node);
  }
  t.equal(mismatches, 0);
});

t.test('the home feeds caches: applied in order, replays ignored', async (t) => {
  const d = newDir();
  const rt = new RouteTable({ maxEntries: 10 });
  const sent = [d.setOwner('r:x', 'n1', 1)!, d.setOwner('r:x', 'n2', 1)!, d.setOwner('r:x', 'n1', 0)!];
  t.same(sent.map((e) => rt.applyFull('r:x', e)), [true, true, true]);
  t.same(sent.map((e) => rt.applyFull('r:x', e)), [false, false, false], 'replays are stale');
  t.same(ownersOf(rt.peek('r:x')), { n2: 1 });
  const restarted = new OwnerDirectory({ nodeId: 'home', incarnation: 'inc-2' });
  t.ok(rt.applyFull('r:x', restarted.setOwner('r:x', 'n3', 1)!), 'a new incarnation starts over');
});
