/**
 * A node whose open-files limit is below `--max-connections` says so at start, with both numbers,
 * what it can really hold and how to raise the limit; with enough descriptors it says nothing.
 * Checked through the real CLI under `ulimit -n` (hard and soft: Node raises the soft limit to the
 * hard one at start), and the arithmetic on its own.
 */
import t from 'tap';
import type { Test } from 'tap';
import {
  BASE_RESERVED_FDS, DATA_DIR_FDS, FDS_PER_PEER, openFilesShortfall, openFilesWarning, parseOpenFilesLimit,
  readOpenFilesLimit, reservedFds, warnIfFewOpenFiles,
} from '../src/util/open-files.js';
import { freeBase, startCliNode } from './helpers/procs.js';

/** `chatmesh node` under `ulimit -n <limit>`: its log records until it listens, then it is stopped. */
async function startupLogs(t: Test, limit: number, args: string[]): Promise<Array<Record<string, unknown>>> {
  const node = await startCliNode(t, ['--base-port', String(await freeBase()), ...args], {}, limit);
  node.child.kill('SIGTERM');
  await node.exited;
  return node.logs;
}

const isWarning = (r: Record<string, unknown>): boolean => typeof r['msg'] === 'string' && r['msg'].startsWith('open-files limit too low');

t.test('a node started with fewer open files than --max-connections warns once, with the numbers and the fix', async (t) => {
  const logs = await startupLogs(t, 1000, ['--max-connections', '5000']);
  const warnings = logs.filter(isWarning);
  t.equal(warnings.length, 1, 'one warning');
  const w = warnings[0]!;
  t.equal(w['level'], 'warn', 'at warn level');
  t.equal(w['openFilesLimit'], 1000);
  t.equal(w['maxConnections'], 5000);
  t.equal(w['holdableConnections'], 1000 - BASE_RESERVED_FDS);
  t.match(w['msg'], /ulimit -n 5100/, 'says the limit to set');
  t.match(w['msg'], /LimitNOFILE=5100/, 'and how under systemd');
  t.match(w['msg'], /nofile/, 'and under docker');
  t.match(w['msg'], /--max-connections to 900/, 'or what to lower the cap to');
});

t.test('with enough open files for --max-connections the node says nothing about them', async (t) => {
  const logs = await startupLogs(t, 1000, ['--max-connections', '800']);
  t.equal(logs.filter(isWarning).length, 0);
  t.ok(logs.some((r) => typeof r['httpPort'] === 'number'), 'the node started');
});

t.test('the arithmetic: /proc limits, reserved descriptors, the shortfall', async (t) => {
  const text = 'Limit                     Soft Limit           Hard Limit           Units\n' +
    'Max cpu time              unlimited            unlimited            seconds\n' +
    'Max open files            1024                 20000                files\n';
  t.same(parseOpenFilesLimit(text), { soft: 1024, hard: 20000 });
  t.same(parseOpenFilesLimit('Max open files            unlimited            unlimited            files'), { soft: Infinity, hard: Infinity });
  t.equal(parseOpenFilesLimit('no such line'), undefined);
  t.same(readOpenFilesLimit(() => text), { soft: 1024, hard: 20000 });
  t.equal(readOpenFilesLimit(() => { throw new Error('ENOENT'); }), undefined, 'not Linux: nothing is checked');

  t.equal(reservedFds({ peers: 0, dataDir: false }), BASE_RESERVED_FDS);
  t.equal(reservedFds({ peers: 4, dataDir: true }), BASE_RESERVED_FDS + 4 * FDS_PER_PEER + DATA_DIR_FDS);

  t.equal(openFilesShortfall({ soft: 20000, hard: 20000 }, 19900, 100), undefined, 'exactly enough');
  t.same(openFilesShortfall({ soft: 20000, hard: 20000 }, 100_000, 100), { limit: 20000, hardLimit: 20000, maxConnections: 100_000, reserved: 100, holdable: 19900, needed: 100_100 });
  t.equal(openFilesShortfall({ soft: Infinity, hard: Infinity }, 1e9, 100), undefined, 'unlimited');
  t.equal(openFilesShortfall(undefined, 100_000, 100), undefined, 'unknown limit');
  t.equal(openFilesShortfall({ soft: 50, hard: 50 }, 10, 100)!.holdable, 0, 'never negative');
  t.match(openFilesWarning(openFilesShortfall({ soft: 10, hard: Infinity }, 100, 100)!), /hard limit unlimited/);

  const seen: string[] = [];
  const log = { warn: (_o: object, msg: string): void => { seen.push(msg); } };
  t.equal(warnIfFewOpenFiles(log, { maxConnections: 10, peers: 0, dataDir: false, limit: { soft: 1000, hard: 1000 } }), undefined);
  t.ok(warnIfFewOpenFiles(log, { maxConnections: 1000, peers: 2, dataDir: true, limit: { soft: 1000, hard: 1000 } }));
  t.equal(seen.length, 1, 'warned once, for the short limit');
});
