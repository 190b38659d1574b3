/**
 * The storage flags through the real CLI: their ranges, and a data dir that cannot be opened stops
 * the node (exit 1, the directory named) instead of falling back to memory.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLI } from './helpers/procs.js';

const run = promisify(execFile);
const exitOf = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
  run(process.execPath, [CLI, ...args]).then((r) => ({ code: 0, ...r }), (e: { code: number; stdout: string; stderr: string }) => e);

t.test('storage flags out of range fail with a message naming the flag', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['node', '--replicas', '0'], /--replicas must be a whole number 1-16/],
    [['node', '--history-size', '-1'], /whole number/],
    [['node', '--history-size', '200000'], /--history-size must be a whole number 0-100000/],
    [['node', '--history-ttl', 'forever'], /--history-ttl must be a time span/],
  ];
  const results = await Promise.all(cases.map(([args]) => exitOf(args)));
  results.forEach((r, i) => {
    const [args, why] = cases[i]!;
    // Every usage error (a flag commander refuses or a value the config refuses) exits 2.
    t.equal(r.code, 2, `${args.join(" ")}: exit 2 (usage)`);
    t.match(r.stderr, why, args.join(' '));
  });
  const help = await run(process.execPath, [CLI, 'node', '--help']);
  for (const f of ['--replicas', '--history-size', '--history-ttl', '--data-dir', '--max-stored-messages']) t.match(help.stdout, f, `--help lists ${f}`);
});

t.test('a --data-dir that cannot be opened stops the node with a message naming it and exit 1, never memory instead', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'chatmesh-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'not-a-dir');
  writeFileSync(file, 'x');
  const r = await exitOf(['node', '--http-port', '0', '--mesh-port', '0', '--admin-port', '0', '--data-dir', file]);
  t.equal(r.code, 1, 'exit 1');
  t.match(r.stderr, file, 'the message names the directory');
  t.notMatch(r.stdout, /listening/, 'it never started serving');
});
