#!/usr/bin/env node
// Runs the fault suite (test/fault/*.fault.ts, not in .taprc's include: slow, real processes) with
// tap through test/run-tap.mjs: one file at a time, no coverage, 300 s per file. Then prints each
// scenario's counts (one line per scenario, from $CHATMESH_FAULT_REPORT) and, last, the line
// `N passed, N failed` (also written to .tap/fault-summary.txt for .ci/run).
// Extra arguments go to tap (e.g. a single file). CHATMESH_CLI=<path to cli.js> runs another build.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const tapDir = `${root}.tap`;
mkdirSync(tapDir, { recursive: true });
const report = process.env.CHATMESH_FAULT_REPORT || `${tapDir}/fault-report.jsonl`;
const summary = process.env.TAP_SUMMARY_FILE || `${tapDir}/fault-summary.txt`;
rmSync(report, { force: true });
rmSync(summary, { force: true });
const args = process.argv.slice(2);
const files = args.some((a) => a.endsWith('.ts'))
  ? []
  : readdirSync(fileURLToPath(new URL('.', import.meta.url))).filter((f) => f.endsWith('.fault.ts')).sort().map((f) => `test/fault/${f}`);
const child = spawn(process.execPath, [`${root}test/run-tap.mjs`, '--disable-coverage', '--jobs', '1', '--timeout', '300', ...args, ...files], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, CHATMESH_FAULT_REPORT: report, TAP_SUMMARY_FILE: summary },
});
child.on('close', (code, signal) => {
  let lines = [];
  try {
    lines = readFileSync(report, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch { /* no scenario got as far as its report */ }
  process.stdout.write(`\nfault suite counts (${process.env.CHATMESH_CLI || 'dist/cli.js'}):\n`);
  for (const { scenario, ...rest } of lines) process.stdout.write(`  ${scenario}: ${JSON.stringify(rest)}\n`);
  let line = '';
  try {
    line = readFileSync(summary, 'utf8').trim();
  } catch { line = '0 passed, 1 failed'; }
  process.stdout.write(`\n${line}\n`);
  process.exitCode = code ?? (signal ? 1 : 0);
});
