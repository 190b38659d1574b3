/**
 * Prometheus metrics of one node (`/metrics`), on a registry of its own (no global state): the
 * admin stats as counters and gauges, histograms of end-to-end delivery latency and of peer-link
 * batch sizes, and the default process metrics.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { NodeStatsView } from '../admin/index.js';

type CounterKey = {
  [K in keyof NodeStatsView]: NodeStatsView[K] extends number ? K : never
}[keyof NodeStatsView];

/** Monotonic counters: exported as `chatmesh_<name>_total`. */
const COUNTERS: Array<[CounterKey, string, string]> = [
  ['directMessagesIn', 'direct_messages', 'Direct messages (send) accepted from clients of this node'],
  ['roomMessagesIn', 'room_messages', 'Room messages (publish) accepted from clients of this node'],
  ['framesIn', 'client_frames_in', 'Frames received from clients'],
  ['framesOut', 'client_frames_out', 'Frames written to clients'],
  ['deliveriesOut', 'mesh_deliveries_out', 'Deliveries sent to peer nodes'],
  ['deliveriesIn', 'mesh_deliveries_in', 'Deliveries received from peer nodes'],
  ['staleRoutes', 'mesh_stale_routes', 'Deliveries answered "not here" (stale routes healed)'],
  ['cacheHits', 'route_cache_hits', 'Routing table hits'],
  ['cacheMisses', 'route_cache_misses', 'Routing table misses'],
  ['cacheEvictions', 'route_cache_evictions', 'Routing table LRU evictions'],
  ['homeLookupsIn', 'home_lookups_in', 'Lookups answered as a topic home'],
  ['homeLookupsOut', 'home_lookups_out', 'Lookups sent to topic homes'],
  ['routeUpdatesIn', 'route_updates_in', 'Owner-set broadcasts received'],
  ['routeUpdatesOut', 'route_updates_out', 'Owner-set broadcasts sent'],
  ['gossipBatchesIn', 'mesh_batches_in', 'Batches received on peer links'],
  ['gossipBatchesOut', 'mesh_batches_out', 'Batches sent on peer links'],
  ['unavailable', 'unavailable', 'Publishes answered unavailable'],
  ['slowConsumers', 'slow_consumers', 'Clients dropped as slow consumers'],
  ['ownerDeltasOut', 'owner_deltas_out', 'Ownership changes sent to topic homes'],
  ['ownerDeltasIn', 'owner_deltas_in', 'Ownership changes received as a topic home'],
  ['snapshotsOut', 'snapshots_out', 'Full ownership re-sends to homes'],
  ['snapshotsIn', 'snapshots_in', 'Full ownership re-sends applied as a home'],
  ['digestsOut', 'digests_out', 'Anti-entropy digests sent'],
  ['digestMismatches', 'digest_mismatches', 'Anti-entropy digests that disagreed (lost changes healed)'],
  ['membershipChanges', 'membership_changes', 'Changes of the live members seen'],
  ['confirmRetries', 'negative_confirm_retries', 'Confirmations of a negative answer asked again because the home was rebuilding or unreachable'],
  ['confirmedNegatives', 'negatives_confirmed', 'Negative answers (offline, no subscribers) confirmed by the topic home'],
  ['duplicatesDropped', 'mesh_duplicates_dropped', 'Deliveries from peers not written again: this node had written that message id to the topic'],
  ['ownerAcksWaited', 'owner_acks_waited', 'New owners (welcomes, joins) that waited for their home to record them'],
  ['ownerAckTimeouts', 'owner_ack_timeouts', 'New owners whose home did not acknowledge in time (welcomed anyway)'],
  ['framesDropped', 'client_frames_rate_limited', 'Client frames over the rate limit, not handled'],
  ['policyViolations', 'client_policy_violations', 'Client connections closed with 1008 for too many bad frames'],
  ['tokensExpired', 'client_tokens_expired', 'Client connections closed because their token expired'],
  ['tokensRefreshed', 'client_tokens_refreshed', 'Accepted refresh frames'],
  ['meshConnectionsRefused', 'mesh_connections_refused', 'Mesh-port connections closed at accept (over the pending bounds)'],
  ['meshHandshakeTimeouts', 'mesh_handshake_timeouts', 'Mesh-port connections closed for not linking within the handshake deadline'],
  ['meshCallsUnauthenticated', 'mesh_calls_unauthenticated', 'Mesh calls refused for a missing or wrong secret proof'],
  ['meshCallsRefused', 'mesh_calls_refused', 'Mesh calls refused over the pending-call bounds'],
];

/** Gauges: exported as `chatmesh_<name>`. */
const GAUGES: Array<[CounterKey, string, string]> = [
  ['connections', 'connections', 'Open client connections'],
  ['users', 'users', 'Distinct users connected to this node'],
  ['topics', 'topics', 'Topics (users and rooms) owned by this node'],
  ['cacheSize', 'route_cache_entries', 'Entries in the routing table (LRU and pinned)'],
  ['cachePinned', 'route_cache_pinned', 'Pinned routing entries (watched users)'],
  ['cacheMax', 'route_cache_max_entries', 'Bound of the LRU part of the routing table'],
  ['homeTopics', 'home_topics', 'Topics this node is home of'],
  ['members', 'mesh_members', 'Live members of the mesh in this node\'s view, itself included'],
];

/** A node's metrics. */
export interface NodeMetrics {
  readonly registry: Registry;
  /** Records one delivery's latency from acceptance at the sender's node to the socket write, in ms. */
  observeDelivery(ms: number): void;
  /** Records the size (envelopes) of one batch written on a peer link. */
  observeBatch(items: number): void;
  /** Prometheus text exposition. */
  render(): Promise<{ contentType: string; body: string }>;
}

/** Creates the metrics of a node whose counters `read` returns. */
export function createMetrics(read: () => NodeStatsView): NodeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let snapshot: NodeStatsView | undefined;
  const current = (): NodeStatsView => (snapshot ??= read());
  for (const [key, name, help] of COUNTERS) {
    let last = 0;
    new Counter({
      name: `chatmesh_${name}_total`, help, registers: [registry],
      collect() {
        const v = current()[key] as number;
        if (v > last) this.inc(v - last);
        last = Math.max(last, v);
      },
    });
  }
  for (const [key, name, help] of GAUGES) {
    new Gauge({ name: `chatmesh_${name}`, help, registers: [registry], collect() { this.set(current()[key] as number); } });
  }
  const lastErrors = new Map<string, number>();
  new Counter({
    name: 'chatmesh_client_errors_total', help: 'Client error frames sent, by code', labelNames: ['code'], registers: [registry],
    collect() {
      for (const [code, n] of Object.entries(current().errors)) {
        const last = lastErrors.get(code) ?? 0;
        if (n > last) this.inc({ code }, n - last);
        lastErrors.set(code, Math.max(last, n));
      }
    },
  });
  const latency = new Histogram({
    name: 'chatmesh_delivery_latency_seconds',
    help: 'End-to-end delivery latency: accepted at the sender\'s node to written on the recipient\'s socket',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const batches = new Histogram({
    name: 'chatmesh_mesh_batch_size',
    help: 'Envelopes per batch written on peer links',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [registry],
  });
  return {
    registry,
    observeDelivery: (ms) => latency.observe(Math.max(0, ms) / 1000),
    observeBatch: (n) => batches.observe(n),
    async render() {
      snapshot = undefined;
      try {
        return { contentType: registry.contentType, body: await registry.metrics() };
      } finally {
        snapshot = undefined;
      }
    },
  };
}
