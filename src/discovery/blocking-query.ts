/**
 * The two rules Consul's docs set for every blocking-query loop
 * (https://developer.hashicorp.com/consul/api-docs/features/blocking, "Implementation Details"),
 * as pure logic fed values and a clock.
 *
 * Index: "Reset the index if it goes backwards" (to 0, restarting the loop: a raft snapshot restore,
 * an agent that lost its state) and "Sanity check index is greater than zero" (an index of 0 would
 * never block, so use 1): {@link nextWatchIndex}.
 *
 * Rate limit ("Rate limit"): a blocking loop whose result changes very often (or an agent that answers at once,
 * e.g. after an index reset) degrades into a busy loop that burns client CPU and loads the servers.
 * A plain sleep per iteration is "not recommended since it causes update delivery to be delayed in
 * the happy case"; instead "rate limit the loop so that in the happy case they proceed without
 * waiting, but when values start to churn quickly they degrade into polling at a reasonable rate",
 * ideally "a token bucket with burst of 2": {@link createWatchLimiter}.
 */

/**
 * The index to send with the next blocking query, given the one sent (`sent`, 0 for none) and the
 * `X-Consul-Index` that came back: 0 when it went backwards (start over with a non-blocking query),
 * at least 1 otherwise (so the next query blocks).
 */
export function nextWatchIndex(sent: bigint, returned: bigint): bigint {
  if (returned < sent) return 0n;
  return returned < 1n ? 1n : returned;
}

/** Options of {@link createWatchLimiter}. */
export interface WatchLimiterOptions {
  /** Queries that may go back to back (bucket size, integer >= 1). Consul's docs suggest 2. */
  readonly burst: number;
  /** Once the burst is spent, at most one query per this many ms (> 0). */
  readonly intervalMs: number;
  /** Clock, ms. A clock that steps backwards refills nothing. */
  readonly now: () => number;
}

/** A token bucket for one loop. Not for concurrent loops. */
export interface WatchLimiter {
  /** 0 when a query may go now (and spends a token for it); else ms to wait before asking again. */
  take(): number;
}

/** Creates a full bucket. Throws `RangeError` on a `burst` below 1 or a non-positive `intervalMs`. */
export function createWatchLimiter(options: WatchLimiterOptions): WatchLimiter {
  const { burst, intervalMs, now } = options;
  if (!Number.isInteger(burst) || burst < 1) throw new RangeError(`burst must be an integer >= 1, got ${burst}`);
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new RangeError(`intervalMs must be > 0, got ${intervalMs}`);
  let tokens = burst;
  let last = now();
  return {
    take() {
      const t = now();
      if (t > last) tokens = Math.min(burst, tokens + (t - last) / intervalMs);
      last = t;
      if (tokens >= 1) {
        tokens -= 1;
        return 0;
      }
      return Math.max(1, Math.ceil((1 - tokens) * intervalMs));
    },
  };
}
