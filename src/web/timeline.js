// The messages of one conversation or room, kept in message-id order and de-duplicated by id.
// Pure logic: no DOM, no socket, no clock of its own (callers pass the time), so it can be tested
// by feeding it values.
//
// Message ids are 26 characters of Crockford base32 whose string order is their time order
// (the first 10 characters are the wall-clock ms). A message not yet acked has no id: it gets a
// local sort key that places it just after the newest message known when it was written.

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const DIGIT = new Map([...CROCKFORD].map((c, i) => [c, i]));

/** A well-formed message id. */
export const MSG_ID_RE = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** The wall-clock ms a message id was made at, or NaN when it is not a message id. */
export function idTime(id) {
  if (typeof id !== 'string' || !MSG_ID_RE.test(id)) return NaN;
  let t = 0;
  for (let i = 0; i < 10; i++) t = t * 32 + DIGIT.get(id[i]);
  return t;
}

/** The smallest id made at wall-clock ms `ms` or later. */
export function idAtTime(ms) {
  let t = Math.max(0, Math.floor(ms));
  let s = '';
  for (let i = 0; i < 10; i++) { s = CROCKFORD[t % 32] + s; t = Math.floor(t / 32); }
  return `${s}${'0'.repeat(16)}`;
}

/** The sort key of a timeline item: its message id, or the local key of one not yet acked. */
const keyOf = (m) => m.msg ?? m.localKey;

/**
 * One conversation's items (`{ msg, ... }` objects; `msg` is the message id or null), oldest first.
 * Not safe for concurrent use (there is none in a page).
 */
export class Timeline {
  constructor() {
    /** The items, in key order. Read-only for callers. */
    this.items = [];
    this.byId = new Map();
    this.localSeq = 0;
  }

  get size() { return this.items.length; }

  /** The item with message id `msg`, or undefined. */
  get(msg) { return this.byId.get(msg); }

  /** Where an item with this key belongs (the index of the first item with a greater key). */
  slot(key) {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keyOf(this.items[mid]) <= key) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  /**
   * Adds an item that has a message id. Returns its index, or -1 when an item with that id is
   * already there (the item is then not added).
   */
  insert(m) {
    if (this.byId.has(m.msg)) return -1;
    const i = this.slot(m.msg);
    this.items.splice(i, 0, m);
    this.byId.set(m.msg, m);
    return i;
  }

  /**
   * Adds an item written here and not acked yet (`msg` null): it sorts after every message known
   * now and after the id of `nowMs`, before anything that arrives later. Returns its index.
   */
  insertLocal(m, nowMs) {
    const newest = this.newestId();
    const anchor = idAtTime(nowMs);
    this.localSeq += 1;
    m.localKey = `${newest && newest > anchor ? newest : anchor}~${String(this.localSeq).padStart(8, '0')}`;
    const i = this.slot(m.localKey);
    this.items.splice(i, 0, m);
    return i;
  }

  /**
   * Gives a local item its message id (its ack came) and moves it to its place. Returns its new
   * index, or -1 when an item with that id is already there: then the local item is removed and
   * the caller keeps the other one.
   */
  confirm(m, msg) {
    this.remove(m);
    m.msg = msg;
    return this.insert(m);
  }

  /** Removes an item; true when it was there. */
  remove(m) {
    const i = this.items.indexOf(m);
    if (i < 0) return false;
    this.items.splice(i, 1);
    if (m.msg && this.byId.get(m.msg) === m) this.byId.delete(m.msg);
    return true;
  }

  /** The oldest message id held (local items aside), or null. */
  oldestId() {
    for (const m of this.items) if (m.msg) return m.msg;
    return null;
  }

  /** The newest message id held (local items aside), or null. */
  newestId() {
    for (let i = this.items.length - 1; i >= 0; i--) if (this.items[i].msg) return this.items[i].msg;
    return null;
  }

  /** The first local item (no id) from this device whose body is `body` and status one of `statuses`. */
  findUnconfirmed(body, statuses) {
    return this.items.find((m) => !m.msg && m.mine && m.body === body && statuses.includes(m.status));
  }
}

/**
 * Where to resume a stream from, given the ids of the messages shown: the newest id at least
 * `marginMs` older than the newest one shown (or the oldest shown, when all are that recent), so
 * that a message still in flight when the connection dropped, with an id a little below the newest,
 * is replayed too; the overlap is removed by id. Ids that are not message ids make it fall back to
 * the newest. Returns null for no ids.
 */
export function resumePoint(ids, marginMs) {
  let newest = null;
  for (const id of ids) if (newest === null || id > newest) newest = id;
  if (newest === null) return null;
  const newestTime = idTime(newest);
  if (Number.isNaN(newestTime)) return newest;
  const cutoff = newestTime - marginMs;
  let best = null;
  let oldest = newest;
  for (const id of ids) {
    if (id < oldest) oldest = id;
    const t = idTime(id);
    if (!Number.isNaN(t) && t <= cutoff && (best === null || id > best)) best = id;
  }
  return best ?? oldest;
}
