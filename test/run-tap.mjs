#!/usr/bin/env node
// Runs tap (config in .taprc) and ends with the line CI reads: `N passed, N failed`.
// tap's own summary is a `# { total, pass, fail, ... }` comment; a coverage-threshold failure
// exits non-zero with no failed assertion, so it is counted as one failure here.
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const tapBin = fileURLToPath(new URL('../node_modules/tap/dist/esm/run.mjs', import.meta.url));
// TAP_SUMMARY_FILE: another summary file (the fault suite writes .tap/fault-summary.txt).
const summaryFile = process.env.TAP_SUMMARY_FILE
  ? resolve(process.env.TAP_SUMMARY_FILE)
  : fileURLToPath(new URL('../.tap/summary.txt', import.meta.url));
rmSync(summaryFile, { force: true });
const args = [tapBin, '--no-color', '-R', 'terse', ...process.argv.slice(2)];
const child = spawn(process.execPath, args, { stdio: ['inherit', 'pipe', 'inherit'] });
let tail = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  tail = (tail + chunk.toString()).slice(-4096);
});
child.on('close', (code, signal) => {
  const m = [...tail.matchAll(/^# \{ total: (\d+)(.*)\}$/gm)].pop();
  const total = m ? Number(m[1]) : 0;
  const field = (name) => {
    const f = m?.[2].match(new RegExp(`${name}: (\\d+)`));
    return f ? Number(f[1]) : 0;
  };
  const pass = field('pass');
  let fail = field('fail');
  const skip = field('skip') + field('todo');
  if (code !== 0 && fail === 0) {
    process.stdout.write(`\ntap exited with ${code ?? signal} (coverage thresholds or a crashed test file); counted as a failure\n`);
    fail = 1;
  }
  const line = `${pass} passed, ${fail} failed${skip ? `, ${skip} skipped` : ''}`;
  mkdirSync(dirname(summaryFile), { recursive: true });
  writeFileSync(summaryFile, `${line}\n`);
  process.stdout.write(`\n${line}\n`);
  if (!m && total === 0) process.exitCode = code || 1;
  else process.exitCode = code ?? 1;
});
