/**
 * `chatmesh cluster`: N nodes on this machine as child processes with static discovery of each
 * other. Ports from the base port P: node i serves HTTP on P+i, the mesh on P+100+i and the admin
 * API on P+200+i. A node that exits on its own is reported (id, pid, code or signal) while the
 * others keep running; with `restart` it is started again after a back-off. Ctrl-C (or SIGTERM)
 * stops every node gracefully, with no restarts; a second one makes the nodes exit at once.
 */
import { fileURLToPath } from 'node:url';
import { ClusterNode } from './cluster-node.js';
import type { BackoffOptions } from './cluster-backoff.js';

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
  /** Restart a node that exits on its own (not one that exits with code 2). Default false. */
  readonly restart?: boolean;
  /** Back-off of restarts; default 500 ms doubling to 10 s, reset after 30 s up. */
  readonly backoff?: BackoffOptions;
}

/** Largest number of nodes of a cluster. */
export const MAX_CLUSTER_NODES = 100;

/** Ports of node i of a cluster with base port P; `chatmesh node --base-port P` uses those of node 0. */
export function clusterPorts(basePort: number, i: number): { http: number; mesh: number; admin: number } {
  return { http: basePort + i, mesh: basePort + 100 + i, admin: basePort + 200 + i };
}

/** Largest base port that leaves room for the ports of `nodes` nodes (the last admin port is 65535). */
export function maxBasePort(nodes: number): number {
  return 65535 - clusterPorts(0, nodes - 1).admin;
}

/** What is wrong with the node count and base port, or undefined if they fit. */
export function clusterOptionsProblem(nodes: number, basePort: number): string | undefined {
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_CLUSTER_NODES) return `option '--nodes <n>' must be 1-${MAX_CLUSTER_NODES} (got ${nodes})`;
  const max = maxBasePort(nodes);
  if (!Number.isInteger(basePort) || basePort < 1 || basePort > max) {
    return `option '--base-port <port>' must be 1-${max} for ${nodes} node(s), whose admin ports go up to P+${200 + nodes - 1} (got ${basePort})`;
  }
  return undefined;
}

/** The cluster's exit code from its nodes' last exits: 2 if one had wrong flags, 1 if one failed, else 0. */
export function clusterExitCode(nodes: readonly ClusterNode[]): number {
  const codes = nodes.map((n) => n.lastExit?.code ?? 1);
  if (codes.includes(2)) return 2;
  return codes.every((c) => c === 0) ? 0 : 1;
}

/** Runs the cluster until a signal (or until every node exited); resolves with the exit code. Throws `RangeError` on bad options. */
export async function runCluster(opts: ClusterOptions): Promise<number> {
  const problem = clusterOptionsProblem(opts.nodes, opts.basePort);
  if (problem) throw new RangeError(problem);
  const cli = fileURLToPath(new URL('./cli.js', import.meta.url));
  const peers = Array.from({ length: opts.nodes }, (_, i) => `${opts.host}:${clusterPorts(opts.basePort, i).mesh}`).join(',');
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < opts.nodes; i++) {
    const p = clusterPorts(opts.basePort, i);
    const id = `node-${i}`;
    const node = new ClusterNode({
      id,
      restart: opts.restart ?? false,
      ...(opts.backoff && { backoff: opts.backoff }),
      args: [
        cli, 'node', '--id', id, '--host', opts.host,
        '--http-port', String(p.http), '--mesh-port', String(p.mesh), '--admin-port', String(p.admin),
        '--discovery', 'static', '--peers', peers, ...opts.nodeArgs,
      ],
    });
    nodes.push(node);
    node.start(`http://${opts.host}:${p.http}  mesh ${opts.host}:${p.mesh}  admin ${opts.host}:${p.admin}`);
  }
  let signals = 0;
  const onSignal = (): void => {
    // The first signal stops each node gracefully; a second reaches the nodes as theirs, which exit at once.
    signals++;
    for (const n of nodes) n.stop('SIGTERM');
    if (signals === 1) process.stderr.write('[cluster] stopping every node\n');
  };
  // If this process dies some other way, do not leave nodes behind.
  const onExit = (): void => {
    for (const n of nodes) {
      try {
        if (n.pid !== undefined) process.kill(n.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.once('exit', onExit);
  try {
    await Promise.all(nodes.map((n) => n.done));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
  }
  if (signals === 0) process.stderr.write('[cluster] every node has exited\n');
  return clusterExitCode(nodes);
}
