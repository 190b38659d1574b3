/**
 * Checks of what peers send. Peers are authenticated by the mesh secret or mesh TLS, but a buggy
 * or hostile peer must not be able to corrupt routing state, make this node allocate without
 * bound, or write anything but a well-formed server frame to a user's WebSocket. Every check is
 * total: it answers a reason or undefined for any input, and never throws.
 */
import { ID_PATTERN, MAX_BODY_BYTES, MAX_FRAME_BYTES } from '../protocol/index.js';
import { MAX_RESULTS_PER_ENVELOPE } from './result-batch.js';
import type { Envelope__Output } from './wire.js';
import { invalidStreamCall, invalidStreamReply } from './validate-streams.js';

/** Max topics in one lookup request or one snapshot chunk from a peer. */
export const MAX_TOPICS_PER_ITEM = 10_000;
/** Max owners in one route update (one per node of the mesh). */
export const MAX_OWNERS_PER_ROUTE = 10_000;
/** Max connections one node may claim for one topic. */
export const MAX_COUNT = 10_000_000;
/** Max bytes of a delivered frame: a delivery carries one encoded server frame. */
export const MAX_DELIVERED_FRAME_BYTES = 2 * MAX_FRAME_BYTES;
/** `host:port` as peers advertise it. */
export const ADDRESS_PATTERN = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):\d{1,5}$/;
/** Message ids (`msg`): ULIDs today; characters JSON needs no escaping for, with room to grow. */
export const MESSAGE_ID_PATTERN = /^[A-Za-z0-9_.:@-]{1,200}$/;

/** True when `t` is `u:<id>` or `r:<id>`. */
export function isTopic(t: unknown): t is string {
  return typeof t === 'string' && (t.startsWith('u:') || t.startsWith('r:')) && ID_PATTERN.test(t.slice(2));
}

function count(n: unknown): boolean {
  return Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= MAX_COUNT;
}

const isId = (v: unknown): boolean => typeof v === 'string' && ID_PATTERN.test(v);
const isMsgId = (v: unknown): boolean => typeof v === 'string' && MESSAGE_ID_PATTERN.test(v);
const isTs = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
// Bytes are at least the UTF-16 length and at most three times it: only measure when it matters.
const isBody = (v: unknown): boolean => typeof v === 'string'
  && (v.length * 3 <= MAX_BODY_BYTES || (v.length <= MAX_BODY_BYTES && Buffer.byteLength(v) <= MAX_BODY_BYTES));

/** How one type of delivered frame is checked. */
interface DeliverableFrame {
  /** The kind of topic it may be delivered to ('' either). */
  readonly topic: 'u:' | 'r:' | '';
  /** Every field it may have, each with its check; no other field is allowed. */
  readonly fields: Readonly<Record<string, (v: unknown) => boolean>>;
  /** How many of `fields` it has (default: all; less when it has one of two alternatives). */
  readonly count?: number;
  /** Whether the frame belongs to the topic's connections (`name`: the topic without its prefix). */
  readonly belongs: (f: Readonly<Record<string, unknown>>, name: string, topic: string) => boolean;
}

/** Number of fields of each deliverable frame type (computed once). */
const fieldCounts = new Map<DeliverableFrame, number>();
function fieldCount(spec: DeliverableFrame): number {
  let n = fieldCounts.get(spec);
  if (n === undefined) fieldCounts.set(spec, n = spec.count ?? Object.keys(spec.fields).length);
  return n;
}

/**
 * The server frames a peer may ask this node to deliver (`Deliver.data`), by `type`: exactly what
 * the gateway publishes (protocol.md §2). A new frame that travels in deliveries must be added here,
 * or links carrying it are dropped as invalid. Only append.
 */
export const DELIVERABLE_FRAMES: Readonly<Record<string, DeliverableFrame>> = {
  // To every connection of the recipient and of the sender: the topic's user is one of the two.
  message: {
    topic: 'u:',
    fields: { type: () => true, msg: isMsgId, from: isId, to: isId, body: isBody, ts: isTs },
    belongs: (f, name) => f['to'] === name || f['from'] === name,
  },
  room_message: {
    topic: 'r:',
    fields: { type: () => true, msg: isMsgId, room: isId, from: isId, body: isBody, ts: isTs },
    belongs: (f, name) => f['room'] === name,
  },
  // Accounts (protocol.md "Accounts"): to the user's other devices, a receipt to the other party.
  joined: { topic: 'u:', fields: { type: () => true, room: isId }, belongs: () => true },
  left: { topic: 'u:', fields: { type: () => true, room: isId }, belongs: () => true },
  read: {
    topic: 'u:',
    fields: { type: () => true, user: isId, with: isId, room: isId, msg: isMsgId },
    count: 4,
    belongs: (f, name) => f['user'] === name || (f['with'] !== undefined && f['with'] === name),
  },
  typing: {
    topic: '',
    fields: { type: () => true, from: isId, to: isId, room: isId },
    count: 3,
    belongs: (f, name, topic) => (topic.startsWith('u:') ? f['to'] === name : f['room'] === name),
  },
};

/**
 * Why `data` is not a frame a peer may deliver to `topic`'s connections, or undefined when it is:
 * a JSON object whose `type` is one of `DELIVERABLE_FRAMES`, with exactly that frame's fields, each
 * valid, and belonging to the topic (a `message` to `u:bob` is to or from bob, a `room_message` to
 * `r:lobby` is in lobby). One `JSON.parse`.
 */
export function invalidDeliveredFrame(topic: string, data: string): string | undefined {
  if (typeof data !== 'string' || data.charCodeAt(0) !== 0x7b /* { */) return 'deliver: data is not a JSON object';
  if (data.length > MAX_DELIVERED_FRAME_BYTES) return 'deliver: data too large';
  // The frames nodes deliver are built by the gateway's encoders in one layout: check that layout by
  // scanning, without JSON.parse and without allocating (a parse per delivery was a third of a
  // receiving node's CPU). Anything else, valid or not, takes the full check below.
  if (isCanonicalFrame(topic, data)) return undefined;
  return invalidFrameByParsing(topic, data);
}

/** The full check of {@link invalidDeliveredFrame} (one JSON.parse): exported for tests. */
export function invalidFrameByParsing(topic: string, data: string): string | undefined {
  let f: unknown;
  try {
    f = JSON.parse(data);
  } catch {
    return 'deliver: data is not JSON';
  }
  if (typeof f !== 'object' || f === null || Array.isArray(f)) return 'deliver: data is not a JSON object';
  const frame = f as Record<string, unknown>;
  const type = frame['type'];
  const spec = typeof type === 'string' && Object.hasOwn(DELIVERABLE_FRAMES, type) ? DELIVERABLE_FRAMES[type] : undefined;
  if (!spec) return `deliver: ${typeof type === 'string' ? `type "${type.slice(0, 32)}"` : 'a frame without a type'} is not deliverable`;
  if (!topic.startsWith(spec.topic)) return `deliver: a ${type as string} frame to a ${topic.slice(0, 2)} topic`;
  let n = 0;
  // JSON.parse makes plain objects: for-in sees exactly their own keys (also "__proto__").
  for (const k in frame) {
    const check = Object.hasOwn(spec.fields, k) ? spec.fields[k] : undefined;
    if (!check) return `deliver: ${type as string} has an unexpected field "${k.slice(0, 32)}"`;
    if (!check(frame[k])) return `deliver: ${type as string} has a bad "${k}"`;
    n++;
  }
  if (n !== fieldCount(spec)) return `deliver: ${type as string} lacks a field`;
  if (!spec.belongs(frame, topic.slice(2), topic)) return `deliver: ${type as string} does not belong to ${topic}`;
  return undefined;
}

function invalidRoute(r: { topic: unknown; owners: unknown }, what: string): string | undefined {
  if (!isTopic(r.topic) || !Array.isArray(r.owners) || r.owners.length > MAX_OWNERS_PER_ROUTE) return `${what}: bad topic or owners`;
  for (const o of r.owners as Array<{ nodeId?: unknown; count?: unknown } | null>) {
    if (typeof o?.nodeId !== 'string' || o.nodeId === '' || o.nodeId.length > 128 || !count(o.count)) return `${what}: bad owner`;
  }
  return undefined;
}

/** Why an envelope from a peer is unacceptable, or undefined when it is fine. Never throws. */
export function invalidEnvelope(env: Envelope__Output): string | undefined {
  switch (env.kind) {
    case 'deliver': {
      const d = env.deliver;
      if (!d) return 'deliver: missing';
      if (!isTopic(d.topic)) return 'deliver: bad topic';
      if (typeof d.exceptSession !== 'string' || d.exceptSession.length > 128) return 'deliver: bad session';
      // The message id keys the receiver's dedupe window: it must be the frame's own.
      if (typeof d.msg !== 'string' || typeof d.data !== 'string' || d.msg.length > 200) return 'deliver: bad msg';
      // The common case, proven by one scan (frame, topic and message id together).
      if (d.data.length <= MAX_DELIVERED_FRAME_BYTES && isCanonicalFrame(d.topic, d.data, d.msg)) return undefined;
      if (d.msg !== '' && (!MESSAGE_ID_PATTERN.test(d.msg) || !d.data.includes(`"msg":"${d.msg}"`))) return 'deliver: bad msg';
      return invalidDeliveredFrame(d.topic, d.data);
    }
    case 'owner': {
      const o = env.owner;
      return o && isTopic(o.topic) && count(o.count) ? undefined : 'owner: bad topic or count';
    }
    case 'route':
      return env.route ? invalidRoute(env.route, 'route') : 'route: missing';
    case 'lookup': {
      const l = env.lookup;
      return l && Array.isArray(l.topics) && l.topics.length <= MAX_TOPICS_PER_ITEM && l.topics.every(isTopic) ? undefined : 'lookup: bad topics';
    }
    case 'lookupReply': {
      const r = env.lookupReply;
      if (!r || !Array.isArray(r.routes) || r.routes.length > MAX_TOPICS_PER_ITEM) return 'lookupReply: bad routes';
      for (const x of r.routes) {
        const bad = x ? invalidRoute(x, 'lookupReply') : 'lookupReply: bad route';
        if (bad) return bad;
      }
      return undefined;
    }
    case 'snapshot': {
      const s = env.snapshot;
      if (!s || !Array.isArray(s.topics)) return 'snapshot: missing';
      if (s.topics.length > MAX_TOPICS_PER_ITEM) return 'snapshot: chunk too large';
      return s.topics.every((t) => isTopic(t?.topic) && count(t.count)) ? undefined : 'snapshot: bad topic or count';
    }
    case 'results':
      return invalidResults(env.results);
    case 'ownerAck':
      return env.ownerAck && Number.isSafeInteger(env.ownerAck.id) && env.ownerAck.id > 0 ? undefined : 'ownerAck: bad id';
    case 'streamCall':
      return invalidStreamCall(env.streamCall);
    case 'streamReply':
      return invalidStreamReply(env.streamReply);
    default:
      return undefined;
  }
}

/** Why a `DeliverResults` is malformed, or undefined. */
function invalidResults(r: Envelope__Output['results']): string | undefined {
  if (!r || !Number.isSafeInteger(r.firstId) || !Array.isArray(r.counts) || !Array.isArray(r.idGaps) || !Array.isArray(r.notHere)) return 'results: missing';
  const n = r.counts.length;
  if (n === 0 || n > MAX_RESULTS_PER_ENVELOPE || r.idGaps.length !== n - 1 || r.notHere.length > n) return 'results: bad lengths';
  if (!r.counts.every(count) || !r.idGaps.every((g) => Number.isSafeInteger(g) && g >= 1)) return 'results: bad counts or gaps';
  for (let i = 0; i < r.notHere.length; i++) {
    const p = r.notHere[i]!;
    if (!Number.isSafeInteger(p) || p >= n || (i > 0 && p <= r.notHere[i - 1]!)) return 'results: bad not_here';
  }
  return undefined;
}

const MESSAGE_HEAD = '{"type":"message","msg":"';
const ROOM_HEAD = '{"type":"room_message","msg":"';

/** Whether char code `c` may appear in a user/room/message id (`[A-Za-z0-9_.:@-]`). */
function idChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x3a) || c === 0x5f || c === 0x2e || c === 0x40 || c === 0x2d;
}

/** Scans an id of 1..`max` id characters at `i` up to its closing quote: the index after the quote, or -1. */
function scanId(data: string, i: number, max: number): number {
  const start = i;
  while (i < data.length && idChar(data.charCodeAt(i))) i++;
  const len = i - start;
  return len >= 1 && len <= max && data.charCodeAt(i) === 0x22 /* " */ ? i + 1 : -1;
}

/** `text` at `i`: the index after it, or -1. */
function expect(data: string, i: number, text: string): number {
  return i >= 0 && data.startsWith(text, i) ? i + text.length : -1;
}

/** Whether the id in `data` from `start` to its closing quote at `end - 1` is the topic's name. */
function isTopicName(data: string, start: number, end: number, topic: string): boolean {
  const len = end - 1 - start;
  if (len !== topic.length - 2) return false;
  for (let k = 0; k < len; k++) if (data.charCodeAt(start + k) !== topic.charCodeAt(2 + k)) return false;
  return true;
}

/**
 * A sound but incomplete check (true only for valid frames): `data` is exactly what
 * `encodeMessage`/`encodeRoomMessage` produce for a frame that belongs to `topic` — ids of allowed
 * characters and lengths, a body without escapes or lone surrogates of at most `MAX_BODY_BYTES`
 * UTF-8 bytes, a safe non-negative integer `ts` — and, when `msg` is not empty, whose message id is
 * `msg`. False means "not proven here", not "invalid". No allocation.
 */
export function isCanonicalFrame(topic: string, data: string, msg = ''): boolean {
  const room = data.startsWith(ROOM_HEAD);
  if (!room && !data.startsWith(MESSAGE_HEAD)) return false;
  if (topic.charCodeAt(0) !== (room ? 0x72 /* r */ : 0x75 /* u */)) return false;
  const m = room ? ROOM_HEAD.length : MESSAGE_HEAD.length;
  let i = scanId(data, m, 200);
  if (i < 0 || (msg !== '' && (i - 1 - m !== msg.length || !data.startsWith(msg, m)))) return false;
  let belongs: boolean;
  if (room) {
    const r = expect(data, i, ',"room":"');
    i = r < 0 ? -1 : scanId(data, r, 64);
    if (i < 0) return false;
    belongs = isTopicName(data, r, i, topic);
    i = expect(data, i, ',"from":"');
    i = i < 0 ? -1 : scanId(data, i, 64);
  } else {
    const f = expect(data, i, ',"from":"');
    i = f < 0 ? -1 : scanId(data, f, 64);
    if (i < 0) return false;
    belongs = isTopicName(data, f, i, topic);
    const to = expect(data, i, ',"to":"');
    i = to < 0 ? -1 : scanId(data, to, 64);
    if (i < 0) return false;
    belongs ||= isTopicName(data, to, i, topic);
  }
  if (!belongs) return false;
  i = expect(data, i, ',"body":"');
  if (i < 0) return false;
  let bytes = 0;
  for (;; i++) {
    if (i >= data.length) return false;
    const c = data.charCodeAt(i);
    if (c === 0x22 /* " */) break;
    if (c < 0x20 || c === 0x5c /* \ */) return false;
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      const d = data.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      bytes += 4;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return false;
    else bytes += 3;
  }
  if (bytes > MAX_BODY_BYTES) return false;
  i = expect(data, i + 1, ',"ts":');
  if (i < 0) return false;
  const ts = i;
  while (i < data.length && data.charCodeAt(i) >= 0x30 && data.charCodeAt(i) <= 0x39) i++;
  const digits = i - ts;
  if (digits < 1 || digits > 15 || (digits > 1 && data.charCodeAt(ts) === 0x30)) return false;
  return i === data.length - 1 && data.charCodeAt(i) === 0x7d /* } */;
}
