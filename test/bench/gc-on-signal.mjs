// Preloaded (`node --expose-gc --import`) into the node processes of streams-bench.mjs: on SIGUSR2
// the node runs a full garbage collection and prints one line to stderr,
//   BENCH_GC {"rss":...,"rssAnon":...,"rssFile":...,"heapUsed":...,"external":...,"arrayBuffers":...}
// so that the bench can compare memory before and after storing messages without the garbage of
// the load itself. Bytes; rssAnon and rssFile come from /proc/self/status: file-backed pages (e.g.
// LevelDB's memory-mapped tables) are page cache the kernel can reclaim, anonymous pages are the
// process's own memory. Not used outside test/bench/.
import { readFileSync } from 'node:fs';

function procKb(field) {
  try {
    const m = readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

process.on('SIGUSR2', () => {
  if (typeof globalThis.gc === 'function') {
    globalThis.gc();
    globalThis.gc(); // a second pass frees what the first one's finalizers released
  }
  const m = process.memoryUsage();
  process.stderr.write(`BENCH_GC ${JSON.stringify({ gc: typeof globalThis.gc === 'function', rss: m.rss, rssAnon: procKb('RssAnon'), rssFile: procKb('RssFile'), heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers })}\n`);
});
