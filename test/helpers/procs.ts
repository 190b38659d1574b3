/** Runs `chatmesh` CLI commands as child processes for tests. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/**
 * A port that was free a moment ago, below Linux's ephemeral range (32768+), so that outgoing
 * connections of other processes cannot take it before the node binds it.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const srv = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) {
      await new Promise((r) => srv.close(r));
      return port;
    }
  }
}

export interface CliNode {
  readonly child: ChildProcess;
  /** Every JSON log record printed so far. */
  readonly logs: Array<Record<string, unknown>>;
  readonly exited: Promise<number | null>;
  readonly httpPort: number;
}

/**
 * Starts `chatmesh node <args>` and resolves once it logs that it listens. The process is
 * SIGKILLed at the end of the test if still running. With `openFiles`, it runs under
 * `ulimit -n <openFiles>` (soft and hard limit).
 */
export function startCliNode(t: Test, args: string[], env: Record<string, string> = {}, openFiles?: number): Promise<CliNode> {
  const argv = [CLI, 'node', '--log-level', 'info', ...args];
  const opts = { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'] };
  const child = openFiles === undefined
    ? spawn(process.execPath, argv, opts)
    : spawn('bash', ['-c', `ulimit -n ${openFiles} && exec "$0" "$@"`, process.execPath, ...argv], opts);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const logs: Array<Record<string, unknown>> = [];
  return new Promise((resolve, reject) => {
    let buf = '';
    let err = '';
    child.stderr!.on('data', (d) => { err += d; });
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const line of lines) {
        if (!line.startsWith('{')) continue;
        const rec = JSON.parse(line) as Record<string, unknown>;
        logs.push(rec);
        if (typeof rec['httpPort'] === 'number' && typeof rec['meshPort'] === 'number') {
          resolve({ child, logs, exited, httpPort: rec['httpPort'] });
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`chatmesh node exited ${code}: ${err}`)));
  });
}

/** Whether `port` on 127.0.0.1 could be listened on a moment ago. */
export async function isFree(port: number): Promise<boolean> {
  const srv = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (ok) await new Promise((r) => srv.close(r));
  return ok;
}

/** A base port P for `nodes` nodes of `chatmesh cluster` (P+i, P+100+i, P+200+i all free a moment ago). */
export async function freeBase(nodes = 1): Promise<number> {
  for (;;) {
    const p = await freePort();
    const ports = [];
    for (let i = 0; i < nodes; i++) ports.push(p + i, p + 100 + i, p + 200 + i);
    if ((await Promise.all(ports.slice(1).map(isFree))).every(Boolean)) return p;
  }
}
