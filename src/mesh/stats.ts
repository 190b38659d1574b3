/** Counters of the mesh router, read by the admin API and `/metrics`. */
export class MeshStats {
  /** Deliveries sent to peers / received from peers. */
  deliveriesOut = 0;
  deliveriesIn = 0;
  /** Deliveries a peer answered "not here" (a stale route that was healed). */
  staleRoutes = 0;
  /** Lookups this node asked a home / answered as a home. */
  lookupsOut = 0;
  lookupsIn = 0;
  /** Owner-set broadcasts sent as a home / received. */
  routeUpdatesOut = 0;
  routeUpdatesIn = 0;
  /** Owner deltas sent to homes / received as a home. */
  ownerDeltasOut = 0;
  ownerDeltasIn = 0;
  /** Snapshots (full re-sends) sent / applied. */
  snapshotsOut = 0;
  snapshotsIn = 0;
  /** Anti-entropy digests sent, and mismatches found as a home. */
  digestsOut = 0;
  digestMismatches = 0;
  /** Publishes that failed with `unavailable`. */
  unavailable = 0;
  /** Membership changes seen. */
  membershipChanges = 0;
  /** Confirmation lookups asked again because the home was still rebuilding (or unreachable). */
  confirmRetries = 0;
  /** Negative answers (offline / no subscribers / presence offline) confirmed by a home. */
  confirmedNegatives = 0;
  /** Deliveries from peers not written again because this node had written that message id. */
  duplicatesDropped = 0;
  /** New connections whose welcome waited for the home's acknowledgement, and those that timed out. */
  ownerAcksWaited = 0;
  ownerAckTimeouts = 0;
}
