import t from 'tap';
import { Batcher, scheduleImmediate } from '../src/routing/index.js';

/** A manual event loop: `schedule` queues, `turn()` runs what was queued. */
function manual(): { schedule: (fn: () => void) => void; turn: () => number; pending: () => number } {
  const tasks: (() => void)[] = [];
  return {
    schedule: (fn) => void tasks.push(fn),
    turn: () => {
      const now = tasks.splice(0);
      for (const fn of now) fn();
      return now.length;
    },
    pending: () => tasks.length,
  };
}

function setup(maxBatch: number, maxQueued: number) {
  const loop = manual();
  const batches: number[][] = [];
  const b = new Batcher<number>({
    maxBatch,
    maxQueued,
    flush: (items) => void batches.push(items),
    schedule: loop.schedule,
  });
  return { b, loop, batches };
}

t.test('options are validated', async (t) => {
  const flush = (): void => {};
  for (const [maxBatch, maxQueued] of [[0, 1], [1, 0], [1.5, 2], [1, Number.NaN]] as const) {
    t.throws(() => new Batcher({ maxBatch, maxQueued, flush }), RangeError, `${maxBatch}/${maxQueued}`);
  }
  const b = new Batcher({ maxBatch: 2, maxQueued: 3, flush });
  t.equal(b.maxBatch, 2);
  t.equal(b.maxQueued, 3);
});

t.test('one turn coalesces into one batch, in FIFO order', async (t) => {
  const { b, loop, batches } = setup(100, 100);
  for (let i = 0; i < 10; i++) t.ok(b.push(i));
  t.equal(b.size, 10);
  t.equal(loop.pending(), 1, 'one flush scheduled for the whole turn');
  t.same(batches, [], 'nothing leaves before the turn ends');
  t.equal(loop.turn(), 1);
  t.same(batches, [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]);
  t.equal(b.size, 0);
  b.push(10);
  b.push(11);
  loop.turn();
  t.same(batches[1], [10, 11], 'the next turn is the next batch');
  t.equal(loop.turn(), 0, 'nothing scheduled when idle');
});

t.test('maxBatch splits a turn into ordered batches', async (t) => {
  const { b, loop, batches } = setup(4, 100);
  for (let i = 0; i < 10; i++) b.push(i);
  loop.turn();
  t.same(batches, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
});

t.test('the bounded queue refuses, then accepts again once flushed', async (t) => {
  const { b, loop, batches } = setup(2, 3);
  t.same([1, 2, 3, 4].map((i) => b.push(i)), [true, true, true, false]);
  t.equal(b.size, 3, 'a refused item is not queued');
  loop.turn();
  t.same(batches, [[1, 2], [3]]);
  t.ok(b.push(5));
});

t.test('flushNow sends synchronously; the scheduled flush then has nothing to do', async (t) => {
  const { b, loop, batches } = setup(2, 10);
  b.push(1);
  b.push(2);
  b.push(3);
  b.flushNow();
  t.same(batches, [[1, 2], [3]]);
  loop.turn();
  t.equal(batches.length, 2);
  b.flushNow();
  t.equal(batches.length, 2, 'flushing an empty queue sends nothing');
});

t.test('clear returns what was queued, oldest first, and nothing is flushed', async (t) => {
  const { b, loop, batches } = setup(2, 10);
  b.push(1);
  b.push(2);
  b.push(3);
  t.same(b.clear(), [1, 2, 3]);
  t.equal(b.size, 0);
  loop.turn();
  t.same(batches, []);
  t.same(b.clear(), []);
  t.ok(b.push(4), 'usable after clear');
  loop.turn();
  t.same(batches, [[4]]);
});

t.test('items pushed by flush leave in a later turn', async (t) => {
  const loop = manual();
  const batches: number[][] = [];
  const b: Batcher<number> = new Batcher<number>({
    maxBatch: 10,
    maxQueued: 10,
    schedule: loop.schedule,
    flush: (items) => {
      batches.push(items);
      if (items[0]! < 3) b.push(items[0]! + 1);
    },
  });
  b.push(0);
  loop.turn();
  t.same(batches, [[0]]);
  loop.turn();
  loop.turn();
  loop.turn();
  t.same(batches, [[0], [1], [2], [3]]);
  t.equal(loop.turn(), 0);
});

t.test('a throwing flush loses its batch only; the rest stays scheduled', async (t) => {
  const loop = manual();
  const batches: number[][] = [];
  const b = new Batcher<number>({
    maxBatch: 2,
    maxQueued: 10,
    schedule: loop.schedule,
    flush: (items) => {
      if (items[0] === 1) throw new Error('boom');
      batches.push(items);
    },
  });
  for (let i = 1; i <= 5; i++) b.push(i);
  t.throws(() => loop.turn(), { message: 'boom' });
  t.equal(b.size, 3);
  t.equal(loop.pending(), 1, 'rescheduled');
  loop.turn();
  t.same(batches, [[3, 4], [5]]);
});

t.test('long queues keep order while the sent prefix is reclaimed', async (t) => {
  const { b, loop, batches } = setup(1000, 5000);
  for (let i = 0; i < 3000; i++) b.push(i);
  loop.turn();
  t.same(batches.map((x) => x.length), [1000, 1000, 1000]);
  const flat = batches.flat();
  t.ok(flat.every((v, i) => v === i), 'FIFO across batches');
  // Pushing during a partially drained queue (after reclaiming) still keeps order.
  for (let i = 0; i < 2500; i++) b.push(i);
  b.flushNow();
  for (let i = 2500; i < 2600; i++) b.push(i);
  loop.turn();
  t.ok(batches.slice(3).flat().every((v, i) => v === i));
});

t.test('default scheduler: one event-loop turn, microtasks included, is one batch', async (t) => {
  const batches: string[][] = [];
  let done!: () => void;
  const flushed = new Promise<void>((resolve) => (done = resolve));
  const b = new Batcher<string>({
    maxBatch: 100,
    maxQueued: 100,
    flush: (items) => {
      batches.push(items);
      done();
    },
  });
  b.push('a');
  b.push('b');
  await Promise.resolve().then(() => b.push('c'));
  t.same(batches, [], 'not flushed within the turn');
  await flushed;
  t.same(batches, [['a', 'b', 'c']]);
  t.equal(typeof scheduleImmediate, 'function');
});
