// chatmesh web client: plain browser JavaScript modules, no build step, no dependencies.
// Speaks the client protocol of shared/protocol.md section 2 over ws(s)://<host>/ws.
// All user-supplied content reaches the page through textContent only.
//
// Modules (all flat in src/web/, served as they are):
//   state.js     constants and the page's one state object
//   dom.js       element lookup and small DOM helpers, the events pane
//   token.js     JWT expiry and the token URL
//   net.js       the socket: hello/welcome, reconnect, requests, token refresh
//   timeline.js  one conversation's messages in id order, each once (pure)
//   convs.js     conversations and rooms: incoming messages, send, join, leave
//   history.js   resume (`since`), `synced`, history pages, catching up after a reconnect
//   presence.js  watched users
//   render.js    drawing the lists, the shown conversation and its history bar
//   app.js       this file: the forms and buttons
import { ID_RE, state } from './state.js';
import { setConn, ui, validId } from './dom.js';
import { fetchToken } from './token.js';
import { connect, disconnect, resetData } from './net.js';
import { getConv, joinRoom, select, sendMessage } from './convs.js';
import { forgetResumePoint, saveResumePoint } from './history.js';
import { watch } from './presence.js';
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
  setConn('offline', 'signed out');
  showLogin('');
});

ui.dmForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const to = ui.dmTo.value.trim();
  if (!validId(to, 'user')) return;
  ui.dmTo.value = '';
  select(getConv('dm', to).key);
});

ui.joinForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const room = ui.joinRoom.value.trim();
  if (!validId(room, 'room')) return;
  ui.joinRoom.value = '';
  joinRoom(room);
});

ui.watchForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const users = ui.watchUser.value.split(/[\s,]+/).filter(Boolean);
  if (!users.length || !users.every((u) => validId(u, 'user'))) return;
  ui.watchUser.value = '';
  watch(users);
});

ui.composeForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const body = ui.composeBody.value;
  if (!body.trim()) return;
  ui.composeBody.value = '';
  sendMessage(body);
});

ui.composeBody.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    ui.composeForm.requestSubmit();
  }
});

bindHistoryBar();
// A reload of this tab resumes after the last message it showed.
window.addEventListener('pagehide', () => saveResumePoint());

try { ui.loginUser.value = localStorage.getItem('chatmesh.user') || ''; } catch { /* private mode */ }
// ?token_url=... names a token source (e.g. set by the page that links here).
ui.loginTokenUrl.value = new URLSearchParams(location.search).get('token_url') || '';

// A small handle for debugging from the console and for tests.
window.chatmesh = {
  state,
  sendRaw(frame) { if (state.ws) state.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)); },
};
