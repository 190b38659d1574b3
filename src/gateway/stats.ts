/**
 * Counters of the gateway, read by the admin API and `/metrics`. Plain numbers: incremented on
 * the hot path, so no maps or allocation there.
 */
export class GatewayStats {
  /** Open client connections (authenticated or not). */
  connections = 0;
  /** Connections that completed `hello`. */
  authenticated = 0;
  /** Frames received from clients. */
  framesIn = 0;
  /** Frames written to clients. */
  framesOut = 0;
  /** Direct messages accepted (`send`). */
  directMessages = 0;
  /** Room messages accepted (`publish`). */
  roomMessages = 0;
  /** `error` frames sent, by code. */
  readonly errors: Record<string, number> = Object.create(null) as Record<string, number>;
  /** Connections dropped as slow consumers. */
  slowConsumers = 0;
  /** Connections terminated by the heartbeat. */
  heartbeatTimeouts = 0;
  /** Frames dropped unread by the rate limiter (each `rate_limited` notice stands for one or more). */
  framesDropped = 0;
  /** Connections closed with 1008 for too many bad frames. */
  policyViolations = 0;
  /** Connections closed because their token expired without a `refresh`. */
  tokensExpired = 0;
  /** Accepted `refresh` frames. */
  tokensRefreshed = 0;
  /** `join`/`leave` frames that changed a membership. */
  membershipsChanged = 0;
  /** Accepted `read` frames. */
  readMarks = 0;
  /** `typing` events forwarded, and dropped (throttled, to a room not joined, to oneself). */
  typingForwarded = 0;
  typingDropped = 0;

  /** Counts one `error` frame of `code`. */
  countError(code: string): void {
    this.errors[code] = (this.errors[code] ?? 0) + 1;
  }
}
