/**
 * The one place where client input is validated. Pure: takes text, returns a typed frame or throws
 * a `ChatError` (with the request id when one could be read, so the answer can echo it).
 */
import { ChatError, ErrorCode } from './errors.js';
import type { ClientFrame } from './frames.js';
import {
  DEFAULT_CONVERSATIONS_LIMIT, DEFAULT_MEMBERS_LIMIT, MAX_CONVERSATIONS_LIMIT, MAX_MEMBERS_LIMIT,
  DEFAULT_HISTORY_LIMIT, ID_PATTERN, MAX_HISTORY_LIMIT, MESSAGE_ID_PATTERN, MAX_BODY_BYTES, MAX_PRESENCE_USERS, MAX_REQUEST_ID_CHARS, MAX_TOKEN_CHARS, MAX_WATCHED_PER_CONNECTION,
} from './limits.js';

/** A decode failure: a `ChatError` that also carries the request id, if it was readable. */
export class FrameError extends ChatError {
  readonly requestId: string | undefined;
  constructor(code: ErrorCode, message: string, requestId: string | undefined) {
    super(code, message);
    this.name = 'FrameError';
    this.requestId = requestId;
  }
}

type Obj = Record<string, unknown>;

/** True when `value` is a valid user or room id. */
export function isValidId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

function requireId(obj: Obj, field: string, rid: string | undefined): string {
  const v = obj[field];
  if (!isValidId(v)) {
    throw new FrameError(ErrorCode.BadRequest, `field "${field}" must be an id matching ${ID_PATTERN.source}`, rid);
  }
  return v;
}

function requireBody(obj: Obj, rid: string | undefined): string {
  const v = obj['body'];
  if (typeof v !== 'string') throw new FrameError(ErrorCode.BadRequest, 'field "body" must be a string', rid);
  // Cheap bound first: a UTF-8 encoding is at most 3 bytes per UTF-16 unit.
  if (v.length * 3 > MAX_BODY_BYTES && Buffer.byteLength(v, 'utf8') > MAX_BODY_BYTES) {
    throw new FrameError(ErrorCode.TooLarge, `body is over ${MAX_BODY_BYTES} bytes`, rid);
  }
  return v;
}

function requireUsers(obj: Obj, max: number, rid: string | undefined): string[] {
  const v = obj['users'];
  if (!Array.isArray(v) || v.length === 0) {
    throw new FrameError(ErrorCode.BadRequest, 'field "users" must be a non-empty array of user ids', rid);
  }
  if (v.length > max) throw new FrameError(ErrorCode.BadRequest, `field "users" holds more than ${max} users`, rid);
  for (const u of v) {
    if (!isValidId(u)) throw new FrameError(ErrorCode.BadRequest, `"users" holds an invalid user id`, rid);
  }
  return [...new Set(v as string[])];
}

/** The message of a hello whose `since` is malformed (the gateway answers it without closing). */
export const BAD_SINCE = 'field "since" must be a message id (the "msg" of a message frame)';

function optionalMessageId(obj: Obj, field: string, rid: string | undefined, message?: string): string | undefined {
  const v = obj[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !MESSAGE_ID_PATTERN.test(v)) {
    throw new FrameError(ErrorCode.BadRequest, message ?? `field "${field}" must be a message id (the "msg" of a message frame)`, rid);
  }
  return v;
}

/** Exactly one of two id fields (`with`/`room`, `to`/`room`). */
function target<K extends string>(obj: Obj, user: K, type: string, rid: string | undefined): { [P in K]?: string } & { room?: string } {
  const hasUser = obj[user] !== undefined;
  if (hasUser === (obj['room'] !== undefined)) throw new FrameError(ErrorCode.BadRequest, `${type} needs exactly one of "${user}" (a user) and "room"`, rid);
  return (hasUser ? { [user]: requireId(obj, user, rid) } : { room: requireId(obj, 'room', rid) }) as { [P in K]?: string } & { room?: string };
}

/** An optional whole-number `limit` in 1..max, `fallback` when absent. */
function limit(obj: Obj, max: number, fallback: number, rid: string | undefined): number {
  const raw = obj['limit'];
  if (raw === undefined) return fallback;
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 1 || raw > max) {
    throw new FrameError(ErrorCode.BadRequest, `field "limit" must be a whole number 1-${max}`, rid);
  }
  return raw;
}

function history(obj: Obj, rid: string | undefined): { with?: string; room?: string; before?: string; limit: number } {
  const where = target(obj, 'with', 'history', rid);
  const n = limit(obj, MAX_HISTORY_LIMIT, DEFAULT_HISTORY_LIMIT, rid);
  const before = optionalMessageId(obj, 'before', rid);
  return { ...where, ...(before !== undefined && { before }), limit: n };
}

function requireMessageId(obj: Obj, field: string, rid: string | undefined): string {
  const v = optionalMessageId(obj, field, rid);
  if (v === undefined) throw new FrameError(ErrorCode.BadRequest, `field "${field}" must be a message id (the "msg" of a message frame)`, rid);
  return v;
}

function optionalString(obj: Obj, field: string, max: number, rid: string | undefined): string | undefined {
  const v = obj[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > max) {
    throw new FrameError(ErrorCode.BadRequest, `field "${field}" must be a non-empty string of at most ${max} characters`, rid);
  }
  return v;
}

/**
 * Decodes one text frame as it came off the socket (UTF-8 bytes). A frame whose first byte that is
 * not JSON whitespace is not `{` cannot be a JSON object: it is refused without being converted to
 * a string or parsed, so junk costs almost nothing. Otherwise as `decodeClientFrame`.
 */
export function decodeClientFrameBytes(data: Uint8Array): ClientFrame {
  let i = 0;
  // JSON whitespace: space, tab, line feed, carriage return.
  while (i < data.length && (data[i] === 0x20 || data[i] === 0x09 || data[i] === 0x0a || data[i] === 0x0d)) i++;
  if (data[i] !== 0x7b /* { */) throw new FrameError(ErrorCode.BadRequest, 'frame must be a JSON object', undefined);
  // ws hands over Buffers: decode them in place (a view per frame was a measurable allocation).
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return decodeClientFrame(buf.toString('utf8'));
}

/**
 * Decodes one text frame. Throws `FrameError` with code `bad_request` (not JSON, missing or
 * ill-typed field, bad id), `unknown_type`, or `too_large` (body over 16 KiB).
 */
export function decodeClientFrame(text: string): ClientFrame {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new FrameError(ErrorCode.BadRequest, 'frame is not valid JSON', undefined);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new FrameError(ErrorCode.BadRequest, 'frame must be a JSON object', undefined);
  }
  const obj = parsed as Obj;
  const rawId = obj['id'];
  let id: string | undefined;
  if (rawId !== undefined) {
    if (typeof rawId !== 'string' || rawId.length > MAX_REQUEST_ID_CHARS) {
      throw new FrameError(ErrorCode.BadRequest, `field "id" must be a string of at most ${MAX_REQUEST_ID_CHARS} characters`, undefined);
    }
    id = rawId;
  }
  const type = obj['type'];
  if (typeof type !== 'string') throw new FrameError(ErrorCode.BadRequest, 'field "type" must be a string', id);
  // Sets the id in place (no copy: this runs for every frame).
  const withId = <T extends object>(f: T): T => {
    if (id !== undefined) (f as { id?: string }).id = id;
    return f;
  };
  switch (type) {
    case 'hello': {
      const token = optionalString(obj, 'token', MAX_TOKEN_CHARS, id);
      const user = obj['user'] === undefined ? undefined : requireId(obj, 'user', id);
      if (token === undefined && user === undefined) {
        throw new FrameError(ErrorCode.BadRequest, 'hello needs "token" (or "user" in dev auth)', id);
      }
      const since = optionalMessageId(obj, 'since', id, BAD_SINCE);
      return withId({ type, ...(token !== undefined && { token }), ...(user !== undefined && { user }), ...(since !== undefined && { since }) });
    }
    case 'send':
      return withId({ type, to: requireId(obj, 'to', id), body: requireBody(obj, id) });
    case 'join':
    case 'leave':
      return withId({ type, room: requireId(obj, 'room', id) });
    case 'publish':
      return withId({ type, room: requireId(obj, 'room', id), body: requireBody(obj, id) });
    case 'presence':
      return withId({ type, users: requireUsers(obj, MAX_PRESENCE_USERS, id) });
    case 'watch':
    case 'unwatch':
      return withId({ type, users: requireUsers(obj, MAX_WATCHED_PER_CONNECTION, id) });
    case 'refresh': {
      const token = optionalString(obj, 'token', MAX_TOKEN_CHARS, id);
      if (token === undefined) throw new FrameError(ErrorCode.BadRequest, 'refresh needs "token"', id);
      return withId({ type, token });
    }
    case 'history':
      return withId({ type, ...history(obj, id) });
    case 'rooms':
      return withId({ type });
    case 'members': {
      const room = requireId(obj, 'room', id);
      const after = obj['after'] === undefined ? undefined : requireId(obj, 'after', id);
      return withId({ type, room, ...(after !== undefined && { after }), limit: limit(obj, MAX_MEMBERS_LIMIT, DEFAULT_MEMBERS_LIMIT, id) });
    }
    case 'conversations': {
      const n = limit(obj, MAX_CONVERSATIONS_LIMIT, DEFAULT_CONVERSATIONS_LIMIT, id);
      const before = optionalMessageId(obj, 'before', id);
      return withId({ type, ...(before !== undefined && { before }), limit: n });
    }
    case 'read':
      return withId({ type, ...target(obj, 'with', 'read', id), msg: requireMessageId(obj, 'msg', id) });
    case 'typing':
      return withId({ type, ...target(obj, 'to', 'typing', id) });
    default:
      throw new FrameError(ErrorCode.UnknownType, `unknown frame type "${type.slice(0, 64)}"`, id);
  }
}
