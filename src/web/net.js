// The connection: one WebSocket at a time to ws(s)://<host>/ws, hello/welcome, reconnect with
// backoff, requests and their answers, and keeping a JWT fresh with `refresh`.
import {
  BACKOFF_BASE_MS, BACKOFF_MAX_MS, CLOSE_TEXT, TOKEN_RETRY_MS, state,
} from './state.js';
import { logEvent, setConn, timeOf, ui } from './dom.js';
import { fetchToken, jwtClaims, refreshDelay } from './token.js';
import { onDirect, onRoom, rejoinRooms } from './convs.js';
import { helloSince, onSocketClosed, onStreamError, onSynced, onWelcomeStreams } from './history.js';
import { rewatch, setWatched, watchedUnknown } from './presence.js';
import { renderAll, renderHistoryBar, showChat, showLogin, updateCompose } from './render.js';

function wsUrl() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

/** Opens a new socket (the old one, if any, must be closed or dropped by the caller). */
export function connect() {
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = null;
  state.welcomed = false;
  state.authError = null;
  state.tokenExpired = false;
  setConn('connecting', state.attempt ? `reconnecting (attempt ${state.attempt})…` : 'connecting…');
  const ws = new WebSocket(wsUrl());
  state.ws = ws;
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

/** Drops the current socket on purpose (sign-out, new credentials): no reconnect follows. */
export function disconnect(reason) {
  const ws = state.ws;
  state.ws = null;
  state.welcomed = false;
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = null;
  clearTimeout(state.refreshTimer);
  state.refreshTimer = null;
  failPending();
  onSocketClosed();
  if (ws) ws.close(1000, reason);
}

function failPending() {
  const pending = [...state.pending.values()];
  state.pending.clear();
  for (const p of pending) p.done(null, { code: 'disconnected', message: 'connection closed before an answer' });
}

function handleClose(ev) {
  const wasWelcomed = state.welcomed;
  state.ws = null;
  state.welcomed = false;
  clearTimeout(state.refreshTimer);
  state.refreshTimer = null;
  failPending();
  onSocketClosed();
  watchedUnknown();
  renderHistoryBar();
  updateCompose();
  const what = `${ev.code}${CLOSE_TEXT[ev.code] ? ` ${CLOSE_TEXT[ev.code]}` : ''}${ev.reason ? `: ${ev.reason}` : ''}`;
  logEvent(ev.code === 1000 || ev.code === 1012 ? 'conn' : 'error', `connection closed (${what})`);
  if (ev.code === 4401) {
    // Bad credentials: retrying with the same ones would loop forever.
    state.wantConnected = false;
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
  if (!state.wantConnected) { setConn('offline', `closed (${ev.code})`); return; }
  if (!wasWelcomed && !state.me) {
    // Never got in: keep retrying, but let the user edit the credentials meanwhile.
    ui.loginError.textContent = `Connection closed (${what}); retrying…`;
  }
  scheduleReconnect(ev.code);
}

function scheduleReconnect(code) {
  // A connection whose sync failed got its welcome (which resets `attempt`): back off all the same.
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(state.attempt, state.syncFailures));
  const delay = Math.round(base * (0.75 + Math.random() * 0.5));
  state.attempt += 1;
  setConn('reconnecting', `closed ${code}${code === 1012 ? ' (server restarting)' : code === RESYNC_CLOSE ? ' (sync failed)' : ''}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
  state.reconnectTimer = setTimeout(connect, delay);
}

/**
 * Sends a frame with a fresh request id; done(answer, error) gets exactly one call (an error
 * `disconnected` when there is no welcomed socket or it closes first). Returns the id, or null.
 */
export function request(frame, done) {
  if (!state.ws || !state.welcomed) {
    done(null, { code: 'disconnected', message: 'not connected' });
    return null;
  }
  const id = `c${state.nextId++}`;
  state.pending.set(id, { frame, done });
  state.ws.send(JSON.stringify({ ...frame, id }));
  return id;
}

function handleFrame(f) {
  switch (f.type) {
    case 'welcome': return onWelcome(f);
    case 'ack':
    case 'presence':
    case 'history': return answer(f.id, f, null);
    case 'error': {
      logEvent('error', `error ${f.code}${f.id ? ` (request ${f.id})` : ''}: ${f.message || ''}`);
      if (f.code === 'unauthorized') state.authError = f.message || 'unauthorized';
      if (f.code === 'token_expired') state.tokenExpired = true;
      if (f.id === undefined && onStreamError(f)) return undefined;
      return answer(f.id, null, f);
    }
    case 'message': return onDirect(f, 'live');
    case 'room_message': return onRoom(f, 'live');
    case 'synced': return onSynced(f);
    case 'presence_change': return setWatched(f.user, f.status);
    default: logEvent('info', `unhandled frame type "${f.type}"`);
  }
}

function answer(id, frame, error) {
  const p = id !== undefined && state.pending.get(id);
  if (!p) return;
  state.pending.delete(id);
  p.done(frame, error);
}

function onWelcome(f) {
  const first = state.me === null;
  if (state.me !== null && state.me !== f.user) resetData();
  state.me = f.user; state.node = f.node; state.session = f.session;
  state.welcomed = true;
  state.attempt = 0;
  ui.meUser.textContent = f.user;
  ui.meNode.textContent = f.node;
  ui.meSession.textContent = f.session;
  showChat();
  setConn('online', 'connected');
  logEvent('conn', `welcome ${f.user} on node ${f.node} (session ${f.session})${state.since ? `; resuming after message ${state.since}` : ''}`);
  if (state.creds.user) try { localStorage.setItem('chatmesh.user', state.creds.user); } catch { /* private mode */ }
  onWelcomeStreams();
  if (!first) { rejoinRooms(); rewatch(); }
  updateCompose();
  if (state.creds.token) scheduleRefresh();
}

/** Forgets every conversation and watch (sign-out, or another user signed in). */
export function resetData() {
  state.convs.clear();
  state.watched.clear();
  state.active = null;
  state.pending.clear();
  ui.events.replaceChildren();
  renderAll();
}

// ---------- token lifetime ----------

function scheduleRefresh(delay) {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = null;
  const token = state.creds && state.creds.token;
  const claims = token && jwtClaims(token);
  if (!claims) return;
  const expires = timeOf(claims.exp * 1000);
  if (!state.tokenUrl) {
    logEvent('info', `your token expires at ${expires}; then you will be asked for a new one (a token URL renews it by itself)`);
    return;
  }
  const wait = delay ?? refreshDelay(token);
  if (!Number.isFinite(wait)) return;
  state.refreshTimer = setTimeout(refreshToken, Math.max(0, wait));
}

// Renews the token over the open connection (`refresh`), so it is not closed at the old `exp`.
async function refreshToken() {
  state.refreshTimer = null;
  const ws = state.ws;
  let token;
  try {
    token = await fetchToken(state.tokenUrl);
  } catch (e) {
    if (state.ws !== ws) return;
    logEvent('error', `could not renew the token from the token URL (${e.message}); retrying`);
    scheduleRefresh(TOKEN_RETRY_MS);
    return;
  }
  if (state.ws !== ws) return;
  request({ type: 'refresh', token }, (_ack, err) => {
    if (err) {
      // `unauthorized` closes the connection (the login form tells why); `disconnected` reconnects.
      if (err.code !== 'disconnected') logEvent('error', `token refresh refused: ${err.code}`);
      return;
    }
    state.creds = { token };
    const c = jwtClaims(token);
    logEvent('conn', `token refreshed${c ? `, valid until ${timeOf(c.exp * 1000)}` : ''}`);
    scheduleRefresh();
  });
}
