// Which node the socket goes to. The page starts on the node that served it; after each welcome
// (and every ~30 s) it reads `GET /nodes`, the client URLs of the live nodes, and keeps the list.
// When its node drains (close 1012) or fails several attempts in a row, the next connection goes
// to another listed node. A failed /nodes read changes nothing.
import { FAILS_BEFORE_MOVE, NODES_REFRESH_MS, state } from './state.js';
import { logEvent } from './dom.js';

/** The WebSocket URL of the node that served the page. */
export function pageWsUrl() {
  return new URL('ws', location.href).href.replace(/^http/, 'ws');
}

/** The WebSocket URL for the next connection. */
export function currentUrl() {
  if (!state.url) state.url = pageWsUrl();
  return state.url;
}

const validEntry = (n) => n && typeof n.id === 'string' && typeof n.url === 'string' && /^wss?:\/\/[^\s]+$/.test(n.url);

// The /nodes URL beside a node's WebSocket URL (ws://h:p/ws -> http://h:p/nodes).
function nodesUrlOf(wsUrl) {
  try {
    const u = new URL(wsUrl);
    u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
    u.pathname = u.pathname.replace(/ws$/, 'nodes');
    return u.href;
  } catch { return null; }
}

async function readNodes(url) {
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const list = await res.json();
  if (!Array.isArray(list)) throw new Error('not a list');
  return list.filter(validEntry).map((n) => ({ id: n.id, url: n.url }));
}

// The page's Content-Security-Policy may refuse reads from other origins: once it has, only the
// page's own node is asked.
let othersRefused = false;
document.addEventListener('securitypolicyviolation', (e) => {
  if (/^connect-src/.test(e.effectiveDirective || e.violatedDirective || '') && /^https?:/.test(e.blockedURI || '')) othersRefused = true;
});

/**
 * Reads GET /nodes: from the node that served the page, then (when that fails) from the current
 * node, if it is another one and the page's policy lets it.
 */
export async function refreshNodes() {
  const own = new URL('nodes', location.href).href;
  const current = othersRefused ? null : nodesUrlOf(currentUrl());
  const urls = [...new Set([own, current].filter(Boolean))];
  for (const url of urls) {
    try {
      const list = await readNodes(url);
      if (list.length) {
        state.nodes = list;
        return true;
      }
    } catch { /* not there (yet), or refused: keep what is known */ }
  }
  return false;
}

/** After a welcome: the node works; read the list now and every NODES_REFRESH_MS. */
export function startNodesRefresh() {
  state.failsHere = 0;
  stopNodesRefresh();
  refreshNodes();
  state.nodesTimer = setInterval(refreshNodes, NODES_REFRESH_MS);
}

export function stopNodesRefresh() {
  clearInterval(state.nodesTimer);
  state.nodesTimer = null;
}

/** Another node's URL than the current one (the next in the list), or null when none is known. */
function otherUrl() {
  const urls = [...new Set([...state.nodes.map((n) => n.url), pageWsUrl()])];
  const here = urls.indexOf(currentUrl());
  for (let k = 1; k <= urls.length; k++) {
    const u = urls[(Math.max(here, 0) + k) % urls.length];
    if (u !== currentUrl()) return u;
  }
  return null;
}

/**
 * A connection closed (`code`; `welcomed`: it had got in). Moves to another node on a drain
 * (1012) or after FAILS_BEFORE_MOVE failed attempts in a row; returns true when it moved.
 */
export function chooseNode(code, welcomed) {
  state.failsHere = welcomed ? 0 : state.failsHere + 1;
  if (code !== 1012 && state.failsHere < FAILS_BEFORE_MOVE) return false;
  const next = otherUrl();
  if (!next) return false;
  const name = (state.nodes.find((n) => n.url === next) || {}).id;
  logEvent('conn', `${code === 1012 ? 'the node is draining' : `${state.failsHere} failed attempts`}: moving to ${name ? `node ${name} ` : ''}${next}`);
  state.url = next;
  state.failsHere = 0;
  return true;
}
