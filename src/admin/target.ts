import type { RouteAnswer } from '../mesh/index.js';
import type { PeerView } from '../mesh/index.js';

/** One row of the routing table listing. */
export interface RouteRowView {
  readonly topic: string;
  readonly home: string;
  readonly owners: ReadonlyMap<string, number>;
  readonly source: 'cache' | 'directory';
  readonly seq: number;
  readonly pinned: boolean;
}

/** A flat snapshot of a node's counters (names match admin.proto `Stats` and `/metrics`). */
export interface NodeStatsView {
  readonly nodeId: string;
  readonly incarnation: string;
  readonly uptimeMs: number;
  readonly draining: boolean;
  readonly connections: number;
  readonly users: number;
  readonly topics: number;
  readonly directMessagesIn: number;
  readonly roomMessagesIn: number;
  readonly framesIn: number;
  readonly framesOut: number;
  readonly deliveriesOut: number;
  readonly deliveriesIn: number;
  readonly staleRoutes: number;
  readonly cacheSize: number;
  readonly cachePinned: number;
  readonly cacheMax: number;
  readonly cacheHits: number;
  readonly cacheMisses: number;
  readonly cacheEvictions: number;
  readonly homeTopics: number;
  readonly homeLookupsIn: number;
  readonly homeLookupsOut: number;
  readonly routeUpdatesIn: number;
  readonly routeUpdatesOut: number;
  readonly gossipBatchesIn: number;
  readonly gossipBatchesOut: number;
  readonly unavailable: number;
  readonly slowConsumers: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly members: number;
  readonly ownerDeltasOut: number;
  readonly ownerDeltasIn: number;
  readonly snapshotsOut: number;
  readonly snapshotsIn: number;
  readonly digestsOut: number;
  readonly digestMismatches: number;
  readonly membershipChanges: number;
  readonly confirmRetries: number;
  readonly confirmedNegatives: number;
  readonly duplicatesDropped: number;
  readonly ownerAcksWaited: number;
  readonly ownerAckTimeouts: number;
  readonly framesDropped: number;
  readonly policyViolations: number;
  readonly tokensExpired: number;
  readonly tokensRefreshed: number;
  readonly meshConnectionsRefused: number;
  readonly meshHandshakeTimeouts: number;
  readonly meshCallsUnauthenticated: number;
  readonly meshCallsRefused: number;
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
}
