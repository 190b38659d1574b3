#!/usr/bin/env node
// Storage engine candidates for the message streams: appends/s (batches of 100, like peer-link
// batches), range reads/s (the newest 50 of a stream, like `history`), bytes on disk per message,
// RSS growth, each engine synced per batch and not. Groundwork for the streams issue (the on-disk
// store must be chosen by measurement). Run: node test/bench/store-engines.mjs [messages] [streams]
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const N = Number(process.argv[2] ?? 200_000);
const S = Number(process.argv[3] ?? 2_000);
const BATCH = 100;
const READS = 20_000;
const body = 'x'.repeat(64);
const idOf = (i) => (1_700_000_000_000 + i).toString(36).padStart(10, '0') + i.toString(36).padStart(8, '0');
const streamOf = (i) => `u:user${(i * 7919) % S}`;
const frame = (i) => `{"type":"message","msg":"${idOf(i)}","from":"user${i % S}","to":"${streamOf(i).slice(2)}","body":"${body}","ts":${1_700_000_000_000 + i}}`;
const rssMb = () => process.memoryUsage().rss / 2 ** 20;
const du = (dir) => Number(execFileSync('du', ['-sb', dir]).toString().split('\t')[0]);

/** Each engine twice: every batch synced to disk (durable on power loss), and not (durable on a crash of the process). */
const lmdb = (sync) => async (dir) => {
  const { open } = await import('lmdb');
  const db = open({ path: dir, encoding: 'string', compression: false, noSync: !sync });
  return {
    async append(ops) { await db.batch(() => { for (const [k, v] of ops) db.put(k, v); }); },
    async last(stream, n) { let c = 0; for (const _ of db.getRange({ start: `${stream}\u0001`, end: `${stream}\u0000`, reverse: true, limit: n })) c++; return c; },
    async close() { await db.close(); },
  };
};
const level = (sync) => async (dir) => {
  const { ClassicLevel } = await import('classic-level');
  const db = new ClassicLevel(dir, { valueEncoding: 'utf8' });
  await db.open();
  return {
    async append(ops) { await db.batch(ops.map(([key, value]) => ({ type: 'put', key, value })), { sync }); },
    async last(stream, n) { return (await db.values({ gte: `${stream}\u0000`, lt: `${stream}\u0001`, reverse: true, limit: n }).all()).length; },
    async close() { await db.close(); },
  };
};
const engines = { 'lmdb, synced': lmdb(true), 'lmdb, no sync': lmdb(false), 'classic-level, synced': level(true), 'classic-level, no sync': level(false) };

/** Measures one engine in this process; prints its result as one JSON line. */
async function measure(name) {
  const dir = mkdtempSync(join(tmpdir(), 'store-'));
  const rss0 = rssMb();
  const db = await engines[name](dir);
  let t = performance.now();
  for (let i = 0; i < N; i += BATCH) {
    const ops = [];
    for (let j = i; j < Math.min(N, i + BATCH); j++) ops.push([`${streamOf(j)}\u0000${idOf(j)}`, frame(j)]);
    await db.append(ops);
  }
  const appendMs = performance.now() - t;
  t = performance.now();
  let got = 0;
  for (let r = 0; r < READS; r++) got += await db.last(`u:user${(r * 31) % S}`, 50);
  const readMs = performance.now() - t;
  const rss = rssMb() - rss0;
  await db.close();
  const bytes = du(dir);
  rmSync(dir, { recursive: true, force: true });
  return { engine: name, appendsPerSec: Math.round(N / appendMs * 1000), rangeReadsPerSec: Math.round(READS / readMs * 1000), avgRead: +(got / READS).toFixed(1), bytesPerMessage: Math.round(bytes / N), rssGrowthMb: +rss.toFixed(1) };
}

if (process.env.STORE_ENGINE) {
  console.log(JSON.stringify(await measure(process.env.STORE_ENGINE)));
} else {
  // Each engine in a process of its own, so that RSS and caches are its own.
  const results = Object.keys(engines).map((name) => JSON.parse(execFileSync(process.execPath, [fileURLToPath(import.meta.url), String(N), String(S)], { env: { ...process.env, STORE_ENGINE: name } }).toString().trim().split('\n').pop()));
  console.log(`${N.toLocaleString()} messages of ~${frame(1).length} B in ${S} streams, batches of ${BATCH}; ${READS} reads of the newest 50 (each engine in its own process)`);
  console.table(results);
  console.log(JSON.stringify({ bench: 'store-engines', n: N, streams: S, results }));
}
