// The page's constants and its one state object (exposed as window.chatmesh.state for debugging
// and tests).

export const ID_RE = /^[A-Za-z0-9_.:@-]{1,64}$/;
export const MAX_BODY_BYTES = 16 * 1024;
export const MAX_EVENTS = 200;
// Reconnect: the first retry within 125-250 ms, then doubling, jittered, at most 5 s apart.
export const BACKOFF_BASE_MS = 250;
export const BACKOFF_MAX_MS = 5000;
// A connection not welcomed this long after it was opened (a network that swallows packets, a
// server that never answers) is dropped and retried like a lost one.
export const CONNECT_TIMEOUT_MS = 15000;
// After this many failed attempts in a row on one node, the next one goes to another listed node.
export const FAILS_BEFORE_MOVE = 2;
// GET /nodes is read after each welcome and then this often.
export const NODES_REFRESH_MS = 30000;
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
// Accounts: conversations per page of the sidebar, members per page of a room's roster, watched
// users at most (the server's limit per connection).
export const CONVERSATIONS_PAGE = 50;
export const MEMBERS_PAGE = 100;
export const MAX_WATCHED = 1000;
// Typing: sent at most this often per conversation (a little over the server's 2 s, so that network
// jitter does not make it drop one); a received one shows this long.
export const TYPING_SEND_MS = 2200;
export const TYPING_SHOW_MS = 5000;
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
  connectTimer: null,
  reconnectDelays: [],  // the delays of the reconnects scheduled since the last welcome (ms)
  // Nodes (GET /nodes): where the socket goes.
  url: null,            // WebSocket URL of the current (or next) connection
  nodes: [],            // [{ id, url }] as the last GET /nodes answered
  failsHere: 0,         // failed connection attempts in a row on `url`
  nodesTimer: null,
  nextId: 1,
  pending: new Map(),   // request id -> { frame, done(answer, error) }
  convs: new Map(),     // key ("dm:bob" / "room:lobby") -> conversation
  active: null,         // key of the shown conversation
  // Presence: user -> "online" | "offline" | "unknown", for every watched user; why each is watched.
  watched: new Map(),
  watchWhy: new Map(),  // user -> Set of reasons ("pin": the Watching list, "dm", "roster")
  // Accounts: null until the server answered `rooms` once; then true, or false for a server without them.
  accounts: null,
  convMore: false,      // the server keeps older conversations than the sidebar shows
  convOldest: null,     // the `msg` of the oldest conversation's last message listed (the next page's `before`)
  outbox: [],           // messages written while they could not be sent, in order: { c, m }
  // Streams (mailbox, resume, history):
  since: null,          // the `since` sent with the current socket's hello, or null (mailbox)
  synced: false,        // the current socket got its `synced` (the server keeps streams)
  replayed: 0,          // messages that came new to the page between welcome and synced
  syncFailures: 0,      // sockets in a row whose mailbox or replay failed (`unavailable` before synced)
  resumeSaveTimer: null,
  hiddenCount: 0,       // messages received while the tab was hidden (shown in its title)
};
