/**
 * Discovery: who the other nodes of the mesh are. Two backends implement it: a static list
 * (`--peers`) and Consul. Discovery only names *targets*; whether a peer is live is decided by the
 * mesh link to it (a handshake proves id and incarnation), so both backends feed the same logic.
 */

/** One other node as discovery knows it. */
export interface PeerTarget {
  /** `host:meshPort` the mesh dials. Unique key of a target. */
  readonly address: string;
  /** Node id, when the backend knows it (Consul does; a static list does not). */
  readonly id?: string;
  /** Incarnation of that node, when known (Consul meta `incarnation`). */
  readonly incarnation?: string;
  /** Extra facts from the backend, e.g. Consul meta `http_port`, `admin_port`. */
  readonly meta?: Readonly<Record<string, string>>;
}

/** What this node tells discovery about itself (Consul registers it; static ignores it). */
export interface SelfRegistration {
  readonly id: string;
  /** Address peers use to reach this node (`--advertise`). */
  readonly address: string;
  readonly meshPort: number;
  readonly httpPort: number;
  readonly adminPort: number;
  /** Changes on every process start; peers drop everything of an older incarnation. */
  readonly incarnation: string;
}

export type DiscoveryListener = (targets: readonly PeerTarget[]) => void;

/**
 * Whether discovery can do its job right now: register this node and learn the others. A node is
 * only ready (`/healthz` 200, gRPC health SERVING) while its discovery is healthy.
 */
export interface DiscoveryStatus {
  /** False while the backend's calls fail (Consul: unreachable, token refused, ...). It keeps retrying. */
  readonly healthy: boolean;
  /** While unhealthy: stable code of the failure, e.g. `CONSUL_PERMISSION_DENIED`, `CONSUL_UNREACHABLE`. */
  readonly code?: string;
  /** While unhealthy: one sentence saying what fails and what to check. */
  readonly reason?: string;
  /** When this state (healthy, or unhealthy with this `code`) began, ms since the epoch. */
  readonly since: number;
}

export type DiscoveryStatusListener = (status: DiscoveryStatus) => void;

/**
 * A discovery backend. Not safe to `start` twice. Listeners are called with the complete current
 * set of targets (never deltas), excluding this node itself, whenever it changes.
 */
export interface Discovery {
  /** Registers (where the backend does) and resolves once the first membership answer is known,
   *  or the first attempt failed (then it keeps trying in the background). */
  start(): Promise<void>;
  /** Current targets, excluding self. */
  targets(): readonly PeerTarget[];
  /** Subscribe to changes; returns an unsubscribe function. */
  onChange(listener: DiscoveryListener): () => void;
  /** Current health of the backend. Healthy until a call fails (a static list is always healthy). */
  status(): DiscoveryStatus;
  /** Called once per change of `status()` (healthy <-> unhealthy, or a new failure `code`), never per
   *  retry. Returns an unsubscribe function. */
  onStatusChange(listener: DiscoveryStatusListener): () => void;
  /** Marks this node as leaving (Consul: deregisters) but keeps watching. Idempotent. */
  deregister(): Promise<void>;
  /** Deregisters and stops every timer and socket. Idempotent. */
  stop(): Promise<void>;
}
