// chatmesh web client: plain browser JavaScript modules, no build step, no dependencies.
// Speaks the client protocol of shared/protocol.md section 2 over ws(s)://<host>/ws.
// All user-supplied content reaches the page through textContent only.
//
// Modules (all flat in src/web/, served as they are):
//   state.js     constants and the page's one state object
//   dom.js       element lookup, small DOM helpers, form errors, the events pane
//   token.js     JWT claims and the token URL;  refresh.js  renewing the token on an open socket
//   net.js       the socket: hello, reconnect (quick backoff, "reconnect now"), requests
//   nodes.js     GET /nodes and moving to another node on a drain or repeated failures
//   frames.js    what the server sends: answers, events, the welcome
//   timeline.js  one conversation's messages in id order, each once (pure)
//   convs.js     conversations and rooms: incoming messages, selecting, joining, leaving
//   outbox.js    the compose box: drafts, errors beside it, messages waiting to send
//   history.js   resume (`since`), `synced`, history pages, catching up after a reconnect
//   account.js   the user's rooms and conversations from the server, joined/left
//   reads.js     read markers, unread badges and "seen"
//   typing.js    "bob is typing…"
//   roster.js    a room's members
//   presence.js  watched users and online dots
//   notify.js    the tab title and notifications while the tab is hidden
//   render.js    the shown conversation;  sidebar.js  the lists;  layout.js  the toggles
//   app.js       this file: the forms and buttons
import { ID_RE, state } from './state.js';
import { fieldError, setConn, ui, validId } from './dom.js';
import { fetchToken } from './token.js';
import { connect, disconnect, reconnectNow } from './net.js';
import { refreshNodes } from './nodes.js';
import { resetData } from './frames.js';
import { getConv, joinRoom, select, touch } from './convs.js';
import { forgetResumePoint, saveResumePoint } from './history.js';
import { bindAccount } from './account.js';
import { bindLayout } from './layout.js';
import { bindNotifications } from './notify.js';
import { composeInput, submitCompose } from './outbox.js';
import { watch } from './presence.js';
import { bindRoster } from './roster.js';
import { bindHistoryBar, showLogin } from './render.js';

ui.loginForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  let token = ui.loginToken.value.trim();
  const tokenUrl = ui.loginTokenUrl.value.trim() || null;
  const user = ui.loginUser.value.trim();
  if (!token && !tokenUrl && !ID_RE.test(user)) {
    ui.loginError.textContent = 'Enter a name (1-64 of A-Z a-z 0-9 _ . : @ -), a token or a token URL.';
    return;
  }
  if (!token && tokenUrl) {
    ui.loginError.textContent = 'fetching a token…';
    try { token = await fetchToken(tokenUrl); } catch (err) {
      ui.loginError.textContent = `The token URL ${err.message}.`;
      return;
    }
  }
  disconnect();
  if (state.me !== null && state.me !== user) { resetData(); state.me = null; }
  state.creds = token ? { token } : { user };
  state.tokenUrl = token ? tokenUrl : null;
  state.tokenExpired = false;
  state.wantConnected = true;
  state.attempt = 0;
  ui.loginError.textContent = '';
  connect();
});

ui.signout.addEventListener('click', () => {
  state.wantConnected = false;
  disconnect('sign out');
  forgetResumePoint();
  resetData();
  state.me = null;
  try { sessionStorage.removeItem('chatmesh.user'); } catch { /* storage disabled */ }
  setConn('offline', 'signed out');
  showLogin('');
});

ui.reconnect.addEventListener('click', () => reconnectNow());
// The browser says the network is back: no need to wait for the next attempt.
window.addEventListener('online', () => reconnectNow());

ui.dmForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const to = ui.dmTo.value.trim();
  if (!validId(to, 'user', ui.dmError)) return;
  ui.dmTo.value = '';
  const fresh = !state.convs.has(`dm:${to}`);
  const c = getConv('dm', to);
  if (fresh) touch(c);
  select(c.key);
});

ui.joinForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const room = ui.joinRoom.value.trim();
  if (!validId(room, 'room', ui.joinError)) return;
  joinRoom(room); // the field is cleared once the server accepts
});

ui.watchForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const users = ui.watchUser.value.split(/[\s,]+/).filter(Boolean);
  if (!users.length) { fieldError(ui.watchError, 'Enter a user name.'); return; }
  if (!users.every((u) => validId(u, 'user', ui.watchError))) return;
  ui.watchUser.value = '';
  watch(users);
});

ui.composeForm.addEventListener('submit', (e) => {
  e.preventDefault();
  submitCompose();
});
ui.composeBody.addEventListener('input', () => composeInput());
ui.composeBody.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    ui.composeForm.requestSubmit();
  }
});

bindHistoryBar();
bindLayout();
bindRoster();
bindAccount();
bindNotifications();
// A reload of this tab resumes after the last message it showed.
window.addEventListener('pagehide', () => saveResumePoint());

// The name is kept per tab (sessionStorage): a tab of bob's does not open as whoever signed in last.
try { ui.loginUser.value = sessionStorage.getItem('chatmesh.user') || ''; } catch { /* storage disabled */ }
// ?token_url=... names a token source (e.g. set by the page that links here).
ui.loginTokenUrl.value = new URLSearchParams(location.search).get('token_url') || '';
for (const e of [ui.dmError, ui.joinError, ui.watchError, ui.composeError]) fieldError(e, '');

// A small handle for debugging from the console and for tests.
window.chatmesh = {
  state,
  refreshNodes,
  sendRaw(frame) { if (state.ws) state.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)); },
};
