// Presence: watched users and their online dots. A user is watched for one or more reasons:
// "pin" (the Watching list), "dm" (a conversation partner: the dot in the sidebar), "roster" (a
// member of the shown room). At most MAX_WATCHED users are watched (the server's limit); past
// that a partner's dot stays unknown.
import { MAX_WATCHED, state } from './state.js';
import { request } from './net.js';
import { renderConvs, renderWatch } from './render.js';
import { renderRoster } from './roster.js';

function redraw() {
  renderWatch();
  renderConvs();
  renderRoster();
}

/** Watches `users` for `why`; new ones are asked for (status unknown until the ack). */
export function watch(users, why = 'pin') {
  const fresh = [];
  for (const u of users) {
    let reasons = state.watchWhy.get(u);
    if (!reasons) {
      if (state.watchWhy.size >= MAX_WATCHED) continue;
      reasons = new Set();
      state.watchWhy.set(u, reasons);
      state.watched.set(u, 'unknown');
      fresh.push(u);
    }
    reasons.add(why);
  }
  redraw();
  if (fresh.length && state.welcomed) send(fresh);
}

function send(users) {
  for (let i = 0; i < users.length; i += 100) {
    const batch = users.slice(i, i + 100);
    request({ type: 'watch', users: batch }, (ack, err) => {
      if (err) {
        if (err.code !== 'disconnected') { for (const u of batch) forget(u); redraw(); }
        return;
      }
      for (const [u, s] of Object.entries(ack.users || {})) setWatched(u, s);
    });
  }
}

function forget(user) {
  state.watchWhy.delete(user);
  state.watched.delete(user);
}

/** Stops watching `users` for `why`; those watched for no other reason are unwatched. */
export function unwatch(users, why = 'pin') {
  const gone = [];
  for (const u of users) {
    const reasons = state.watchWhy.get(u);
    if (!reasons || !reasons.delete(why)) continue;
    if (reasons.size === 0) { forget(u); gone.push(u); }
  }
  redraw();
  if (gone.length && state.welcomed) request({ type: 'unwatch', users: gone }, () => {});
}

/** True when `user` is in the Watching list. */
export const pinned = (user) => Boolean(state.watchWhy.get(user)?.has('pin'));

/** A `presence_change` (or a status from a watch ack or a member list). */
export function setWatched(user, status) {
  if (!state.watched.has(user)) return;
  state.watched.set(user, status);
  redraw();
}

/** The socket closed: every status is stale until watched again. */
export function watchedUnknown() {
  for (const u of state.watched.keys()) state.watched.set(u, 'unknown');
  redraw();
}

/** Watches belong to a connection: after a (re)connect, watch everyone again. */
export function rewatch() {
  const users = [...state.watched.keys()];
  if (users.length) send(users);
}
