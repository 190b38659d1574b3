// Read state. While a conversation or room is on screen (shown, tab visible) the page marks the
// newest message it shows as read (`read`, only when that advanced). A `read` event from this
// user (any device) clears the unread badge; one from the other party of a conversation is a read
// receipt: "seen" under the last own message they have read.
import { state } from './state.js';
import { logEvent } from './dom.js';
import { request } from './net.js';
import { isCurrent, onScreen } from './convs.js';
import { messagePlaced, renderConvs } from './render.js';

const READ_DELAY_MS = 100; // a burst of messages (a history page, a replay) makes one `read`

/** `c` changed while it may be on screen: mark its newest message read soon. */
export function scheduleRead(c) {
  if (!onScreen(c)) return;
  if (state.accounts === false) {
    // A server without read state: what is on screen is read on this page only.
    if (c.unread) { c.unread = 0; renderConvs(); }
    return;
  }
  if (!state.accounts || !state.welcomed || c.readTimer) return;
  c.readTimer = setTimeout(() => { c.readTimer = null; sendRead(c); }, READ_DELAY_MS);
}

function sendRead(c) {
  if (!isCurrent(c) || !state.accounts || !state.welcomed || !onScreen(c)) return;
  const newest = c.timeline.newestId();
  if (!newest || (c.readSent && newest <= c.readSent)) return;
  const before = c.readSent;
  c.readSent = newest;
  if (c.unread) { c.unread = 0; renderConvs(); }
  const target = c.kind === 'dm' ? { with: c.name } : { room: c.name };
  request({ type: 'read', ...target, msg: newest }, (_ack, err) => {
    if (!err) return;
    if (c.readSent === newest) c.readSent = before; // not marked: try again later
    if (err.code !== 'disconnected') logEvent('error', `could not mark ${c.name} read: ${err.code}`);
  });
}

// How many of `c`'s messages from others come after read marker `marker`, when the page can tell.
function unreadAfter(c, marker) {
  const newest = [c.timeline.newestId() || '', (c.last && c.last.msg) || ''].reduce((a, b) => (b > a ? b : a));
  if (!newest || newest <= marker) return 0;
  const oldest = c.timeline.oldestId();
  if (!oldest || oldest > marker) return c.unread; // the page does not show that far back
  return c.timeline.items.filter((m) => m.msg && m.msg > marker && !m.mine).length;
}

/** `{"type":"read","user":U,"with":W|"room":R,"msg":M}`. */
export function onRead(f) {
  if (typeof f.user !== 'string' || typeof f.msg !== 'string') return;
  let key = null;
  if (typeof f.room === 'string') key = `room:${f.room}`;
  else if (typeof f.with === 'string') key = f.user === state.me ? `dm:${f.with}` : f.with === state.me ? `dm:${f.user}` : null;
  const c = key && state.convs.get(key);
  if (!c) return;
  if (f.user === state.me) {
    if (!c.readSent || f.msg > c.readSent) c.readSent = f.msg;
    const n = unreadAfter(c, f.msg);
    if (n !== c.unread) { c.unread = n; renderConvs(); }
  } else if (c.kind === 'dm' && (!c.seenBy || f.msg > c.seenBy)) {
    c.seenBy = f.msg;
    updateSeen(c);
  }
}

/** Moves "seen" to the last own message of `c` the other party has read. */
export function updateSeen(c) {
  if (c.kind !== 'dm' || !c.seenBy) return;
  let target = null;
  const items = c.timeline.items;
  for (let i = items.length - 1; i >= 0 && !target; i--) {
    const m = items[i];
    if (m.mine && m.msg && m.msg <= c.seenBy) target = m;
  }
  if (c.seenMsg === target) return;
  const old = c.seenMsg;
  c.seenMsg = target;
  if (old && items.includes(old)) messagePlaced(c, old);
  if (target) messagePlaced(c, target);
}
