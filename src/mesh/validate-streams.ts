/**
 * Checks of the stream calls and answers peers send (see validate.ts for the rules every check
 * follows: total, never throws, answers a reason or undefined). A stream entry is written to
 * clients when replayed, so its frame gets the same check as a delivery's.
 */
import { ID_PATTERN } from '../protocol/index.js';
import type { StreamCall__Output, StreamReply__Output } from './stream-calls.js';
import { MAX_DELIVERED_FRAME_BYTES, invalidDeliveredFrame, isCanonicalFrame, isTopic } from './validate.js';

/** Max entries, ids or streams in one stream call or answer. */
export const MAX_STREAM_ITEMS = 10_000;
/** Message ids as the stream layer makes them (26 characters of Crockford base32). */
const STREAM_MSG_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

const optionalMsgId = (v: unknown): boolean => v === '' || (typeof v === 'string' && STREAM_MSG_ID.test(v));
const optionalUser = (v: unknown): boolean => v === '' || (typeof v === 'string' && ID_PATTERN.test(v));

function invalidEntry(e: { stream?: unknown; id?: unknown; with?: unknown; frame?: unknown; pending?: unknown } | null): string | undefined {
  if (!e || !isTopic(e.stream)) return 'stream entry: bad stream';
  if (typeof e.id !== 'string' || !STREAM_MSG_ID.test(e.id)) return 'stream entry: bad id';
  if (!optionalUser(e.with) || (e.stream.startsWith('u:') && e.with === '')) return 'stream entry: bad with';
  if (typeof e.frame !== 'string' || e.frame.length > MAX_DELIVERED_FRAME_BYTES) return 'stream entry: bad frame';
  if (isCanonicalFrame(e.stream, e.frame, e.id)) return undefined;
  if (!e.frame.includes(`"msg":"${e.id}"`)) return 'stream entry: the frame is not that message';
  return invalidDeliveredFrame(e.stream, e.frame);
}

function invalidEntries(entries: unknown, what: string): string | undefined {
  if (!Array.isArray(entries) || entries.length > MAX_STREAM_ITEMS) return `${what}: bad entries`;
  for (const e of entries as Parameters<typeof invalidEntry>[0][]) {
    const bad = invalidEntry(e);
    if (bad) return `${what}: ${bad}`;
  }
  return undefined;
}

function invalidSummary(s: { stream?: unknown; oldest?: unknown; newest?: unknown } | null | undefined): string | undefined {
  return s && isTopic(s.stream) && optionalMsgId(s.oldest) && optionalMsgId(s.newest) ? undefined : 'stream summary: bad';
}

/** Why a stream call is unacceptable, or undefined. */
export function invalidStreamCall(c: StreamCall__Output | null | undefined): string | undefined {
  if (!c || !Number.isSafeInteger(c.id) || c.id < 0) return 'streamCall: bad id';
  switch (c.body) {
    case 'append': {
      const bad = invalidEntries(c.append?.entries, 'streamCall append');
      if (bad) return bad;
      const clears = c.append!.clears;
      if (!Array.isArray(clears) || clears.length > MAX_STREAM_ITEMS) return 'streamCall append: bad clears';
      for (const k of clears) {
        if (!k || !isTopic(k.stream) || !Array.isArray(k.ids) || k.ids.length > MAX_STREAM_ITEMS || !k.ids.every((id) => STREAM_MSG_ID.test(id))) {
          return 'streamCall append: bad clear';
        }
      }
      return undefined;
    }
    case 'read': {
      const r = c.read;
      if (!r || !isTopic(r.stream) || !optionalMsgId(r.after) || !optionalMsgId(r.before) || !optionalUser(r.with)) return 'streamCall read: bad range';
      return r.limit >= 1 && r.limit <= MAX_STREAM_ITEMS ? undefined : 'streamCall read: bad limit';
    }
    case 'clear': {
      const k = c.clear;
      if (!k || !isTopic(k.stream) || !Array.isArray(k.ids) || k.ids.length > MAX_STREAM_ITEMS) return 'streamCall clear: bad';
      return k.ids.every((id) => STREAM_MSG_ID.test(id)) ? undefined : 'streamCall clear: bad id';
    }
    case 'offer': {
      const o = c.offer;
      if (!o || !Array.isArray(o.streams) || o.streams.length > MAX_STREAM_ITEMS) return 'streamCall offer: bad';
      for (const s of o.streams) if (invalidSummary(s)) return 'streamCall offer: bad summary';
      return undefined;
    }
    case 'info':
      return c.info && isTopic(c.info.stream) ? undefined : 'streamCall info: bad stream';
    default:
      return 'streamCall: no body';
  }
}

/** Why a stream answer is unacceptable, or undefined. */
export function invalidStreamReply(r: StreamReply__Output | null | undefined): string | undefined {
  if (!r || !Number.isSafeInteger(r.id) || r.id <= 0 || typeof r.error !== 'string' || r.error.length > 1000) return 'streamReply: bad id or error';
  switch (r.body) {
    case 'range':
      return invalidEntries(r.range?.entries, 'streamReply range');
    case 'wanted': {
      const w = r.wanted;
      return w && Array.isArray(w.streams) && w.streams.length <= MAX_STREAM_ITEMS && w.streams.every(isTopic) ? undefined : 'streamReply wanted: bad';
    }
    case 'summary':
      return invalidSummary(r.summary);
    default:
      return undefined;
  }
}
