// Rendering: the shown conversation (kept in step message by message, so a replay of hundreds of
// messages does not redraw the list each time), its history bar, the compose box's state, and
// which of the login form and the chat is visible. The sidebar is drawn by sidebar.js.
import { state } from './state.js';
import { el, timeOf, ui } from './dom.js';
import { loadOlder } from './history.js';
import { closeSidebar } from './layout.js';
import { renderRoster } from './roster.js';
import { renderConvs, renderWatch } from './sidebar.js';
import { renderTyping } from './typing.js';

export { closeSidebar, renderConvs, renderWatch };

const STATUS_TEXT = {
  queued: 'waiting to send', sending: 'sending…', delivered: 'delivered', offline: 'recipient offline',
  no_subscribers: 'no one else in the room', other_device: 'sent from another device',
  confirmed: 'sent (confirmed after reconnecting)', received: '', history: '',
  'error: disconnected': 'not confirmed: connection lost',
};

function statusText(c, m) {
  if (m.status === 'stored') return `stored — delivered when ${c.name} connects`;
  return STATUS_TEXT[m.status] ?? m.status;
}

function messageElement(c, m) {
  const status = statusText(c, m);
  return el('li', {
    className: `msg${m.mine ? ' mine' : ''}${m.status.startsWith('error') ? ' failed' : ''}${m.status === 'queued' ? ' queued' : ''}`,
    dataset: { testid: 'msg', from: m.from, status: m.status, msg: m.msg ?? undefined, req: m.req ?? undefined },
  },
  el('div', { className: 'meta' },
    el('span', { className: 'from', text: m.from }),
    el('time', { text: timeOf(m.ts) }),
    status ? el('span', { className: 'status', dataset: { testid: 'msg-status' }, text: status }) : null),
  el('div', { className: 'body', dataset: { testid: 'msg-body' }, text: m.body }),
  c.seenMsg === m ? el('div', { className: 'seen', dataset: { testid: 'seen' }, text: 'seen' }) : null);
}

const nearBottom = (list) => list.scrollHeight - list.scrollTop - list.clientHeight < 40;
let batching = false; // inside keepingView: it fixes the scroll position once at the end

/**
 * Runs `fn`, which adds many messages to `c` (a history page), keeping the view: at the bottom if
 * it was there, else with the message at the top of the view where it was (older ones come in
 * above it, out of view).
 */
export function keepingView(c, fn) {
  if (c.key !== state.active || batching) { fn(); return; }
  const list = ui.messages;
  const top = list.getBoundingClientRect().top;
  const anchor = [...list.children].find((e) => e.getBoundingClientRect().bottom > top);
  const offset = anchor ? anchor.getBoundingClientRect().top - top : 0;
  const atBottom = nearBottom(list);
  batching = true;
  try { fn(); } finally { batching = false; }
  if (atBottom) list.scrollTop = list.scrollHeight;
  else if (anchor && anchor.isConnected) list.scrollTop += anchor.getBoundingClientRect().top - top - offset;
}

/**
 * Message `m` of `c` is new, moved or changed: (re)draws it in its place when `c` is shown. The
 * view stays at the bottom when it was there, and otherwise keeps its place when older messages
 * come in above it.
 */
export function messagePlaced(c, m) {
  if (c.key !== state.active) return;
  const list = ui.messages;
  const items = c.timeline.items;
  const i = items.indexOf(m);
  if (i < 0) return;
  let next = null;
  for (let j = i + 1; j < items.length && !next; j++) if (items[j].el && items[j].el.parentNode === list) next = items[j].el;
  const fresh = messageElement(c, m);
  if (batching) {
    if (m.el && m.el.parentNode === list) m.el.remove();
    m.el = fresh;
    list.insertBefore(fresh, next);
    return;
  }
  const atBottom = nearBottom(list);
  const above = next !== null && next.getBoundingClientRect().top < list.getBoundingClientRect().top;
  const before = list.scrollHeight;
  if (m.el && m.el.parentNode === list) m.el.remove();
  m.el = fresh;
  list.insertBefore(fresh, next);
  if (atBottom) list.scrollTop = list.scrollHeight;
  else if (above) list.scrollTop += list.scrollHeight - before;
}

/** Message `m` of `c` is gone (merged into its copy from the server). */
export function messageRemoved(c, m) {
  if (m.el && m.el.parentNode === ui.messages) m.el.remove();
  m.el = null;
}

/** Redraws the shown conversation from scratch (another one was selected, or it changed a lot). */
export function renderMessages() {
  const c = state.convs.get(state.active);
  ui.convTitle.textContent = !c ? 'No conversation selected'
    : c.kind === 'room' ? `Room ${c.name}${c.joined ? '' : ' (not joined)'}`
      : c.name === state.me ? 'Notes to yourself' : `Direct messages with ${c.name}`;
  ui.convTitle.dataset.conv = c ? c.key : '';
  const atBottom = nearBottom(ui.messages);
  ui.messages.replaceChildren(...(c ? c.timeline.items : []).map((m) => { m.el = messageElement(c, m); return m.el; }));
  if (atBottom) ui.messages.scrollTop = ui.messages.scrollHeight;
  renderHistoryBar();
  renderTyping();
  renderRoster();
}

/** The bar above the messages: "load older", history loading, or why it failed. */
export function renderHistoryBar() {
  const c = state.convs.get(state.active);
  const h = c && c.hist;
  let text = '';
  let button = null;
  if (h && h.error) { text = h.error; button = 'Retry'; }
  else if (h && h.loading) text = 'loading history…';
  else if (h && h.loaded && h.more) button = 'Load older messages';
  else if (h && h.loaded && c.timeline.size > 0) text = 'beginning of the kept history';
  ui.historyBar.hidden = !text && !button;
  ui.historyBar.dataset.conv = c ? c.key : '';
  ui.historyStatus.textContent = text;
  ui.historyStatus.className = h && h.error ? 'error' : 'muted';
  ui.historyStatus.setAttribute('role', h && h.error ? 'alert' : 'status');
  ui.loadOlder.hidden = !button;
  ui.loadOlder.textContent = button || '';
  ui.loadOlder.disabled = !state.welcomed;
}

export function updateCompose() {
  const c = state.convs.get(state.active);
  // Open while disconnected too: what is sent then waits and goes out on reconnect.
  const ok = Boolean(c && (c.kind === 'dm' || c.joined));
  ui.composeBody.disabled = !ok;
  ui.composeSend.disabled = !ok;
  ui.composeBody.placeholder = !c ? 'Pick or start a conversation'
    : !ok ? 'Join the room again to write here'
      : state.welcomed ? 'Write a message (Enter sends, Shift+Enter for a new line)'
        : 'Offline: what you send now waits, and goes out when reconnected';
  renderHistoryBar();
}

export function renderAll() {
  renderConvs(); renderMessages(); renderWatch();
}

export function showChat() {
  ui.who.hidden = false;
  ui.sidebarToggle.hidden = false;
  ui.eventsToggle.hidden = false;
  ui.login.hidden = true;
  ui.chat.hidden = false;
  ui.signout.hidden = false;
  ui.loginError.textContent = '';
}

export function showLogin(message) {
  ui.login.hidden = false;
  ui.chat.hidden = true;
  ui.who.hidden = true;
  ui.signout.hidden = true;
  ui.sidebarToggle.hidden = true;
  ui.eventsToggle.hidden = true;
  ui.loginError.textContent = message || '';
}

/** Wires the history bar's button. */
export function bindHistoryBar() {
  ui.loadOlder.addEventListener('click', () => loadOlder());
}
