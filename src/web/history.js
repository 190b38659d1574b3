// Message streams on the page: resuming after the newest message shown (`since` in hello), the
// `synced` that ends the mailbox or the replay, reading a conversation's or room's history page by
// page, and catching up on rooms after a reconnect (a resume replays direct messages only).
import { GAP_FILL_MAX_PAGES, HISTORY_PAGE, RESUME_MARGIN_MS, state } from './state.js';
import { logEvent, setSync } from './dom.js';
import { MSG_ID_RE, resumePoint } from './timeline.js';
import { jwtSubject } from './token.js';
import { RESYNC_CLOSE, request, sendHello } from './net.js';
import { ingestPage, isCurrent } from './convs.js';
import { loadAccount } from './account.js';
import { renderHistoryBar } from './render.js';

const SAVE_DELAY_MS = 250;
// Per tab (sessionStorage) and per user: a reload resumes where the tab was, a new tab gets the mailbox.
const storageKey = (user) => `chatmesh.since.${user}`;
const later = (a, b) => (a === null ? b : b === null ? a : a > b ? a : b);
const label = (c) => (c.kind === 'dm' ? `@${c.name}` : `#${c.name}`);

function stored(user) {
  try {
    const v = sessionStorage.getItem(storageKey(user));
    return typeof v === 'string' && MSG_ID_RE.test(v) ? v : null;
  } catch { return null; } // storage disabled
}

// Where to resume the user's stream from, by the direct messages on the page (null: none shown).
// Only well-formed ids: the server refuses a `since` that is not one.
function memoryPoint() {
  const ids = [];
  for (const c of state.convs.values()) {
    if (c.kind === 'dm') for (const m of c.timeline.items) if (m.msg && MSG_ID_RE.test(m.msg)) ids.push(m.msg);
  }
  return resumePoint(ids, RESUME_MARGIN_MS);
}

function helloUser() {
  if (!state.creds) return null;
  return state.creds.user ?? (state.creds.token ? jwtSubject(state.creds.token) : null);
}

/** The `since` for the next hello, or null (the first connect of a fresh tab: the mailbox). */
export function helloSince() {
  const user = helloUser();
  if (!user) return null;
  return later(state.me === user ? memoryPoint() : null, stored(user));
}

/** A direct message with an id was shown: remember the resume point soon (batched). */
export function noteShown() {
  if (state.resumeSaveTimer === null) state.resumeSaveTimer = setTimeout(saveResumePoint, SAVE_DELAY_MS);
}

/** Writes the resume point to sessionStorage now (also when the page goes away). */
export function saveResumePoint() {
  clearTimeout(state.resumeSaveTimer);
  state.resumeSaveTimer = null;
  if (!state.me) return;
  const point = later(memoryPoint(), stored(state.me));
  if (point) try { sessionStorage.setItem(storageKey(state.me), point); } catch { /* storage disabled */ }
}

/** Sign-out: the next sign-in in this tab starts fresh (mailbox), like a new tab. */
export function forgetResumePoint() {
  clearTimeout(state.resumeSaveTimer);
  state.resumeSaveTimer = null;
  forgetResumePointOf(state.me);
}

function forgetResumePointOf(user) {
  if (user) try { sessionStorage.removeItem(storageKey(user)); } catch { /* storage disabled */ }
}

/** A welcome: the mailbox or the replay follows, up to `synced`. */
export function onWelcomeStreams() {
  state.synced = false;
  state.replayed = 0;
  setSync('');
}

/** The socket is gone: what was shown may miss messages sent meanwhile. */
export function onSocketClosed() {
  state.synced = false;
  setSync('');
  for (const c of state.convs.values()) {
    c.rejoined = false;
    if (c.hist.loaded || c.timeline.size > 0) c.catchUp = true;
  }
  saveResumePoint();
}

/** `{"type":"synced","count":N}`: the mailbox or replay is complete; history can be read now. */
export function onSynced(f) {
  if (!state.welcomed) return;
  state.synced = true;
  state.syncFailures = 0;
  const n = typeof f.count === 'number' ? f.count : 0;
  const what = state.since ? 'replayed since the last one shown' : 'from the mailbox';
  const fresh = state.replayed;
  setSync(fresh ? `synced · ${fresh} new` : 'synced', `${n} message${n === 1 ? '' : 's'} ${what}, ${fresh} of them new on this page`);
  logEvent('conn', `synced: ${n} message${n === 1 ? '' : 's'} ${what}, ${fresh} new here`);
  for (const c of [...state.convs.values()]) pumpHistory(c);
  // The user's rooms and conversations (a server without accounts: rooms were joined at the welcome).
  if (state.accounts !== false) loadAccount();
}

/**
 * An `error` without request id that is about streams: a refused `since` before the welcome (say
 * hello again without it: the mailbox), or a mailbox/replay that failed after it (`unavailable`
 * instead of `synced`: reconnect, with backoff, to retry). Returns true when it was one.
 */
export function onStreamError(f) {
  if (!state.ws) return false;
  if (!state.welcomed && state.since && f.code === 'bad_request' && /since/.test(f.message || '')) {
    forgetResumePointOf(helloUser());
    sendHello(null);
    return true;
  }
  if (state.welcomed && !state.synced && f.code === 'unavailable') {
    state.syncFailures += 1;
    setSync('not synced', f.message || '');
    state.ws.close(RESYNC_CLOSE, 'sync failed');
    return true;
  }
  return false;
}

/** A conversation was opened: its history is wanted (read once `synced`, and for a room once joined). */
export function openHistory(c) {
  c.hist.wanted = true;
  pumpHistory(c);
}

/**
 * Reads what `c` needs now, if it can: its first history page once opened, or after a reconnect its
 * newest pages. Waits for `synced` (a server without streams never sends it, and gets no history
 * requests) and, for a room, for the join on the current socket to be acked.
 */
export function pumpHistory(c) {
  if (!isCurrent(c) || !state.welcomed || !state.synced) return;
  if (c.kind === 'room' && !(c.joined && c.rejoined)) return;
  if (c.hist.wanted && !c.hist.loaded) {
    if (!c.hist.loading && !c.hist.error) { c.catchUp = false; loadFirst(c); }
    return;
  }
  if (!c.catchUp) return;
  c.catchUp = false;
  // The replay after `since` brought the direct messages; rooms are not in the user's stream.
  if (c.kind === 'dm' && state.since) return;
  catchUp(c, null, c.timeline.newestId(), 1);
}

// One page of `c`'s history before message `before` (null: the newest); done(answer, error).
function readPage(c, before, done) {
  const frame = {
    type: 'history', ...(c.kind === 'dm' ? { with: c.name } : { room: c.name }),
    ...(before ? { before } : {}), limit: HISTORY_PAGE,
  };
  request(frame, (ans, err) => {
    if (!isCurrent(c)) return;
    if (err) { done(null, err); return; }
    if (!ans || ans.type !== 'history' || !Array.isArray(ans.messages)) {
      logEvent('error', `the server answered a history request of ${label(c)} without messages`);
      done(null, { code: 'bad_answer', message: 'the answer had no messages' });
      return;
    }
    done(ans, null);
  });
}

function failed(c, err) {
  // A dropped connection is not shown: the first page is asked again at the next `synced`.
  c.hist.error = err.code === 'disconnected' ? null
    : `Could not load the history: ${err.code}${err.message ? ` (${err.message})` : ''}`;
  renderHistoryBar();
}

function loadFirst(c) {
  c.hist.loading = true;
  c.hist.error = null;
  renderHistoryBar();
  readPage(c, null, (ans, err) => {
    c.hist.loading = false;
    if (err) { failed(c, err); return; }
    c.hist.loaded = true;
    c.hist.more = ans.more === true;
    ingestPage(c, ans.messages, 'history');
    renderHistoryBar();
  });
}

/** The "load older" control of the shown conversation (or "retry" after an error). */
export function loadOlder() {
  const c = state.convs.get(state.active);
  if (!c || c.hist.loading) return;
  c.hist.error = null;
  const before = c.timeline.oldestId();
  if (!c.hist.loaded || !before) { c.hist.loaded = false; renderHistoryBar(); pumpHistory(c); return; }
  c.hist.loading = true;
  renderHistoryBar();
  readPage(c, before, (ans, err) => {
    c.hist.loading = false;
    if (err) {
      if (err.code === 'disconnected') err = { code: 'disconnected', message: 'connection lost, try again once connected' };
      c.hist.error = `Could not load older messages: ${err.code}${err.message ? ` (${err.message})` : ''}`;
      renderHistoryBar();
      return;
    }
    c.hist.more = ans.more === true;
    ingestPage(c, ans.messages, 'history');
    renderHistoryBar();
  });
}

// After a reconnect: reads the newest pages back until they reach the newest message shown before.
function catchUp(c, before, known, pages) {
  readPage(c, before, (ans, err) => {
    if (err) {
      if (err.code === 'disconnected') c.catchUp = true;
      else logEvent('error', `could not catch up on ${label(c)}: ${err.code}`);
      return;
    }
    if (!known && !before) c.hist.more = ans.more === true;
    ingestPage(c, ans.messages, 'gap');
    renderHistoryBar();
    const oldest = ans.messages.length ? ans.messages[0].msg : null;
    if (ans.more === true && known && typeof oldest === 'string' && oldest > known && pages < GAP_FILL_MAX_PAGES) {
      catchUp(c, oldest, known, pages + 1);
    }
  });
}
