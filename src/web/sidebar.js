// The sidebar: the conversations and rooms, most recent first, each with its unread badge, last
// message (or who is typing), and for a conversation its partner's online dot; the Watching list.
import { state } from './state.js';
import { el, ui } from './dom.js';
import { activity, getConv, leaveRoom, select } from './convs.js';
import { pinned, unwatch } from './presence.js';
import { typers, typingText } from './typing.js';

const PREVIEW_CHARS = 80;

function preview(c) {
  const who = typers(c);
  if (who.length) return { text: typingText(who), typing: true };
  const last = c.last;
  if (!last || typeof last.body !== 'string') {
    return { text: c.kind === 'room' && typeof c.memberCount === 'number' ? `${c.memberCount} member${c.memberCount === 1 ? '' : 's'}` : '' };
  }
  const body = last.body.replace(/\s+/g, ' ').trim();
  const short = body.length > PREVIEW_CHARS ? `${body.slice(0, PREVIEW_CHARS - 1)}…` : body;
  const from = last.from === state.me ? 'you' : last.from;
  return { text: c.kind === 'room' || last.from === state.me ? `${from}: ${short}` : short };
}

function convItem(c) {
  const label = c.kind === 'room' ? `#${c.name}` : c.name === state.me ? `${c.name} (notes)` : c.name;
  const p = preview(c);
  const status = c.kind === 'dm' && c.name !== state.me ? state.watched.get(c.name) || 'unknown' : null;
  const open = el('button', { type: 'button', className: 'conv-open', onclick: () => select(c.key) },
    el('span', { className: 'conv-name', text: label }),
    p.text ? el('span', { className: `preview${p.typing ? ' typing' : ''}`, dataset: { testid: 'conv-preview' }, text: p.text }) : null);
  const li = el('li', {
    className: `conv${c.key === state.active ? ' active' : ''}${c.unread ? ' unread' : ''}`,
    dataset: { testid: 'conv-item', conv: c.key, kind: c.kind, name: c.name, unread: String(c.unread), status: status ?? undefined },
  },
  status ? el('span', { className: `dot ${status}`, title: status, dataset: { testid: 'presence-dot' } })
    : el('span', { className: 'dot-space', 'aria-hidden': 'true' }),
  open);
  if (c.unread) li.append(el('span', { className: 'badge', dataset: { testid: 'unread' }, text: String(c.unread) }));
  if (c.kind === 'room') {
    li.append(el('button', {
      type: 'button', className: 'icon', title: `leave ${c.name}`, text: '×',
      dataset: { testid: 'leave-btn' }, onclick: () => leaveRoom(c),
    }));
  }
  return li;
}

export function renderConvs() {
  const convs = [...state.convs.values()].map((c) => ({ c, at: activity(c) }))
    .sort((a, b) => (a.at !== b.at ? (a.at < b.at ? 1 : -1) : a.c.key < b.c.key ? -1 : 1));
  ui.convList.replaceChildren(...convs.map(({ c }) => convItem(c)));
  ui.convMore.hidden = !state.convMore;
  const unread = convs.reduce((n, { c }) => n + (c.unread || 0), 0);
  ui.sidebarBadge.hidden = !unread;
  ui.sidebarBadge.textContent = unread ? String(unread) : '';
}

export function renderWatch() {
  const users = [...state.watched].filter(([user]) => pinned(user)).sort(([a], [b]) => a.localeCompare(b));
  ui.watchList.replaceChildren(...users.map(([user, status]) =>
    el('li', { className: 'watch', dataset: { testid: 'watch-item', user, status } },
      el('span', { className: `dot ${status}`, title: status, dataset: { testid: 'presence-dot' } }),
      el('span', { className: 'name', text: user }),
      el('button', { type: 'button', className: 'conv-open small', text: 'chat', onclick: () => select(getConv('dm', user).key) }),
      el('button', { type: 'button', className: 'icon', title: `unwatch ${user}`, text: '×', dataset: { testid: 'unwatch-btn' }, onclick: () => unwatch([user]) }))));
}
