/**
 * The on-disk layout of the LevelDB stream store, and the reads that need no write path:
 * loading the in-memory index at open, and range reads.
 *
 * Keys (UTF-8; a stream name never holds NUL, ids are 26 ASCII characters, so within a stream
 * key order is id order):
 * - `m\0<stream>\0<id>` → `<with length>:<with><frame>` — one per held entry;
 * - `p\0<stream>\0<id>` → `` — present while that entry is pending (its mailbox mark), so clearing a
 *   mark deletes one small key and never rewrites the frame, and loading counts pending marks
 *   without reading frames;
 * - `v` → {@link FORMAT} — written when the store is created; a LevelDB database without it is not a
 *   chatmesh store.
 */
import type { ClassicLevel } from 'classic-level';
import type { RangeQuery, RangeResult, StreamEntry } from '../types.js';
import { StreamIndex } from './stream-index.js';

/** The database as the stream store opens it: string keys and values. */
export type StreamDb = ClassicLevel<string, string>;

/** Key of the format marker. */
export const FORMAT_KEY = 'v';
/** The format marker of this layout (a store with another one is refused at open). */
export const FORMAT = 'chatmesh-streams/1';

const ID_LENGTH = 26;

/** `m\0<stream>\0` or `p\0<stream>\0`: the first key a stream can have in that key space. */
export function keyPrefix(space: 'm' | 'p', stream: string): string {
  return `${space}\0${stream}\0`;
}

/** Just after the last key a stream can have in that key space. */
export function keyEnd(space: 'm' | 'p', stream: string): string {
  return `${space}\0${stream}\x01`;
}

/** The key of entry `id` of `stream` (`m`: the entry, `p`: its pending mark). */
export function entryKey(space: 'm' | 'p', stream: string, id: string): string {
  return `${space}\0${stream}\0${id}`;
}

/** The id of an `m` or `p` key. */
export function idOfKey(key: string): string {
  return key.slice(-ID_LENGTH);
}

function streamOfKey(key: string): string {
  return key.slice(2, -ID_LENGTH - 1);
}

/** The value of an `m` key: `with` length-prefixed, so neither field needs escaping. */
export function encodeValue(withUser: string, frame: string): string {
  return `${withUser.length}:${withUser}${frame}`;
}

/** The inverse of {@link encodeValue}. */
export function decodeValue(value: string): { with: string; frame: string } {
  const colon = value.indexOf(':');
  const end = colon + 1 + Number(value.slice(0, colon));
  return { with: value.slice(colon + 1, end), frame: value.slice(end) };
}

/** Keys read per native call while loading or paging. */
const CHUNK = 1000;

/**
 * Builds the index of every stream from a keys-only scan (first the entries, then the pending
 * marks), then reads the values of the state streams only (which are joins). Reads no message frames. Throws when a key is not of this layout (the caller reports `corrupt`).
 */
export async function loadIndex(db: StreamDb): Promise<StreamIndex> {
  const index = new StreamIndex();
  for (const space of ['m', 'p'] as const) {
    const it = db.keys({ gt: `${space}\0`, lt: `${space}\x01` });
    try {
      for (let keys = await it.nextv(CHUNK); keys.length > 0; keys = await it.nextv(CHUNK)) {
        for (const key of keys) {
          const stream = streamOfKey(key);
          if (key.length < ID_LENGTH + 4 || key[key.length - ID_LENGTH - 1] !== '\0') throw new Error(`not a stream key: ${JSON.stringify(key)}`);
          if (space === 'm') {
            index.add(stream, idOfKey(key), false);
          } else {
            const meta = index.get(stream);
            if (meta === undefined) throw new Error(`a pending mark without its entry: ${JSON.stringify(key)}`);
            index.markPending(meta);
          }
        }
      }
    } finally {
      await it.close();
    }
  }
  // State streams (accounts `a:`, room members `m:`) hold one tiny entry each: read those values to
  // know which are joins (a room's member count is kept in memory).
  for (const prefix of ['a:', 'm:']) {
    const it = db.iterator({ gt: `m\0${prefix}`, lt: `m\0${prefix.slice(0, -1)};` });
    try {
      for (let rows = await it.nextv(CHUNK); rows.length > 0; rows = await it.nextv(CHUNK)) {
        for (const [key, value] of rows) {
          const meta = index.get(streamOfKey(key));
          if (meta?.state && idOfKey(key) === meta.newest) index.setJoined(meta, decodeValue(value).frame === 'join');
        }
      }
    } finally {
      await it.close();
    }
  }
  return index;
}

/** A range read (see {@link RangeQuery}) from the database, oldest first. */
export async function readRange(db: StreamDb, stream: string, query: RangeQuery): Promise<RangeResult> {
  const space = query.pendingOnly ? 'p' : 'm';
  const prefix = keyPrefix(space, stream);
  const bounds = {
    ...(query.after === undefined ? { gte: prefix } : { gt: prefix + query.after }),
    lt: query.before === undefined ? keyEnd(space, stream) : prefix + query.before,
    reverse: query.from === 'newest',
  };
  // One more than asked tells whether there are more.
  const need = query.limit + 1;
  const chunk = query.with === undefined ? need : Math.min(CHUNK, need * 4);
  const found: Array<{ id: string; with: string; frame: string }> = [];
  const keep = (id: string, value: string | undefined): boolean => {
    if (value === undefined) return true; // trimmed since the pending mark was read
    const v = decodeValue(value);
    if (query.with === undefined || v.with === query.with) found.push({ id, ...v });
    return found.length < need;
  };
  if (query.pendingOnly) {
    const it = db.keys(bounds);
    try {
      for (let keys = await it.nextv(chunk); keys.length > 0; keys = await it.nextv(chunk)) {
        const ids = keys.map(idOfKey);
        const values = await db.getMany(ids.map((id) => entryKey('m', stream, id)));
        if (!ids.every((id, i) => keep(id, values[i]))) break;
      }
    } finally {
      await it.close();
    }
  } else {
    const it = db.iterator(bounds);
    try {
      for (let rows = await it.nextv(chunk); rows.length > 0; rows = await it.nextv(chunk)) {
        if (!rows.every(([key, value]) => keep(idOfKey(key), value))) break;
      }
    } finally {
      await it.close();
    }
  }
  const more = found.length > query.limit;
  if (more) found.length = query.limit;
  let marked: Set<string> | undefined;
  if (!query.pendingOnly && found.length > 0) {
    // The pending marks of the window read: one range of (few) small keys.
    const [lo, hi] = query.from === 'newest' ? [found[found.length - 1]!.id, found[0]!.id] : [found[0]!.id, found[found.length - 1]!.id];
    marked = new Set((await db.keys({ gte: entryKey('p', stream, lo), lte: entryKey('p', stream, hi) }).all()).map(idOfKey));
  }
  const entries: StreamEntry[] = found.map((e) => ({ id: e.id, with: e.with, frame: e.frame, pending: marked?.has(e.id) ?? true }));
  if (query.from === 'newest') entries.reverse();
  return { entries, more };
}
