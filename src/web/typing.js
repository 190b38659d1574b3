// Typing: while the user writes, `typing` goes to the conversation's partner or room (at most one
// per TYPING_SEND_MS per conversation); one received shows "bob is typing…" for TYPING_SHOW_MS, or
// until bob's message arrives. Typing of this user's other devices is ignored.
import { TYPING_SEND_MS, TYPING_SHOW_MS, state } from './state.js';
import { ui } from './dom.js';
import { sendFrame } from './net.js';
import { renderConvs } from './render.js';

let expiryTimer = null;

/** The user typed in `c`'s compose box. */
export function userTyping(c) {
  if (!state.accounts || !state.welcomed) return;
  if (c.kind === 'room' ? !c.joined : c.name === state.me) return; // no one to tell
  const now = Date.now();
  if (c.typingSent && now - c.typingSent < TYPING_SEND_MS) return;
  if (sendFrame(c.kind === 'dm' ? { type: 'typing', to: c.name } : { type: 'typing', room: c.name })) c.typingSent = now;
}

/** `{"type":"typing","from":U,"to":me}` or `{"type":"typing","from":U,"room":R}`. */
export function onTyping(f) {
  if (typeof f.from !== 'string' || f.from === state.me) return;
  const key = typeof f.room === 'string' ? `room:${f.room}` : `dm:${f.from}`;
  const c = state.convs.get(key);
  if (!c) return;
  c.typing.set(f.from, Date.now() + TYPING_SHOW_MS);
  redraw();
}

/** `user`'s message arrived in `c`: they stopped typing it. */
export function typingStopped(c, user) {
  if (c.typing.delete(user)) redraw();
}

/** The connection dropped: typing seen through it is stale. */
export function clearTyping() {
  for (const c of state.convs.values()) c.typing.clear();
  redraw();
}

/** Who is typing in `c` now, in the order they started. */
export function typers(c) {
  const now = Date.now();
  for (const [u, until] of c.typing) if (until <= now) c.typing.delete(u);
  return [...c.typing.keys()];
}

/** "bob is typing…", "alice and bob are typing…", "3 people are typing…", or ''. */
export function typingText(who) {
  if (!who.length) return '';
  if (who.length === 1) return `${who[0]} is typing…`;
  if (who.length === 2) return `${who[0]} and ${who[1]} are typing…`;
  return `${who.length} people are typing…`;
}

function redraw() {
  renderTyping();
  renderConvs();
}

/** The line under the shown conversation's messages; redrawn again when the next one expires. */
export function renderTyping() {
  const c = state.convs.get(state.active);
  const who = c ? typers(c) : [];
  ui.typing.textContent = typingText(who);
  ui.typing.dataset.users = who.join(',');
  clearTimeout(expiryTimer);
  expiryTimer = null;
  let soonest = Infinity;
  for (const conv of state.convs.values()) for (const until of conv.typing.values()) soonest = Math.min(soonest, until);
  if (soonest < Infinity) expiryTimer = setTimeout(redraw, Math.max(0, soonest - Date.now()) + 20);
}
