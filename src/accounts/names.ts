/**
 * Where an account's state lives: state streams (src/streams/types.ts `isStateStream`), each a
 * register that keeps its newest entry. Pure.
 *
 * - `a:<user>/j:<room>`: the user's membership of a room; entry id = when it changed (the
 *   message clock), frame `join` or `leave` (the newest change wins).
 * - `a:<user>/u:<peer>` and `a:<user>/r:<room>`: read markers; entry id = the message read up to,
 *   so the greatest wins and a marker only moves forward.
 * - `m:<room>/<user>`: the room's side of a membership (same id and frame), for its member list.
 */

/** The group of a user's account streams. */
export function accountGroup(user: string): string {
  return `a:${user}`;
}

/** The group of a room's member streams. */
export function membersGroup(room: string): string {
  return `m:${room}`;
}

export function membershipStream(user: string, room: string): string {
  return `a:${user}/j:${room}`;
}

export function memberStream(room: string, user: string): string {
  return `m:${room}/${user}`;
}

/** What a read marker is of: a conversation with a user or a room. */
export type ReadTarget = { readonly with: string } | { readonly room: string };

/** The key of a read target within an account (`u:<peer>` or `r:<room>`). */
export function targetKey(t: ReadTarget): string {
  return 'with' in t ? `u:${t.with}` : `r:${t.room}`;
}

export function markerStream(user: string, t: ReadTarget): string {
  return `a:${user}/${targetKey(t)}`;
}

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * The smallest message id greater than `id` (same length; ids are Crockford base32), so that a
 * range read `before: successorId(id)` ends at `id` inclusive. `id` must not be all `Z`.
 */
export function successorId(id: string): string {
  const chars = id.split('');
  for (let i = chars.length - 1; i >= 0; i--) {
    const d = ALPHABET.indexOf(chars[i]!);
    if (d < 31) {
      chars[i] = ALPHABET[d + 1]!;
      return chars.join('');
    }
    chars[i] = '0';
  }
  throw new RangeError(`no id follows ${id}`);
}
