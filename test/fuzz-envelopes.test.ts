// Property-based fuzzing of the mesh envelope checks (fast-check): 100,000 generated envelopes of
// every kind, with valid and hostile values (huge counts, bad topics, long strings, arbitrary data
// for deliveries), go into `invalidEnvelope`. Each is either accepted — and then satisfies the
// invariants the router relies on — or refused with a reason string. Never an exception.
//
// Most envelopes go through the real protobuf codec first (what a peer can actually make a node
// decode); the rest are handed in directly with ill-typed fields, which the codec never produces
// but the check must survive anyway. Set FUZZ_SEED to replay a run.
import t from 'tap';
import fc from 'fast-check';
import {
  DELIVERABLE_FRAMES, MAX_COUNT, MAX_DELIVERED_FRAME_BYTES, MAX_OWNERS_PER_ROUTE, MAX_TOPICS_PER_ITEM, invalidEnvelope, invalidFrameByParsing, isCanonicalFrame, isTopic,
  loadMeshProto,
} from '../src/mesh/index.js';
import type { Batch, Batch__Output, Envelope, Envelope__Output } from '../src/mesh/wire.js';
import { ID_PATTERN, MAX_BODY_BYTES, encodeMessage, encodeRoomMessage } from '../src/protocol/index.js';

const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const seedOpt = SEED === undefined ? {} : { seed: SEED };

const link = loadMeshProto().Mesh.service.Link;
const roundTrip = (env: Envelope): Envelope__Output => (link.requestDeserialize(link.requestSerialize({ items: [env] } as Batch)) as Batch__Output).items[0]!;

// ------------------------------------------------------------------ generators

const validId = fc.stringMatching(/^[A-Za-z0-9_.:@-]{1,64}$/);
const badId = fc.oneof(fc.constantFrom('', ' ', 'a b', 'x'.repeat(65), 'émile', 'a\u0000b', '\u{1F600}', 'a"b', 'a\\b'), fc.string({ maxLength: 70 }));
const id = fc.oneof({ weight: 4, arbitrary: validId }, { weight: 1, arbitrary: badId });
const topic = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.constantFrom('u:', 'r:'), validId).map(([p, n]) => p + n) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom('u:', 'r:', 'x:', 'U:', '', 'u', ':'), id).map(([p, n]) => p + n) },
  { weight: 1, arbitrary: fc.string({ maxLength: 80 }) },
  { weight: 1, arbitrary: fc.constantFrom(`u:${'a'.repeat(5000)}`, 'u:', 'r:', 'u:a:b', 'r:lobby ', ' u:bob') },
);
const count = fc.oneof(fc.nat({ max: 10 }), fc.constantFrom(0, MAX_COUNT, MAX_COUNT + 1, 2 ** 31, 2 ** 32 - 1), fc.nat());
const longString = fc.constantFrom('', 'x'.repeat(200), 'y'.repeat(70_000), 'z'.repeat(MAX_DELIVERED_FRAME_BYTES + 1), '€'.repeat(40_000));
const text = fc.oneof({ weight: 5, arbitrary: fc.string({ maxLength: 40 }) }, { weight: 1, arbitrary: longString });
const body = fc.oneof(
  { weight: 5, arbitrary: fc.string({ maxLength: 60, unit: 'grapheme' }) },
  { weight: 1, arbitrary: fc.constantFrom('a'.repeat(MAX_BODY_BYTES), 'a'.repeat(MAX_BODY_BYTES + 1), '€'.repeat(5461), '€'.repeat(5462), '\u{1F600}'.repeat(4097), '\ud800', '</script>') },
);
const ts = fc.oneof(fc.nat(), fc.constantFrom(-1, 1.5, 2 ** 53, Number.MAX_VALUE));

/** Frames made to be close to valid, for `topic`: right or wrong type, owner, fields. */
function frameData(topicArb: fc.Arbitrary<string>): fc.Arbitrary<[string, string]> {
  const fromTopic = (t: string): string => t.slice(2);
  const message = fc.record({ t: topicArb, msg: id, other: id, body, ts, mine: fc.constantFrom('to', 'from', 'neither'), kind: fc.constantFrom('message', 'room_message') })
    .map(({ t, msg, other, body, ts, mine, kind }): [string, string] => {
      const me = fromTopic(t);
      if (kind === 'room_message') return [t, encodeRoomMessage(msg, mine === 'neither' ? other : me, other, body, ts)];
      const [from, to] = mine === 'to' ? [other, me] : mine === 'from' ? [me, other] : [other, other + 'x'];
      return [t, encodeMessage(msg, from, to, body, ts)];
    });
  // A valid frame, then one field dropped, changed to another type, or one added.
  const mutated = fc.record({ base: message, op: fc.constantFrom('drop', 'retype', 'add', 'proto', 'none'), field: fc.constantFrom('type', 'msg', 'from', 'to', 'room', 'body', 'ts'), value: fc.jsonValue({ maxDepth: 2 }) })
    .map(({ base: [t, data], op, field, value }): [string, string] => {
      let f: Record<string, unknown>;
      try {
        f = JSON.parse(data) as Record<string, unknown>;
      } catch {
        return [t, data]; // an id that needs escaping broke the hand-made JSON: hostile as it is
      }
      if (op === 'drop') delete f[field];
      else if (op === 'retype') f[field] = value;
      else if (op === 'add') f['extra'] = value;
      else if (op === 'proto') return [t, data.replace('{', '{"__proto__":{"x":1},')];
      return [t, JSON.stringify(f)];
    });
  const anyJson = fc.tuple(topicArb, fc.json({ maxDepth: 3 }));
  const anyObject = fc.tuple(topicArb, fc.dictionary(fc.constantFrom('type', 'msg', 'from', 'to', 'room', 'body', 'ts', 'user', 'status'), fc.jsonValue({ maxDepth: 1 }))
    .map((o) => JSON.stringify(o)));
  const typed = fc.tuple(topicArb, fc.constantFrom(...Object.keys(DELIVERABLE_FRAMES), 'presence_change', 'welcome', 'error', 'ack', 'typing', 'Message', ''))
    .map(([t, type]): [string, string] => [t, JSON.stringify({ type, user: t.slice(2), status: 'online' })]);
  const raw = fc.tuple(topicArb, fc.oneof(text, fc.constantFrom('{', '{}', '[]', 'null', '{"type":"message"', ' {"type":"message"}', '{"type":"message"}\n')));
  return fc.oneof({ weight: 4, arbitrary: message }, { weight: 3, arbitrary: mutated }, { weight: 1, arbitrary: anyJson },
    { weight: 1, arbitrary: anyObject }, { weight: 1, arbitrary: typed }, { weight: 1, arbitrary: raw });
}

const TOPICS_OVER = Array.from({ length: MAX_TOPICS_PER_ITEM + 1 }, (_, i) => `u:t${i}`);
const topicList = fc.oneof({ weight: 20, arbitrary: fc.array(topic, { maxLength: 12 }) }, { weight: 1, arbitrary: fc.constant(TOPICS_OVER) });
const ownerArb = fc.record({ nodeId: fc.oneof(validId, fc.constantFrom('', 'n'.repeat(129))), count });
const ownersOver = Array.from({ length: MAX_OWNERS_PER_ROUTE + 1 }, (_, i) => ({ nodeId: `n${i}`, count: 1 }));
const owners = fc.oneof({ weight: 20, arbitrary: fc.array(ownerArb, { maxLength: 6 }) }, { weight: 1, arbitrary: fc.constant(ownersOver) });
const route = fc.record({ topic, owners, seq: fc.nat() });
const uint64 = fc.oneof(fc.nat(), fc.constantFrom(0, 2 ** 53 - 1));

/** Envelopes of every kind with well-typed fields (encodable). */
const envelope: fc.Arbitrary<Envelope> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ id: uint64, td: frameData(topic), exceptSession: fc.oneof(fc.constant(''), text), acceptedAtMs: uint64 })
    .map(({ id: i, td: [t, data], exceptSession, acceptedAtMs }) => ({ deliver: { id: i, topic: t, data, exceptSession, acceptedAtMs } })) },
  { weight: 2, arbitrary: fc.record({ topic, count }).map((owner) => ({ owner })) },
  { weight: 2, arbitrary: route.map((r) => ({ route: r })) },
  { weight: 2, arbitrary: fc.record({ id: uint64, topics: topicList }).map((lookup) => ({ lookup })) },
  { weight: 2, arbitrary: fc.record({ id: uint64, routes: fc.array(route, { maxLength: 4 }), tentative: fc.boolean() }).map((lookupReply) => ({ lookupReply })) },
  { weight: 2, arbitrary: fc.record({ topics: fc.oneof({ weight: 20, arbitrary: fc.array(fc.record({ topic, count }), { maxLength: 8 }) }, { weight: 1, arbitrary: fc.constant(TOPICS_OVER.map((x) => ({ topic: x, count: 1 }))) }), first: fc.boolean(), done: fc.boolean(), membersHash: uint64 }).map((snapshot) => ({ snapshot })) },
  { weight: 1, arbitrary: fc.record({ id: uint64, count, notHere: fc.boolean() }).map((result) => ({ result })) },
  { weight: 1, arbitrary: fc.record({ topics: uint64, hash: uint64 }).map((digest) => ({ digest })) },
  { weight: 1, arbitrary: fc.boolean().map((match) => ({ digestReply: { match } })) },
  { weight: 1, arbitrary: uint64.map((sentAtMs) => ({ ping: { sentAtMs } })) },
  { weight: 1, arbitrary: text.map((reason) => ({ goodbye: { reason } })) },
  { weight: 1, arbitrary: fc.array(text, { maxLength: 5 }).map((addresses) => ({ members: { addresses } })) },
  { weight: 1, arbitrary: fc.record({ protocolVersion: fc.nat(), nodeId: text, incarnation: text, secret: text, advertise: text }).map((hello) => ({ hello })) },
);

const KINDS = ['deliver', 'owner', 'route', 'lookup', 'lookupReply', 'snapshot', 'result', 'digest', 'digestReply', 'ping', 'pong', 'goodbye', 'members', 'hello', 'welcome', 'refuse', 'nope', undefined];
const hostileValue = fc.oneof(fc.anything({ maxDepth: 2 }), fc.constantFrom(null, undefined, NaN, -1, 2 ** 64, [], {}, [null], [{ topic: 5 }], 'u:bob'));
/** Ill-typed envelopes, handed in without the codec. */
const hostile: fc.Arbitrary<Envelope__Output> = fc.record({ kind: fc.constantFrom(...KINDS), whole: fc.boolean(), field: hostileValue, inner: fc.dictionary(fc.constantFrom('topic', 'data', 'count', 'owners', 'topics', 'routes', 'exceptSession', 'nodeId'), hostileValue) })
  .map(({ kind, whole, field, inner }) => ({ kind, [String(kind)]: whole ? field : inner }) as unknown as Envelope__Output);

// ------------------------------------------------------------------ invariants

const countOk = (n: unknown): boolean => Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= MAX_COUNT;

/** What an accepted envelope guarantees; returns the broken invariant, if any. */
function broken(env: Envelope__Output): string | undefined {
  switch (env.kind) {
    case 'deliver': {
      const d = env.deliver!;
      if (!isTopic(d.topic)) return 'deliver topic';
      if (d.data.length > MAX_DELIVERED_FRAME_BYTES || d.exceptSession.length > 128) return 'deliver sizes';
      const f = JSON.parse(d.data) as Record<string, unknown>;
      const name = d.topic.slice(2);
      const ids = (...k: string[]): boolean => k.every((x) => typeof f[x] === 'string' && ID_PATTERN.test(f[x] as string));
      const common = typeof f['msg'] === 'string' && /^[A-Za-z0-9_.:@-]{1,200}$/.test(f['msg']) && typeof f['body'] === 'string'
        && Buffer.byteLength(f['body']) <= MAX_BODY_BYTES && Number.isSafeInteger(f['ts']) && (f['ts'] as number) >= 0;
      if (f['type'] === 'message') {
        const keys = Object.keys(f).sort().join();
        return d.topic.startsWith('u:') && common && ids('from', 'to') && (f['to'] === name || f['from'] === name) && keys === 'body,from,msg,to,ts,type' ? undefined : 'message frame';
      }
      if (f['type'] === 'room_message') {
        const keys = Object.keys(f).sort().join();
        return d.topic.startsWith('r:') && common && ids('from', 'room') && f['room'] === name && keys === 'body,from,msg,room,ts,type' ? undefined : 'room_message frame';
      }
      return 'deliver type';
    }
    case 'owner':
      return isTopic(env.owner!.topic) && countOk(env.owner!.count) ? undefined : 'owner';
    case 'route':
    case 'lookupReply': {
      const routes = env.kind === 'route' ? [env.route!] : env.lookupReply!.routes;
      if (routes.length > MAX_TOPICS_PER_ITEM) return 'routes';
      for (const r of routes) {
        if (!isTopic(r.topic) || r.owners.length > MAX_OWNERS_PER_ROUTE) return 'route topic';
        if (!r.owners.every((o) => o.nodeId !== '' && o.nodeId.length <= 128 && countOk(o.count))) return 'route owner';
      }
      return undefined;
    }
    case 'lookup':
      return env.lookup!.topics.length <= MAX_TOPICS_PER_ITEM && env.lookup!.topics.every(isTopic) ? undefined : 'lookup';
    case 'snapshot':
      return env.snapshot!.topics.length <= MAX_TOPICS_PER_ITEM && env.snapshot!.topics.every((x) => isTopic(x.topic) && countOk(x.count)) ? undefined : 'snapshot';
    default:
      return undefined;
  }
}

/** Runs the check; returns why the property fails, or undefined. */
function judge(env: Envelope__Output, typed: boolean): string | undefined {
  let why: unknown;
  try {
    why = invalidEnvelope(env);
  } catch (err) {
    return `threw ${(err as Error).message}`;
  }
  if (why !== undefined) return typeof why === 'string' && why.length > 0 ? undefined : `refused without a reason: ${String(why)}`;
  // Ill-typed input that is accepted must still hold what the router reads: the invariants are
  // checked on it as on decoded input (a throw there means a field it reads has the wrong shape).
  let bad: string | undefined;
  try {
    bad = broken(env);
  } catch (err) {
    bad = `shape (${(err as Error).message})`;
  }
  return bad && `accepted${typed ? '' : ' (ill-typed)'} but breaks the ${bad} invariant`;
}

t.test('100,000 envelopes: accepted ones satisfy the invariants, the rest are refused with a reason, nothing throws', async (t) => {
  const stats = { accepted: 0, refused: 0, byKind: new Map<string, [number, number]>() };
  const tally = (env: Envelope__Output): void => {
    const ok = invalidEnvelope(env) === undefined;
    if (ok) stats.accepted++;
    else stats.refused++;
    const k = String(env.kind);
    const [a, r] = stats.byKind.get(k) ?? [0, 0];
    stats.byKind.set(k, ok ? [a + 1, r] : [a, r + 1]);
  };
  fc.assert(fc.property(envelope, (e) => {
    const env = roundTrip(e);
    const why = judge(env, true);
    if (why) throw new Error(`${why}: ${JSON.stringify(env).slice(0, 400)}`);
    tally(env);
  }), { numRuns: 80_000, ...seedOpt });
  fc.assert(fc.property(hostile, (env) => {
    const why = judge(env, false);
    if (why) throw new Error(`${why}: ${String(JSON.stringify(env)).slice(0, 400)}`);
    tally(env);
  }), { numRuns: 20_000, ...seedOpt });
  t.equal(stats.accepted + stats.refused, 100_000, '100,000 envelopes judged');
  // The generators must exercise both answers for every kind the check looks into.
  for (const k of ['deliver', 'owner', 'route', 'lookup', 'lookupReply', 'snapshot']) {
    const [a, r] = stats.byKind.get(k) ?? [0, 0];
    t.ok(a > 0 && r > 0, `${k}: ${a} accepted, ${r} refused`);
  }
  t.comment(`accepted ${stats.accepted}, refused ${stats.refused}`);
});

t.test('frames the gateway writes are accepted for the topics it delivers them to', async (t) => {
  const msg = encodeMessage('01HZY0000000000000000000AB', 'alice', 'bob', 'hi "bob" \u2028 ✓', 1732270000000);
  for (const topic of ['u:bob', 'u:alice']) {
    t.equal(invalidEnvelope(roundTrip({ deliver: { id: 1, topic, data: msg, exceptSession: 's1', acceptedAtMs: 1 } })), undefined, `message to ${topic}`);
  }
  t.match(invalidEnvelope(roundTrip({ deliver: { id: 1, topic: 'u:carol', data: msg } })), /does not belong/);
  const room = encodeRoomMessage('01HZY0000000000000000000AB', 'lobby', 'alice', 'x'.repeat(MAX_BODY_BYTES), 1);
  t.equal(invalidEnvelope(roundTrip({ deliver: { id: 1, topic: 'r:lobby', data: room } })), undefined, 'a room message with the largest body');
  t.match(invalidEnvelope(roundTrip({ deliver: { id: 1, topic: 'r:hall', data: room } })), /does not belong/);
});

t.test('the scanning fast path of delivered frames is sound: it never accepts what the full check refuses', async (t) => {
  const idArb = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_.:@-]{1,64}$/), fc.constantFrom('', 'a b', 'x'.repeat(65), 'a"b', 'é'));
  const bodyArb = fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'grapheme', maxLength: 100 }),
    fc.constantFrom('a'.repeat(MAX_BODY_BYTES), 'a'.repeat(MAX_BODY_BYTES + 1), '€'.repeat(5461), '€'.repeat(5462), '\ud800', 'x\udc00', 'a\nb', 'q"q', 'b\\s'));
  const frameArb = fc.record({ room: fc.boolean(), msg: idArb, a: idArb, b: idArb, body: bodyArb, ts: fc.oneof(fc.nat(), fc.constantFrom(0, 2 ** 53, -1)), target: fc.constantFrom('a', 'b', 'x') })
    .map((f) => {
      const data = f.room ? encodeRoomMessage(f.msg, f.a, f.b, f.body, f.ts) : encodeMessage(f.msg, f.a, f.b, f.body, f.ts);
      const name = f.target === 'a' ? f.a : f.target === 'b' ? f.b : 'someone';
      return { topic: `${f.room ? 'r' : 'u'}:${name}`, data };
    });
  // Hostile edits of canonical frames: cut, appended, a character replaced.
  const edited = fc.tuple(frameArb, fc.nat(), fc.constantFrom('cut', 'append', 'replace'), fc.string({ minLength: 1, maxLength: 3 }))
    .map(([f, at, op, x]) => {
      const i = at % (f.data.length + 1);
      const data = op === 'cut' ? f.data.slice(0, i) : op === 'append' ? f.data + x : f.data.slice(0, i) + x + f.data.slice(i + 1);
      return { topic: f.topic, data };
    });
  let fast = 0;
  fc.assert(fc.property(fc.oneof(frameArb, edited), ({ topic, data }) => {
    if (!isCanonicalFrame(topic, data)) return;
    fast++;
    const why = invalidFrameByParsing(topic, data);
    if (why !== undefined) throw new Error(`fast path accepted what the full check refuses (${why}): ${data.slice(0, 200)}`);
  }), { numRuns: 30_000, ...seedOpt });
  t.ok(fast > 200, `${fast} of 30,000 frames took the fast path (and the full check agreed)`);
  const plain = encodeMessage('01HZY0000000000000000000AB', 'alice', 'bob', 'hello', 1732270000000);
  t.ok(isCanonicalFrame('u:bob', plain) && isCanonicalFrame('u:alice', plain), 'a plain message takes the fast path');
  t.notOk(isCanonicalFrame('u:carol', plain), 'not for a topic it does not belong to');
});
