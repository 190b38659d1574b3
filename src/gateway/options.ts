import { HELLO_TIMEOUT_MS } from '../protocol/index.js';

/** Options of the WebSocket gateway. */
export interface GatewayOptions {
  /** Sustained frames per second one connection may send. Default 100. */
  readonly rateLimitPerSec: number;
  /** Burst of frames one connection may send at once. Default 200. */
  readonly rateLimitBurst: number;
  /** A connection whose unsent bytes pass this is dropped as a slow consumer (4008). Default 4 MiB. */
  readonly maxBufferedBytes: number;
  /** Ping interval; a connection that has not answered the previous ping is terminated. Default 30 s. */
  readonly heartbeatMs: number;
  /** Time to send `hello` after the upgrade. Default 10 s (protocol.md). */
  readonly helloTimeoutMs: number;
  /** Max open client connections on this node; more get HTTP 503 at upgrade. Default 100000. */
  readonly maxConnections: number;
  /** Frames a client may pipeline behind its `hello` before the welcome. Default 64. */
  readonly maxPendingBeforeWelcome: number;
}

/** Defaults of `GatewayOptions`. */
export function defaultGatewayOptions(): GatewayOptions {
  return {
    rateLimitPerSec: 100,
    rateLimitBurst: 200,
    maxBufferedBytes: 4 * 1024 * 1024,
    heartbeatMs: 30_000,
    helloTimeoutMs: HELLO_TIMEOUT_MS,
    maxConnections: 100_000,
    maxPendingBeforeWelcome: 64,
  };
}
