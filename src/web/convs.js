// Conversations and rooms: the messages each shows (in message-id order, each once, whether it
// came live, replayed after a reconnect or read back from history), sending, joining and leaving.
import { MAX_BODY_BYTES, state } from './state.js';
import { byteLength, logEvent, ui } from './dom.js';
import { Timeline } from './timeline.js';
import { request } from './net.js';
import { noteShown, openHistory, pumpHistory } from './history.js';
import { keepingView, messagePlaced, messageRemoved, renderConvs, renderMessages, updateCompose } from './render.js';

// A message of this device that the server never confirmed (its connection dropped first) is
// taken to be the same as one of ours that comes back with the same body within this time.
const ADOPT_WINDOW_MS = 10 * 60 * 1000;

/** The conversation `kind` ("dm" or "room") with `name`, created (and shown if none is) on first use. */
export function getConv(kind, name) {
  const key = `${kind}:${name}`;
  let c = state.convs.get(key);
  if (!c) {
    c = {
      key, kind, name, timeline: new Timeline(), unread: 0, joined: false,
      // History: wanted once opened; loaded after its first page; more: older ones are kept.
      hist: { wanted: false, loaded: false, loading: false, more: false, error: null },
      catchUp: false,  // read back the newest pages at the next sync (a reconnect may have missed some)
      rejoined: false, // a room's join was acked on the current socket
    };
    state.convs.set(key, c);
    renderConvs();
    if (!state.active) select(key, false);
  }
  return c;
}

/** True while `c` is still a conversation of the page (not left or reset since). */
export const isCurrent = (c) => state.convs.get(c.key) === c;

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
  return added;
}

function ingest(c, f, source) {
  const msg = isText(f.msg) ? f.msg : null;
  if (msg && c.timeline.get(msg)) return false; // shown already: live and replayed, or paged twice
  const mine = f.from === state.me;
  const ts = typeof f.ts === 'number' ? f.ts : Date.now();
  if (mine && msg) {
    // Our own message whose ack was lost with the connection: it was sent after all.
    const local = c.timeline.findUnconfirmed(f.body, ['error: disconnected']);
    if (local && Math.abs(local.ts - ts) < ADOPT_WINDOW_MS) {
      confirm(c, local, msg, 'confirmed', ts);
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
  if (source === 'live' && state.welcomed && !state.synced) state.replayed += 1;
  if (!mine && c.key !== state.active && source !== 'history') { c.unread += 1; renderConvs(); }
  return true;
}

// Gives a message of this device its id and status (its ack, or its copy from the server).
function confirm(c, m, msg, status, ts) {
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
  if (c.kind === 'dm') noteShown();
}

/** Shows conversation `key`; opening one the first time in this page load reads its history. */
export function select(key, focus = true) {
  state.active = key;
  const c = state.convs.get(key);
  if (c) { c.unread = 0; openHistory(c); }
  renderConvs();
  renderMessages();
  updateCompose();
  if (focus) ui.composeBody.focus();
}

/** Sends `body` to the shown conversation or room. */
export function sendMessage(body) {
  const c = state.convs.get(state.active);
  if (!c || !body.trim()) return;
  if (byteLength(body) > MAX_BODY_BYTES) { logEvent('error', 'message too large: at most 16 KiB'); return; }
  const m = { msg: null, from: state.me, body, ts: Date.now(), mine: true, status: 'sending', el: null };
  c.timeline.insertLocal(m, Date.now());
  messagePlaced(c, m);
  const frame = c.kind === 'dm' ? { type: 'send', to: c.name, body } : { type: 'publish', room: c.name, body };
  m.req = request(frame, (ack, err) => {
    if (!c.timeline.items.includes(m)) return; // merged with its copy from the server meanwhile
    if (err) { m.status = `error: ${err.code}`; messagePlaced(c, m); return; }
    if (isText(ack.msg)) confirm(c, m, ack.msg, ack.status, ack.ts);
    else { m.status = ack.status; messagePlaced(c, m); }
  });
  messagePlaced(c, m); // now with its request id
}

export function joinRoom(room) {
  request({ type: 'join', room }, (_a, err) => {
    if (err) return;
    const c = getConv('room', room);
    c.joined = true;
    c.rejoined = true;
    select(c.key);
  });
}

export function leaveRoom(c) {
  request({ type: 'leave', room: c.name }, (_a, err) => {
    if (err) return;
    state.convs.delete(c.key);
    if (state.active === c.key) state.active = state.convs.keys().next().value ?? null;
    renderConvs(); renderMessages(); updateCompose();
    logEvent('info', `left room ${c.name}`);
  });
}

/** Joins belong to a connection: after a reconnect, join the rooms again, then catch up on them. */
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
    });
  }
}
