// DOM helpers shared by every part of the page. All user-supplied content reaches the page
// through textContent only.
import { ID_RE, MAX_EVENTS } from './state.js';

const $ = (id) => document.getElementById(id);

export const ui = {
  who: $('who'), meUser: $('me-user'), meNode: $('me-node'), meSession: $('me-session'),
  conn: $('conn-status'), sync: $('sync-status'), signout: $('signout-btn'), reconnect: $('reconnect-btn'),
  eventsToggle: $('events-toggle'), eventsPane: $('events-pane'),
  sidebarToggle: $('sidebar-toggle'), sidebarBadge: $('sidebar-badge'), sidebar: $('sidebar'),
  login: $('login'), loginForm: $('login-form'), loginUser: $('login-user'),
  loginToken: $('login-token'), loginTokenUrl: $('login-token-url'), loginError: $('login-error'),
  chat: $('chat'), dmForm: $('dm-form'), dmTo: $('dm-to'), dmError: $('dm-error'), joinForm: $('join-form'),
  joinRoom: $('join-room'), joinError: $('join-error'), convList: $('conv-list'), convMore: $('conv-more'),
  watchForm: $('watch-form'), watchUser: $('watch-user'), watchError: $('watch-error'), watchList: $('watch-list'),
  convTitle: $('conv-title'),
  roster: $('roster'), rosterSummary: $('roster-summary'), rosterList: $('roster-list'),
  rosterMore: $('roster-more'), rosterStatus: $('roster-status'),
  historyBar: $('history-bar'), historyStatus: $('history-status'), loadOlder: $('load-older'),
  messages: $('messages'), typing: $('typing'), composeError: $('compose-error'),
  composeForm: $('compose-form'), composeBody: $('compose-body'),
  composeSend: $('compose-send'), events: $('events'),
};

export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'text') node.textContent = v;
    else if (k === 'className') node.className = v;
    else if (k === 'dataset') {
      for (const [dk, dv] of Object.entries(v)) if (dv !== undefined && dv !== null) node.dataset[dk] = dv;
    }
    else if (k === 'onclick') node.addEventListener('click', v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

export const timeOf = (ts) => new Date(typeof ts === 'number' ? ts : Date.now())
  .toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
export const byteLength = (s) => new TextEncoder().encode(s).length;

export function logEvent(kind, text) {
  const item = el('li', { className: `event ${kind}`, dataset: { kind } },
    el('time', { text: timeOf() }), el('span', { text }));
  ui.events.append(item);
  while (ui.events.childElementCount > MAX_EVENTS) ui.events.firstElementChild.remove();
  ui.events.scrollTop = ui.events.scrollHeight;
}

export function setConn(s, text) {
  ui.conn.dataset.state = s;
  ui.conn.textContent = text;
}

/** The small "synced" badge beside the connection status; no text hides it. */
export function setSync(text, title) {
  ui.sync.hidden = !text;
  ui.sync.textContent = text || '';
  ui.sync.title = title || '';
}

/** Shows `text` in a form's error line (beside its input); '' clears it. The input keeps its text. */
export function fieldError(errorEl, text) {
  errorEl.textContent = text || '';
  errorEl.hidden = !text;
}

/** True when `value` is a valid user or room id; otherwise says why in `errorEl`. */
export function validId(value, what, errorEl) {
  if (ID_RE.test(value)) { fieldError(errorEl, ''); return true; }
  const why = !value ? `Enter a ${what} name.`
    : value.length > 64 ? `A ${what} name has at most 64 characters.`
      : `"${value}" is not a valid ${what} name: use only A-Z a-z 0-9 _ . : @ -`;
  fieldError(errorEl, why);
  return false;
}
