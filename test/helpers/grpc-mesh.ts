/** Nodes over real gRPC links in this process, on port 0. */
import type { Test } from 'tap';
import { startNode } from '../../src/node.js';
import type { ChatNode } from '../../src/node.js';
import type { NodeConfigInput } from '../../src/config/index.js';
import { eventually } from './client.js';

/** Starts one node with fast test timings; stopped at the end of the test. */
export async function grpcNode(t: Test, input: NodeConfigInput): Promise<ChatNode> {
  const n = await startNode({ host: '127.0.0.1', httpPort: 0, meshPort: 0, adminPort: 0, logLevel: 'silent', ...input }, {
    retryMinMs: 20, retryMaxMs: 300, link: { pingIntervalMs: 200, deadAfterMs: 2000 },
  });
  t.teardown(() => n.stop());
  return n;
}

export const wsUrl = (n: ChatNode): string => `ws://127.0.0.1:${n.httpPort}/ws`;
export const meshAddr = (n: ChatNode): string => `127.0.0.1:${n.meshPort}`;

/** Three nodes a, b, c from partial static lists (b knows a, c knows b); resolves once fully meshed. */
export async function threeNodes(t: Test, extra: NodeConfigInput = {}): Promise<ChatNode[]> {
  const a = await grpcNode(t, { id: 'a', ...extra });
  const b = await grpcNode(t, { id: 'b', peers: [meshAddr(a)], ...extra });
  const c = await grpcNode(t, { id: 'c', peers: [meshAddr(b)], ...extra });
  await eventually(() => [a, b, c].every((n) => n.peers.upLinks().size === 2), 10_000, 'full mesh over gRPC');
  return [a, b, c];
}
