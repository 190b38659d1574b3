// Presence: the watched users and their online dots.
import { state } from './state.js';
import { request } from './net.js';
import { renderWatch } from './render.js';

/** Watches `users` (adds them to the list at once, with status unknown until the ack). */
export function watch(users) {
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

export function unwatch(user) {
  request({ type: 'unwatch', users: [user] }, (_a, err) => {
    if (err && err.code !== 'disconnected') return;
    state.watched.delete(user);
    renderWatch();
  });
}

/** A `presence_change` (or a status from a watch ack). */
export function setWatched(user, status) {
  if (!state.watched.has(user)) return;
  state.watched.set(user, status);
  renderWatch();
}

/** The socket closed: every status is stale until watched again. */
export function watchedUnknown() {
  for (const u of state.watched.keys()) state.watched.set(u, 'unknown');
  renderWatch();
}

/** Watches belong to a connection: after a reconnect, watch again. */
export function rewatch() {
  const users = [...state.watched.keys()];
  if (users.length) watch(users);
}
