import t from 'tap';
import {
  DEFAULT_ROUTE_CACHE_SIZE,
  MAX_ROUTE_PAGE,
  RouteTable,
  type RouteEntry,
} from '../src/routing/index.js';

/** A complete owner set from `home` (incarnation `inc`) at `seq`. */
function set(owners: Record<string, number>, seq: number, home = 'h1', inc = 'i1'): RouteEntry {
  return { owners: new Map(Object.entries(owners)), home, incarnation: inc, seq };
}
const ownersOf = (e: RouteEntry | undefined): Record<string, number> | undefined =>
  e && Object.fromEntries(e.owners);

t.test('options', async (t) => {
  t.equal(new RouteTable().maxEntries, DEFAULT_ROUTE_CACHE_SIZE);
  t.equal(new RouteTable({ maxEntries: undefined }).maxEntries, DEFAULT_ROUTE_CACHE_SIZE);
  t.equal(new RouteTable({ maxEntries: 7 }).maxEntries, 7);
  for (const bad of [0, -1, 1.5, Number.NaN, Infinity]) {
    t.throws(() => new RouteTable({ maxEntries: bad }), RangeError, `maxEntries ${bad}`);
  }
});

t.test('version rules', async (t) => {
  const rt = new RouteTable({ maxEntries: 10 });
  t.ok(rt.applyFull('u:bob', set({ a: 1 }, 5)), 'absent: stored');
  t.ok(rt.applyFull('u:bob', set({ a: 1, b: 2 }, 6)), 'newer seq replaces');
  t.notOk(rt.applyFull('u:bob', set({ c: 1 }, 4)), 'older seq ignored');
  t.notOk(rt.applyFull('u:bob', set({ c: 1 }, 6)), 'same seq ignored');
  t.same(ownersOf(rt.peek('u:bob')), { a: 1, b: 2 });
  t.ok(rt.applyFull('u:bob', set({ c: 1 }, 1, 'h2')), 'another home replaces, even at a lower seq');
  t.equal(rt.peek('u:bob')?.home, 'h2');
  t.ok(rt.applyFull('u:bob', set({ d: 1 }, 1, 'h2', 'i2')), 'another incarnation replaces');
  t.same(ownersOf(rt.peek('u:bob')), { d: 1 });
  t.notOk(rt.applyFull('u:bob', set({ e: 1 }, 1, 'h2', 'i2')));
  t.ok(rt.applyFull('u:bob', set({}, 2, 'h2', 'i2')), 'an empty set is a complete answer');
  t.equal(rt.peek('u:bob')?.owners.size, 0);
  t.equal(rt.size, 1);
});

t.test('get counts hits and misses; peek does not', async (t) => {
  const rt = new RouteTable({ maxEntries: 10 });
  t.equal(rt.get('u:x'), undefined);
  rt.applyFull('u:x', set({ a: 1 }, 1));
  t.same(ownersOf(rt.get('u:x')), { a: 1 });
  rt.get('u:x');
  rt.peek('u:x');
  rt.peek('u:nope');
  t.equal(rt.hits, 2);
  t.equal(rt.misses, 1);
  t.ok(rt.delete('u:x'));
  t.notOk(rt.delete('u:x'));
  t.equal(rt.get('u:x'), undefined);
  t.equal(rt.misses, 2);
  t.equal(rt.size, 0);
});

t.test('complete or absent under eviction', async (t) => {
  const rt = new RouteTable({ maxEntries: 4 });
  const published = new Map<string, Record<string, number>>();
  for (let i = 0; i < 10; i++) {
    // Each topic's home publishes a few versions; the last one is the truth.
    for (let seq = 1; seq <= 3; seq++) {
      const owners = Object.fromEntries(Array.from({ length: seq }, (_, k) => [`n${k + i}`, k + 1]));
      rt.applyFull(`r:${i}`, set(owners, seq));
      published.set(`r:${i}`, owners);
    }
    if (i === 8) rt.get('r:5'); // r:5 becomes most recently used, r:6 the least
  }
  t.equal(rt.size, 4);
  t.equal(rt.evictions, 6);
  const present: string[] = [];
  for (const [topic, owners] of published) {
    const e = rt.peek(topic);
    if (e === undefined) continue;
    present.push(topic);
    t.same(ownersOf(e), owners, `${topic} is the whole last set`);
    t.equal(e.seq, 3);
  }
  t.same(present.sort(), ['r:5', 'r:7', 'r:8', 'r:9'], 'LRU order decides which survive');
  // An evicted topic is simply absent: the next set (from a lookup) is stored whole.
  t.ok(rt.applyFull('r:0', set({ z: 1 }, 1)));
  t.equal(rt.evictions, 7);
});

t.test('pinning survives eviction pressure, with a reference count', async (t) => {
  const rt = new RouteTable({ maxEntries: 4 });
  rt.applyFull('u:bob', set({ a: 1 }, 1));
  rt.pin('u:bob');
  rt.pin('u:bob');
  t.ok(rt.isPinned('u:bob'));
  rt.pin('u:carol'); // pinned before anything is known about her
  t.equal(rt.pinnedSize, 2);
  t.equal(rt.get('u:carol'), undefined, 'pinned but unknown reads as a miss');
  for (let i = 0; i < 100; i++) rt.applyFull(`r:${i}`, set({ a: 1 }, 1));
  t.equal(rt.evictions, 96, 'moving bob out of the LRU was not an eviction');
  t.same(ownersOf(rt.get('u:bob')), { a: 1 }, 'pinned entry survived');
  t.ok(rt.applyFull('u:carol', set({ b: 1 }, 1)), 'a set for a pinned topic is stored in the pin');
  t.notOk(rt.applyFull('u:carol', set({ c: 1 }, 1)), 'with the same version rules');
  t.ok(rt.applyFull('u:bob', set({ a: 2 }, 2)));
  t.equal(rt.size, 6, '4 in the LRU + 2 pinned');
  for (let i = 100; i < 200; i++) rt.applyFull(`r:${i}`, set({ a: 1 }, 1));
  t.same(ownersOf(rt.peek('u:bob')), { a: 2 });
  t.same(ownersOf(rt.peek('u:carol')), { b: 1 });

  t.ok(rt.unpin('u:bob'), 'one reference left');
  t.ok(rt.isPinned('u:bob'));
  t.notOk(rt.unpin('u:bob'), 'last reference gone');
  t.notOk(rt.isPinned('u:bob'));
  t.equal(rt.pinnedSize, 1);
  t.same(ownersOf(rt.peek('u:bob')), { a: 2 }, 'back in the LRU as most recent');
  t.equal(rt.size, 5, 'bob pushed one LRU entry out');
  for (let i = 200; i < 204; i++) rt.applyFull(`r:${i}`, set({ a: 1 }, 1));
  t.equal(rt.peek('u:bob'), undefined, 'once unpinned it can be evicted');
  t.notOk(rt.unpin('u:nobody'), 'unpinning an unpinned topic does nothing');

  t.ok(rt.delete('u:carol'), 'delete drops the entry of a pinned topic');
  t.notOk(rt.delete('u:carol'));
  t.ok(rt.isPinned('u:carol'), 'but keeps the pin');
  t.equal(rt.size, 4);
  rt.unpin('u:carol');
  t.equal(rt.pinnedSize, 0);
  t.equal(rt.size, 4, 'unpinning a topic without an entry adds nothing');
});

t.test('entries: stable pages in topic order', async (t) => {
  const rt = new RouteTable({ maxEntries: 1000 });
  const topics = Array.from({ length: 57 }, (_, i) => `u:${String(i * 37 % 57).padStart(2, '0')}`);
  for (const topic of topics) rt.applyFull(topic, set({ a: 1 }, 1));
  rt.pin('u:10');
  rt.pin('u:44');
  rt.pin('u:none');
  const hits = rt.hits;
  const seen: string[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = rt.entries(cursor, 5);
    t.ok(page.length <= 5);
    if (page.length === 0) break;
    seen.push(...page.map((r) => r.topic));
    cursor = page[page.length - 1]!.topic;
    if (cursor === 'u:19') rt.get('u:55'); // recency changes between pages do not matter
  }
  t.same(seen, [...topics].sort(), 'every entry exactly once, sorted');
  t.equal(rt.hits, hits + 1, 'paging counted nothing');
  t.same(
    rt.entries('u:09', 3).map((r) => [r.topic, r.pinned]),
    [['u:10', true], ['u:11', false], ['u:12', false]],
  );
  t.same(rt.entries(undefined, 2).map((r) => r.topic), ['u:00', 'u:01']);
  t.equal(rt.entries('u:56').length, 0);
  t.equal(rt.entries().length, 57, 'default limit 100');
  t.equal(rt.entries(undefined, MAX_ROUTE_PAGE).length, 57);
  for (const bad of [0, 1.5, MAX_ROUTE_PAGE + 1]) t.throws(() => rt.entries(undefined, bad), RangeError);
});

t.test('revalidate: a membership change costs nothing up front; entries are re-checked when read', async (t) => {
  const rt = new RouteTable({ maxEntries: 100_000 });
  for (let i = 0; i < 50_000; i++) rt.applyFull(`u:user${i}`, set({ a: 1, dead: 1 }, 1, i % 2 ? 'h1' : 'h2'));
  rt.pin('u:user1');
  let checks = 0;
  rt.revalidate((_topic, e) => {
    checks++;
    if (e.home === 'h2') return undefined; // its home moved
    return { ...e, owners: new Map([...e.owners].filter(([id]) => id !== 'dead')) };
  });
  t.equal(checks, 0, 'nothing re-checked at the change');
  t.equal(rt.get('u:user0'), undefined, 'an entry whose home moved is dropped when read');
  t.same(ownersOf(rt.get('u:user1')), { a: 1 }, 'a pinned entry loses the dead owner');
  t.same(ownersOf(rt.peek('u:user3')), { a: 1 }, 'peek re-checks too');
  t.equal(checks, 3);
  rt.get('u:user3');
  t.equal(checks, 3, 'an entry is re-checked once per change');
  t.ok(rt.applyFull('u:user3', set({ a: 1, dead: 1 }, 1)), 'the home\'s set at the same seq replaces the locally edited one');
  rt.revalidate((_topic, e) => e);
  t.same(ownersOf(rt.get('u:user3')), { a: 1, dead: 1 }, 'kept as is by a check that keeps it');
});
