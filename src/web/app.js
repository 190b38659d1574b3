// chatmesh web client: plain browser JavaScript, no build step, no dependencies.
// Speaks the client protocol of shared/protocol.md section 2 over ws(s)://<host>/ws.
// All user-supplied content reaches the page through textContent only.
(() => {
  'use strict';

  const ID_RE = /^[A-Za-z0-9_.:@-]{1,64}$/;
  const MAX_BODY_BYTES = 16 * 1024;
  const MAX_EVENTS = 200;
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  // A token is renewed this long before its `exp`: 10% of its lifetime, within [1 s, 60 s].
  const REFRESH_MARGIN_FRACTION = 0.1;
  const REFRESH_MARGIN_MIN_MS = 1000;
  const REFRESH_MARGIN_MAX_MS = 60000;
  const TOKEN_RETRY_MS = 5000;       // after a failed fetch of the token URL
  const CLOSE_TEXT = {
    1000: 'normal closure', 1001: 'going away', 1006: 'connection lost', 1009: 'frame too large',
    1011: 'server error', 1012: 'server restarting', 1013: 'try again later', 4401: 'unauthorized',
  };
  const STATUS_TEXT = {
    sending: 'sending…', delivered: 'delivered', offline: 'recipient offline',
    no_subscribers: 'no one else in the room', other_device: 'sent from another device',
    received: '', 'error: disconnected': 'not confirmed: connection lost',
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    who: $('who'), meUser: $('me-user'), meNode: $('me-node'), meSession: $('me-session'),
    conn: $('conn-status'), signout: $('signout-btn'),
    login: $('login'), loginForm: $('login-form'), loginUser: $('login-user'),
    loginToken: $('login-token'), loginTokenUrl: $('login-token-url'), loginError: $('login-error'),
    chat: $('chat'), dmForm: $('dm-form'), dmTo: $('dm-to'), joinForm: $('join-form'),
    joinRoom: $('join-room'), convList: $('conv-list'), watchForm: $('watch-form'),
    watchUser: $('watch-user'), watchList: $('watch-list'), convTitle: $('conv-title'),
    messages: $('messages'), composeForm: $('compose-form'), composeBody: $('compose-body'),
    composeSend: $('compose-send'), events: $('events'),
  };

  const state = {
    ws: null,
    creds: null,          // { user } or { token }
    tokenUrl: null,       // where a fresh token can be fetched (optional)
    tokenExpired: false,  // the server said token_expired on the current socket
    refreshTimer: null,
    me: null, node: null, session: null,
    welcomed: false,      // the current socket got its welcome
    authError: null,      // message of an `unauthorized` error on the current socket
    wantConnected: false, // false after sign-out or a 4401
    attempt: 0,           // reconnect attempts since the last welcome
    reconnectTimer: null,
    nextId: 1,
    pending: new Map(),   // request id -> { frame, done(answer, error) }
    convs: new Map(),     // key ("dm:bob" / "room:lobby") -> conversation
    active: null,         // key of the shown conversation
    watched: new Map(),   // user -> "online" | "offline" | "unknown"
  };

  // ---------- small helpers ----------

  function el(tag, props, ...children) {
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

  const timeOf = (ts) => new Date(typeof ts === 'number' ? ts : Date.now())
    .toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const byteLength = (s) => new TextEncoder().encode(s).length;

  function logEvent(kind, text) {
    const item = el('li', { className: `event ${kind}`, dataset: { kind } },
      el('time', { text: timeOf() }), el('span', { text }));
    ui.events.append(item);
    while (ui.events.childElementCount > MAX_EVENTS) ui.events.firstElementChild.remove();
    ui.events.scrollTop = ui.events.scrollHeight;
  }

  function setConn(s, text) {
    ui.conn.dataset.state = s;
    ui.conn.textContent = text;
  }

  function validId(value, what) {
    if (ID_RE.test(value)) return true;
    logEvent('error', `invalid ${what} "${value}": use 1-64 of A-Z a-z 0-9 _ . : @ -`);
    return false;
  }

  // ---------- connection ----------

  function wsUrl() {
    return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  }

  function connect() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    state.welcomed = false;
    state.authError = null;
    state.tokenExpired = false;
    setConn('connecting', state.attempt ? `reconnecting (attempt ${state.attempt})…` : 'connecting…');
    const ws = new WebSocket(wsUrl());
    state.ws = ws;
    ws.addEventListener('open', async () => {
      if (state.ws !== ws) return;
      // After a long disconnect the token may be stale: renew it first when there is a source.
      if (state.creds.token && state.tokenUrl && refreshDelay(state.creds.token) <= 0) {
        try { state.creds = { token: await fetchToken(state.tokenUrl) }; } catch (e) { logEvent('error', `token URL: ${e.message}`); }
        if (state.ws !== ws) return;
      }
      ws.send(JSON.stringify({ type: 'hello', ...state.creds }));
    });
    ws.addEventListener('message', (ev) => {
      if (state.ws !== ws) return;
      let frame;
      try { frame = JSON.parse(ev.data); } catch { logEvent('error', 'server sent a frame that is not JSON'); return; }
      if (frame && typeof frame.type === 'string') handleFrame(frame);
    });
    ws.addEventListener('close', (ev) => { if (state.ws === ws) handleClose(ev); });
  }

  function handleClose(ev) {
    const wasWelcomed = state.welcomed;
    state.ws = null;
    state.welcomed = false;
    clearTimeout(state.refreshTimer);
    state.refreshTimer = null;
    for (const [, p] of state.pending) p.done(null, { code: 'disconnected', message: 'connection closed before an answer' });
    state.pending.clear();
    for (const u of state.watched.keys()) state.watched.set(u, 'unknown'); // stale until watched again
    renderWatch();
    updateCompose();
    const what = `${ev.code}${CLOSE_TEXT[ev.code] ? ` ${CLOSE_TEXT[ev.code]}` : ''}${ev.reason ? `: ${ev.reason}` : ''}`;
    logEvent(ev.code === 1000 || ev.code === 1012 ? 'conn' : 'error', `connection closed (${what})`);
    if (ev.code === 4401) {
      // Bad credentials: retrying with the same ones would loop forever.
      state.wantConnected = false;
      if (state.tokenExpired) {
        setConn('offline', 'token expired');
        ui.loginToken.value = '';
        showLogin(`Your token expired, so the server closed the connection. Enter a new token${state.tokenUrl ? ' (or Connect to fetch one from the token URL)' : ''} to continue.`);
        return;
      }
      setConn('offline', 'closed 4401: unauthorized');
      showLogin(`Sign-in refused (close code 4401)${state.authError ? `: ${state.authError}` : ''}. Check the name or token.`);
      return;
    }
    if (!state.wantConnected) { setConn('offline', `closed (${ev.code})`); return; }
    if (!wasWelcomed && !state.me) {
      // Never got in: keep retrying, but let the user edit the credentials meanwhile.
      ui.loginError.textContent = `Connection closed (${what}); retrying…`;
    }
    scheduleReconnect(ev.code);
  }

  function scheduleReconnect(code) {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** state.attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    state.attempt += 1;
    setConn('reconnecting', `closed ${code}${code === 1012 ? ' (server restarting)' : ''}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
    state.reconnectTimer = setTimeout(connect, delay);
  }

  // Sends a frame with a fresh request id; done(answer, error) gets exactly one call.
  function request(frame, done) {
    if (!state.ws || !state.welcomed) {
      done(null, { code: 'disconnected', message: 'not connected' });
      return null;
    }
    const id = `c${state.nextId++}`;
    state.pending.set(id, { frame, done });
    state.ws.send(JSON.stringify({ ...frame, id }));
    return id;
  }

  // ---------- incoming frames ----------

  function handleFrame(f) {
    switch (f.type) {
      case 'welcome': return onWelcome(f);
      case 'ack':
      case 'presence': return answer(f.id, f, null);
      case 'error': {
        logEvent('error', `error ${f.code}${f.id ? ` (request ${f.id})` : ''}: ${f.message || ''}`);
        if (f.code === 'unauthorized') state.authError = f.message || 'unauthorized';
        if (f.code === 'token_expired') state.tokenExpired = true;
        return answer(f.id, null, f);
      }
      case 'message': return onDirect(f);
      case 'room_message': return onRoom(f);
      case 'presence_change': return setWatched(f.user, f.status);
      default: logEvent('info', `unhandled frame type "${f.type}"`);
    }
  }

  function answer(id, frame, error) {
    const p = id !== undefined && state.pending.get(id);
    if (!p) return;
    state.pending.delete(id);
    p.done(frame, error);
  }

  function onWelcome(f) {
    const first = state.me === null;
    if (state.me !== null && state.me !== f.user) resetData();
    state.me = f.user; state.node = f.node; state.session = f.session;
    state.welcomed = true;
    state.attempt = 0;
    ui.meUser.textContent = f.user;
    ui.meNode.textContent = f.node;
    ui.meSession.textContent = f.session;
    ui.who.hidden = false;
    ui.login.hidden = true;
    ui.chat.hidden = false;
    ui.signout.hidden = false;
    ui.loginError.textContent = '';
    setConn('online', 'connected');
    logEvent('conn', `welcome ${f.user} on node ${f.node} (session ${f.session})`);
    if (state.creds.user) try { localStorage.setItem('chatmesh.user', state.creds.user); } catch { /* private mode */ }
    if (!first) resubscribe();
    updateCompose();
    if (state.creds.token) scheduleRefresh();
  }

  // ---------- token lifetime ----------

  // The claims of a JWT (unverified: only to know when it expires), or null.
  function jwtClaims(token) {
    try {
      const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
      return claims && typeof claims.exp === 'number' ? claims : null;
    } catch { return null; }
  }

  // Milliseconds until the token should be renewed (<= 0: now); Infinity when it has no exp.
  function refreshDelay(token) {
    const c = jwtClaims(token);
    if (!c) return Infinity;
    const expMs = c.exp * 1000;
    const lifetime = expMs - (typeof c.iat === 'number' ? c.iat * 1000 : Date.now());
    const margin = Math.min(lifetime / 2, Math.max(REFRESH_MARGIN_MIN_MS, Math.min(REFRESH_MARGIN_MAX_MS, lifetime * REFRESH_MARGIN_FRACTION)));
    return expMs - margin - Date.now();
  }

  // Fetches a token from the token URL: its body is the token, or JSON with a "token" field.
  async function fetchToken(url) {
    const res = await fetch(url, { cache: 'no-store' });
    if (!res.ok) throw new Error(`answered HTTP ${res.status}`);
    const text = (await res.text()).trim();
    const token = text.startsWith('{') ? JSON.parse(text).token : text;
    if (typeof token !== 'string' || !token) throw new Error('answered no token');
    return token;
  }

  function scheduleRefresh(delay) {
    clearTimeout(state.refreshTimer);
    state.refreshTimer = null;
    const token = state.creds && state.creds.token;
    const claims = token && jwtClaims(token);
    if (!claims) return;
    const expires = timeOf(claims.exp * 1000);
    if (!state.tokenUrl) {
      logEvent('info', `your token expires at ${expires}; then you will be asked for a new one (a token URL renews it by itself)`);
      return;
    }
    const wait = delay ?? refreshDelay(token);
    if (!Number.isFinite(wait)) return;
    state.refreshTimer = setTimeout(refreshToken, Math.max(0, wait));
  }

  // Renews the token over the open connection (`refresh`), so it is not closed at the old `exp`.
  async function refreshToken() {
    state.refreshTimer = null;
    const ws = state.ws;
    let token;
    try {
      token = await fetchToken(state.tokenUrl);
    } catch (e) {
      if (state.ws !== ws) return;
      logEvent('error', `could not renew the token from the token URL (${e.message}); retrying`);
      scheduleRefresh(TOKEN_RETRY_MS);
      return;
    }
    if (state.ws !== ws) return;
    request({ type: 'refresh', token }, (_ack, err) => {
      if (err) {
        // `unauthorized` closes the connection (the login form tells why); `disconnected` reconnects.
        if (err.code !== 'disconnected') logEvent('error', `token refresh refused: ${err.code}`);
        return;
      }
      state.creds = { token };
      const c = jwtClaims(token);
      logEvent('conn', `token refreshed${c ? `, valid until ${timeOf(c.exp * 1000)}` : ''}`);
      scheduleRefresh();
    });
  }

  // Joins and watches belong to a connection: after a reconnect, set them up again.
  function resubscribe() {
    for (const c of state.convs.values()) {
      if (c.kind === 'room' && c.joined) {
        request({ type: 'join', room: c.name }, (_a, err) => {
          if (err && err.code !== 'disconnected') { c.joined = false; renderConvs(); renderMessages(); updateCompose(); }
        });
      }
    }
    const users = [...state.watched.keys()];
    if (users.length) watch(users);
  }

  function onDirect(f) {
    const mine = f.from === state.me;
    const c = getConv('dm', mine ? f.to : f.from);
    addMessage(c, { msg: f.msg, from: f.from, body: f.body, ts: f.ts, mine, status: mine ? 'other_device' : 'received' });
  }

  function onRoom(f) {
    const c = getConv('room', f.room);
    addMessage(c, { msg: f.msg, from: f.from, body: f.body, ts: f.ts, mine: f.from === state.me, status: f.from === state.me ? 'other_device' : 'received' });
  }

  // ---------- conversations ----------

  function getConv(kind, name) {
    const key = `${kind}:${name}`;
    let c = state.convs.get(key);
    if (!c) {
      c = { key, kind, name, messages: [], unread: 0, joined: false };
      state.convs.set(key, c);
      renderConvs();
      if (!state.active) select(key, false);
    }
    return c;
  }

  function addMessage(c, m) {
    c.messages.push(m);
    if (c.key === state.active) renderMessages();
    else { c.unread += 1; renderConvs(); }
    return m;
  }

  function select(key, focus = true) {
    state.active = key;
    const c = state.convs.get(key);
    if (c) c.unread = 0;
    renderConvs();
    renderMessages();
    updateCompose();
    if (focus) ui.composeBody.focus();
  }

  function sendMessage(body) {
    const c = state.convs.get(state.active);
    if (!c || !body.trim()) return;
    if (byteLength(body) > MAX_BODY_BYTES) { logEvent('error', 'message too large: at most 16 KiB'); return; }
    const m = addMessage(c, { msg: null, from: state.me, body, ts: Date.now(), mine: true, status: 'sending' });
    const frame = c.kind === 'dm' ? { type: 'send', to: c.name, body } : { type: 'publish', room: c.name, body };
    m.req = request(frame, (ack, err) => {
      if (err) m.status = `error: ${err.code}`;
      else { m.status = ack.status; m.msg = ack.msg; if (typeof ack.ts === 'number') m.ts = ack.ts; }
      if (c.key === state.active) renderMessages();
    });
  }

  function joinRoom(room) {
    request({ type: 'join', room }, (_a, err) => {
      if (err) return;
      const c = getConv('room', room);
      c.joined = true;
      select(c.key);
    });
  }

  function leaveRoom(c) {
    request({ type: 'leave', room: c.name }, (_a, err) => {
      if (err) return;
      state.convs.delete(c.key);
      if (state.active === c.key) state.active = state.convs.keys().next().value ?? null;
      renderConvs(); renderMessages(); updateCompose();
      logEvent('info', `left room ${c.name}`);
    });
  }

  // ---------- presence ----------

  function watch(users) {
    for (const u of users) if (!state.watched.has(u)) state.watched.set(u, 'unknown');
    renderWatch();
    request({ type: 'watch', users }, (ack, err) => {
      if (err) {
        if (err.code !== 'disconnected') { for (const u of users) state.watched.delete(u); renderWatch(); }
        return;
      }
      for (const [u, s] of Object.entries(ack.users || {})) setWatched(u, s);
    });
  }

  function unwatch(user) {
    request({ type: 'unwatch', users: [user] }, (_a, err) => {
      if (err && err.code !== 'disconnected') return;
      state.watched.delete(user);
      renderWatch();
    });
  }

  function setWatched(user, status) {
    if (!state.watched.has(user)) return;
    state.watched.set(user, status);
    renderWatch();
  }

  // ---------- rendering ----------

  function renderConvs() {
    const items = [...state.convs.values()].map((c) => {
      const label = c.kind === 'dm' ? `@${c.name}` : `#${c.name}`;
      const open = el('button', { type: 'button', className: 'conv-open', text: label, onclick: () => select(c.key) });
      const li = el('li', {
        className: `conv${c.key === state.active ? ' active' : ''}`,
        dataset: { testid: 'conv-item', conv: c.key, kind: c.kind, name: c.name },
      }, open);
      if (c.unread) li.append(el('span', { className: 'badge', dataset: { testid: 'unread' }, text: String(c.unread) }));
      if (c.kind === 'room') {
        li.append(el('button', {
          type: 'button', className: 'icon', title: `leave ${c.name}`, text: '×',
          dataset: { testid: 'leave-btn' }, onclick: () => leaveRoom(c),
        }));
      }
      return li;
    });
    ui.convList.replaceChildren(...items);
  }

  function renderMessages() {
    const c = state.convs.get(state.active);
    ui.convTitle.textContent = !c ? 'No conversation selected'
      : c.kind === 'dm' ? `Direct messages with ${c.name}` : `Room ${c.name}${c.joined ? '' : ' (not joined)'}`;
    ui.convTitle.dataset.conv = c ? c.key : '';
    const nearBottom = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 40;
    ui.messages.replaceChildren(...(c ? c.messages : []).map((m) => {
      const status = STATUS_TEXT[m.status] ?? m.status;
      return el('li', {
        className: `msg${m.mine ? ' mine' : ''}${m.status.startsWith('error') ? ' failed' : ''}`,
        dataset: { testid: 'msg', from: m.from, status: m.status, msg: m.msg ?? undefined, req: m.req ?? undefined },
      },
      el('div', { className: 'meta' },
        el('span', { className: 'from', text: m.from }),
        el('time', { text: timeOf(m.ts) }),
        status ? el('span', { className: 'status', dataset: { testid: 'msg-status' }, text: status }) : null),
      el('div', { className: 'body', dataset: { testid: 'msg-body' }, text: m.body }));
    }));
    if (nearBottom) ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function renderWatch() {
    const items = [...state.watched].sort(([a], [b]) => a.localeCompare(b)).map(([user, status]) =>
      el('li', { className: 'watch', dataset: { testid: 'watch-item', user, status } },
        el('span', { className: `dot ${status}`, title: status, dataset: { testid: 'presence-dot' } }),
        el('span', { className: 'name', text: user }),
        el('button', { type: 'button', className: 'conv-open small', text: 'chat', onclick: () => select(getConv('dm', user).key) }),
        el('button', { type: 'button', className: 'icon', title: `unwatch ${user}`, text: '×', dataset: { testid: 'unwatch-btn' }, onclick: () => unwatch(user) })));
    ui.watchList.replaceChildren(...items);
  }

  function updateCompose() {
    const c = state.convs.get(state.active);
    const ok = Boolean(state.welcomed && c && (c.kind === 'dm' || c.joined));
    ui.composeBody.disabled = !ok;
    ui.composeSend.disabled = !ok;
  }

  function showLogin(message) {
    ui.login.hidden = false;
    ui.chat.hidden = true;
    ui.who.hidden = true;
    ui.signout.hidden = true;
    ui.loginError.textContent = message || '';
  }

  function resetData() {
    state.convs.clear();
    state.watched.clear();
    state.active = null;
    state.pending.clear();
    ui.events.replaceChildren();
    renderConvs(); renderMessages(); renderWatch();
  }

  // ---------- user actions ----------

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
    if (state.ws) state.ws.close(1000);
    state.ws = null;
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
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    clearTimeout(state.refreshTimer);
    state.refreshTimer = null;
    const ws = state.ws;
    state.ws = null;
    state.welcomed = false;
    if (ws) ws.close(1000, 'sign out');
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

  try { ui.loginUser.value = localStorage.getItem('chatmesh.user') || ''; } catch { /* private mode */ }
  // ?token_url=... names a token source (e.g. set by the page that links here).
  ui.loginTokenUrl.value = new URLSearchParams(location.search).get('token_url') || '';

  // A small handle for debugging from the console and for tests.
  window.chatmesh = {
    state,
    sendRaw(frame) { if (state.ws) state.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)); },
  };
})();
