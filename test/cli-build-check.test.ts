/**
 * `npm start` rebuilds only when needed: scripts/build-if-needed.mjs decides from file times, here
 * on a package laid out in a temp dir (no tsc runs), and through the script itself with --check.
 */
import t from 'tap';
import type { Test } from 'tap';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BEGIN, buildStatus, markBuilt, newestInput, OUTPUT, STAMP } from '../scripts/build-if-needed.mjs';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../scripts/build-if-needed.mjs', import.meta.url));
const FILES = [
  'src/cli.ts', 'src/sub/a.ts', 'src/sub/b.ts', 'src/web/app.js', 'src/web/index.html', 'src/generated/admin.ts',
  'proto/admin.proto', 'package.json', 'package-lock.json', 'tsconfig.json', OUTPUT,
];
const DIRS = ['src', 'src/sub', 'src/web', 'src/generated', 'proto'];

/** A package whose every file and directory is a minute old, built 30 s ago (stamp and output). */
function builtPackage(t: Test): { root: string; touch: (path: string) => void } {
  const root = mkdtempSync(join(tmpdir(), 'chatmesh-build-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const now = Date.now() / 1000;
  for (const f of FILES) {
    mkdirSync(dirname(join(root, f)), { recursive: true });
    writeFileSync(join(root, f), 'x');
    utimesSync(join(root, f), now - 60, now - 60);
  }
  for (const d of DIRS) utimesSync(join(root, d), now - 60, now - 60);
  markBuilt(root, (now - 30) * 1000);
  return { root, touch: (path) => utimesSync(join(root, path), now, now) };
}

t.test('a fresh build is up to date; every kind of input change asks for a build', async (t) => {
  for (const changed of ['src/cli.ts', 'src/sub/a.ts', 'src/sub', 'proto/admin.proto', 'package.json', 'package-lock.json', 'tsconfig.json']) {
    const { root, touch } = builtPackage(t);
    t.same(buildStatus(root), { upToDate: true, reason: 'build is up to date' }, `before ${changed} changes`);
    touch(changed);
    t.same(buildStatus(root), { upToDate: false, reason: `${changed} changed since the last build` }, changed);
  }
});

t.test('files the build writes or never compiles do not ask for one', async (t) => {
  for (const changed of ['src/generated/admin.ts', 'src/generated', 'src/web/app.js', 'src/web/index.html', 'src/web', OUTPUT]) {
    const { root, touch } = builtPackage(t);
    touch(changed);
    t.equal(buildStatus(root).upToDate, true, `${changed} changed: still up to date`);
  }
});

t.test('a deleted source file, a missing output or stamp asks for a build', async (t) => {
  const deleted = builtPackage(t);
  unlinkSync(join(deleted.root, 'src/sub/b.ts'));
  t.match(buildStatus(deleted.root), { upToDate: false, reason: 'src/sub changed since the last build' }, 'its directory changed');
  const noOutput = builtPackage(t);
  unlinkSync(join(noOutput.root, OUTPUT));
  t.same(buildStatus(noOutput.root), { upToDate: false, reason: `${OUTPUT} is missing` });
  const noStamp = builtPackage(t);
  unlinkSync(join(noStamp.root, STAMP));
  t.match(buildStatus(noStamp.root), { upToDate: false, reason: /build-stamp is missing/ });
});

t.test('the stamp keeps the time the build began: a file saved during the build triggers the next', async (t) => {
  const { root } = builtPackage(t);
  const began = Date.now() - 10_000;
  const savedDuring = began / 1000 + 5;
  utimesSync(join(root, 'src/cli.ts'), savedDuring, savedDuring);
  markBuilt(root, began);
  t.equal(buildStatus(root).upToDate, false);
  t.equal(newestInput(root)?.path, 'src/cli.ts');
});

t.test('the script: --check exits 0 when up to date (fast, nothing built), 1 with the reason when not', async (t) => {
  const { root, touch } = builtPackage(t);
  const check = (): Promise<{ code: number; stdout: string }> => run(process.execPath, [SCRIPT, '--check', '--root', root]).then(
    (r) => ({ code: 0, stdout: r.stdout }), (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }));
  const started = Date.now();
  t.same(await check(), { code: 0, stdout: 'build is up to date\n' });
  t.ok(Date.now() - started < 5000, 'decided in well under the time of a build');
  touch('src/sub/a.ts');
  t.same(await check(), { code: 1, stdout: 'src/sub/a.ts changed since the last build\n' });
  // Without --check, an up-to-date package is left alone: no npm, no tsc.
  touch('src/generated/admin.ts');
  markBuilt(root, Date.now());
  const quiet = await run(process.execPath, [SCRIPT, '--root', root]);
  t.match(quiet.stderr, /^build is up to date/);
  t.equal(quiet.stdout, '');
});

t.test('npm start runs the check, then the node', async (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
  t.equal(pkg.scripts['start'], 'node scripts/build-if-needed.mjs && node dist/cli.js node');
});

t.test('every npm run build stamps itself: --begin before, --done after it succeeded', async (t) => {
  const { root } = builtPackage(t);
  rmSync(join(root, STAMP));
  t.match(buildStatus(root), { upToDate: false, reason: /no build finished yet/ });
  await run(process.execPath, [SCRIPT, '--begin', '--root', root]);
  const during = (statSync(join(root, BEGIN)).mtimeMs + 1) / 1000;
  utimesSync(join(root, 'src/cli.ts'), during, during); // saved while the build runs: the next start builds again
  await run(process.execPath, [SCRIPT, '--done', '--root', root]);
  t.match(buildStatus(root), { upToDate: false, reason: /src\/cli\.ts changed/ }, 'a file saved during the build is newer than its begin');
  await run(process.execPath, [SCRIPT, '--begin', '--root', root]);
  await run(process.execPath, [SCRIPT, '--done', '--root', root]);
  t.match(buildStatus(root), { upToDate: true }, 'a build that began after the last change is up to date');
  await run(process.execPath, [SCRIPT, '--done', '--root', root]);
  t.match(buildStatus(root), { upToDate: true }, '--done without --begin changes nothing');
});
