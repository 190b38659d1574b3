/**
 * Every limit of the client protocol, in one place. protocol.md §2 is the source of these numbers.
 */

/** Ids of users and rooms. */
export const ID_PATTERN = /^[A-Za-z0-9_.:@-]{1,64}$/;
/** Max length of a client's request id `id`, in characters. */
export const MAX_REQUEST_ID_CHARS = 64;
/** Max size of a `body`, in UTF-8 bytes (16 KiB). */
export const MAX_BODY_BYTES = 16 * 1024;
/** Max size of one WebSocket frame, in bytes (64 KiB); larger closes the connection with 1009. */
export const MAX_FRAME_BYTES = 64 * 1024;
/** Max users in one `presence` query. */
export const MAX_PRESENCE_USERS = 100;
/** Max users watched at once by one connection. */
export const MAX_WATCHED_PER_CONNECTION = 1000;
/** Time a client has to send `hello` after the upgrade, in ms. */
export const HELLO_TIMEOUT_MS = 10_000;
/** Max length of a token in `hello` and `refresh`, in characters; real JWTs are far shorter. */
export const MAX_TOKEN_CHARS = 8192;
/**
 * A connection that draws more than this many `bad_request`/`unknown_type` errors within
 * `BAD_FRAME_WINDOW_MS` is closed with 1008 (policy violation).
 */
export const MAX_BAD_FRAMES = 100;
/** The window of `MAX_BAD_FRAMES`, in ms (10 s). */
export const BAD_FRAME_WINDOW_MS = 10_000;
/**
 * A frame over the rate limit is dropped unread (it has no known id, so no answer echoes it); the
 * connection gets one `rate_limited` error without id at most once per this many ms.
 */
export const RATE_LIMITED_NOTICE_INTERVAL_MS = 1000;
/** Sustained frames per second one connection may send, by default; every frame counts. */
export const DEFAULT_RATE_LIMIT_PER_SEC = 100;
/** Burst of frames one connection may send at once, by default. */
export const DEFAULT_RATE_LIMIT_BURST = 200;
/** Message ids (`msg`, `since`, `before`): 26 characters of Crockford base32, sortable by time. */
export const MESSAGE_ID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;
/** Messages per `history` page: at most, and when `limit` is not given. */
export const MAX_HISTORY_LIMIT = 100;
export const DEFAULT_HISTORY_LIMIT = 50;
/** Rooms one user may be a member of at once. */
export const MAX_MEMBERSHIPS = 1000;
/** Members per `members` page: at most, and when `limit` is not given. */
export const MAX_MEMBERS_LIMIT = 1000;
export const DEFAULT_MEMBERS_LIMIT = 100;
/** Conversations per `conversations` page: at most, and when `limit` is not given. */
export const MAX_CONVERSATIONS_LIMIT = 100;
export const DEFAULT_CONVERSATIONS_LIMIT = 50;
/** At most one `typing` per target per this many ms is forwarded from one connection. */
export const TYPING_INTERVAL_MS = 2000;
/**
 * Unread counts stop counting here: a conversation or room with more unread messages than this
 * reports this number (a client shows it as "999+").
 */
export const MAX_UNREAD_COUNT = 999;
