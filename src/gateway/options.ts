import {
  BAD_FRAME_WINDOW_MS, DEFAULT_RATE_LIMIT_BURST, DEFAULT_RATE_LIMIT_PER_SEC, HELLO_TIMEOUT_MS, MAX_BAD_FRAMES,
} from '../protocol/index.js';

/** Options of the WebSocket gateway. */
export interface GatewayOptions {
  /** Sustained frames per second one connection may send; every frame counts, parsed or not. Default 100. */
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
  /** A connection with more `bad_request`/`unknown_type` errors than this within `badFrameWindowMs`
   *  is closed with 1008. Default 100 (protocol.md); tests that fuzz a connection raise it. */
  readonly maxBadFrames: number;
  /** The window of `maxBadFrames`, in ms. Default 10 s (protocol.md). */
  readonly badFrameWindowMs: number;
}

/** Defaults of `GatewayOptions`. */
export function defaultGatewayOptions(): GatewayOptions {
  return {
    rateLimitPerSec: DEFAULT_RATE_LIMIT_PER_SEC,
    rateLimitBurst: DEFAULT_RATE_LIMIT_BURST,
    maxBufferedBytes: 4 * 1024 * 1024,
    heartbeatMs: 30_000,
    helloTimeoutMs: HELLO_TIMEOUT_MS,
    maxConnections: 100_000,
    maxPendingBeforeWelcome: 64,
    maxBadFrames: MAX_BAD_FRAMES,
    badFrameWindowMs: BAD_FRAME_WINDOW_MS,
  };
}
