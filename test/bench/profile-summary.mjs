// Summarizes a V8 `.cpuprofile` (from `node --cpu-prof`): top functions by self time and by
// inclusive time, and self time per source file. Frames of dist/*.js are mapped back to src/*.ts
// through the source maps tsc writes next to them.
//
// Library use: `summarizeProfile(path, { top, root })` from run.mjs (BENCH_PROFILE=1).
// Command line: `node test/bench/profile-summary.mjs <file.cpuprofile> [top]`.
import { existsSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Map([...B64].map((c, i) => [c, i]));

/** Decodes one source-map `mappings` segment list (VLQ) into per-generated-line arrays. */
function decodeMappings(mappings) {
  const lines = [];
  let srcIdx = 0;
  let srcLine = 0;
  let srcCol = 0;
  for (const lineText of mappings.split(';')) {
    const segs = [];
    let genCol = 0;
    for (const seg of lineText.split(',')) {
      if (!seg) continue;
      const vals = [];
      let value = 0;
      let shift = 0;
      for (const ch of seg) {
        const d = B64_INDEX.get(ch);
        value += (d & 31) << shift;
        if (d & 32) shift += 5;
        else {
          const neg = value & 1;
          value >>= 1;
          vals.push(neg ? -value : value);
          value = 0;
          shift = 0;
        }
      }
      genCol += vals[0];
      if (vals.length >= 4) {
        srcIdx += vals[1];
        srcLine += vals[2];
        srcCol += vals[3];
        segs.push([genCol, srcIdx, srcLine, srcCol]);
      }
    }
    lines.push(segs);
  }
  return lines;
}

const mapCache = new Map();
function loadMap(jsPath) {
  if (mapCache.has(jsPath)) return mapCache.get(jsPath);
  let m = null;
  const mapPath = `${jsPath}.map`;
  if (existsSync(mapPath)) {
    try {
      const raw = JSON.parse(readFileSync(mapPath, 'utf8'));
      m = { raw, lines: decodeMappings(raw.mappings), dir: mapPath };
    } catch {
      m = null;
    }
  }
  mapCache.set(jsPath, m);
  return m;
}

/** Maps a generated (0-based) line/column of a dist file to `src/...ts:line` (1-based). */
function mapPosition(jsPath, line, col, root) {
  const m = loadMap(jsPath);
  if (!m) return null;
  const segs = m.lines[line];
  if (!segs || segs.length === 0) return null;
  let best = segs[0];
  for (const s of segs) {
    if (s[0] <= col) best = s;
    else break;
  }
  const src = m.raw.sources[best[1]];
  const abs = fileURLToPath(new URL(src, pathToFileURL(jsPath)));
  return `${relative(root, abs)}:${best[2] + 1}`;
}

function location(cf, root) {
  const url = cf.url || '';
  if (!url) return '';
  if (url.startsWith('file://')) {
    const p = fileURLToPath(url);
    if (p.includes('/dist/') && !p.includes('/node_modules/')) {
      const mapped = mapPosition(p, cf.lineNumber, cf.columnNumber, root);
      if (mapped) return mapped;
    }
    const rel = relative(root, p);
    return `${rel}:${cf.lineNumber + 1}`;
  }
  return `${url}:${cf.lineNumber + 1}`;
}

/** Groups a location into a coarse bucket: a src file, a package, node internals, or a V8 pseudo-frame. */
function bucketOf(loc, name) {
  if (!loc) return name.startsWith('(') ? name : '(native/V8)';
  const file = loc.replace(/:\d+$/, '');
  const nm = file.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (nm) return `pkg ${nm[1]}`;
  if (file.startsWith('node:')) return `node ${file.slice(5).split('/').slice(0, 2).join('/')}`;
  return file;
}

/**
 * Reads a profile and returns `{ totalMs, top, topInclusive, byBucket }`; `top` lists functions by
 * self time ({ name, loc, selfMs, selfPct }).
 */
export function summarizeProfile(path, { top = 25, root = process.cwd() } = {}) {
  const prof = JSON.parse(readFileSync(path, 'utf8'));
  const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
  // Self time per profile node from samples/timeDeltas (µs); timeDeltas[i+1] is the time spent in samples[i].
  const selfUs = new Map();
  const { samples = [], timeDeltas = [] } = prof;
  for (let i = 0; i < samples.length; i++) {
    const dt = i + 1 < timeDeltas.length ? timeDeltas[i + 1] : 0;
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + Math.max(0, dt));
  }
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0) || 1;
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const key = (n) => {
    const cf = n.callFrame;
    const loc = location(cf, root);
    return { k: `${cf.functionName || '(anonymous)'}@${loc}`, name: cf.functionName || '(anonymous)', loc };
  };
  const keyOf = new Map(prof.nodes.map((n) => [n.id, key(n)]));
  const self = new Map();
  const incl = new Map();
  const byBucket = new Map();
  const idleNames = new Set(['(idle)', '(program)', '(root)']);
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const { k, name, loc } = keyOf.get(id);
    if (idleNames.has(name)) idleUs += name === '(idle)' ? us : 0;
    const e = self.get(k) ?? { name, loc, us: 0 };
    e.us += us;
    self.set(k, e);
    const b = bucketOf(loc, name);
    byBucket.set(b, (byBucket.get(b) ?? 0) + us);
    // Inclusive: credit every distinct function on the stack once.
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const kk = keyOf.get(cur);
      if (seen.has(kk.k)) continue;
      seen.add(kk.k);
      const ie = incl.get(kk.k) ?? { name: kk.name, loc: kk.loc, us: 0 };
      ie.us += us;
      incl.set(kk.k, ie);
    }
  }
  const busyUs = totalUs - idleUs || 1;
  const fmt = (e) => ({ name: e.name, loc: e.loc, ms: Math.round(e.us / 1000), pctOfBusy: +((e.us / busyUs) * 100).toFixed(1) });
  return {
    file: path,
    totalMs: Math.round(totalUs / 1000),
    idleMs: Math.round(idleUs / 1000),
    busyMs: Math.round(busyUs / 1000),
    top: [...self.values()].filter((e) => e.name !== '(idle)').sort((a, b) => b.us - a.us).slice(0, top).map(fmt),
    topInclusive: [...incl.values()]
      .filter((e) => !idleNames.has(e.name) && e.loc)
      .sort((a, b) => b.us - a.us).slice(0, top).map(fmt),
    byBucket: [...byBucket.entries()].filter(([b]) => b !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, top)
      .map(([bucket, us]) => ({ bucket, ms: Math.round(us / 1000), pctOfBusy: +((us / busyUs) * 100).toFixed(1) })),
  };
}

/** Renders a summary as text. */
export function formatSummary(s, label = s.file) {
  const out = [];
  out.push(`profile ${label}: ${s.totalMs} ms sampled, ${s.busyMs} ms busy, ${s.idleMs} ms idle`);
  out.push('  self time, top functions (% of busy):');
  for (const e of s.top) out.push(`    ${String(e.pctOfBusy).padStart(5)}%  ${String(e.ms).padStart(6)} ms  ${e.name}  ${e.loc}`);
  out.push('  self time by file / package:');
  for (const e of s.byBucket) out.push(`    ${String(e.pctOfBusy).padStart(5)}%  ${String(e.ms).padStart(6)} ms  ${e.bucket}`);
  out.push('  inclusive time, top functions:');
  for (const e of s.topInclusive) out.push(`    ${String(e.pctOfBusy).padStart(5)}%  ${String(e.ms).padStart(6)} ms  ${e.name}  ${e.loc}`);
  return out.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node test/bench/profile-summary.mjs <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  console.log(formatSummary(summarizeProfile(file, { top: Number(process.argv[3] ?? 25) })));
}
