/**
 * `chatmesh cluster`: N nodes on this machine as child processes with static discovery of each
 * other. Ports from the base port P: node i serves HTTP on P+i, the mesh on P+100+i and the admin
 * API on P+200+i. Ctrl-C (or SIGTERM) stops every node gracefully.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

/** Options of a local cluster. */
export interface ClusterOptions {
  /** Number of nodes, 1..100. */
  readonly nodes: number;
  /** Base port P (see the module doc). Default 8080. */
  readonly basePort: number;
  /** Address the nodes bind to. Default 127.0.0.1. */
  readonly host: string;
  /** Extra `chatmesh node` flags given to every node. */
  readonly nodeArgs: readonly string[];
}

/** Ports of node i. */
export function clusterPorts(basePort: number, i: number): { http: number; mesh: number; admin: number } {
  return { http: basePort + i, mesh: basePort + 100 + i, admin: basePort + 200 + i };
}

/** Runs the cluster until a signal; resolves with the exit code. */
export async function runCluster(opts: ClusterOptions): Promise<number> {
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > 100) throw new RangeError('--nodes must be 1..100');
  if (!Number.isInteger(opts.basePort) || opts.basePort < 1 || opts.basePort + 200 + opts.nodes > 65535) {
    throw new RangeError('--base-port leaves no room for the nodes\' ports');
  }
  const cli = fileURLToPath(new URL('./cli.js', import.meta.url));
  const peers = Array.from({ length: opts.nodes }, (_, i) => `${opts.host}:${clusterPorts(opts.basePort, i).mesh}`).join(',');
  const children: ChildProcess[] = [];
  let stopping = false;
  const exited: Array<Promise<number>> = [];
  for (let i = 0; i < opts.nodes; i++) {
    const p = clusterPorts(opts.basePort, i);
    const id = `node-${i}`;
    const child = spawn(process.execPath, [
      cli, 'node', '--id', id, '--host', opts.host,
      '--http-port', String(p.http), '--mesh-port', String(p.mesh), '--admin-port', String(p.admin),
      '--discovery', 'static', '--peers', peers, ...opts.nodeArgs,
    // Own process group: a terminal's Ctrl-C reaches only the cluster, which stops each node once.
    ], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    children.push(child);
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => process.stdout.write(`[${id}] ${line}\n`));
    }
    exited.push(new Promise((resolve) => child.once('exit', (code, signal) => {
      if (!stopping) process.stderr.write(`[${id}] exited (${code ?? signal}); stopping the cluster\n`);
      resolve(code ?? 1);
      stopAll();
    })));
    process.stdout.write(`[cluster] ${id}: http://${opts.host}:${p.http}  mesh ${opts.host}:${p.mesh}  admin ${opts.host}:${p.admin}\n`);
  }
  function stopAll(): void {
    if (stopping) return;
    stopping = true;
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  }
  process.once('SIGINT', stopAll);
  process.once('SIGTERM', stopAll);
  // If this process dies some other way, do not leave nodes behind.
  process.once('exit', () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  });
  const codes = await Promise.all(exited);
  return codes.every((c) => c === 0) ? 0 : 1;
}
