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
