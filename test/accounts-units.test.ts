// The pure parts of accounts: stream names and the id successor, the summary queries answered from
// one store and merged over replicas, and the checks of what peers send about accounts.
import t from 'tap';
import fc from 'fast-check';
import { successorId, markerStream, memberStream, membershipStream, accountGroup, membersGroup } from '../src/accounts/index.js';
import { answerQuery, mergeAnswers } from '../src/streams/queries.js';
import type { QueryAnswer, StreamQuerySpec } from '../src/streams/queries.js';
import { MemoryStreamStore } from '../src/streams/store/index.js';
import { idAtTime } from '../src/streams/ids.js';
import type { StreamEntry, StreamItem } from '../src/streams/types.js';
import { invalidStreamCall, invalidStreamReply, isStateStreamName } from '../src/mesh/validate-streams.js';
import { invalidDeliveredFrame } from '../src/mesh/validate.js';
import { encodeMessage, encodeReadEvent, encodeRoomMessage, encodeTyping, encodeMembership } from '../src/protocol/index.js';
import type { StreamCall__Output, StreamReply__Output } from '../src/mesh/index.js';

const B32 = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const T0 = 1_700_000_000_000;
const id = (ms: number, seq = 0): string => idAtTime(T0 + ms).slice(0, 10) + B32[Math.floor(seq / 32) % 32]! + B32[seq % 32]! + '00' + 'TESTTAG00000';
const msgId = fc.array(fc.constantFrom(...B32), { minLength: 26, maxLength: 26 }).map((a) => a.join('')).filter((s) => !/^Z+$/.test(s));

t.test('successorId: the smallest id after an id', async (t) => {
  t.equal(successorId('0'.repeat(26)), '0'.repeat(25) + '1');
  t.equal(successorId('0'.repeat(24) + '0Z'), '0'.repeat(24) + '10');
  t.throws(() => successorId('Z'.repeat(26)), RangeError);
  fc.assert(fc.property(msgId, msgId, (a, x) => {
    const s = successorId(a);
    return s > a && s.length === 26 && (x <= a || x >= s);
  }));
});

t.test('stream names of an account are state streams, placed by their group', async (t) => {
  for (const name of [membershipStream('alice', 'lobby'), markerStream('alice', { with: 'bob' }), markerStream('alice', { room: 'lobby' }), memberStream('lobby', 'alice')]) {
    t.ok(isStateStreamName(name), name);
  }
  t.equal(accountGroup('alice'), 'a:alice');
  t.equal(membersGroup('lobby'), 'm:lobby');
  for (const bad of ['a:alice', 'a:alice/x:lobby', 'a:alice/j:bad room', 'm:lobby/', 'm:lobby/a/b', 'u:alice/j:x', 'a:/j:x', 42, undefined]) {
    t.notOk(isStateStreamName(bad), `not a state stream: ${String(bad)}`);
  }
});

const dm = (n: number, from: string, to: string, withUser: string): StreamItem => {
  const i = id(n);
  return { stream: `u:alice`, entry: { id: i, with: withUser, frame: encodeMessage(i, from, to, `m${n}`, T0 + n), pending: false } };
};
const roomMsg = (n: number, room: string, from: string): StreamItem => {
  const i = id(n);
  return { stream: `r:${room}`, entry: { id: i, with: '', frame: encodeRoomMessage(i, room, from, `m${n}`, T0 + n), pending: false } };
};
const state = (stream: string, n: number, frame: string): StreamItem => ({ stream, entry: { id: id(n), with: '', frame, pending: false } });

t.test('queries answered from one store', async (t) => {
  const store = new MemoryStreamStore({ maxPerStream: 1000, ttlMs: 1e12, maxMessages: 1e6 }, () => T0 + 1000);
  await store.append([
    roomMsg(1, 'lobby', 'bob'), roomMsg(2, 'lobby', 'alice'), roomMsg(3, 'lobby', 'carol'), roomMsg(4, 'lobby', 'bob'),
    dm(5, 'bob', 'alice', 'bob'), dm(6, 'alice', 'bob', 'bob'), dm(7, 'bob', 'alice', 'bob'), dm(8, 'carol', 'alice', 'carol'), dm(9, 'alice', 'alice', 'alice'),
    state('m:lobby/alice', 1, 'join'), state('m:lobby/bob', 1, 'join'), state('m:lobby/carol', 1, 'join'), state('m:lobby/carol', 2, 'leave'), state('m:lobby/dave', 1, 'join'),
  ]);
  const tail = await answerQuery(store, { kind: 'tail', stream: 'r:lobby', after: id(1), self: 'alice' });
  t.equal(tail.entries[0]!.entry.id, id(4), 'the newest message');
  t.equal(tail.count, 2, 'after the marker, not from the reader: 3 and 4');
  t.equal((await answerQuery(store, { kind: 'tail', stream: 'r:empty', self: 'alice' })).entries.length, 0);

  const group = await answerQuery(store, { kind: 'group', stream: 'm:lobby', limit: 2 });
  t.same(group.entries.map((e) => e.stream), ['m:lobby/alice', 'm:lobby/bob']);
  t.equal(group.more, true);
  t.equal(group.count, 3, 'carol left: three members');
  const rest = await answerQuery(store, { kind: 'group', stream: 'm:lobby', after: 'm:lobby/bob', limit: 10 });
  t.same(rest.entries.map((e) => [e.stream, e.entry.frame]), [['m:lobby/carol', 'leave'], ['m:lobby/dave', 'join']]);
  t.equal(rest.more, false);

  const convs = await answerQuery(store, { kind: 'conversations', stream: 'u:alice', self: 'alice', limit: 10, markers: new Map([['bob', id(5)]]) });
  t.same(convs.entries.map((e) => e.entry.with), ['alice', 'carol', 'bob'], 'most recent first');
  t.same(convs.counts, [0, 1, 1], 'a note is never unread; bob: only 7 is after the marker and incoming');
  const page = await answerQuery(store, { kind: 'conversations', stream: 'u:alice', self: 'alice', limit: 1, before: id(9), markers: new Map() });
  t.same(page.entries.map((e) => e.entry.with), ['carol']);
  t.equal(page.more, true);
});

t.test('answers of replicas merge by union: newest entry, largest count', async (t) => {
  const e = (n: number, w = ''): StreamEntry => ({ id: id(n), with: w, frame: '', pending: false });
  const tailQ: StreamQuerySpec = { kind: 'tail', stream: 'r:x', self: 'a' };
  const a: QueryAnswer = { entries: [{ stream: 'r:x', entry: e(3) }], count: 2, more: false, counts: [] };
  const b: QueryAnswer = { entries: [{ stream: 'r:x', entry: e(5) }], count: 1, more: false, counts: [] };
  const m = mergeAnswers(tailQ, [a, b]);
  t.equal(m.entries[0]!.entry.id, id(5));
  t.equal(m.count, 2);
  t.same(mergeAnswers(tailQ, [{ entries: [], count: 0, more: false, counts: [] }, { entries: [], count: 0, more: false, counts: [] }]).entries, []);

  const groupQ: StreamQuerySpec = { kind: 'group', stream: 'm:x', limit: 2 };
  const g = mergeAnswers(groupQ, [
    { entries: [{ stream: 'm:x/a', entry: e(1) }, { stream: 'm:x/c', entry: e(1) }], count: 2, more: false, counts: [] },
    { entries: [{ stream: 'm:x/a', entry: e(4) }, { stream: 'm:x/b', entry: e(2) }], count: 2, more: false, counts: [] },
  ]);
  t.same(g.entries.map((x) => [x.stream, x.entry.id]), [['m:x/a', id(4)], ['m:x/b', id(2)]], 'the newer copy of a key wins; sorted by name');
  t.equal(g.more, true, 'a key left over means more');

  const convQ: StreamQuerySpec = { kind: 'conversations', stream: 'u:a', self: 'a', limit: 5, markers: new Map() };
  const c = mergeAnswers(convQ, [
    { entries: [{ stream: 'u:a', entry: e(6, 'bob') }, { stream: 'u:a', entry: e(2, 'carol') }], count: 0, more: false, counts: [3, 1] },
    { entries: [{ stream: 'u:a', entry: e(7, 'carol') }, { stream: 'u:a', entry: e(5, 'bob') }], count: 0, more: false, counts: [2, 2] },
  ]);
  t.same(c.entries.map((x) => [x.entry.with, x.entry.id]), [['carol', id(7)], ['bob', id(6)]]);
  t.same(c.counts, [2, 3]);
});

t.test('what peers send about accounts is checked', async (t) => {
  const call = (body: Partial<StreamCall__Output>): StreamCall__Output => ({ id: 1, body: 'append', ...body } as StreamCall__Output);
  const entry = (stream: string, frame: string, extra: Record<string, unknown> = {}) => ({ stream, id: id(1), with: '', frame, pending: false, ...extra });
  const append = (e: ReturnType<typeof entry>) => call({ body: 'append', append: { entries: [e], handoff: false, last: false, clears: [] } });
  t.equal(invalidStreamCall(append(entry('a:alice/j:lobby', 'join'))), undefined);
  t.equal(invalidStreamCall(append(entry('m:lobby/alice', 'leave'))), undefined);
  t.equal(invalidStreamCall(append(entry('a:alice/u:bob', ''))), undefined);
  t.match(invalidStreamCall(append(entry('a:alice/j:lobby', '{"type":"message"}'))), /state entry/);
  t.match(invalidStreamCall(append(entry('a:alice/j:lobby', 'join', { with: 'bob' }))), /state entry/);
  t.match(invalidStreamCall(append(entry('a:alice/j:lobby', 'join', { pending: true }))), /state entry/);
  t.match(invalidStreamCall(append(entry('a:alice/j:lobby', 'join', { id: 'nope' }))), /bad id/);
  t.match(invalidStreamCall(append(entry('a:alice/k:lobby', 'join'))), /bad stream/);

  const query = (q: Record<string, unknown>) => call({ body: 'query', query: { queries: [{ kind: 1, stream: 'r:lobby', after: '', before: '', self: 'alice', limit: 0, markers: [], ...q }] } } as Partial<StreamCall__Output>);
  t.equal(invalidStreamCall(query({})), undefined);
  t.equal(invalidStreamCall(query({ kind: 2, stream: 'm:lobby', after: 'm:lobby/bob', limit: 100 })), undefined);
  t.equal(invalidStreamCall(query({ kind: 3, stream: 'u:alice', markers: [{ with: 'bob', msg: id(1) }], limit: 50 })), undefined);
  t.match(invalidStreamCall(query({ kind: 9 })), /bad kind/);
  t.match(invalidStreamCall(query({ limit: 1e9 })), /bad kind or limit/);
  t.match(invalidStreamCall(query({ kind: 2, stream: 'r:lobby' })), /bad stream/);
  t.match(invalidStreamCall(query({ kind: 1, stream: 'm:lobby' })), /bad stream/);
  t.equal(invalidStreamCall(query({ kind: 1, stream: 'a:bob/u:alice' })), undefined, 'a tail of a read marker');
  t.match(invalidStreamCall(query({ kind: 3, stream: 'r:lobby', limit: 5 })), /bad stream/);
  t.match(invalidStreamCall(query({ after: 'not an id' })), /bad bound/);
  t.match(invalidStreamCall(query({ kind: 3, stream: 'u:alice', markers: [{ with: 'bad user!', msg: id(1) }] })), /bad marker/);
  t.match(invalidStreamCall(call({ body: 'query', query: { queries: new Array(10_001).fill({}) } } as Partial<StreamCall__Output>)), /query/);

  const reply = (answers: unknown[]): StreamReply__Output => ({ id: 1, error: '', body: 'answers', answers: { answers } } as StreamReply__Output);
  t.equal(invalidStreamReply(reply([{ entries: [entry('m:lobby/bob', 'join')], count: 1, more: false, counts: [] }])), undefined);
  t.match(invalidStreamReply(reply([{ entries: [entry('m:lobby/bob', 'hi')], count: 1, more: false, counts: [] }])), /state entry/);
  t.match(invalidStreamReply(reply([null])), /bad answer/);
});

t.test('account events a peer delivers are checked like messages', async (t) => {
  t.equal(invalidDeliveredFrame('u:alice', encodeMembership('joined', 'lobby')), undefined);
  t.equal(invalidDeliveredFrame('u:alice', encodeMembership('left', 'lobby')), undefined);
  t.equal(invalidDeliveredFrame('u:bob', encodeReadEvent('alice', { with: 'bob' }, id(1))), undefined, 'a receipt to the other party');
  t.equal(invalidDeliveredFrame('u:alice', encodeReadEvent('alice', { room: 'lobby' }, id(1))), undefined);
  t.match(invalidDeliveredFrame('u:carol', encodeReadEvent('alice', { with: 'bob' }, id(1))), /does not belong/);
  t.match(invalidDeliveredFrame('u:bob', '{"type":"read","user":"alice","with":"bob","room":"x","msg":"' + id(1) + '"}'), /field/);
  t.equal(invalidDeliveredFrame('u:bob', encodeTyping('alice', { to: 'bob' })), undefined);
  t.equal(invalidDeliveredFrame('r:lobby', encodeTyping('alice', { room: 'lobby' })), undefined);
  t.match(invalidDeliveredFrame('u:lobby', encodeTyping('alice', { room: 'lobby' })), /does not belong/);
  t.match(invalidDeliveredFrame('u:carol', encodeTyping('alice', { to: 'bob' })), /does not belong/);
  t.match(invalidDeliveredFrame('r:lobby', encodeMembership('joined', 'lobby')), /topic/);
});
