// The page's constants and its one state object (exposed as window.chatmesh.state for debugging
// and tests).

export const ID_RE = /^[A-Za-z0-9_.:@-]{1,64}$/;
export const MAX_BODY_BYTES = 16 * 1024;
export const MAX_EVENTS = 200;
export const BACKOFF_BASE_MS = 500;
export const BACKOFF_MAX_MS = 15000;
// A token is renewed this long before its `exp`: 10% of its lifetime, within [1 s, 60 s].
export const REFRESH_MARGIN_FRACTION = 0.1;
export const REFRESH_MARGIN_MIN_MS = 1000;
export const REFRESH_MARGIN_MAX_MS = 60000;
export const TOKEN_RETRY_MS = 5000;       // after a failed fetch of the token URL
// History: messages per page (the protocol's default; 1-100).
export const HISTORY_PAGE = 50;
// After a reconnect, a room's (or, without `since`, a conversation's) newest pages are read back
// until they reach what is shown: at most this many pages.
export const GAP_FILL_MAX_PAGES = 20;
// `since` is this much older than the newest message shown, so that one still in flight when the
// connection dropped (its id a little below the newest) is replayed too; duplicates are dropped by id.
export const RESUME_MARGIN_MS = 2000;
export const CLOSE_TEXT = {
  1000: 'normal closure', 1001: 'going away', 1006: 'connection lost', 1009: 'frame too large',
  1011: 'server error', 1012: 'server restarting', 1013: 'try again later', 4401: 'unauthorized',
};

export const state = {
  ws: null,
  creds: null,          // { user } or { token }
  tokenUrl: null,       // where a fresh token can be fetched (optional)
  tokenExpired: false,  // the server said token_expired on the current socket
  refreshTimer: null,
  me: null, node: null, session: null,
  welcomed: false,      // the current socket got its welcome
  authError: null,      // message of an `unauthorized` error on the current socket
  wantConnected: false, // false after sign-out or a 4401
  attempt: 0,           // reconnect attempts since the last welcome
  reconnectTimer: null,
  nextId: 1,
  pending: new Map(),   // request id -> { frame, done(answer, error) }
  convs: new Map(),     // key ("dm:bob" / "room:lobby") -> conversation
  active: null,         // key of the shown conversation
  watched: new Map(),   // user -> "online" | "offline" | "unknown"
  // Streams (mailbox, resume, history):
  since: null,          // the `since` sent with the current socket's hello, or null (mailbox)
  synced: false,        // the current socket got its `synced` (the server keeps streams)
  syncWaiters: [],      // functions to run at the current socket's `synced`
  replayed: 0,          // messages that came new to the page between welcome and synced
  syncFailures: 0,      // sockets in a row whose mailbox or replay failed (`unavailable` before synced)
  resumeSaveTimer: null,
};
