// What the server sends: answers go to their requests, events to the part of the page they
// concern; the welcome sets the connection up.
import { state } from './state.js';
import { logEvent, setConn, ui } from './dom.js';
import { answer, updateReconnectButton } from './net.js';
import { onDirect, onRoom, rejoinRooms } from './convs.js';
import { onStreamError, onSynced, onWelcomeStreams } from './history.js';
import { onJoined, onLeft } from './account.js';
import { startNodesRefresh } from './nodes.js';
import { flushOutbox } from './outbox.js';
import { rewatch, setWatched } from './presence.js';
import { onRead } from './reads.js';
import { scheduleRefresh } from './refresh.js';
import { onTyping } from './typing.js';
import { renderAll, showChat, updateCompose } from './render.js';

/** One frame from the server. */
export function handleFrame(f) {
  if (f.type === 'error') return onError(f);
  // Every frame that answers a request carries its id (`ack`, `presence`, `history`, `rooms`, ...).
  if (f.id !== undefined && state.pending.has(f.id)) return answer(f.id, f, null);
  switch (f.type) {
    case 'welcome': return onWelcome(f);
    case 'message': return onDirect(f, 'live');
    case 'room_message': return onRoom(f, 'live');
    case 'synced': return onSynced(f);
    case 'presence_change': return setWatched(f.user, f.status);
    case 'joined': return onJoined(f);
    case 'left': return onLeft(f);
    case 'read': return onRead(f);
    case 'typing': return onTyping(f);
    // An answer to a request the page gave up on (its socket was replaced).
    case 'ack': case 'presence': case 'history': case 'rooms': case 'members': case 'conversations': return undefined;
    default: logEvent('info', `unhandled frame type "${f.type}"`);
  }
  return undefined;
}

function onError(f) {
  logEvent('error', `error ${f.code}${f.id ? ` (request ${f.id})` : ''}: ${f.message || ''}`);
  if (f.code === 'unauthorized') state.authError = f.message || 'unauthorized';
  if (f.code === 'token_expired') state.tokenExpired = true;
  if (f.id === undefined && onStreamError(f)) return;
  answer(f.id, null, f);
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
  updateReconnectButton();
  logEvent('conn', `welcome ${f.user} on node ${f.node} (session ${f.session})${state.since ? `; resuming after message ${state.since}` : ''}`);
  // The name is remembered per tab: another tab signed in as someone else does not change it.
  if (state.creds.user) try { sessionStorage.setItem('chatmesh.user', state.creds.user); } catch { /* storage disabled */ }
  onWelcomeStreams();
  startNodesRefresh();
  rewatch();
  // Without accounts on the server a join belongs to the connection: join again. With them, the
  // rooms come from the server's `rooms` list once synced.
  if (!first && state.accounts === false) rejoinRooms();
  flushOutbox();
  updateCompose();
  if (state.creds.token) scheduleRefresh();
}

/** Forgets every conversation and watch (sign-out, or another user signed in). */
export function resetData() {
  state.convs.clear();
  state.watched.clear();
  state.watchWhy.clear();
  state.outbox = [];
  state.accounts = null;
  state.convMore = false;
  state.active = null;
  state.pending.clear();
  state.hiddenCount = 0;
  ui.events.replaceChildren();
  ui.composeBody.value = '';
  renderAll();
}
