// Writing messages: the compose box of each conversation keeps its unsent text (its draft) when
// another one is shown; a message too large is refused here with the reason beside the box, and
// one the server refuses comes back into the box with the server's reason. Messages written while
// they cannot be sent (no connection, or a room not yet re-joined) wait in the outbox, shown as
// "waiting to send", and go out in the order they were written once they can.
import { MAX_BODY_BYTES, state } from './state.js';
import { byteLength, fieldError, ui } from './dom.js';
import { isOpen, request } from './net.js';
import { confirmMessage, isCurrent } from './convs.js';
import { userTyping } from './typing.js';
import { messagePlaced, messageRemoved } from './render.js';

const ERROR_TEXT = {
  too_large: 'it is too large (at most 16 KiB)',
  not_member: 'you are not a member of this room (join it again)',
  unavailable: 'the server could not deliver it just now; try again',
  rate_limited: 'you are sending too fast; wait a moment and send again',
  bad_request: 'the server refused it',
};

const tooLong = (n) => `Too long: ${n.toLocaleString('en')} bytes; a message holds at most ${MAX_BODY_BYTES.toLocaleString('en')} bytes (16 KiB) of UTF-8. Shorten it to send.`;

/** The shown conversation's compose error ('' clears it). */
export function showComposeError() {
  const c = state.convs.get(state.active);
  fieldError(ui.composeError, c ? c.error : '');
}

function setError(c, text) {
  c.error = text;
  if (c.key === state.active) showComposeError();
}

/** The compose form was submitted: sends its text, or says beside it why not (keeping the text). */
export function submitCompose() {
  const c = state.convs.get(state.active);
  const body = ui.composeBody.value;
  if (!c || !body.trim()) return;
  const size = byteLength(body);
  if (size > MAX_BODY_BYTES) { setError(c, tooLong(size)); return; }
  ui.composeBody.value = '';
  c.draft = '';
  setError(c, '');
  sendMessage(c, body);
}

/** The compose box changed: keep the draft, warn at once when it is too long, say "typing". */
export function composeInput() {
  const c = state.convs.get(state.active);
  if (!c) return;
  c.draft = ui.composeBody.value;
  const size = byteLength(c.draft);
  if (size > MAX_BODY_BYTES) setError(c, tooLong(size));
  else if (c.error.startsWith('Too long')) setError(c, '');
  if (c.draft.trim()) userTyping(c);
}

/** Another conversation is shown: its draft and its error go into the box. */
export function loadDraft(prev, next) {
  if (prev) prev.draft = ui.composeBody.value;
  ui.composeBody.value = next ? next.draft : '';
  showComposeError();
}

// A room's messages can go once its membership holds on this connection.
const canSend = (c) => isOpen() && (c.kind === 'dm' || (c.joined && c.rejoined));

function sendMessage(c, body) {
  const m = { msg: null, from: state.me, body, ts: Date.now(), mine: true, status: 'queued', el: null };
  c.timeline.insertLocal(m, Date.now());
  messagePlaced(c, m);
  state.outbox.push({ c, m });
  flushOutbox();
}

/** Sends what waits in the outbox and can go now, in order (per conversation, nothing overtakes). */
export function flushOutbox() {
  const blocked = new Set();
  const left = [];
  for (const item of state.outbox) {
    const { c, m } = item;
    if (!isCurrent(c) || !c.timeline.items.includes(m)) continue;
    if (blocked.has(c) || !canSend(c)) { blocked.add(c); left.push(item); continue; }
    transmit(c, m);
  }
  state.outbox = left;
}

function transmit(c, m) {
  const frame = c.kind === 'dm' ? { type: 'send', to: c.name, body: m.body } : { type: 'publish', room: c.name, body: m.body };
  m.status = 'sending';
  m.req = request(frame, (ack, err) => {
    if (!c.timeline.items.includes(m)) return; // merged with its copy from the server meanwhile
    if (err) {
      if (err.code !== 'disconnected') { refused(c, m, err); return; }
      // Sent, then the connection dropped before the ack: it may have arrived (see convs.js).
      m.status = 'error: disconnected';
      messagePlaced(c, m);
      return;
    }
    // A note to oneself is kept in one's own stream: delivered, whatever an older server says.
    const status = c.kind === 'dm' && c.name === state.me && ack.status !== 'delivered' ? 'delivered' : ack.status;
    if (typeof ack.msg === 'string') confirmMessage(c, m, ack.msg, status, ack.ts);
    else { m.status = status; messagePlaced(c, m); }
  });
  messagePlaced(c, m); // now with its request id
}

// The server refused the message: it leaves the list, its text goes back into the box.
function refused(c, m, err) {
  c.timeline.remove(m);
  messageRemoved(c, m);
  if (!isCurrent(c)) return;
  const current = c.key === state.active ? ui.composeBody.value : c.draft;
  c.draft = current ? `${m.body}\n${current}` : m.body;
  if (c.key === state.active) ui.composeBody.value = c.draft;
  setError(c, `Not sent: ${ERROR_TEXT[err.code] || err.code}${err.message ? ` (${err.code}: ${err.message})` : ` (${err.code})`}. Your text is back in the box.`);
}
