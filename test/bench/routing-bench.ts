/**
 * Micro-benchmark of the routing hot paths. Not a test (tap only runs `*.test.ts`).
 *
 * Run: `node --import=@tapjs/typescript/import test/bench/routing-bench.ts [entries]`
 * (tap's TypeScript loader; set TS_NODE_TRANSPILE_ONLY=1 to skip type-checking at load).
 * Prints one JSON object per measurement: `{ "name", "ops", "opsPerSec", "nsPerOp" }`.
 */
import { performance } from 'node:perf_hooks';
import { Batcher, OwnerDirectory, Rendezvous, RouteTable, type RouteEntry } from '../../src/routing/index.js';

const ENTRIES = Number(process.argv[2] ?? 1_000_000);
const topics = Array.from({ length: ENTRIES }, (_, i) => (i % 2 ? `u:user${i}` : `r:room${i}`));

/** Runs `fn(i)` for i in [0, ops) once to warm up, then again timed, and prints the rate. */
function bench(name: string, ops: number, fn: (i: number) => void): void {
  for (let i = 0; i < Math.min(ops, 50_000); i++) fn(i);
  const start = performance.now();
  for (let i = 0; i < ops; i++) fn(i);
  const ms = performance.now() - start;
  const opsPerSec = Math.round((ops / ms) * 1000);
  console.log(JSON.stringify({ name, ops, opsPerSec, nsPerOp: +((ms * 1e6) / ops).toFixed(1) }));
}

let sink = 0; // keeps results alive so the JIT cannot drop the work

for (const n of [3, 10, 50]) {
  const r = new Rendezvous(Array.from({ length: n }, (_, i) => `node-${i}`));
  bench(`rendezvous.home n=${n}`, ENTRIES, (i) => {
    sink += r.home(topics[i]!)!.length;
  });
}

const entryFor = (i: number, seq: number): RouteEntry => ({
  owners: new Map([[`node-${i % 7}`, 1]]),
  home: `node-${i % 5}`,
  incarnation: 'inc',
  seq,
});
const prebuilt = topics.map((_, i) => entryFor(i, 1));
const newer = topics.map((_, i) => entryFor(i, 2));

const rt = new RouteTable({ maxEntries: ENTRIES });
bench('routeTable.applyFull insert', ENTRIES, (i) => {
  rt.applyFull(topics[i]!, prebuilt[i]!);
});
bench('routeTable.applyFull newer', ENTRIES, (i) => {
  rt.applyFull(topics[i]!, newer[i]!);
});
bench('routeTable.applyFull stale', ENTRIES, (i) => {
  rt.applyFull(topics[i]!, prebuilt[i]!);
});
bench('routeTable.get hit', ENTRIES, (i) => {
  sink += rt.get(topics[(i * 7919) % ENTRIES]!)!.seq;
});
bench('routeTable.get miss', ENTRIES, (i) => {
  sink += rt.get(`x:${i}`) === undefined ? 1 : 0;
});
const small = new RouteTable({ maxEntries: Math.max(1, ENTRIES >> 4) });
bench('routeTable.applyFull with eviction (table 1/16 of keys)', ENTRIES, (i) => {
  small.applyFull(topics[i]!, prebuilt[i]!);
});

const dir = new OwnerDirectory({ nodeId: 'home', incarnation: 'inc' });
bench('ownerDirectory.setOwner', ENTRIES, (i) => {
  sink += dir.setOwner(topics[i % 100_000]!, `node-${i % 7}`, (i % 3) + 1)?.seq ?? 0;
});

const tasks: (() => void)[] = [];
const batcher = new Batcher<number>({
  maxBatch: 256,
  maxQueued: 1 << 20,
  flush: (items) => {
    sink += items.length;
  },
  schedule: (fn) => void tasks.push(fn),
});
bench('batcher.push (+flush every 1000)', ENTRIES, (i) => {
  batcher.push(i);
  if (i % 1000 === 999) for (const fn of tasks.splice(0)) fn();
});

console.log(JSON.stringify({ done: true, sink: sink > 0, routeTableSize: rt.size }));
