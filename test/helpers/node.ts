import type { Test } from 'tap';
import { startNode } from '../../src/node.js';
import type { ChatNode } from '../../src/node.js';
import type { NodeConfigInput } from '../../src/config/index.js';

/** Starts a node on free ports with logs off; stops it at the end of the test. */
export async function testNode(t: Test, input: NodeConfigInput = {}): Promise<{ node: ChatNode; url: string; base: string }> {
  const node = await startNode({ host: '127.0.0.1', httpPort: 0, meshPort: 0, adminPort: 0, logLevel: 'silent', ...input });
  t.teardown(() => node.stop());
  return { node, url: `ws://127.0.0.1:${node.httpPort}/ws`, base: `http://127.0.0.1:${node.httpPort}` };
}
