// Conversations and rooms: the messages each shows (in message-id order, each once, whether it
// came live, replayed after a reconnect or read back from history), selecting one, joining and
// leaving rooms.
import { state } from './state.js';
import { fieldError, logEvent, ui } from './dom.js';
import { Timeline, idAtTime } from './timeline.js';
import { request } from './net.js';
import { noteShown, openHistory, pumpHistory } from './history.js';
import { flushOutbox, loadDraft } from './outbox.js';
import { notifyIncoming, pageVisible } from './notify.js';
import { watch } from './presence.js';
import { scheduleRead, updateSeen } from './reads.js';
import { openRoster } from './roster.js';
import { typingStopped } from './typing.js';
import {
  closeSidebar, keepingView, messagePlaced, messageRemoved, renderConvs, renderMessages, updateCompose,
} from './render.js';

// A message of this device that the server never confirmed (its connection dropped first) is
// taken to be the same as one of ours that comes back with the same body within this time.
const ADOPT_WINDOW_MS = 10 * 60 * 1000;

/**
 * The conversation `kind` ("dm" or "room") with `name`, created on first use (and then shown when
 * none is and the page is synced, unless `show` is false: during the mailbox or replay the most
 * recent conversation is shown once the lists are in, see selectMostRecent).
 */
export function getConv(kind, name, show = true) {
  const key = `${kind}:${name}`;
  let c = state.convs.get(key);
  if (!c) {
    c = {
      key, kind, name, timeline: new Timeline(), unread: 0, joined: false,
      // History: wanted once opened; loaded after its first page; more: older ones are kept.
      hist: { wanted: false, loaded: false, loading: false, more: false, error: null },
      catchUp: false,  // read back the newest pages at the next sync (a reconnect may have missed some)
      rejoined: false, // a room's membership holds on the current socket
      draft: '', error: '', // the compose box's unsent text and the reason the last send failed
      last: null,      // the newest message known (from the server's lists, or shown), for the preview
      touched: '',     // sort key of a conversation opened here before it had messages
      readSent: null, seenBy: null, // read marker sent by this page; the other party's read receipt
      typing: new Map(), // user -> when their "typing" stops showing
      roster: null, memberCount: null,
    };
    state.convs.set(key, c);
    if (kind === 'dm' && name !== state.me) watch([name], 'dm');
    renderConvs();
    if (!state.active && show && state.synced) select(key, false);
  }
  return c;
}

/** True while `c` is still a conversation of the page (not left or reset since). */
export const isCurrent = (c) => state.convs.get(c.key) === c;

/** The newest message id `c` knows of (shown, or its server-side last), for ordering the list. */
export function activity(c) {
  const shown = c.timeline.newestId() || '';
  const last = (c.last && c.last.msg) || '';
  return [shown, last, c.touched].reduce((a, b) => (b > a ? b : a), '');
}

// A frame's shape is checked before it is shown; a malformed one is reported, not thrown on.
const isText = (v) => typeof v === 'string';
const validDirect = (f) => f && f.type === 'message' && isText(f.from) && isText(f.to) && isText(f.body);
const validRoom = (f) => f && f.type === 'room_message' && isText(f.room) && isText(f.from) && isText(f.body);

/**
 * A `message` frame, from `source`: "live" (also the mailbox and the replay after a resume),
 * "history" (a page read back) or "gap" (read back after a reconnect). Returns true when it was new.
 */
export function onDirect(f, source) {
  if (!validDirect(f)) { logEvent('error', 'server sent a malformed message frame'); return false; }
  const mine = f.from === state.me;
  return ingest(getConv('dm', mine ? f.to : f.from), f, source);
}

/** A `room_message` frame, from `source` (see onDirect). Returns true when it was new. */
export function onRoom(f, source) {
  if (!validRoom(f)) { logEvent('error', 'server sent a malformed room_message frame'); return false; }
  return ingest(getConv('room', f.room), f, source);
}

/** Frames of one history answer for `c`; returns how many were new. */
export function ingestPage(c, frames, source) {
  let added = 0;
  keepingView(c, () => {
    for (const f of frames) {
      const ok = c.kind === 'dm' ? onDirect(f, source) : onRoom(f, source);
      if (ok) added += 1;
    }
  });
  scheduleRead(c);
  return added;
}

/** True when `c` is on screen: shown, in a visible tab. */
export const onScreen = (c) => c.key === state.active && pageVisible();

function ingest(c, f, source) {
  const msg = isText(f.msg) ? f.msg : null;
  if (msg && c.timeline.get(msg)) return false; // shown already: live and replayed, or paged twice
  const mine = f.from === state.me;
  const ts = typeof f.ts === 'number' ? f.ts : Date.now();
  if (msg && (!c.last || !isText(c.last.msg) || msg > c.last.msg)) c.last = f;
  if (mine && msg) {
    // Our own message whose ack was lost with the connection: it was sent after all.
    const local = c.timeline.findUnconfirmed(f.body, ['error: disconnected']);
    if (local && Math.abs(local.ts - ts) < ADOPT_WINDOW_MS) {
      confirmMessage(c, local, msg, 'confirmed', ts);
      return false;
    }
  }
  const m = {
    msg, from: f.from, body: f.body, ts, mine, el: null,
    status: !mine ? 'received' : source === 'live' ? 'other_device' : 'history',
  };
  if (msg) c.timeline.insert(m); else c.timeline.insertLocal(m, Date.now());
  messagePlaced(c, m);
  if (msg && c.kind === 'dm') noteShown();
  if (mine) updateSeen(c);
  if (source === 'live' && state.welcomed && !state.synced) state.replayed += 1;
  if (!mine) typingStopped(c, f.from);
  if (source === 'live' && !mine) {
    if (!onScreen(c)) c.unread += 1;
    notifyIncoming(c, m);
  }
  if (source !== 'history') renderConvs();
  scheduleRead(c);
  return true;
}

/** Gives a message of this device its id and status (its ack, or its copy from the server). */
export function confirmMessage(c, m, msg, status, ts) {
  if (c.timeline.confirm(m, msg) < 0) {
    // Its copy from the server was shown first: keep that one, with this status.
    messageRemoved(c, m);
    const other = c.timeline.get(msg);
    other.status = status;
    other.mine = true;
    messagePlaced(c, other);
  } else {
    m.status = status;
    if (typeof ts === 'number') m.ts = ts;
    messagePlaced(c, m);
  }
  if (!c.last || !isText(c.last.msg) || msg > c.last.msg) {
    c.last = c.kind === 'dm' ? { type: 'message', msg, from: state.me, to: c.name, body: m.body, ts: m.ts }
      : { type: 'room_message', msg, room: c.name, from: state.me, body: m.body, ts: m.ts };
  }
  if (c.kind === 'dm') noteShown();
  updateSeen(c);
  renderConvs();
  scheduleRead(c);
}

/** Shows conversation `key`; opening one the first time in this page load reads its history. */
export function select(key, focus = true) {
  const prev = state.convs.get(state.active);
  state.active = key;
  const c = state.convs.get(key);
  loadDraft(prev, c);
  if (c) openHistory(c);
  renderConvs();
  renderMessages();
  updateCompose();
  if (c) { openRoster(c); scheduleRead(c); }
  if (focus) { closeSidebar(); ui.composeBody.focus(); }
}

/** With none shown, shows the most recent conversation (after the sign-in's lists came in). */
export function selectMostRecent() {
  if (state.active) return;
  let top = null;
  for (const c of state.convs.values()) if (!top || activity(c) > activity(top)) top = c;
  if (top) select(top.key, false);
}

/** A conversation opened here (a new DM, a room joined): it goes to the top of the list. */
export function touch(c) {
  c.touched = idAtTime(Date.now());
  renderConvs();
}

/** Joins `room` (the join form): shown once the server acks; the reason beside the form if not. */
export function joinRoom(room) {
  fieldError(ui.joinError, '');
  request({ type: 'join', room }, (_a, err) => {
    if (err) {
      fieldError(ui.joinError, err.code === 'disconnected' ? 'Not connected: join again once connected.'
        : `Could not join ${room}: ${err.code}${err.message ? ` (${err.message})` : ''}`);
      return;
    }
    if (ui.joinRoom.value.trim() === room) ui.joinRoom.value = '';
    const c = getConv('room', room);
    c.joined = true;
    c.rejoined = true;
    touch(c);
    select(c.key);
    flushOutbox();
  });
}

export function leaveRoom(c) {
  request({ type: 'leave', room: c.name }, (_a, err) => {
    if (err) { logEvent('error', `could not leave ${c.name}: ${err.code}`); return; }
    removeConv(c);
    logEvent('info', `left room ${c.name}`);
  });
}

/** Drops conversation `c` from the page (a room left here or on another device). */
export function removeConv(c) {
  if (!isCurrent(c)) return;
  state.convs.delete(c.key);
  if (state.active === c.key) {
    state.active = null;
    const next = state.convs.keys().next().value;
    if (next) select(next, false); else loadDraft(null, null);
  }
  renderConvs(); renderMessages(); updateCompose();
}

/** Without accounts on the server joins belong to a connection: after a reconnect, join again. */
export function rejoinRooms() {
  for (const c of state.convs.values()) {
    if (c.kind !== 'room' || !c.joined) continue;
    request({ type: 'join', room: c.name }, (_a, err) => {
      if (!isCurrent(c)) return;
      if (err) {
        if (err.code !== 'disconnected') { c.joined = false; renderConvs(); renderMessages(); updateCompose(); }
        return;
      }
      c.rejoined = true;
      pumpHistory(c);
      flushOutbox();
    });
  }
}
