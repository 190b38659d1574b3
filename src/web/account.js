// What belongs to the user rather than to the tab (protocol "Accounts"): after every `synced` the
// sidebar is rebuilt from the server's `rooms` and `conversations` lists, with their unread counts
// and last messages; `joined` / `left` from the user's other devices keep it in step live.
import { CONVERSATIONS_PAGE, ID_RE, state } from './state.js';
import { logEvent, ui } from './dom.js';
import { request } from './net.js';
import { getConv, rejoinRooms, removeConv, selectMostRecent, touch } from './convs.js';
import { pumpHistory } from './history.js';
import { flushOutbox } from './outbox.js';
import { scheduleRead, updateSeen } from './reads.js';
import { openRoster } from './roster.js';
import { renderConvs, renderMessages, updateCompose } from './render.js';

const newer = (frame, c) => frame && typeof frame.msg === 'string' && (!c.last || typeof c.last.msg !== 'string' || frame.msg > c.last.msg);

/** The mailbox or replay is complete: read the user's rooms, then conversations. */
export function loadAccount() {
  request({ type: 'rooms' }, (ans, err) => {
    if (err) {
      if (err.code === 'unknown_type' || err.code === 'bad_request') noAccounts();
      else if (err.code !== 'disconnected') logEvent('error', `could not list your rooms: ${err.code}`);
      return;
    }
    if (!ans || ans.type !== 'rooms' || !Array.isArray(ans.rooms)) { noAccounts(); return; }
    state.accounts = true;
    applyRooms(ans.rooms);
    loadConversations(null);
  });
}

// A server without accounts: a join holds for one connection, so the page joins again itself.
function noAccounts() {
  if (state.accounts !== false) logEvent('info', 'this server keeps no rooms or read state per user: rooms are joined again on each connection');
  state.accounts = false;
  rejoinRooms();
  selectMostRecent();
}

function applyRooms(list) {
  const listed = new Set();
  for (const r of list) {
    if (!r || typeof r.room !== 'string' || !ID_RE.test(r.room)) continue;
    listed.add(r.room);
    const c = getConv('room', r.room, false);
    c.joined = true;
    c.rejoined = true;
    if (typeof r.members === 'number') c.memberCount = r.members;
    if (newer(r.last, c)) c.last = r.last;
    setUnread(c, r.unread);
    pumpHistory(c);
  }
  // A room not listed was left on another device while this one was away (one joined on this
  // connection since is kept: the list may predate it).
  for (const c of [...state.convs.values()]) {
    if (c.kind === 'room' && !listed.has(c.name) && !c.rejoined) removeConv(c);
  }
  flushOutbox();
  const a = state.convs.get(state.active);
  if (a) { openRoster(a); scheduleRead(a); }
  renderConvs(); renderMessages(); updateCompose();
}

function setUnread(c, n) {
  if (typeof n !== 'number' || n < 0) return;
  c.unread = n;
  if (n > 0) c.readSent = null; // the server's marker is behind: mark again what is on screen
}

function loadConversations(before) {
  request({ type: 'conversations', limit: CONVERSATIONS_PAGE, ...(before ? { before } : {}) }, (ans, err) => {
    if (err || !ans || !Array.isArray(ans.conversations)) {
      if (!err || err.code !== 'disconnected') logEvent('error', `could not list your conversations: ${err ? err.code : 'bad answer'}`);
      return;
    }
    let oldest = null;
    for (const v of ans.conversations) {
      if (!v || typeof v.with !== 'string' || !ID_RE.test(v.with)) continue;
      const c = getConv('dm', v.with, false);
      if (newer(v.last, c)) c.last = v.last;
      if (v.last && typeof v.last.msg === 'string' && (oldest === null || v.last.msg < oldest)) oldest = v.last.msg;
      setUnread(c, v.unread);
      // How far the other party read: "seen" survives a reload.
      if (typeof v.seen === 'string' && (!c.seenBy || v.seen > c.seenBy)) {
        c.seenBy = v.seen;
        updateSeen(c);
      }
    }
    if (!before || oldest) state.convOldest = oldest ?? state.convOldest;
    state.convMore = ans.more === true;
    selectMostRecent();
    const a = state.convs.get(state.active);
    if (a) scheduleRead(a);
    renderConvs();
  });
}

/** The "older conversations" button: the next page of the sidebar. */
export function loadOlderConversations() {
  if (state.convOldest) loadConversations(state.convOldest);
}

/** `{"type":"joined","room":R}`: this user joined R on another device. */
export function onJoined(f) {
  if (typeof f.room !== 'string' || !ID_RE.test(f.room)) return;
  const c = getConv('room', f.room, false);
  c.joined = true;
  c.rejoined = true;
  touch(c);
  logEvent('info', `joined room ${f.room} on another device`);
  if (state.active === c.key) { renderMessages(); updateCompose(); openRoster(c); }
  pumpHistory(c);
  flushOutbox();
}

/** `{"type":"left","room":R}`: this user left R on another device. */
export function onLeft(f) {
  const c = typeof f.room === 'string' && state.convs.get(`room:${f.room}`);
  if (!c) return;
  logEvent('info', `left room ${f.room} on another device`);
  removeConv(c);
}

/** Wires the "older conversations" button. */
export function bindAccount() {
  ui.convMore.addEventListener('click', () => loadOlderConversations());
}
