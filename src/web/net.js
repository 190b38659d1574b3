// The connection: one WebSocket at a time (to the node `nodes.js` picks), hello, reconnect with a
// quick, jittered backoff (and a "reconnect now" button meanwhile), requests and their answers.
import { BACKOFF_BASE_MS, BACKOFF_MAX_MS, CLOSE_TEXT, CONNECT_TIMEOUT_MS, state } from './state.js';
import { logEvent, setConn, ui } from './dom.js';
import { fetchToken, refreshDelay } from './token.js';
import { handleFrame } from './frames.js';
import { helloSince, onSocketClosed } from './history.js';
import { chooseNode, currentUrl, stopNodesRefresh } from './nodes.js';
import { watchedUnknown } from './presence.js';
import { clearTyping } from './typing.js';
import { renderHistoryBar, showLogin, updateCompose } from './render.js';

/** Opens a new socket (the old one, if any, must be closed or dropped by the caller). */
export function connect() {
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = null;
  state.welcomed = false;
  state.authError = null;
  state.tokenExpired = false;
  setConn('connecting', state.attempt ? `reconnecting (attempt ${state.attempt})…` : 'connecting…');
  updateReconnectButton();
  clearTimeout(state.connectTimer);
  let ws;
  try {
    ws = new WebSocket(currentUrl());
  } catch (e) {
    // A URL the browser refuses outright (bad syntax, a blocked port): count it as a failed attempt.
    logEvent('error', `cannot connect to ${currentUrl()}: ${e.message}`);
    handleClose({ code: 1006, reason: e.message });
    return;
  }
  state.ws = ws;
  state.connectTimer = setTimeout(() => {
    if (state.ws !== ws || state.welcomed) return;
    // No welcome in time: drop this socket and retry.
    dropSocket();
    handleClose({ code: 1006, reason: `no welcome within ${CONNECT_TIMEOUT_MS / 1000} s` });
  }, CONNECT_TIMEOUT_MS);
  ws.addEventListener('open', async () => {
    if (state.ws !== ws) return;
    // After a long disconnect the token may be stale: renew it first when there is a source.
    if (state.creds.token && state.tokenUrl && refreshDelay(state.creds.token) <= 0) {
      try { state.creds = { token: await fetchToken(state.tokenUrl) }; } catch (e) { logEvent('error', `token URL: ${e.message}`); }
      if (state.ws !== ws) return;
    }
    // Resume after the newest message shown, so nothing sent meanwhile is missed; a fresh tab
    // sends no `since` and gets its mailbox instead.
    sendHello(helloSince());
  });
  ws.addEventListener('message', (ev) => {
    if (state.ws !== ws) return;
    let frame;
    try { frame = JSON.parse(ev.data); } catch { logEvent('error', 'server sent a frame that is not JSON'); return; }
    if (frame && typeof frame.type === 'string') handleFrame(frame);
  });
  ws.addEventListener('close', (ev) => { if (state.ws === ws) handleClose(ev); });
}

/** Close code of a socket the page closes itself because its mailbox or replay failed. */
export const RESYNC_CLOSE = 4000;

/** Sends a hello on the current socket (again, after a refused `since`). */
export function sendHello(since) {
  state.since = since;
  state.ws.send(JSON.stringify({ type: 'hello', ...state.creds, ...(since ? { since } : {}) }));
}

/** True when the current socket is welcomed and still open (not closing). */
export const isOpen = () => Boolean(state.ws && state.welcomed && state.ws.readyState === WebSocket.OPEN);

/** Sends a frame that has no answer (typing) when the socket is welcomed; false when it is not. */
export function sendFrame(frame) {
  if (!isOpen()) return false;
  state.ws.send(JSON.stringify(frame));
  return true;
}

/** Drops the current socket on purpose (sign-out, new credentials): no reconnect follows. */
export function disconnect(reason) {
  const ws = state.ws;
  state.ws = null;
  state.welcomed = false;
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = null;
  clearTimeout(state.connectTimer);
  clearTimeout(state.refreshTimer);
  state.refreshTimer = null;
  stopNodesRefresh();
  failPending();
  onSocketClosed();
  updateReconnectButton();
  if (ws) ws.close(1000, reason);
}

function failPending() {
  const pending = [...state.pending.values()];
  state.pending.clear();
  for (const p of pending) p.done(null, { code: 'disconnected', message: 'connection closed before an answer' });
}

function handleClose(ev) {
  const wasWelcomed = state.welcomed;
  clearTimeout(state.connectTimer);
  state.ws = null;
  state.welcomed = false;
  clearTimeout(state.refreshTimer);
  state.refreshTimer = null;
  stopNodesRefresh();
  failPending();
  onSocketClosed();
  watchedUnknown();
  clearTyping();
  renderHistoryBar();
  updateCompose();
  const what = `${ev.code}${CLOSE_TEXT[ev.code] ? ` ${CLOSE_TEXT[ev.code]}` : ''}${ev.reason ? `: ${ev.reason}` : ''}`;
  logEvent(ev.code === 1000 || ev.code === 1012 ? 'conn' : 'error', `connection closed (${what})`);
  if (ev.code === 4401) {
    // Bad credentials: retrying with the same ones would loop forever.
    state.wantConnected = false;
    updateReconnectButton();
    if (state.tokenExpired) {
      setConn('offline', 'token expired');
      ui.loginToken.value = '';
      showLogin(`Your token expired, so the server closed the connection. Enter a new token${state.tokenUrl ? ' (or Connect to fetch one from the token URL)' : ''} to continue.`);
      return;
    }
    setConn('offline', 'closed 4401: unauthorized');
    showLogin(`Sign-in refused (close code 4401)${state.authError ? `: ${state.authError}` : ''}. Check the name or token.`);
    return;
  }
  if (!state.wantConnected) { setConn('offline', `closed (${ev.code})`); updateReconnectButton(); return; }
  if (!wasWelcomed && !state.me) {
    // Never got in: keep retrying, but let the user edit the credentials meanwhile.
    ui.loginError.textContent = `Connection closed (${what}); retrying…`;
  }
  chooseNode(ev.code, wasWelcomed);
  scheduleReconnect(ev.code);
}

/** The wait before reconnect attempt `n` (0 = the first after a drop): jittered, doubling, capped. */
export function backoff(n) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(n, 10));
  return Math.round(base * (0.5 + Math.random() * 0.5));
}

function scheduleReconnect(code) {
  // A connection whose sync failed got its welcome (which resets `attempt`): back off all the same.
  const delay = backoff(Math.max(state.attempt, state.syncFailures));
  state.attempt += 1;
  state.reconnectDelays.push(delay);
  setConn('reconnecting', `closed ${code}${code === 1012 ? ' (server restarting)' : code === RESYNC_CLOSE ? ' (sync failed)' : ''}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
  state.reconnectTimer = setTimeout(connect, delay);
  updateReconnectButton();
}

/** The "reconnect now" button (and the browser coming back online): retry at once. */
export function reconnectNow() {
  if (!state.wantConnected || state.welcomed) return;
  dropSocket();
  connect();
}

/** Drops the current socket, if any: its events are ignored from now on, and it is closed. */
function dropSocket() {
  const ws = state.ws;
  state.ws = null;
  if (ws) try { ws.close(); } catch { /* not open yet */ }
}

/** Shows "reconnect now" while the page wants a connection it does not have. */
export function updateReconnectButton() {
  ui.reconnect.hidden = !(state.wantConnected && !state.welcomed && state.me !== null);
}

/**
 * Sends a frame with a fresh request id; done(answer, error) gets exactly one call (an error
 * `disconnected` when there is no welcomed socket or it closes first). Returns the id, or null.
 */
export function request(frame, done) {
  if (!isOpen()) {
    done(null, { code: 'disconnected', message: 'not connected' });
    return null;
  }
  const id = `c${state.nextId++}`;
  state.pending.set(id, { frame, done });
  state.ws.send(JSON.stringify({ ...frame, id }));
  return id;
}

/** The answer (or error) to request `id`. */
export function answer(id, frame, error) {
  const p = id !== undefined && state.pending.get(id);
  if (!p) return;
  state.pending.delete(id);
  p.done(frame, error);
}
