// Property-based fuzzing of the client frame decoder (fast-check), then a smaller run of the same
// inputs through a real WebSocket against a real node.
//
// The decoder's contract: every input either decodes to a well-typed frame that satisfies the limits
// of protocol.md §2, or throws a FrameError whose code is bad_request, unknown_type or too_large and
// whose request id is the input's id when that id was valid. Never any other exception. The bytes
// decoder the gateway uses (decodeClientFrameBytes) agrees with the text one on every input.
// Set FUZZ_SEED to replay a run (fast-check prints the seed of a failure).
import t from 'tap';
import fc from 'fast-check';
import {
  ErrorCode, FrameError, ID_PATTERN, MAX_BODY_BYTES, MAX_PRESENCE_USERS, MAX_REQUEST_ID_CHARS, MAX_TOKEN_CHARS,
  MAX_WATCHED_PER_CONNECTION, decodeClientFrame, decodeClientFrameBytes,
} from '../src/protocol/index.js';
import type { ClientFrame } from '../src/protocol/index.js';
import { connectAs, eventually } from './helpers/client.js';
import type { Frame } from './helpers/client.js';
import { testNode } from './helpers/node.js';

const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const seedOpt = SEED === undefined ? {} : { seed: SEED };

// ------------------------------------------------------------------ generators

const FRAME_TYPES = ['hello', 'send', 'join', 'leave', 'publish', 'presence', 'watch', 'unwatch', 'refresh', 'history'] as const;
const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'];
const FIELDS = ['type', 'id', 'token', 'user', 'to', 'room', 'body', 'users', 'since', 'with', 'before', 'limit', ''];

const validId = fc.stringMatching(/^[A-Za-z0-9_.:@-]{1,64}$/);
const invalidId = fc.oneof(
  fc.constantFrom('', ' ', 'bad name', 'x'.repeat(65), 'émile', 'a\u0000b', 'a/b', '\u{1F600}', 'a\nb'),
  fc.string({ unit: 'binary', maxLength: 70 }),
);
const idText = fc.oneof(validId, validId, invalidId);

// Raw JSON texts of numbers JSON.stringify never writes: huge, tiny, negative zero, past 2^53.
const oddNumber = fc.constantFrom('1e400', '-1e400', '1e-400', '-0', '9007199254740993', '123456789012345678901234567890',
  '0.1e1', '1E2', '5e-324', '1.7976931348623157e308');
// Prebuilt large values (generating 100k of them would make the run slow, not better).
const BIG_VALUES = [
  'a'.repeat(MAX_BODY_BYTES), 'a'.repeat(MAX_BODY_BYTES + 1), '€'.repeat(5461), '€'.repeat(5462), '\u{1F600}'.repeat(4096),
  '\u{1F600}'.repeat(4097), 't'.repeat(MAX_TOKEN_CHARS), 't'.repeat(MAX_TOKEN_CHARS + 1), 'i'.repeat(64),
].map((s) => JSON.stringify(s));
const BIG_ARRAYS = [1, MAX_PRESENCE_USERS, MAX_PRESENCE_USERS + 1, MAX_WATCHED_PER_CONNECTION, MAX_WATCHED_PER_CONNECTION + 1]
  .map((n) => JSON.stringify(Array.from({ length: n }, (_, i) => `u${i % 700}`)));
const DEEP = [
  `${'['.repeat(5000)}${']'.repeat(5000)}`,
  `${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}`,
  `${'['.repeat(5000)}`,
];

/** A JSON string literal, sometimes with every UTF-16 unit written as a \u escape (`"\u0074ype"` is "type"). */
const stringLiteral = (s: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.tuple(s, fc.boolean()).map(([v, escape]) => (escape
    ? `"${Array.from({ length: v.length }, (_, i) => `\\u${v.charCodeAt(i).toString(16).padStart(4, '0')}`).join('')}"`
    : JSON.stringify(v)));

/** Raw JSON text of a field value: valid ones of every field, invalid ones, junk of every JSON kind. */
const valueText: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: stringLiteral(idText) },
  { weight: 2, arbitrary: stringLiteral(fc.constantFrom(...FRAME_TYPES, 'dance', 'HELLO', 'send ', ...PROTO_KEYS)) },
  { weight: 2, arbitrary: fc.array(idText, { maxLength: 6 }).map((a) => JSON.stringify(a)) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map((s) => JSON.stringify(s)) },
  { weight: 1, arbitrary: oddNumber },
  { weight: 1, arbitrary: fc.constantFrom(...BIG_VALUES, ...BIG_ARRAYS) },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null)).map((v) => JSON.stringify(v) ?? 'null') },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.dictionary(fc.constantFrom(...PROTO_KEYS, 'type', 'id'), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }).map((v) => JSON.stringify(v)) },
);

/** A frame-shaped object as raw JSON text: entries in any order, duplicate keys, odd keys. */
const frameText: fc.Arbitrary<string> = fc.tuple(
  fc.oneof(
    fc.constantFrom(...FRAME_TYPES).map((v) => JSON.stringify(v)),
    stringLiteral(fc.constantFrom(...FRAME_TYPES)),
    valueText,
  ),
  fc.array(fc.tuple(stringLiteral(fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...FIELDS) }, { weight: 1, arbitrary: fc.constantFrom(...PROTO_KEYS) },
    { weight: 1, arbitrary: fc.string({ maxLength: 8 }) })), valueText), { maxLength: 6 }),
  fc.boolean(),
).map(([type, entries, typeFirst]) => {
  const parts = entries.map(([k, v]) => `${k}:${v}`);
  const typePart = `"type":${type}`;
  return `{${(typeFirst ? [typePart, ...parts] : [...parts, typePart]).join(',')}}`;
});

/** Valid frames of every type, so the success path is exercised as often as the failures. */
const validFrame: fc.Arbitrary<string> = fc.tuple(fc.option(fc.string({ maxLength: 64 }), { nil: undefined }), fc.oneof(
  fc.record({ type: fc.constant('hello'), user: validId }),
  fc.record({ type: fc.constant('hello'), token: fc.string({ minLength: 1, maxLength: 100 }) }),
  fc.record({ type: fc.constant('send'), to: validId, body: fc.string({ unit: 'binary', maxLength: 100 }) }),
  fc.record({ type: fc.constantFrom('join', 'leave'), room: validId }),
  fc.record({ type: fc.constant('publish'), room: validId, body: fc.string({ maxLength: 100 }) }),
  fc.record({ type: fc.constantFrom('presence', 'watch', 'unwatch'), users: fc.array(validId, { minLength: 1, maxLength: 8 }) }),
  fc.record({ type: fc.constant('refresh'), token: fc.string({ minLength: 1, maxLength: 100 }) }),
  fc.record({ type: fc.constant('hello'), user: validId, since: fc.constantFrom('01JD0000000000000000000000', '7ZZZZZZZZZZZZZZZZZZZZZZZZZ') }),
  fc.record({ type: fc.constant('history'), with: validId, limit: fc.integer({ min: 1, max: 100 }) }),
  fc.record({ type: fc.constant('history'), room: validId, before: fc.constant('01JD0000000000000000000000') }),
)).map(([id, f]) => JSON.stringify(id === undefined ? f : { ...f, id }));

/** Everything: arbitrary text, JSON-ish soup, any JSON, frame-shaped objects, valid frames, deep nesting. */
const input: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) },
  { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom(...'{}[]":,\\ 0123456789.-eEtrufalsn'), maxLength: 60 }) },
  { weight: 2, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 6, arbitrary: frameText },
  { weight: 3, arbitrary: validFrame },
  { weight: 1, arbitrary: fc.constantFrom(...DEEP, '', ' ', 'null', '[]', '{}', '"x"', '{"type":"hello"}', '\uFEFF{"type":"join","room":"r"}') },
);

// ------------------------------------------------------------------ the oracle

const ALLOWED_KEYS: Record<ClientFrame['type'], readonly string[]> = {
  hello: ['type', 'id', 'token', 'user', 'since'],
  send: ['type', 'id', 'to', 'body'],
  join: ['type', 'id', 'room'],
  leave: ['type', 'id', 'room'],
  publish: ['type', 'id', 'room', 'body'],
  presence: ['type', 'id', 'users'],
  watch: ['type', 'id', 'users'],
  unwatch: ['type', 'id', 'users'],
  refresh: ['type', 'id', 'token'],
  history: ['type', 'id', 'with', 'room', 'before', 'limit'],
  rooms: ['type', 'id'],
  members: ['type', 'id', 'room', 'after', 'limit'],
  conversations: ['type', 'id', 'before', 'limit'],
  read: ['type', 'id', 'with', 'room', 'msg'],
  typing: ['type', 'id', 'to', 'room'],
};

const isMsgId = (v: unknown): boolean => typeof v === 'string' && /^[0-9A-HJKMNP-TV-Z]{26}$/.test(v);

const isId = (v: unknown): boolean => typeof v === 'string' && ID_PATTERN.test(v);
const isToken = (v: unknown): boolean => typeof v === 'string' && v.length >= 1 && v.length <= MAX_TOKEN_CHARS;
const isBody = (v: unknown): boolean => typeof v === 'string' && Buffer.byteLength(v, 'utf8') <= MAX_BODY_BYTES;
const isUsers = (v: unknown, max: number): boolean =>
  Array.isArray(v) && v.length >= 1 && v.length <= max && v.every(isId) && new Set(v).size === v.length;
const own = (o: object, k: string): unknown => (Object.prototype.hasOwnProperty.call(o, k) ? (o as Record<string, unknown>)[k] : undefined);

/** Throws (with a reason) unless `f` is a frame the contract allows and it says what `text` says. */
function checkFrame(f: ClientFrame, text: string): void {
  const fail = (why: string): never => { throw new Error(`${why}: ${JSON.stringify(f).slice(0, 200)}`); };
  if (Object.getPrototypeOf(f) !== Object.prototype) fail('not a plain object');
  const allowed = ALLOWED_KEYS[f.type];
  if (!allowed) fail('unknown type decoded');
  for (const k of Object.keys(f)) if (!allowed.includes(k)) fail(`unexpected key "${k}"`);
  if (f.id !== undefined && (typeof f.id !== 'string' || f.id.length > MAX_REQUEST_ID_CHARS)) fail('bad id');
  switch (f.type) {
    case 'hello':
      if (f.token === undefined && f.user === undefined) fail('hello with neither token nor user');
      if (f.token !== undefined && !isToken(f.token)) fail('bad token');
      if (f.user !== undefined && !isId(f.user)) fail('bad user');
      if (f.since !== undefined && !isMsgId(f.since)) fail('bad since');
      break;
    case 'history':
      if ((f.with === undefined) === (f.room === undefined)) fail('history needs exactly one of with and room');
      if (f.with !== undefined && !isId(f.with)) fail('bad with');
      if (f.room !== undefined && !isId(f.room)) fail('bad room');
      if (f.before !== undefined && !isMsgId(f.before)) fail('bad before');
      if (!Number.isInteger(f.limit) || f.limit < 1 || f.limit > 100) fail('bad limit');
      break;
    case 'send': if (!isId(f.to) || !isBody(f.body)) fail('bad send'); break;
    case 'join': case 'leave': if (!isId(f.room)) fail('bad room'); break;
    case 'publish': if (!isId(f.room) || !isBody(f.body)) fail('bad publish'); break;
    case 'presence': if (!isUsers(f.users, MAX_PRESENCE_USERS)) fail('bad presence users'); break;
    case 'watch': case 'unwatch': if (!isUsers(f.users, MAX_WATCHED_PER_CONNECTION)) fail('bad watch users'); break;
    case 'refresh': if (!isToken(f.token)) fail('bad refresh token'); break;
  }
  // What was decoded is what the text said (JSON.parse keeps the last of duplicate keys).
  const parsed = JSON.parse(text) as object;
  for (const k of allowed) {
    const want = own(parsed, k);
    const got = own(f, k);
    if (k === 'limit' && f.type === 'history') {
      if (got !== (want ?? 50)) fail('limit differs from the input (or the default 50)');
    } else if (k === 'users') {
      if (JSON.stringify(got) !== JSON.stringify([...new Set(want as string[])])) fail('users differ from the input');
    } else if (got !== want) fail(`field ${k} differs from the input`);
  }
}

const ERROR_CODES: readonly string[] = [ErrorCode.BadRequest, ErrorCode.UnknownType, ErrorCode.TooLarge];

/** Throws unless `err` is a FrameError of an allowed code that carries the input's valid id. */
function checkError(err: unknown, text: string): void {
  if (!(err instanceof FrameError)) throw new Error(`not a FrameError: ${String(err)}`, { cause: err });
  if (!ERROR_CODES.includes(err.code)) throw new Error(`unexpected code ${err.code}`);
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch { parsed = undefined; }
  const obj = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed : undefined;
  const id = obj && own(obj, 'id');
  const validRid = typeof id === 'string' && id.length <= MAX_REQUEST_ID_CHARS ? id : undefined;
  if (err.requestId !== validRid) throw new Error(`requestId ${String(err.requestId)}, want ${String(validRid)}`);
  const type = obj && own(obj, 'type');
  const known = (FRAME_TYPES as readonly unknown[]).includes(type);
  if (err.code === ErrorCode.UnknownType && (typeof type !== 'string' || known)) throw new Error('unknown_type for a known type');
  if (err.code === ErrorCode.TooLarge && type !== 'send' && type !== 'publish') throw new Error('too_large off send/publish');
  const idOk = obj !== undefined && (own(obj, 'id') === undefined || validRid !== undefined);
  if (idOk && typeof type === 'string' && !known && err.code !== ErrorCode.UnknownType) {
    throw new Error(`a well-formed frame of unknown type "${type}" got ${err.code}`);
  }
}

/** Decodes `text` both ways (as text, and as the socket's UTF-8 bytes), checks both outcomes and
 *  says whether it decoded to a frame. */
function decodeChecked(text: string): boolean {
  let frame: ClientFrame;
  try {
    frame = decodeClientFrame(text);
  } catch (err) {
    checkError(err, text);
    sameAsBytes(text, err as FrameError);
    return false;
  }
  checkFrame(frame, text);
  sameAsBytes(text, frame);
  return true;
}

/** The bytes decoder agrees with the text decoder: the same frame, or an error of the same code and id. */
function sameAsBytes(text: string, want: ClientFrame | FrameError): void {
  // Lone surrogates do not survive UTF-8: such a text is not what a socket could carry.
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.toString('utf8') !== text) return;
  let got: ClientFrame | FrameError;
  try {
    got = decodeClientFrameBytes(bytes);
  } catch (err) {
    got = err as FrameError;
  }
  const summary = (x: ClientFrame | FrameError): string =>
    (x instanceof FrameError ? `error ${x.code} ${String(x.requestId)}` : JSON.stringify(x));
  if (summary(got) !== summary(want)) throw new Error(`bytes: ${summary(got)}, text: ${summary(want)}`);
}

// ------------------------------------------------------------------ tests

t.test('100,000 generated inputs: a valid frame or a FrameError, never anything else', async (t) => {
  const protoKeys = Object.getOwnPropertyNames(Object.prototype).sort().join();
  let frames = 0;
  let errors = 0;
  fc.assert(fc.property(input, (text) => {
    if (decodeChecked(text)) frames++;
    else errors++;
  }), { numRuns: 100_000, ...seedOpt });
  t.equal(Object.getOwnPropertyNames(Object.prototype).sort().join(), protoKeys, 'Object.prototype untouched');
  t.equal((({}) as Record<string, unknown>)['type'], undefined, 'no inherited "type"');
  // Both outcomes are exercised in quantity, so the property is not vacuous.
  t.ok(frames > 10_000, `${frames} inputs decoded to frames`);
  t.ok(errors > 30_000, `${errors} inputs were refused`);
});

t.test('the oracle itself rejects what it must (it is not vacuous)', async (t) => {
  t.throws(() => checkFrame({ type: 'send', to: 'bad name', body: 'x' }, '{"type":"send","to":"bad name","body":"x"}'));
  t.throws(() => checkFrame({ type: 'join', room: 'r', extra: 1 } as unknown as ClientFrame, '{"type":"join","room":"r"}'));
  t.throws(() => checkFrame({ type: 'join', room: 'r' }, '{"type":"join","room":"s"}'));
  t.throws(() => checkError(new TypeError('boom'), '{}'));
  t.throws(() => checkError(new FrameError(ErrorCode.BadRequest, 'x', undefined), '{"id":"c1"}'));
  t.throws(() => checkError(new FrameError(ErrorCode.Unauthorized, 'x', undefined), 'x'));
});

t.test('2,000 generated frames through a real socket: every frame with an id gets exactly one answer', async (t) => {
  // Raised limits: the frames must reach the decoder, not the rate limiter or the 1008 rule.
  const { url, base } = await testNode(t, { gateway: { rateLimitPerSec: 1e6, rateLimitBurst: 1e6, maxBadFrames: 1e6 } });
  const { c } = await connectAs(url, 'fuzz');
  t.teardown(() => c.close());
  // Every frame gets an id up front (`f<i>`); the generated entries may override it with their own.
  const texts = fc.sample(fc.oneof(
    { weight: 4, arbitrary: frameText }, { weight: 3, arbitrary: validFrame },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) }, { weight: 1, arbitrary: fc.json({ maxDepth: 2 }) }),
    { numRuns: 2000, ...seedOpt })
    .map((s, i) => (i % 5 === 4 || !s.startsWith('{') || s === '{}' ? s : `{"id":"f${i}",${s.slice(1)}`));
  const expected = new Map<string, number>();
  for (const text of texts) {
    let parsed: unknown;
    try { parsed = JSON.parse(text); } catch { continue; }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) continue;
    const id = own(parsed, 'id');
    if (typeof id === 'string' && id.length <= MAX_REQUEST_ID_CHARS) expected.set(id, (expected.get(id) ?? 0) + 1);
  }
  t.ok(expected.size > 1000, `${expected.size} distinct ids sent`);
  for (const text of texts) c.send(text);

  const answers = new Map<string, Frame[]>();
  let seen = 0;
  const collect = (): void => {
    for (const f of c.frames.slice(seen)) {
      if (typeof f['id'] === 'string') answers.set(f['id'], [...(answers.get(f['id']) ?? []), f]);
    }
    seen = c.frames.length;
  };
  await eventually(() => {
    collect();
    for (const [id, n] of expected) if ((answers.get(id)?.length ?? 0) < n) return false;
    return true;
  }, 30_000, 'an answer to every frame with an id');
  // A round trip after the last answer: a duplicate would have arrived by now.
  t.equal((await c.request({ type: 'presence', id: 'barrier', users: ['fuzz'] }))['type'], 'presence');
  collect();
  const wrong = [...answers].filter(([id, list]) => id !== 'barrier' && list.length !== (expected.get(id) ?? 0));
  t.same(wrong, [], 'no frame answered twice, no answer to an id never sent');
  const codes = new Set([...answers.values()].flat().filter((f) => f.type === 'error').map((f) => f['code']));
  t.ok(codes.has('bad_request') && codes.has('unknown_type'), `error codes seen: ${[...codes].join(', ')}`);

  t.equal(c.ws.readyState, c.ws.OPEN, 'the fuzzed connection is still open');
  t.equal((await fetch(`${base}/healthz`)).status, 200, 'the node is healthy');
  const fresh = (await connectAs(url, 'after')).c;
  t.teardown(() => fresh.close());
  t.same((await fresh.request({ type: 'presence', id: 'p', users: ['fuzz'] }))['users'], { fuzz: 'online' }, 'and serves new clients');
});
