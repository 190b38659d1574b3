import t from 'tap';
import { Rendezvous, hash53, hashLanes, mix53, movedTopics } from '../src/routing/index.js';

const TOPICS = Array.from({ length: 100_000 }, (_, i) => (i % 2 ? `u:user${i}` : `r:room-${i}`));
const nodes = (n: number, prefix = 'node-'): string[] =>
  Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);

function counts(r: Rendezvous, topics: readonly string[]): Map<string, number> {
  const c = new Map<string, number>(r.members.map((m) => [m, 0]));
  for (const topic of topics) {
    const h = r.home(topic)!;
    c.set(h, c.get(h)! + 1);
  }
  return c;
}

t.test('hash53 is cyrb53: published reference values, stable across processes', async (t) => {
  // Reference outputs of cyrb53 (seed 0) as published with the algorithm.
  t.equal(hash53('a'), 7929297801672961);
  t.equal(hash53('b'), 8684336938537663);
  t.equal(hash53('revenge'), 4051478007546757);
  t.equal(hash53('revenue'), 8309097637345594);
  t.not(hash53('a', 1), hash53('a'), 'the seed changes the function');
  const out = hashLanes('revenue', 0, new Uint32Array(2));
  t.equal(mix53(out[0]!, out[1]!), hash53('revenue'), 'lanes + mix53 == hash53');
  t.equal(hash53(''), mix53(0xdeadbeef, 0x41c6ce57));
});

t.test('hash53 is 53-bit and spreads similar keys', async (t) => {
  const seen = new Set<number>();
  let bad = 0;
  for (let i = 0; i < 20_000; i++) {
    const h = hash53(`u:user${i}`);
    if (!Number.isSafeInteger(h) || h < 0) bad++;
    seen.add(h);
  }
  t.equal(bad, 0, 'every hash is a safe non-negative integer');
  t.equal(seen.size, 20_000, 'no collisions among 20k near-identical keys');
  // Top bit set in about half of them: the high lane is used, not just the low 32 bits.
  let high = 0;
  for (const h of seen) if (h >= 2 ** 52) high++;
  t.ok(Math.abs(high / seen.size - 0.5) < 0.02, `top bit ratio ${high / seen.size}`);
});

t.test('homes are frozen: every node version must agree (rolling upgrades)', async (t) => {
  // Changing the hash or the seeds remaps topics across a mixed-version mesh: never do it silently.
  const r = new Rendezvous(nodes(5));
  const topics = ['u:alice', 'u:bob', 'u:carol', 'r:lobby', 'r:random', 'u:dave', 'u:erin', 'r:ops'];
  t.same(
    topics.map((x) => r.home(x)),
    ['node-3', 'node-5', 'node-1', 'node-5', 'node-5', 'node-5', 'node-4', 'node-5'],
  );
});

t.test('empty, single, order and duplicates', async (t) => {
  const empty = new Rendezvous([]);
  t.equal(empty.home('u:bob'), undefined);
  t.equal(empty.size, 0);
  const one = new Rendezvous(['solo']);
  t.equal(one.home('u:bob'), 'solo');
  t.ok(one.isHome('r:x', 'solo'));
  const a = new Rendezvous(['n3', 'n1', 'n2', 'n1']);
  const b = new Rendezvous(new Set(['n2', 'n3', 'n1']));
  t.same(a.members, ['n1', 'n2', 'n3'], 'sorted, de-duplicated');
  t.ok(Object.isFrozen(a.members));
  t.ok(a.has('n2'));
  t.notOk(a.has('n4'));
  const sample = TOPICS.slice(0, 2000);
  t.same(sample.map((x) => a.home(x)), sample.map((x) => b.home(x)), 'same homes for any input order');
  const homes = new Set(sample.map((x) => a.home(x)));
  t.same([...homes].sort(), ['n1', 'n2', 'n3'], 'every member is home of something');
});

for (const n of [5, 10]) {
  t.test(`balance: 100k topics over ${n} members within 3% of even`, async (t) => {
    const r = new Rendezvous(nodes(n));
    const even = TOPICS.length / n;
    for (const [member, c] of counts(r, TOPICS)) {
      t.ok(Math.abs(c - even) / even < 0.03, `${member}: ${c} vs ${even}`);
    }
  });
}

t.test('balance holds for address-like member ids too', async (t) => {
  const r = new Rendezvous(nodes(8, '10.0.0.').map((m) => `${m}:7070`));
  const even = TOPICS.length / 8;
  for (const [member, c] of counts(r, TOPICS)) {
    t.ok(Math.abs(c - even) / even < 0.03, `${member}: ${c} vs ${even}`);
  }
});

t.test('join moves ~1/N of topics, all to the new member', async (t) => {
  const before = new Rendezvous(nodes(5));
  const after = new Rendezvous(nodes(6));
  const moved = movedTopics(TOPICS, before, after);
  t.ok(moved.every((m) => m.to === 'node-6'), 'only to the joiner');
  t.ok(moved.every((m) => m.from !== undefined && m.from !== 'node-6'));
  const share = moved.length / TOPICS.length;
  t.ok(Math.abs(share - 1 / 6) < 0.01, `moved share ${share}`);
  // Exactly the joiner's topics moved: nothing else changed home.
  t.equal(moved.length, counts(after, TOPICS).get('node-6'));
});

t.test('leave moves exactly the leaver topics, spread over the rest', async (t) => {
  const before = new Rendezvous(nodes(10));
  const after = new Rendezvous(nodes(10).filter((m) => m !== 'node-4'));
  const moved = movedTopics(TOPICS, before, after);
  t.ok(moved.every((m) => m.from === 'node-4' && m.to !== 'node-4' && m.to !== undefined));
  t.equal(moved.length, counts(before, TOPICS).get('node-4'));
  t.ok(Math.abs(moved.length / TOPICS.length - 0.1) < 0.01);
  const receivers = new Map<string, number>();
  for (const m of moved) receivers.set(m.to!, (receivers.get(m.to!) ?? 0) + 1);
  t.equal(receivers.size, 9, 'the leaver topics spread over all 9 survivors');
  for (const [m, c] of receivers) t.ok(Math.abs(c - moved.length / 9) / (moved.length / 9) < 0.1, m);
});

t.test('movedTopics to and from an empty membership', async (t) => {
  const none = new Rendezvous([]);
  const one = new Rendezvous(['a']);
  t.same(movedTopics(['u:x'], none, one), [{ topic: 'u:x', from: undefined, to: 'a' }]);
  t.same(movedTopics(['u:x'], one, none), [{ topic: 'u:x', from: 'a', to: undefined }]);
  t.same(movedTopics(['u:x', 'u:y'], one, new Rendezvous(['a'])), []);
});
