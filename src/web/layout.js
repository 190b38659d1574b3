// Layout controls: on a narrow screen the sidebar folds away behind a toggle (and folds again
// when a conversation is picked); the events pane (a debugging log) is hidden until asked for.
import { ui } from './dom.js';

function setSidebar(open) {
  ui.chat.classList.toggle('sidebar-open', open);
  ui.sidebarToggle.setAttribute('aria-expanded', String(open));
}

/** Folds the sidebar away (a narrow screen shows one of it and the conversation at a time). */
export function closeSidebar() {
  setSidebar(false);
}

export function bindLayout() {
  ui.sidebarToggle.addEventListener('click', () => setSidebar(!ui.chat.classList.contains('sidebar-open')));
  ui.eventsToggle.addEventListener('click', () => {
    const show = ui.eventsPane.hidden;
    ui.eventsPane.hidden = !show;
    ui.eventsToggle.setAttribute('aria-expanded', String(show));
    ui.eventsToggle.classList.toggle('on', show);
    if (show) ui.events.scrollTop = ui.events.scrollHeight;
  });
}
