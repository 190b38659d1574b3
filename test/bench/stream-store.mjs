#!/usr/bin/env node
// The two StreamStore implementations through their interface (dist/streams/store/index.js), each
// in a process of its own (so RSS is its own):
//   fill      appends/s of N entries in batches of 100, one caller at a time (each resolved before
//             the next; for the disk store every batch is fsynced), over S streams;
//   parallel  appends/s with 16 callers each appending batches of 100 at once (group commit: the
//             disk store writes what queued up during one fsync in the next);
//   trimming  appends/s once every stream is full (maxPerStream = N/S): each entry trims one;
//   range     newest-50 reads/s (`range(stream, {limit: 50, from: 'newest'})`, like `history`);
//   memory    RSS and V8 heap growth per 100k stored entries (after a GC: the parent runs each
//             store with --expose-gc);
//   disk      bytes on disk per entry (du after close), the time to open the N-entry store (a
//             keys-only scan that rebuilds the digests), and the V8 heap that reopened store holds
//             (its in-memory index).
// Frames are ~150 B (a `message` frame with a 64 B body), as in store-engines.mjs.
// Run: npx tsc -p tsconfig.json && node test/bench/stream-store.mjs [N] [S]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const N = Number(process.argv[2] ?? 200_000);
const S = Number(process.argv[3] ?? 2_000);
const BATCH = 100;
const READS = 20_000;
const PARALLEL = 16;
const T0 = 1_700_000_000_000;
const B32 = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const enc = (n, w) => { let s = ''; for (let i = 0; i < w; i++, n = Math.floor(n / 32)) s = B32[n % 32] + s; return s; };
const idOf = (i) => enc(T0 + i, 10) + enc(0, 4) + 'BENCHTAG0000';
const streamOf = (i) => `u:user${(i * 7919) % S}`;
const body = 'x'.repeat(64);
const frame = (i) => `{"type":"message","msg":"${idOf(i)}","from":"user${i % S}","to":"${streamOf(i).slice(2)}","body":"${body}","ts":${T0 + i}}`;
const itemOf = (i) => ({ stream: streamOf(i), entry: { id: idOf(i), with: `user${i % S}`, frame: frame(i), pending: i % 4 === 0 } });
const batchOf = (from, to) => { const b = []; for (let i = from; i < to; i++) b.push(itemOf(i)); return b; };
const rssMb = () => { globalThis.gc?.(); return process.memoryUsage().rss / 2 ** 20; };
const heapMb = () => { globalThis.gc?.(); return process.memoryUsage().heapUsed / 2 ** 20; };
const du = (dir) => Number(execFileSync('du', ['-sb', dir]).toString().split('\t')[0]);
const perSec = (n, ms) => Math.round((n / ms) * 1000);

async function measure(kind) {
  const { MemoryStreamStore, openLevelStreamStore } = await import('../../dist/streams/store/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'stream-store-'));
  const limits = { maxPerStream: Math.ceil(N / S), ttlMs: 365 * 86_400_000, maxMessages: 10 * N };
  const now = () => T0 + 10 * N;
  const open = () => (kind === 'memory' ? new MemoryStreamStore(limits, now) : openLevelStreamStore(dir, limits, now));
  const rss0 = rssMb();
  const heap0 = heapMb();
  let store = await open();
  // fill: 3/4 sequential, 1/4 by parallel callers
  const seqN = Math.floor((N * 3) / 4 / BATCH) * BATCH;
  let t = performance.now();
  for (let i = 0; i < seqN; i += BATCH) await store.append(batchOf(i, i + BATCH));
  const fillMs = performance.now() - t;
  t = performance.now();
  const batches0 = store.writeBatches ?? 0;
  let next = seqN;
  await Promise.all(Array.from({ length: PARALLEL }, async () => {
    while (next < N) {
      const from = next;
      next = Math.min(N, next + BATCH);
      await store.append(batchOf(from, next));
    }
  }));
  const parallelMs = performance.now() - t;
  const parallelBatches = store.writeBatches === undefined ? undefined : store.writeBatches - batches0;
  const rssFull = rssMb();
  const heapFull = heapMb();
  // range: newest 50 of a stream
  t = performance.now();
  let got = 0;
  for (let r = 0; r < READS; r++) got += (await store.range(`u:user${(r * 31) % S}`, { limit: 50, from: 'newest' })).entries.length;
  const readMs = performance.now() - t;
  // trimming: every stream is full, each new entry drops the oldest of its stream
  const TRIM = Math.min(50_000, N / 4);
  t = performance.now();
  for (let i = N; i < N + TRIM; i += BATCH) await store.append(batchOf(i, i + BATCH));
  const trimMs = performance.now() - t;
  const totals = store.totals();
  const result = {
    store: kind,
    appendsPerSec: perSec(seqN, fillMs),
    parallelAppendsPerSec: perSec(N - seqN, parallelMs),
    ...(parallelBatches !== undefined && { parallelCallsPerBatch: +((N - seqN) / BATCH / parallelBatches).toFixed(1) }),
    trimmingAppendsPerSec: perSec(TRIM, trimMs),
    rangeReadsPerSec: perSec(READS, readMs),
    avgRead: +(got / READS).toFixed(1),
    stored: totals.messages,
    trimmed: totals.trimmed,
    rssMbPer100k: +(((rssFull - rss0) / N) * 100_000).toFixed(1),
    heapMbPer100k: +(((heapFull - heap0) / N) * 100_000).toFixed(1),
  };
  if (kind === 'disk') {
    await store.close();
    store = undefined; // so that the heap measured next does not hold its index
    result.bytesPerMessage = Math.round(du(dir) / totals.messages);
    const heapBefore = heapMb();
    t = performance.now();
    store = await open();
    result.openMs = Math.round(performance.now() - t);
    result.openedMessages = store.totals().messages;
    result.indexHeapMb = +(heapMb() - heapBefore).toFixed(1);
  }
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return result;
}

if (process.env.STREAM_STORE) {
  console.log(JSON.stringify(await measure(process.env.STREAM_STORE)));
} else {
  const self = fileURLToPath(import.meta.url);
  const results = ['memory', 'disk'].map((kind) => JSON.parse(execFileSync(process.execPath, ['--expose-gc', self, String(N), String(S)], { env: { ...process.env, STREAM_STORE: kind }, maxBuffer: 1 << 24 }).toString().trim().split('\n').pop()));
  console.log(`${N.toLocaleString()} entries of ~${frame(1).length} B in ${S} streams, batches of ${BATCH}; ${READS} reads of the newest 50 (each store in its own process)`);
  console.table(results);
  console.log(JSON.stringify({ bench: 'stream-store', n: N, streams: S, results }));
}
