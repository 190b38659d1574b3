/**
 * The health of a Consul discovery, derived from the outcome of its two loops (heartbeat:
 * register + TTL pass; watch: health query). Unhealthy while either loop's last call failed; one log
 * line and one listener call per change of (healthy, failure code), never one per retry.
 */
import { ConsulApiError, ConsulErrorCode } from './consul-api.js';
import type { DiscoveryStatus, DiscoveryStatusListener } from './types.js';

/** pino-compatible logger (a pino `Logger` fits). */
export interface DiscoveryLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** The two loops of a Consul discovery. */
export type ConsulLoop = 'heartbeat' | 'watch';

/** The latest failure of one loop, as the status and its log line show it (no stack). */
export interface ConsulFailure {
  readonly code: string;
  /** Which call failed, e.g. `agent.service.register`. */
  readonly operation: string;
  /** The agent's words (its response body) or the transport's message. */
  readonly detail: string;
}

function codeOf(err: unknown): string {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'UNKNOWN';
}

/** Reduces any error of a Consul call to what the status and the logs show. */
export function failureOf(err: unknown): ConsulFailure {
  if (err instanceof ConsulApiError) {
    return { code: err.code, operation: err.operation, detail: err.detail ?? err.message.slice(err.operation.length + 2) };
  }
  return { code: codeOf(err), operation: 'consul', detail: err instanceof Error ? err.message : String(err) };
}

/** Status code (not an API error): the health query answered, but Consul hid entries the token may
 *  not read, so peers may be missing. The token needs `service:read` on the service and `node:read`. */
export const CONSUL_ACL_FILTERED = 'CONSUL_ACL_FILTERED';

const TOKEN_HINT = 'check --consul-token / CONSUL_HTTP_TOKEN';

/** The log line (constant per code, so operators can grep it) and the `/healthz` reason of a failure. */
export function describeFailure(f: ConsulFailure, agentUrl: string): { msg: string; reason: string } {
  switch (f.code) {
    case ConsulErrorCode.PermissionDenied:
      return { msg: `consul: permission denied (403) — ${TOKEN_HINT}`, reason: `consul denied ${f.operation} (403: ${f.detail}) — ${TOKEN_HINT}` };
    case CONSUL_ACL_FILTERED:
      return { msg: `consul: peers hidden by ACLs (the token needs service:read and node:read) — ${TOKEN_HINT}`, reason: `consul ${f.operation}: ${f.detail} — ${TOKEN_HINT}` };
    case ConsulErrorCode.Unreachable:
      return { msg: `consul: agent unreachable at ${agentUrl} — retrying`, reason: `consul agent unreachable at ${agentUrl} (${f.detail})` };
    case ConsulErrorCode.Timeout:
      return { msg: `consul: agent at ${agentUrl} does not answer — retrying`, reason: `consul agent at ${agentUrl} does not answer ${f.operation} (${f.detail})` };
    default:
      return { msg: `consul: ${f.operation} fails (${f.code}) — retrying`, reason: `consul ${f.operation} fails: ${f.detail}` };
  }
}

/** Options of {@link ConsulStatus}. */
export interface ConsulStatusOptions {
  readonly agentUrl: string;
  readonly logger: DiscoveryLogger;
  /** Clock of `since`, ms. */
  readonly now: () => number;
}

/** Healthy until a call fails. Single-threaded use (one event loop); not shared between discoveries. */
export class ConsulStatus {
  readonly #o: ConsulStatusOptions;
  readonly #failures: Record<ConsulLoop, ConsulFailure | undefined> = { heartbeat: undefined, watch: undefined };
  readonly #listeners = new Set<DiscoveryStatusListener>();
  #status: DiscoveryStatus;

  constructor(options: ConsulStatusOptions) {
    this.#o = options;
    this.#status = Object.freeze({ healthy: true, since: options.now() });
  }

  current(): DiscoveryStatus {
    return this.#status;
  }

  onChange(listener: DiscoveryStatusListener): () => void {
    const wrapped: DiscoveryStatusListener = (s) => listener(s);
    this.#listeners.add(wrapped);
    return () => {
      this.#listeners.delete(wrapped);
    };
  }

  /**
   * Records the outcome of one call of `loop` (`undefined`: it succeeded). The status names the
   * heartbeat's failure before the watch's: registration is what the peers depend on.
   *
   * When the heartbeat recovers, the watch's failure is forgotten too: it was seen before the agent
   * or the ACL changed and is probably stale (e.g. entries hidden before the token could register).
   * Not the other way round: until the heartbeat registers again, the node is not registered.
   * Returns true when the other loop is (or was) failing: the caller should make it try again now.
   */
  report(loop: ConsulLoop, failure: ConsulFailure | undefined): boolean {
    const other: ConsulLoop = loop === 'heartbeat' ? 'watch' : 'heartbeat';
    const recovered = failure === undefined && this.#failures[loop] !== undefined;
    const recheck = recovered && this.#failures[other] !== undefined;
    this.#failures[loop] = failure;
    if (recheck && loop === 'heartbeat') this.#failures.watch = undefined;
    const worst = this.#failures.heartbeat ?? this.#failures.watch;
    const prev = this.#status;
    if (worst === undefined ? prev.healthy : !prev.healthy && prev.code === worst.code) return recheck;
    const now = this.#o.now();
    const log = this.#o.logger;
    if (worst === undefined) {
      this.#status = Object.freeze({ healthy: true, since: now });
      log.info({ previousCode: prev.code, unhealthyForMs: Math.max(0, now - prev.since) }, 'consul: reachable again');
    } else {
      const { msg, reason } = describeFailure(worst, this.#o.agentUrl);
      this.#status = Object.freeze({ healthy: false, code: worst.code, reason, since: now });
      log.warn({ code: worst.code, operation: worst.operation, detail: worst.detail, agentUrl: this.#o.agentUrl }, msg);
    }
    for (const listener of [...this.#listeners]) {
      try {
        listener(this.#status);
      } catch (err) {
        log.error({ code: 'DISCOVERY_LISTENER_FAILED', err }, 'discovery status listener threw');
      }
    }
    return recheck;
  }
}
