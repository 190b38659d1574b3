// The outbound side of a connection, fed values through a fake socket: the welcome goes before
// the frames held for it, the slow-consumer bound (and the one oversized answer it lets through),
// one copy of a message id around a replay.
import t from 'tap';
import type { WebSocket } from 'ws';
import { FrameWriter } from '../src/gateway/frame-writer.js';

function writer(max = 100) {
  const sent: string[] = [];
  let buffered = 0;
  let slow = 0;
  let closed = false;
  const ws = { readyState: 1, get bufferedAmount() { return buffered; }, send(d: string) { sent.push(d); } } as unknown as WebSocket;
  const w = new FrameWriter(ws, { maxBufferedBytes: max, closed: () => closed, slowConsumer: () => { slow++; }, written: () => undefined });
  return { w, sent, setBuffered: (b: number) => { buffered = b; }, slow: () => slow, close: () => { closed = true; } };
}

t.test('the welcome is the first frame, then what was held for it, in order', async (t) => {
  const { w, sent } = writer();
  w.holdUntilWelcome();
  t.ok(w.write('a'));
  t.ok(w.write('b'));
  t.same(sent, [], 'nothing goes before the welcome');
  w.releaseEarly('WELCOME');
  t.same(sent, ['WELCOME', 'a', 'b']);
  w.write('c');
  t.same(sent, ['WELCOME', 'a', 'b', 'c']);
});

t.test('the slow-consumer bound, and one answer larger than it when nothing waits', async (t) => {
  const { w, sent, setBuffered, slow } = writer(100);
  t.ok(w.write('x'.repeat(500)), 'an empty buffer takes one oversized frame');
  setBuffered(500);
  t.notOk(w.write('y'), 'anything more while it waits passes the bound');
  t.equal(slow(), 1);
  setBuffered(60);
  t.notOk(w.write('z'.repeat(50)), '60 + 50 > 100');
  setBuffered(10);
  t.ok(w.write('z'.repeat(50)));
  t.equal(sent.length, 2);
});

t.test('held frames past the bound drop the connection', async (t) => {
  const { w, slow } = writer(10);
  w.holdUntilWelcome();
  t.ok(w.write('12345'));
  t.notOk(w.write('123456789'), 'held bytes over the bound');
  t.equal(slow(), 1);
});

t.test('around a replay, a message id is written once', async (t) => {
  const { w, sent, close } = writer(10_000);
  w.holdUntilWelcome();
  w.releaseEarly('W');
  const m = (id: string) => `{"type":"message","msg":"${id}","from":"a","to":"b","body":"x","ts":1}`;
  const id = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
  t.ok(w.write(m(id)));
  t.ok(w.write(m(id)), 'a second copy counts as written');
  t.equal(sent.length, 2, 'but is not sent');
  t.ok(w.seen(id));
  close();
  t.notOk(w.write('late'), 'nothing after close');
});
