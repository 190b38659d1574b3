#!/usr/bin/env node
/**
 * `npm start` runs this before the node: it runs `npm run build` only when the build is missing or
 * older than one of its inputs, so a start with an up-to-date build skips the 8-20 s rebuild.
 *
 * Inputs: every `.ts` file and every directory under `src/` (a deleted or renamed file changes its
 * directory's time), except `src/generated/` (written by the build itself) and `src/web/` (served
 * as is from `src/web`, never built); everything under `proto/`; `tsconfig.json`, `package.json`
 * (it holds the `gen` script) and `package-lock.json`.
 * Output: `dist/cli.js` and `dist/.build-stamp`, whose time is when the last build that succeeded
 * through this script began (so a file saved during a build triggers the next one).
 *
 * Every `npm run build` stamps itself (`--begin` before it, `--done` after it succeeded), so the
 * build that `npm install` runs (`prepare`) or `npm test` runs counts too: the first `npm start`
 * after `npm install` starts at once.
 *
 * Usage: node scripts/build-if-needed.mjs [--check | --begin | --done] [--root DIR]
 *   --check  only decide: print the reason, exit 0 when up to date, 1 when a build is needed
 *   --begin  a build begins now (remembered in dist/.build-begin)
 *   --done   the build that began at --begin succeeded: dist/.build-stamp takes that time
 *   --root   the package directory (default: the one holding this script)
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The stamp file, relative to the package root. */
export const STAMP = 'dist/.build-stamp';
/** When the running build began, relative to the package root. */
export const BEGIN = 'dist/.build-begin';
/** The build output whose absence always means a build, relative to the package root. */
export const OUTPUT = 'dist/cli.js';

const FILES = ['tsconfig.json', 'package.json', 'package-lock.json'];
const SKIPPED_DIRS = new Set(['src/generated', 'src/web']);

function walk(root, dir, keep, visit) {
  let entries;
  try {
    entries = readdirSync(join(root, dir), { withFileTypes: true });
  } catch {
    return;
  }
  visit(dir);
  for (const e of entries) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) {
      if (!SKIPPED_DIRS.has(path)) walk(root, path, keep, visit);
    } else if (keep(e.name)) {
      visit(path);
    }
  }
}

/**
 * The most recently modified input under `root`: `{ path, mtimeMs }` (path relative to root), or
 * undefined when there is none.
 */
export function newestInput(root) {
  let newest;
  const visit = (path) => {
    let mtimeMs;
    try {
      mtimeMs = statSync(join(root, path)).mtimeMs;
    } catch {
      return;
    }
    if (!newest || mtimeMs > newest.mtimeMs) newest = { path, mtimeMs };
  };
  walk(root, 'src', (name) => name.endsWith('.ts'), visit);
  walk(root, 'proto', () => true, visit);
  for (const f of FILES) visit(f);
  return newest;
}

/** Whether the build under `root` is up to date: `{ upToDate, reason }`, the reason in words. */
export function buildStatus(root) {
  if (!existsSync(join(root, OUTPUT))) return { upToDate: false, reason: `${OUTPUT} is missing` };
  let built;
  try {
    built = statSync(join(root, STAMP)).mtimeMs;
  } catch {
    return { upToDate: false, reason: `${STAMP} is missing (no build finished yet)` };
  }
  const newest = newestInput(root);
  if (newest && newest.mtimeMs > built) return { upToDate: false, reason: `${newest.path} changed since the last build` };
  return { upToDate: true, reason: 'build is up to date' };
}

/** Records a successful build that began at `startedMs` (epoch ms). */
export function markBuilt(root, startedMs) {
  const path = join(root, STAMP);
  closeSync(openSync(path, 'a'));
  utimesSync(path, startedMs / 1000, startedMs / 1000);
}

function main(argv) {
  const rootAt = argv.indexOf('--root');
  const root = rootAt >= 0 ? argv[rootAt + 1] : fileURLToPath(new URL('..', import.meta.url));
  if (!root) {
    process.stderr.write('build-if-needed: --root needs a directory\n');
    return 2;
  }
  if (argv.includes('--begin')) {
    mkdirSync(join(root, 'dist'), { recursive: true });
    const path = join(root, BEGIN);
    closeSync(openSync(path, 'a'));
    const now = Date.now() / 1000;
    utimesSync(path, now, now);
    return 0;
  }
  if (argv.includes('--done')) {
    let began;
    try {
      began = statSync(join(root, BEGIN)).mtimeMs;
    } catch {
      return 0; // built without --begin: no stamp, the next start rebuilds
    }
    markBuilt(root, began);
    rmSync(join(root, BEGIN), { force: true });
    return 0;
  }
  const status = buildStatus(root);
  if (argv.includes('--check')) {
    process.stdout.write(`${status.reason}\n`);
    return status.upToDate ? 0 : 1;
  }
  if (status.upToDate) {
    process.stderr.write(`${status.reason} (${relative(process.cwd(), join(root, 'dist')) || '.'})\n`);
    return 0;
  }
  process.stderr.write(`building: ${status.reason}\n`);
  // The build stamps itself (--begin/--done in package.json's build script).
  const r = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  return r.status ?? 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2));
