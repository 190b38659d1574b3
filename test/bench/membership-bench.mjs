#!/usr/bin/env node
// How long a membership change blocks a node: 10 nodes in this process over the in-memory
// transport; node 0's routing cache is filled with BENCH_ROUTES complete owner sets (default one
// million, the default --route-cache-size), then node 9 crashes (a leave) and comes back (a join).
// Reports, for each change: the longest event-loop stall seen by a 1 ms sampler and by
// perf_hooks.monitorEventLoopDelay, and how long node 0's own membership handler ran. The other
// nine nodes share this event loop, so the stall includes their (small) work too.
//
// Run: `npm run build && node test/bench/membership-bench.mjs` (also part of `npm run bench`).
import { PerformanceObserver, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { MemoryNetwork } from '../../dist/mesh/index.js';
import { startNode } from '../../dist/node.js';

const NODES = 10;
const ROUTES = Number(process.env.BENCH_ROUTES ?? 1_000_000);
const net = new MemoryNetwork();
const addresses = Array.from({ length: NODES }, (_, i) => `127.0.0.1:${23_000 + i}`);
const nodes = new Array(NODES);

const start = (i) => startNode({
  id: `n${i}`, host: '127.0.0.1', httpPort: 0, meshPort: 23_000 + i, adminPort: 0, logLevel: 'silent', peers: addresses,
  // Only node 0 gets the big cache (lru-cache preallocates its index for the maximum).
  routeCacheSize: i === 0 ? ROUTES : 10_000,
}, { transport: net.transport(), link: { pingIntervalMs: 500, deadAfterMs: 5000 }, retryMinMs: 20, retryMaxMs: 200 })
  .then((n) => { nodes[i] = n; return n; });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(cond, what, ms = 20_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
const meshUp = () => nodes.every((n) => n && n.peers.upLinks().size === NODES - 1);

await Promise.all(addresses.map((_, i) => start(i)));
await until(meshUp, 'the mesh to form');
const n0 = nodes[0];
const links = n0.peers.upLinks();
let filled = 0;
const t0 = performance.now();
for (let i = 0; filled < ROUTES; i++) {
  const topic = `u:user${i}`;
  const home = n0.router.homeOf(topic);
  if (home === n0.id) continue;
  const owner = `n${1 + (i % (NODES - 1))}`;
  n0.router.table.applyFull(topic, { owners: new Map([[owner, 1]]), home, incarnation: links.get(home).peer.incarnation, seq: 1 });
  filled++;
}
const fillMs = performance.now() - t0;
const cachedBefore = n0.router.table.size;

// Time node 0's own handlers of link up/down (the synchronous part of a membership change).
const handlerMs = [];
for (const name of ['peerUp', 'peerDown']) {
  const orig = n0.router[name].bind(n0.router);
  n0.router[name] = (link) => {
    const s = performance.now();
    orig(link);
    handlerMs.push({ name, ms: performance.now() - s });
  };
}

// Garbage-collector pauses, to tell them apart from the membership work (a heap holding a million
// routes has major collections of tens of ms whether or not membership changes).
let gcMaxMs = 0;
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMaxMs = Math.max(gcMaxMs, e.duration);
});
gcObserver.observe({ entryTypes: ['gc'] });

const h = monitorEventLoopDelay({ resolution: 1 });
let maxGap = 0;
let last = performance.now();
const sampler = setInterval(() => {
  const now = performance.now();
  maxGap = Math.max(maxGap, now - last);
  last = now;
}, 1);
async function measure(name, action, settled) {
  await sleep(200);
  h.reset();
  h.enable();
  maxGap = 0;
  gcMaxMs = 0;
  last = performance.now();
  handlerMs.length = 0;
  await action();
  await until(settled, name);
  await sleep(1000);
  h.disable();
  const node0 = handlerMs.reduce((m, x) => Math.max(m, x.ms), 0);
  return { change: name, maxStallMs: +maxGap.toFixed(1), loopDelayMaxMs: +(h.max / 1e6).toFixed(1), loopDelayP99Ms: +(h.percentile(99) / 1e6).toFixed(1), node0HandlerMaxMs: +node0.toFixed(2), gcPauseMaxMs: +gcMaxMs.toFixed(1) };
}

const results = [];
results.push(await measure('leave (node 9 crashes)', async () => {
  net.crash(addresses[9]);
  await nodes[9].kill();
  nodes[9] = undefined;
}, () => n0.peers.upLinks().size === NODES - 2));
results.push(await measure('join (node 9 comes back)', () => start(9), meshUp));

// The deferred cost: the first read of each cached route after a change re-checks it.
const readStart = performance.now();
let hits = 0;
for (let i = 0; i < ROUTES * 1.2; i++) if (n0.router.table.get(`u:user${i}`)) hits++;
const readMs = performance.now() - readStart;
clearInterval(sampler);
gcObserver.disconnect();

console.log(`membership change with ${cachedBefore.toLocaleString()} cached routes on node 0 (${NODES} nodes in one process; fill took ${fillMs.toFixed(0)} ms)`);
console.table(results);
console.log(`first read of every cached route after the changes: ${(readMs * 1e6 / (ROUTES * 1.2)).toFixed(0)} ns per get (${hits.toLocaleString()} still cached)`);
console.log(JSON.stringify({ bench: 'membership', routes: ROUTES, results, firstReadNsPerGet: +(readMs * 1e6 / (ROUTES * 1.2)).toFixed(0) }));
await Promise.all(nodes.filter(Boolean).map((n) => n.kill()));
process.exit(0);
