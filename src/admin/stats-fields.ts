/**
 * The one registry of a node's numeric statistics: each field of the admin `Stats` view (and of
 * `GetStats`, whose proto fields carry the same names in snake case) with what `/metrics` exports it
 * as. A new statistic is one line here, its source in `node.ts`, and its field in admin.proto.
 */

/** One numeric statistic. */
export interface StatField {
  /** Field of {@link NodeStatsView} (camelCase of the admin.proto `Stats` field). */
  readonly key: string;
  /** `counter`: monotonic, exported as `chatmesh_<metric>_total`; `gauge`: exported as
   *  `chatmesh_<metric>`; `info`: admin only. */
  readonly kind: 'counter' | 'gauge' | 'info';
  readonly metric: string;
  readonly help: string;
}

/** Every numeric statistic, in admin.proto order. Only append. */
export const STAT_FIELDS = [
  { key: 'uptimeMs', kind: 'info', metric: '', help: 'Milliseconds since this node started' },
  { key: 'connections', kind: 'gauge', metric: 'connections', help: 'Open client connections' },
  { key: 'users', kind: 'gauge', metric: 'users', help: 'Distinct users connected to this node' },
  { key: 'topics', kind: 'gauge', metric: 'topics', help: 'Topics (users and rooms) owned by this node' },
  { key: 'directMessagesIn', kind: 'counter', metric: 'direct_messages', help: 'Direct messages (send) accepted from clients of this node' },
  { key: 'roomMessagesIn', kind: 'counter', metric: 'room_messages', help: 'Room messages (publish) accepted from clients of this node' },
  { key: 'framesIn', kind: 'counter', metric: 'client_frames_in', help: 'Frames received from clients' },
  { key: 'framesOut', kind: 'counter', metric: 'client_frames_out', help: 'Frames written to clients' },
  { key: 'deliveriesOut', kind: 'counter', metric: 'mesh_deliveries_out', help: 'Deliveries sent to peer nodes' },
  { key: 'deliveriesIn', kind: 'counter', metric: 'mesh_deliveries_in', help: 'Deliveries received from peer nodes' },
  { key: 'staleRoutes', kind: 'counter', metric: 'mesh_stale_routes', help: 'Deliveries answered "not here" (stale routes healed)' },
  { key: 'cacheSize', kind: 'gauge', metric: 'route_cache_entries', help: 'Entries in the routing table (LRU and pinned)' },
  { key: 'cachePinned', kind: 'gauge', metric: 'route_cache_pinned', help: 'Pinned routing entries (watched users)' },
  { key: 'cacheMax', kind: 'gauge', metric: 'route_cache_max_entries', help: 'Bound of the LRU part of the routing table' },
  { key: 'cacheHits', kind: 'counter', metric: 'route_cache_hits', help: 'Routing table hits' },
  { key: 'cacheMisses', kind: 'counter', metric: 'route_cache_misses', help: 'Routing table misses' },
  { key: 'cacheEvictions', kind: 'counter', metric: 'route_cache_evictions', help: 'Routing table LRU evictions' },
  { key: 'homeTopics', kind: 'gauge', metric: 'home_topics', help: 'Topics this node is home of' },
  { key: 'homeLookupsIn', kind: 'counter', metric: 'home_lookups_in', help: 'Lookups answered as a topic home' },
  { key: 'homeLookupsOut', kind: 'counter', metric: 'home_lookups_out', help: 'Lookups sent to topic homes' },
  { key: 'routeUpdatesIn', kind: 'counter', metric: 'route_updates_in', help: 'Owner-set broadcasts received' },
  { key: 'routeUpdatesOut', kind: 'counter', metric: 'route_updates_out', help: 'Owner-set broadcasts sent' },
  { key: 'gossipBatchesIn', kind: 'counter', metric: 'mesh_batches_in', help: 'Batches received on peer links' },
  { key: 'gossipBatchesOut', kind: 'counter', metric: 'mesh_batches_out', help: 'Batches sent on peer links' },
  { key: 'unavailable', kind: 'counter', metric: 'unavailable', help: 'Publishes answered unavailable' },
  { key: 'slowConsumers', kind: 'counter', metric: 'slow_consumers', help: 'Clients dropped as slow consumers' },
  { key: 'members', kind: 'gauge', metric: 'mesh_members', help: 'Live members of the mesh in this node\'s view, itself included' },
  { key: 'ownerDeltasOut', kind: 'counter', metric: 'owner_deltas_out', help: 'Ownership changes sent to topic homes' },
  { key: 'ownerDeltasIn', kind: 'counter', metric: 'owner_deltas_in', help: 'Ownership changes received as a topic home' },
  { key: 'snapshotsOut', kind: 'counter', metric: 'snapshots_out', help: 'Full ownership re-sends to homes' },
  { key: 'snapshotsIn', kind: 'counter', metric: 'snapshots_in', help: 'Full ownership re-sends applied as a home' },
  { key: 'digestsOut', kind: 'counter', metric: 'digests_out', help: 'Anti-entropy digests sent' },
  { key: 'digestMismatches', kind: 'counter', metric: 'digest_mismatches', help: 'Anti-entropy digests that disagreed (lost changes healed)' },
  { key: 'membershipChanges', kind: 'counter', metric: 'membership_changes', help: 'Changes of the live members seen' },
  { key: 'confirmRetries', kind: 'counter', metric: 'negative_confirm_retries', help: 'Confirmations of a negative answer asked again because the home was rebuilding or unreachable' },
  { key: 'confirmedNegatives', kind: 'counter', metric: 'negatives_confirmed', help: 'Negative answers (offline, no subscribers) confirmed by the topic home' },
  { key: 'duplicatesDropped', kind: 'counter', metric: 'mesh_duplicates_dropped', help: 'Deliveries from peers not written again: this node had written that message id to the topic' },
  { key: 'ownerAcksWaited', kind: 'counter', metric: 'owner_acks_waited', help: 'New owners (welcomes, joins) that waited for their home to record them' },
  { key: 'ownerAckTimeouts', kind: 'counter', metric: 'owner_ack_timeouts', help: 'New owners whose home did not acknowledge in time (welcomed anyway)' },
  { key: 'framesDropped', kind: 'counter', metric: 'client_frames_rate_limited', help: 'Client frames over the rate limit, not handled' },
  { key: 'policyViolations', kind: 'counter', metric: 'client_policy_violations', help: 'Client connections closed with 1008 for too many bad frames' },
  { key: 'tokensExpired', kind: 'counter', metric: 'client_tokens_expired', help: 'Client connections closed because their token expired' },
  { key: 'tokensRefreshed', kind: 'counter', metric: 'client_tokens_refreshed', help: 'Accepted refresh frames' },
  { key: 'meshConnectionsRefused', kind: 'counter', metric: 'mesh_connections_refused', help: 'Mesh-port connections closed at accept (over the pending bounds)' },
  { key: 'meshHandshakeTimeouts', kind: 'counter', metric: 'mesh_handshake_timeouts', help: 'Mesh-port connections closed for not linking within the handshake deadline' },
  { key: 'meshCallsUnauthenticated', kind: 'counter', metric: 'mesh_calls_unauthenticated', help: 'Mesh calls refused for a missing or wrong secret proof' },
  { key: 'meshCallsRefused', kind: 'counter', metric: 'mesh_calls_refused', help: 'Mesh calls refused over the pending-call bounds' },
  { key: 'streamAppends', kind: 'counter', metric: 'stream_appends', help: 'Entries appended to this node\'s message store, each stream counted' },
  { key: 'storedMessages', kind: 'gauge', metric: 'stored_messages', help: 'Entries in this node\'s message store' },
  { key: 'storedStreams', kind: 'gauge', metric: 'stored_streams', help: 'Streams holding at least one entry in this node\'s store' },
  { key: 'mailboxPending', kind: 'gauge', metric: 'mailbox_pending', help: 'Entries of this node\'s store still waiting in a mailbox' },
  { key: 'mailboxReplayed', kind: 'counter', metric: 'mailbox_replayed', help: 'Messages sent to a device from its mailbox after its welcome' },
  { key: 'resumeReplayed', kind: 'counter', metric: 'resume_replayed', help: 'Messages replayed by hello with since (resume)' },
  { key: 'historyReads', kind: 'counter', metric: 'history_reads', help: 'History requests answered' },
  { key: 'replicatedWrites', kind: 'counter', metric: 'replicated_writes', help: 'Messages whose replication this node coordinated' },
  { key: 'replicationFailures', kind: 'counter', metric: 'replication_failures', help: 'Replicated writes a replica did not confirm in time (the client got unavailable)' },
  { key: 'handoffStreams', kind: 'counter', metric: 'handoff_streams', help: 'Streams handed off to new replicas' },
  { key: 'handoffEntries', kind: 'counter', metric: 'handoff_entries', help: 'Entries sent by stream hand-offs' },
  { key: 'handoffsInProgress', kind: 'gauge', metric: 'handoffs_in_progress', help: 'Stream hand-offs in progress' },
  { key: 'storeTrimmed', kind: 'counter', metric: 'store_trimmed', help: 'Entries dropped by the store bounds (per-stream size, age, store-wide cap)' },
  { key: 'storedStates', kind: 'gauge', metric: 'stored_states', help: 'Account entries (memberships, read markers) kept in this node\'s store' },
  { key: 'membershipsChanged', kind: 'counter', metric: 'memberships_changed', help: 'Joins and leaves accepted from clients of this node' },
  { key: 'readMarks', kind: 'counter', metric: 'read_marks', help: 'Read markers accepted from clients of this node' },
  { key: 'typingForwarded', kind: 'counter', metric: 'typing_forwarded', help: 'Typing events forwarded' },
  { key: 'typingDropped', kind: 'counter', metric: 'typing_dropped', help: 'Typing events dropped (throttled, to a room not joined, to oneself)' },
] as const satisfies readonly StatField[];

/** The numeric part of {@link NodeStatsView}, one number per {@link STAT_FIELDS} entry. */
export type NumericStats = { readonly [F in (typeof STAT_FIELDS)[number] as F['key']]: number };

/** A flat snapshot of a node's statistics (names match admin.proto `Stats` and `/metrics`). */
export type NodeStatsView = NumericStats & {
  readonly nodeId: string;
  readonly incarnation: string;
  readonly draining: boolean;
  /** Client `error` frames sent, by code. */
  readonly errors: Readonly<Record<string, number>>;
};
