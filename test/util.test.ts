import t from 'tap';
import { TokenBucket, UlidGenerator } from '../src/util/index.js';
import type { Clock } from '../src/util/index.js';

function fakeClock(start = 1_700_000_000_000): Clock & { advance(ms: number): void } {
  let now = start;
  return { now: () => now, monotonic: () => now, advance: (ms) => { now += ms; } };
}

t.test('token bucket: burst, then the sustained rate', async (t) => {
  const clock = fakeClock();
  const b = new TokenBucket({ ratePerSec: 10, burst: 3, clock });
  t.ok(b.take());
  t.ok(b.take());
  t.ok(b.take());
  t.notOk(b.take(), 'burst spent');
  clock.advance(99);
  t.notOk(b.take(), 'not yet a whole token after 99 ms at 10/s');
  clock.advance(1);
  t.ok(b.take(), 'one token after 100 ms');
  t.notOk(b.take());
  clock.advance(10_000);
  t.equal(b.available(), 3, 'refill is capped at the burst');
  t.throws(() => new TokenBucket({ ratePerSec: 0, burst: 1, clock }), RangeError);
  t.throws(() => new TokenBucket({ ratePerSec: 1, burst: 0, clock }), RangeError);
});

t.test('ulid: 26 chars, strictly increasing within and across ms, time-sortable', async (t) => {
  const clock = fakeClock();
  const g = new UlidGenerator(clock);
  const ids: string[] = [];
  for (let i = 0; i < 1000; i++) {
    ids.push(g.next());
    if (i % 100 === 0) clock.advance(1);
  }
  for (const id of ids) t.match(id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  const sorted = [...ids].sort();
  t.same(sorted, ids, 'lexicographic order = generation order');
  t.equal(new Set(ids).size, ids.length, 'unique');
});

t.test('ulid: random part overflow within one ms borrows the next ms', async (t) => {
  const clock = fakeClock();
  const g = new UlidGenerator(clock, (n) => new Uint8Array(n).fill(255));
  const a = g.next();
  const b = g.next();
  t.ok(b > a, 'still increasing after overflow');
  t.not(a.slice(0, 10), b.slice(0, 10), 'time part moved on');
});

t.test('ulid: a clock going backwards never yields a smaller id', async (t) => {
  const clock = fakeClock();
  const g = new UlidGenerator(clock);
  const a = g.next();
  clock.advance(-5000);
  t.ok(g.next() > a);
});
