/** Counters of the stream layer, read by the admin API and `/metrics` (admin/stats-fields.ts). */
export class StreamStats {
  /** Entries appended to this node's store (by this node's clients or for peers), counting each stream. */
  appends = 0;
  /** Messages whose replication this node coordinated (one per send/publish that was kept). */
  replicatedWrites = 0;
  /** Replicated writes that failed (a replica did not confirm in time): the client got `unavailable`. */
  replicationFailures = 0;
  /** Messages sent to a device from the mailbox after its welcome. */
  mailboxReplayed = 0;
  /** Messages replayed by `hello` with `since` (resume). */
  resumeReplayed = 0;
  /** `history` requests answered. */
  historyReads = 0;
  /** Streams handed off to (new) replicas, and entries sent doing so. */
  handoffStreams = 0;
  handoffEntries = 0;
  /** Streams whose hand-off is in progress now (gauge). */
  handoffsInProgress = 0;
}

/** One replica of a stream, as `ctl stream` shows it. */
export interface StreamReplicaView {
  /** 1 = the stream's home (first of the rendezvous ranking). */
  readonly rank: number;
  readonly node: string;
  /** False when the replica did not answer (its `error` says why). */
  readonly reachable: boolean;
  readonly error: string;
  readonly messages: number;
  readonly oldest: string;
  readonly newest: string;
  /** Messages still waiting in the mailbox (pending). */
  readonly pending: number;
  /** A hand-off of this stream to that node is in progress. */
  readonly handoff: boolean;
}

/** `ctl stream`: where a stream is kept. */
export interface StreamView {
  /** `u:<user>` or `r:<room>`. */
  readonly stream: string;
  /** The configured copies (`--replicas`). */
  readonly replicas: number;
  readonly nodes: readonly StreamReplicaView[];
}
