// While the tab is hidden: the number of messages received meanwhile in its title ("(3) chatmesh")
// and a browser notification for each one (when allowed). Permission is asked once, at the first
// click or key press on the page (never on load), and never again, whatever the answer was.
import { state } from './state.js';
import { select } from './convs.js';
import { scheduleRead } from './reads.js';

const TITLE = 'chatmesh';
const ASKED_KEY = 'chatmesh.notifications.asked';

/** True unless the tab is hidden (in the background, minimized, or its screen off). */
export const pageVisible = () => document.visibilityState !== 'hidden';

function updateTitle() {
  document.title = state.hiddenCount ? `(${state.hiddenCount}) ${TITLE}` : TITLE;
}

/** A message from someone else arrived in `c` (live): count it and notify when the tab is hidden. */
export function notifyIncoming(c, m) {
  if (pageVisible()) return;
  state.hiddenCount += 1;
  updateTitle();
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  try {
    const n = new Notification(c.kind === 'dm' ? m.from : `${m.from} in #${c.name}`, { body: m.body.slice(0, 200), tag: c.key });
    n.onclick = () => { window.focus(); select(c.key); n.close(); };
  } catch { /* a browser that shows notifications only through a service worker */ }
}

function askOnce() {
  document.removeEventListener('pointerdown', askOnce, true);
  document.removeEventListener('keydown', askOnce, true);
  if (!('Notification' in window) || Notification.permission !== 'default') return;
  try {
    if (localStorage.getItem(ASKED_KEY)) return;
    localStorage.setItem(ASKED_KEY, '1');
  } catch { /* storage disabled: asked once per page load */ }
  try {
    const p = Notification.requestPermission();
    if (p && typeof p.catch === 'function') p.catch(() => {});
  } catch { /* an old browser's callback-only API */ }
}

/** Wires the title, the tab's visibility and the one permission request. */
export function bindNotifications() {
  document.addEventListener('pointerdown', askOnce, true);
  document.addEventListener('keydown', askOnce, true);
  document.addEventListener('visibilitychange', () => {
    if (!pageVisible()) return;
    state.hiddenCount = 0;
    updateTitle();
    const c = state.convs.get(state.active);
    if (c) scheduleRead(c);
  });
  updateTitle();
}
