/**
 * Client-facing error codes and WebSocket close codes. Errors carry a stable `code` inside the
 * server; they are turned into their wire form (an `error` frame, a close code) only at the edge.
 */

/** Codes of the client `error` frame (protocol.md §2). Only append to this list. */
export const ErrorCode = {
  BadRequest: 'bad_request',
  UnknownType: 'unknown_type',
  Unauthorized: 'unauthorized',
  NotMember: 'not_member',
  TooLarge: 'too_large',
  RateLimited: 'rate_limited',
  Unavailable: 'unavailable',
  /** The connection's token expired without a `refresh`; the connection closes with 4401. */
  TokenExpired: 'token_expired',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** WebSocket close codes the server uses. Only append to this list. */
export const CloseCode = {
  /** Normal closure. */
  Normal: 1000,
  /** A frame over the size limit (sent by the ws library itself). */
  TooBig: 1009,
  /** Server restart or drain: reconnect, possibly to another node. */
  ServiceRestart: 1012,
  /** The client did not authenticate (bad token, no hello in time, frame before hello), its token
   *  expired, or a `refresh` carried a bad token or another user's. */
  Unauthorized: 4401,
  /** The client read too slowly: its send buffer passed the server's bound. */
  SlowConsumer: 4008,
  /** The node refused the connection because it is at its connection limit. */
  Overloaded: 4503,
  /** More than `MAX_BAD_FRAMES` `bad_request`/`unknown_type` errors within `BAD_FRAME_WINDOW_MS`. */
  PolicyViolation: 1008,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** An error that a client sees as an `error` frame with `code`. */
export class ChatError extends Error {
  /** Stable wire code. */
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ChatError';
    this.code = code;
  }
}
