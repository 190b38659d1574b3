/**
 * Every frame a client sends counts against its token bucket, before any decoding. A frame over
 * the limit is not handled and reading pauses until the bucket has a token again, so what a
 * flooder sends waits in the kernel's buffers and its own (TCP backpressure) instead of costing a
 * read, an unmask and a drop per frame.
 */
import type { WebSocket } from 'ws';
import { ErrorCode, RATE_LIMITED_NOTICE_INTERVAL_MS } from '../protocol/index.js';
import { TokenBucket } from '../util/index.js';
import type { GatewayContext } from './context.js';

/** What the guard needs of its connection. */
export interface RateGuardHooks {
  readonly closed: () => boolean;
  /** Reading stopped for good (1008): a pause is never undone. */
  readonly readingStopped: () => boolean;
  readonly sendError: (code: ErrorCode, message: string, id: string | undefined) => void;
}

/** The rate limit of one connection. Not shared. */
export class RateGuard {
  private readonly bucket: TokenBucket;
  private throttled = false;
  /** Monotonic time before which no further `rate_limited` notice is sent. */
  private noticeAfter = -Infinity;

  constructor(private readonly ws: WebSocket, private readonly ctx: GatewayContext, private readonly hooks: RateGuardHooks) {
    this.bucket = new TokenBucket({ ratePerSec: ctx.opts.rateLimitPerSec, burst: ctx.opts.rateLimitBurst, clock: ctx.clock });
  }

  /** Takes a token for a frame; false (and reading paused) when there is none. */
  take(): boolean {
    if (this.bucket.take()) return true;
    this.ctx.stats.framesDropped++;
    this.throttle();
    return false;
  }

  /**
   * Answers a frame `take` refused. A text frame with a request id (after the hello) is answered
   * `rate_limited` with that id (every frame with an id gets exactly one answer; finding the id is
   * one JSON.parse, and reading is paused, so that stays cheap). Any other frame gets no answer of
   * its own: the client hears `rate_limited` without id at most once per interval.
   */
  refused(data: Buffer, isBinary: boolean, beforeHello: boolean): void {
    const { rateLimitPerSec: rate, rateLimitBurst: burst } = this.ctx.opts;
    const id = isBinary || beforeHello ? undefined : requestIdOf(data);
    if (id !== undefined) return this.hooks.sendError(ErrorCode.RateLimited, `rate limit: ${rate} frames/s, burst ${burst}; this frame was not handled`, id);
    const now = this.ctx.clock.monotonic();
    if (now < this.noticeAfter) return;
    this.noticeAfter = now + RATE_LIMITED_NOTICE_INTERVAL_MS;
    this.hooks.sendError(ErrorCode.RateLimited, `rate limit: ${rate} frames/s, burst ${burst}; frames over it are dropped unread and get no answer`, undefined);
  }

  /** Stops reading the socket until the bucket has a token again. */
  private throttle(): void {
    if (this.throttled || this.hooks.closed()) return;
    this.throttled = true;
    this.ws.pause();
    setTimeout(() => {
      this.throttled = false;
      if (!this.hooks.readingStopped()) this.ws.resume();
    }, Math.max(1, Math.ceil(this.bucket.msUntil(1)))).unref();
  }
}

/** The request id of a frame not decoded yet, if it has a valid one (so its answer can echo it). */
export function requestIdOf(data: Buffer): string | undefined {
  try {
    const id = (JSON.parse(data.toString('utf8')) as { id?: unknown }).id;
    return typeof id === 'string' && id.length <= 64 ? id : undefined;
  } catch {
    return undefined;
  }
}
