import type { RouteAnswer } from '../mesh/index.js';
import type { PeerView } from '../mesh/index.js';
import type { StreamView } from '../streams/stats.js';
import type { NodeStatsView } from './stats-fields.js';

export type { NodeStatsView } from './stats-fields.js';

/** One row of the routing table listing. */
export interface RouteRowView {
  readonly topic: string;
  readonly home: string;
  readonly owners: ReadonlyMap<string, number>;
  readonly source: 'cache' | 'directory';
  readonly seq: number;
  readonly pinned: boolean;
}

/** What the admin API needs from a node. Every method may be called concurrently. */
export interface AdminTarget {
  readonly id: string;
  describe(topic: string): Promise<RouteAnswer & { pinned: boolean }>;
  listRoutes(after: string, limit: number): RouteRowView[];
  peers(): PeerView[];
  members(): readonly string[];
  stats(): NodeStatsView;
  /** Drains; resolves with how many clients were closed and whether deregistration succeeded. */
  drain(): Promise<{ closed: number; deregistered: boolean }>;
  /**
   * Where a stream is kept (`ctl stream`): `topic` is `u:<user>` or `r:<room>`, already validated.
   * Replicas that do not answer are rows with `reachable: false`; a rejection means no view at all
   * (the admin API answers UNAVAILABLE with its message).
   */
  /** Where a stream is kept; undefined when this node keeps no streams (`--history-size 0`). */
  stream(topic: string): Promise<StreamView | undefined>;
}
