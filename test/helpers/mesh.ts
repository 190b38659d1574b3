/**
 * Multi-node meshes for tests. `memoryMesh` runs N nodes in this process over the in-memory
 * transport (real HTTP/WebSocket gateways, no gRPC); `FakeSub` is a connection without a socket.
 */
import type { Test } from 'tap';
import { MemoryNetwork } from '../../src/mesh/index.js';
import { startNode } from '../../src/node.js';
import type { ChatNode, NodeDeps } from '../../src/node.js';
import type { NodeConfigInput } from '../../src/config/index.js';
import type { Subscriber } from '../../src/core/index.js';

let sessionSeq = 0;

/** A connection without a socket: records what it is written. */
export class FakeSub implements Subscriber {
  readonly session = `fake-${++sessionSeq}`;
  readonly received: string[] = [];
  constructor(readonly user: string, readonly node: string) {}
  write(data: string): boolean {
    this.received.push(data);
    return true;
  }
}

export interface MeshOptions {
  readonly nodes: number;
  readonly input?: NodeConfigInput;
  readonly deps?: NodeDeps;
}

/** N nodes on one in-memory network, with static discovery of each other. */
export class MemoryMesh {
  readonly net = new MemoryNetwork();
  readonly nodes = new Map<string, ChatNode>();
  private readonly addresses: string[];

  constructor(private readonly t: Test, private readonly opts: MeshOptions) {
    this.addresses = Array.from({ length: opts.nodes }, (_, i) => `127.0.0.1:${21_000 + i}`);
    t.teardown(() => this.stopAll());
  }

  /** Mesh address of node i. */
  address(i: number): string {
    return this.addresses[i]!;
  }

  /** Node id of index i. */
  id(i: number): string {
    return `n${i}`;
  }

  async startAll(): Promise<void> {
    await Promise.all(this.addresses.map((_, i) => this.start(i)));
  }

  /** Starts (or restarts, with a new incarnation) node i; `deps` replace this node's parts. */
  async start(i: number, deps: NodeDeps = {}): Promise<ChatNode> {
    const node = await startNode({
      id: this.id(i), host: '127.0.0.1', httpPort: 0, meshPort: 21_000 + i, adminPort: 0, logLevel: 'silent',
      peers: this.addresses, ...this.opts.input,
    }, {
      transport: this.net.transport(),
      link: { pingIntervalMs: 200, deadAfterMs: 2000 },
      retryMinMs: 20,
      retryMaxMs: 200,
      ...this.opts.deps,
      ...deps,
    });
    this.nodes.set(node.id, node);
    return node;
  }

  /** Kills node i as a crash would: every stream fails, no goodbye. */
  async crash(i: number): Promise<void> {
    const node = this.nodes.get(this.id(i));
    if (!node) return;
    this.nodes.delete(node.id);
    this.net.crash(this.addresses[i]!);
    await node.kill();
  }

  node(i: number): ChatNode {
    const n = this.nodes.get(this.id(i));
    if (!n) throw new Error(`node ${i} is not running`);
    return n;
  }

  /** True when every running node has a link up to every other running node. */
  connected(): boolean {
    for (const n of this.nodes.values()) {
      if (n.peers.upLinks().size !== this.nodes.size - 1) return false;
    }
    return true;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.stop()));
    this.nodes.clear();
  }
}
