/**
 * Checks of the stream calls and answers peers send (see validate.ts for the rules every check
 * follows: total, never throws, answers a reason or undefined). A stream entry is written to
 * clients when replayed, so its frame gets the same check as a delivery's.
 */
import { ID_PATTERN } from '../protocol/index.js';
import type { StreamAnswer__Output, StreamCall__Output, StreamQuery__Output, StreamReply__Output } from './stream-calls.js';
import { MAX_DELIVERED_FRAME_BYTES, invalidDeliveredFrame, isCanonicalFrame, isTopic } from './validate.js';

/** Max entries, ids or streams in one stream call or answer. */
export const MAX_STREAM_ITEMS = 10_000;
/** Message ids as the stream layer makes them (26 characters of Crockford base32). */
const STREAM_MSG_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** Kinds of `StreamQuery` (src/streams/queries.ts). */
const QUERY_KINDS = new Set([1, 2, 3]);

const isIdPart = (s: string): boolean => ID_PATTERN.test(s);

/** A state stream's name (src/streams/types.ts): `a:<user>/j|u|r:<id>` or `m:<room>/<user>`. */
export function isStateStreamName(s: unknown): s is string {
  if (typeof s !== 'string' || s.length > 200) return false;
  const slash = s.indexOf('/');
  if (slash < 0 || !isGroupName(s.slice(0, slash))) return false;
  const key = s.slice(slash + 1);
  if (s.startsWith('m:')) return isIdPart(key);
  return (key.startsWith('j:') || key.startsWith('u:') || key.startsWith('r:')) && isIdPart(key.slice(2));
}

/** A group of state streams: `a:<user>` or `m:<room>`. */
export function isGroupName(s: unknown): s is string {
  return typeof s === 'string' && (s.startsWith('a:') || s.startsWith('m:')) && isIdPart(s.slice(2));
}

/** Any stream a peer may name: a topic's message stream or a state stream. */
export function isStreamName(s: unknown): s is string {
  return isTopic(s) || isStateStreamName(s);
}

const optionalMsgId = (v: unknown): boolean => v === '' || (typeof v === 'string' && STREAM_MSG_ID.test(v));
const optionalUser = (v: unknown): boolean => v === '' || (typeof v === 'string' && ID_PATTERN.test(v));

function invalidEntry(e: { stream?: unknown; id?: unknown; with?: unknown; frame?: unknown; pending?: unknown } | null): string | undefined {
  if (e && isStateStreamName(e.stream)) {
    if (typeof e.id !== 'string' || !STREAM_MSG_ID.test(e.id)) return 'stream entry: bad id';
    return e.with === '' && (e.frame === '' || e.frame === 'join' || e.frame === 'leave') && e.pending === false ? undefined : 'state entry: bad value';
  }
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

function invalidQuery(q: StreamQuery__Output | null | undefined): string | undefined {
  if (!q || !QUERY_KINDS.has(q.kind) || !Number.isSafeInteger(q.limit) || q.limit > MAX_STREAM_ITEMS) return 'streamCall query: bad kind or limit';
  // tail: a message stream, or a state stream (a read marker); conversations: a user stream.
  const stream = q.kind === 2 ? isGroupName(q.stream) : q.kind === 1 ? isStreamName(q.stream) : isTopic(q.stream) && q.stream.startsWith('u:');
  if (!stream) return 'streamCall query: bad stream';
  if (!(q.kind === 2 ? q.after === '' || isStreamName(q.after) : optionalMsgId(q.after)) || !optionalMsgId(q.before) || !optionalUser(q.self)) return 'streamCall query: bad bound';
  if (!Array.isArray(q.markers) || q.markers.length > MAX_STREAM_ITEMS) return 'streamCall query: bad markers';
  for (const m of q.markers) if (!m || !optionalUser(m.with) || !optionalMsgId(m.msg)) return 'streamCall query: bad marker';
  return undefined;
}

function invalidAnswer(a: StreamAnswer__Output | null | undefined): string | undefined {
  if (!a || !Array.isArray(a.counts) || a.counts.length > MAX_STREAM_ITEMS) return 'streamReply answers: bad answer';
  return invalidEntries(a.entries, 'streamReply answers');
}

function invalidSummary(s: { stream?: unknown; oldest?: unknown; newest?: unknown } | null | undefined): string | undefined {
  return s && isStreamName(s.stream) && optionalMsgId(s.oldest) && optionalMsgId(s.newest) ? undefined : 'stream summary: bad';
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
        if (!k || !isStreamName(k.stream) || !Array.isArray(k.ids) || k.ids.length > MAX_STREAM_ITEMS || !k.ids.every((id) => STREAM_MSG_ID.test(id))) {
          return 'streamCall append: bad clear';
        }
      }
      return undefined;
    }
    case 'read': {
      const r = c.read;
      if (!r || !isStreamName(r.stream) || !optionalMsgId(r.after) || !optionalMsgId(r.before) || !optionalUser(r.with)) return 'streamCall read: bad range';
      return r.limit >= 1 && r.limit <= MAX_STREAM_ITEMS ? undefined : 'streamCall read: bad limit';
    }
    case 'clear': {
      const k = c.clear;
      if (!k || !isStreamName(k.stream) || !Array.isArray(k.ids) || k.ids.length > MAX_STREAM_ITEMS) return 'streamCall clear: bad';
      return k.ids.every((id) => STREAM_MSG_ID.test(id)) ? undefined : 'streamCall clear: bad id';
    }
    case 'offer': {
      const o = c.offer;
      if (!o || !Array.isArray(o.streams) || o.streams.length > MAX_STREAM_ITEMS) return 'streamCall offer: bad';
      for (const s of o.streams) if (invalidSummary(s)) return 'streamCall offer: bad summary';
      return undefined;
    }
    case 'info':
      return c.info && isStreamName(c.info.stream) ? undefined : 'streamCall info: bad stream';
    case 'query': {
      const qs = c.query?.queries;
      if (!Array.isArray(qs) || qs.length > MAX_STREAM_ITEMS) return 'streamCall query: bad';
      for (const q of qs) {
        const bad = invalidQuery(q);
        if (bad) return bad;
      }
      return undefined;
    }
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
      return w && Array.isArray(w.streams) && w.streams.length <= MAX_STREAM_ITEMS && w.streams.every(isStreamName) ? undefined : 'streamReply wanted: bad';
    }
    case 'summary':
      return invalidSummary(r.summary);
    case 'answers': {
      const as = r.answers?.answers;
      if (!Array.isArray(as) || as.length > MAX_STREAM_ITEMS) return 'streamReply answers: bad';
      for (const a of as) {
        const bad = invalidAnswer(a);
        if (bad) return bad;
      }
      return undefined;
    }
    default:
      return undefined;
  }
}
