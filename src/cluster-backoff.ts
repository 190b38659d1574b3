/**
 * When `chatmesh cluster --restart` restarts a node that exited: after `initialMs`, doubling with
 * every further exit up to `maxMs`, and back to `initialMs` once a run lasted `resetAfterMs`. Pure:
 * it is told how long the node ran, it reads no clock.
 */

/** Back-off of node restarts, all in milliseconds. */
export interface BackoffOptions {
  /** Delay before the first restart. Default 500. */
  readonly initialMs: number;
  /** Cap of the doubling delay. Default 10000. */
  readonly maxMs: number;
  /** A run at least this long resets the delay to `initialMs`. Default 30000. */
  readonly resetAfterMs: number;
}

/** The back-off of `chatmesh cluster --restart`: 500 ms doubling to 10 s, reset after 30 s up. */
export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 10_000, resetAfterMs: 30_000 };

/** The restart delays of one node. Not shared between nodes; not for concurrent use. */
export class RestartBackoff {
  private nextMs: number;

  /** Throws `RangeError` unless 0 < initialMs <= maxMs and resetAfterMs >= 0. */
  constructor(private readonly options: BackoffOptions = DEFAULT_BACKOFF) {
    const { initialMs, maxMs, resetAfterMs } = options;
    if (!(initialMs > 0) || !(maxMs >= initialMs) || !(resetAfterMs >= 0)) {
      throw new RangeError(`bad restart back-off ${JSON.stringify(options)}: need 0 < initialMs <= maxMs, resetAfterMs >= 0`);
    }
    this.nextMs = initialMs;
  }

  /** The delay before restarting a node whose run lasted `uptimeMs`; call once per exit. */
  delayAfter(uptimeMs: number): number {
    if (uptimeMs >= this.options.resetAfterMs) this.nextMs = this.options.initialMs;
    const delay = this.nextMs;
    this.nextMs = Math.min(this.nextMs * 2, this.options.maxMs);
    return delay;
  }
}
