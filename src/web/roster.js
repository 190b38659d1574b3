// A room's roster: the members of the shown room (`members`, a page at a time, "more" for the
// next), each with an online dot. The shown page's members are watched while the room is shown,
// so their dots follow them.
import { MEMBERS_PAGE, state } from './state.js';
import { el, ui } from './dom.js';
import { request } from './net.js';
import { getConv, isCurrent, select } from './convs.js';
import { unwatch, watch } from './presence.js';

const validMember = (m) => m && typeof m.user === 'string' && typeof m.status === 'string';

/** A conversation was shown: a room reads its members again (they come and go); others drop theirs. */
export function openRoster(c) {
  for (const other of state.convs.values()) {
    if (other !== c && other.roster && other.roster.watched.length) {
      unwatch(other.roster.watched, 'roster');
      other.roster.watched = [];
    }
  }
  if (c.kind === 'room' && c.joined && state.accounts && state.welcomed) {
    c.roster = c.roster || { members: [], more: false, loading: false, error: null, watched: [] };
    loadMembers(c, null);
  }
  renderRoster();
}

function loadMembers(c, after) {
  const r = c.roster;
  if (r.loading) return;
  r.loading = true;
  r.error = null;
  renderRoster();
  request({ type: 'members', room: c.name, ...(after ? { after } : {}), limit: MEMBERS_PAGE }, (ans, err) => {
    r.loading = false;
    if (!isCurrent(c)) return;
    if (err || !ans || !Array.isArray(ans.members)) {
      r.error = err && err.code === 'disconnected' ? null : `Could not list the members: ${err ? err.code : 'bad answer'}`;
      renderRoster();
      return;
    }
    const page = ans.members.filter(validMember).map((m) => ({ user: m.user, status: m.status }));
    const known = after ? r.members.filter((m) => !page.some((p) => p.user === m.user)) : [];
    r.members = [...known, ...page].sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));
    r.more = ans.more === true;
    if (state.active === c.key) {
      const users = page.map((m) => m.user).filter((u) => u !== state.me && !r.watched.includes(u));
      r.watched.push(...users);
      watch(users, 'roster');
    }
    renderRoster();
  });
}

// A member's status: live when watched, else as the member list said.
function statusOf(m) {
  if (m.user === state.me) return state.welcomed ? 'online' : 'unknown';
  const live = state.watched.get(m.user);
  return live && live !== 'unknown' ? live : m.status;
}

/** Draws the roster of the shown room (hidden for a conversation). */
export function renderRoster() {
  const c = state.convs.get(state.active);
  const r = c && c.roster;
  const show = Boolean(c && c.kind === 'room' && c.joined && state.accounts && r);
  ui.roster.hidden = !show;
  if (!show) { ui.rosterList.replaceChildren(); return; }
  const members = r.members.map((m) => ({ ...m, status: statusOf(m) }));
  const online = members.filter((m) => m.status === 'online').length;
  const count = typeof c.memberCount === 'number' ? Math.max(c.memberCount, members.length) : members.length;
  ui.rosterSummary.textContent = `Members · ${count} · ${online} online`;
  ui.rosterSummary.dataset.count = String(count);
  ui.rosterList.replaceChildren(...members.map((m) => el('li', {
    className: 'member', dataset: { testid: 'member', user: m.user, status: m.status },
  },
  el('span', { className: `dot ${m.status}`, title: m.status, dataset: { testid: 'presence-dot' } }),
  el('span', { className: 'name', text: m.user === state.me ? `${m.user} (you)` : m.user }),
  m.user === state.me ? null : el('button', {
    type: 'button', className: 'conv-open small', text: 'chat', title: `message ${m.user}`,
    onclick: () => select(getConv('dm', m.user).key),
  }))));
  ui.rosterMore.hidden = !r.more;
  ui.rosterMore.disabled = r.loading || !state.welcomed;
  ui.rosterStatus.textContent = r.error || (r.loading ? 'loading members…' : '');
  ui.rosterStatus.className = r.error ? 'error' : 'muted';
}

/** Wires the "more members" button. */
export function bindRoster() {
  ui.rosterMore.addEventListener('click', () => {
    const c = state.convs.get(state.active);
    if (c && c.roster && c.roster.members.length) loadMembers(c, c.roster.members.at(-1).user);
  });
}
