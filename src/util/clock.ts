/** Time source; injected wherever logic depends on time so tests can drive it. */
export interface Clock {
  /** Wall-clock milliseconds since the epoch (for `ts` and ids). */
  now(): number;
  /** Monotonic milliseconds (for rates and timeouts). */
  monotonic(): number;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
};
