#!/usr/bin/env node
// Runs the browser suite (test/browser/*.browser.ts: the web client in headless Chromium against
// real nodes; not in .taprc's include, since it is slow) with tap through test/run-tap.mjs, no
// coverage, 300 s per file. Prints `N passed, N failed` last and writes it to
// .tap/browser-summary.txt for .ci/run. Extra arguments go to tap (e.g. a single file).
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
mkdirSync(`${root}.tap`, { recursive: true });
const args = process.argv.slice(2);
const files = args.some((a) => a.endsWith('.ts'))
  ? []
  : readdirSync(fileURLToPath(new URL('.', import.meta.url))).filter((f) => f.endsWith('.browser.ts')).sort().map((f) => `test/browser/${f}`);
const child = spawn(process.execPath, [`${root}test/run-tap.mjs`, '--disable-coverage', '--timeout', '300', ...args, ...files], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, TAP_SUMMARY_FILE: process.env.TAP_SUMMARY_FILE || `${root}.tap/browser-summary.txt` },
});
child.on('close', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
