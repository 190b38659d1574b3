/** Unit tests of the stream layer's pure parts: the message clock (ids) and replica placement. */
import t from 'tap';
import fc from 'fast-check';
import { MessageClock, Placement, idAtTime, idTime, isMessageId } from '../src/streams/index.js';
import { Rendezvous } from '../src/routing/index.js';

const clockAt = (ms: { now: number }) => ({ now: () => ms.now, monotonic: () => ms.now });

t.test('ids sort in the order one clock made them, even within one ms and when the wall clock steps back', async (t) => {
  const time = { now: 1_700_000_000_000 };
  const c = new MessageClock(clockAt(time));
  const ids: string[] = [];
  for (let i = 0; i < 1000; i++) ids.push(c.next());
  time.now -= 5000; // the wall clock steps back
  for (let i = 0; i < 10; i++) ids.push(c.next());
  time.now += 10_000;
  ids.push(c.next());
  t.ok(ids.every(isMessageId), 'well-formed');
  t.same([...ids].sort(), ids, 'strictly in creation order');
  t.equal(new Set(ids).size, ids.length, 'unique');
  t.equal(idTime(ids[0]!), 1_700_000_000_000, 'the time part is the wall-clock ms');
  t.equal(idTime(ids[ids.length - 1]!), time.now);
});

t.test('observe moves a clock past a received id: a reply sorts after what it answers, whatever the skew', async (t) => {
  const fast = { now: 1_700_000_010_000 };
  const slow = { now: 1_700_000_000_000 }; // 10 s behind
  const a = new MessageClock(clockAt(fast));
  const b = new MessageClock(clockAt(slow));
  const msg = a.next();
  t.ok(b.next() < msg, 'without observing, the slow node\'s id sorts first');
  b.observe(msg);
  const reply = b.next();
  t.ok(reply > msg, 'after observing, the reply sorts after');
  t.ok(b.next() > reply, 'and the clock keeps growing');
  // Far-future ids (a broken peer clock) are not followed.
  const before = b.next();
  b.observe(idAtTime(slow.now + 3_600_000).slice(0, 14) + 'ABCDEFGHJKMN');
  t.ok(idTime(b.next()) - idTime(before) < 60_000, 'an id an hour ahead does not drag the clock');
  b.observe('not an id');
  t.pass('malformed ids are ignored');
});

t.test('two clocks never make the same id (their tags differ) and ids of many clocks sort by time first', async (t) => {
  const time = { now: 1_700_000_000_000 };
  const clocks = Array.from({ length: 5 }, () => new MessageClock(clockAt(time)));
  const all = new Set<string>();
  for (let i = 0; i < 200; i++) for (const c of clocks) all.add(c.next());
  t.equal(all.size, 1000);
  t.throws(() => new MessageClock(clockAt(time), 'lowercase-tag'), /12 Crockford/);
});

t.test('property: any interleaving of next/observe keeps each clock strictly increasing and above what it observed', async (t) => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: -5000, max: 5000 })), { minLength: 1, maxLength: 200 }), (ops) => {
    const ta = { now: 1_700_000_000_000 };
    const tb = { now: 1_700_000_000_000 };
    const a = new MessageClock(clockAt(ta));
    const b = new MessageClock(clockAt(tb));
    let lastA = '';
    let lastB = '';
    for (const [fromA, step] of ops) {
      (fromA ? ta : tb).now += step;
      const id = fromA ? a.next() : b.next();
      const last = fromA ? lastA : lastB;
      if (id <= last) return false;
      if (fromA) lastA = id; else lastB = id;
      (fromA ? b : a).observe(id);
      const next = (fromA ? b : a).next();
      if (next <= id && Math.abs(idTime(id) - (fromA ? tb : ta).now) < 60_000) return false;
      if (fromA) lastB = next; else lastA = next;
    }
    return true;
  }));
});

t.test('placement: replicas are the first R of the rendezvous ranking (rank 1 is the home), agreed by every node', async (t) => {
  const members = ['n0', 'n1', 'n2', 'n3', 'n4'];
  const r = new Rendezvous(members);
  const views = members.map((self) => {
    const p = new Placement({ selfId: self, replicas: 2, monotonic: () => 0 });
    p.membersChanged(members);
    return p;
  });
  const load = new Map<string, number>();
  for (let i = 0; i < 2000; i++) {
    const s = `u:user${i}`;
    const set = views[0]!.writeSet(s);
    t.equal(set.length, 2);
    if (set[0] !== r.home(s)) t.fail(`rank 1 of ${s} is not its home`);
    for (const v of views) if (v.writeSet(s).join() !== set.join()) t.fail('nodes disagree');
    for (const n of set) load.set(n, (load.get(n) ?? 0) + 1);
  }
  for (const [n, k] of load) t.ok(k > 600 && k < 1000, `${n} keeps about 2/5 of the streams (${k} of 2000)`);
  t.same(new Placement({ selfId: 'solo', replicas: 3, monotonic: () => 0 }).writeSet('u:x'), ['solo'], 'fewer members than replicas: all of them');
});

t.test('placement: a member change moves only streams whose ranking it touches; reads also ask recent views\' live replicas', async (t) => {
  let now = 0;
  const p = new Placement({ selfId: 'n0', replicas: 2, monotonic: () => now, recentViewMs: 1000 });
  p.membersChanged(['n0', 'n1', 'n2']);
  const before = new Map<string, readonly string[]>();
  for (let i = 0; i < 1000; i++) before.set(`u:${i}`, p.writeSet(`u:${i}`));
  p.membersChanged(['n0', 'n1', 'n2', 'n3']);
  let moved = 0;
  for (const [s, old] of before) {
    const set = p.writeSet(s);
    if (set.join() !== old.join()) {
      moved++;
      t.ok(set.includes('n3'), 'a stream moves only when the new member enters its top 2');
      for (const n of old) if (!set.includes(n)) t.ok(p.readSet(s).includes(n), 'the replica it left is still read');
    }
  }
  t.ok(moved > 300 && moved < 700, `about half of the streams gain n3 as a replica (${moved} of 1000)`);
  now += 2000;
  for (const s of before.keys()) t.equal(p.readSet(s).length, 2, 'after the recent-view window, only the replicas');
  p.membersChanged(['n0', 'n2', 'n3']);
  for (const s of before.keys()) if (p.readSet(s).includes('n1')) t.fail('a member that left is never read');
});
