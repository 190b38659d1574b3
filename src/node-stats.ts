/**
 * A node's statistics view (admin `GetStats`, `/metrics`): reads the counters each part keeps.
 * The fields and their metric names are listed once, in `admin/stats-fields.ts`.
 */
import type { NodeStatsView } from './admin/index.js';
import type { GatewayStats } from './gateway/index.js';
import { GrpcTransport } from './mesh/index.js';
import type { MeshRouter, MeshTransport, PeerLink } from './mesh/index.js';
import { StreamStats } from './streams/stats.js';
import type { StoreTotals } from './streams/index.js';
import type { Clock } from './util/index.js';

/** Where the numbers come from. */
export interface StatsSources {
  readonly id: string;
  readonly incarnation: string;
  readonly clock: Clock;
  readonly router: MeshRouter;
  readonly gateway: GatewayStats;
  readonly transport: MeshTransport;
  /** The node's up links. */
  readonly links: ReadonlyMap<string, PeerLink>;
  draining(): boolean;
  /** The stream layer's counters and its store's totals; absent: every stream statistic is 0. */
  readonly streams?: {
    readonly stats: StreamStats;
    totals(): StoreTotals;
  };
}

/** The view, and a hook that keeps the batch counts of links that closed. */
export interface NodeStats {
  view(): NodeStatsView;
  /** A link went down: its batch counts stay in the totals. */
  linkClosed(link: PeerLink): void;
}

const NO_TRANSPORT_COUNTERS = { connectionsRefused: 0, handshakeTimeouts: 0, callsUnauthenticated: 0, callsRefused: 0 } as const;
const NO_STORE_TOTALS: StoreTotals = { streams: 0, messages: 0, states: 0, pending: 0, trimmed: 0 };

/** Creates the statistics view of a node. `view` may be called at any time. */
export function createNodeStats(src: StatsSources): NodeStats {
  const startedAt = src.clock.monotonic();
  const closedLinks = { batchesIn: 0, batchesOut: 0 };
  const noStreams = new StreamStats(); // all zero: a node without the stream layer
  return {
    linkClosed(link) {
      closedLinks.batchesIn += link.stats.batchesIn;
      closedLinks.batchesOut += link.stats.batchesOut;
    },
    view() {
      let batchesIn = closedLinks.batchesIn;
      let batchesOut = closedLinks.batchesOut;
      for (const l of src.links.values()) {
        batchesIn += l.stats.batchesIn;
        batchesOut += l.stats.batchesOut;
      }
      const { router } = src;
      const m = router.stats;
      const g = src.gateway;
      const t = router.table;
      const mc = src.transport instanceof GrpcTransport ? src.transport.counters : NO_TRANSPORT_COUNTERS;
      const ss = src.streams?.stats ?? noStreams;
      const st = src.streams?.totals() ?? NO_STORE_TOTALS;
      return {
        nodeId: src.id, incarnation: src.incarnation, uptimeMs: Math.round(src.clock.monotonic() - startedAt), draining: src.draining(),
        connections: g.connections, users: router.hub.userCount, topics: router.hub.size,
        directMessagesIn: g.directMessages, roomMessagesIn: g.roomMessages, framesIn: g.framesIn, framesOut: g.framesOut,
        deliveriesOut: m.deliveriesOut, deliveriesIn: m.deliveriesIn, staleRoutes: m.staleRoutes,
        cacheSize: t.size, cachePinned: t.pinnedSize, cacheMax: t.maxEntries, cacheHits: t.hits, cacheMisses: t.misses, cacheEvictions: t.evictions,
        homeTopics: router.directory.size, homeLookupsIn: m.lookupsIn, homeLookupsOut: m.lookupsOut,
        routeUpdatesIn: m.routeUpdatesIn, routeUpdatesOut: m.routeUpdatesOut,
        gossipBatchesIn: batchesIn, gossipBatchesOut: batchesOut,
        unavailable: m.unavailable, slowConsumers: g.slowConsumers, errors: { ...g.errors },
        members: router.liveMembers().length,
        ownerDeltasOut: m.ownerDeltasOut, ownerDeltasIn: m.ownerDeltasIn, snapshotsOut: m.snapshotsOut, snapshotsIn: m.snapshotsIn,
        digestsOut: m.digestsOut, digestMismatches: m.digestMismatches, membershipChanges: m.membershipChanges,
        confirmRetries: m.confirmRetries, confirmedNegatives: m.confirmedNegatives, duplicatesDropped: m.duplicatesDropped,
        ownerAcksWaited: m.ownerAcksWaited, ownerAckTimeouts: m.ownerAckTimeouts,
        framesDropped: g.framesDropped, policyViolations: g.policyViolations, tokensExpired: g.tokensExpired, tokensRefreshed: g.tokensRefreshed,
        meshConnectionsRefused: mc.connectionsRefused, meshHandshakeTimeouts: mc.handshakeTimeouts,
        meshCallsUnauthenticated: mc.callsUnauthenticated, meshCallsRefused: mc.callsRefused,
        streamAppends: ss.appends, storedMessages: st.messages, storedStreams: st.streams, mailboxPending: st.pending,
        mailboxReplayed: ss.mailboxReplayed, resumeReplayed: ss.resumeReplayed, historyReads: ss.historyReads,
        replicatedWrites: ss.replicatedWrites, replicationFailures: ss.replicationFailures,
        handoffStreams: ss.handoffStreams, handoffEntries: ss.handoffEntries, handoffsInProgress: ss.handoffsInProgress,
        storeTrimmed: st.trimmed, storedStates: st.states ?? 0,
        membershipsChanged: g.membershipsChanged, readMarks: g.readMarks, typingForwarded: g.typingForwarded, typingDropped: g.typingDropped,
      };
    },
  };
}
