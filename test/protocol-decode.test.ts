import t from 'tap';
import { decodeClientFrame, decodeClientFrameBytes, encodeMessage, encodeMessageAck, encodeRoomMessage, encodeServerFrame, FrameError, MAX_BODY_BYTES } from '../src/protocol/index.js';

function fails(text: string, code: string, requestId?: string): void {
  try {
    decodeClientFrame(text);
  } catch (err) {
    t.type(err, FrameError);
    t.equal((err as FrameError).code, code, `${text.slice(0, 60)} -> ${code}`);
    t.equal((err as FrameError).requestId, requestId, 'request id carried');
    return;
  }
  t.fail(`expected ${code} for ${text.slice(0, 60)}`);
}

t.test('valid frames decode to the typed union', async (t) => {
  t.same(decodeClientFrame('{"type":"hello","user":"alice"}'), { type: 'hello', user: 'alice' });
  t.same(decodeClientFrame('{"type":"hello","token":"x.y.z"}'), { type: 'hello', token: 'x.y.z' });
  t.same(decodeClientFrame('{"type":"send","id":"c1","to":"bob","body":"hi","extra":1}'), { type: 'send', id: 'c1', to: 'bob', body: 'hi' });
  t.same(decodeClientFrame('{"type":"join","id":"c2","room":"lobby"}'), { type: 'join', id: 'c2', room: 'lobby' });
  t.same(decodeClientFrame('{"type":"leave","room":"a.b:c@d-e_f"}'), { type: 'leave', room: 'a.b:c@d-e_f' });
  t.same(decodeClientFrame('{"type":"publish","id":"p","room":"r","body":""}'), { type: 'publish', id: 'p', room: 'r', body: '' });
  t.same(decodeClientFrame('{"type":"presence","id":"x","users":["a","b","a"]}'), { type: 'presence', id: 'x', users: ['a', 'b'] });
  t.same(decodeClientFrame('{"type":"watch","users":["a"]}'), { type: 'watch', users: ['a'] });
  t.same(decodeClientFrame('{"type":"unwatch","users":["a"]}'), { type: 'unwatch', users: ['a'] });
  t.same(decodeClientFrame('{"type":"refresh","id":"c8","token":"x.y.z"}'), { type: 'refresh', id: 'c8', token: 'x.y.z' });
});

t.test('malformed input is bad_request', async () => {
  fails('not json', 'bad_request');
  fails('[1,2]', 'bad_request');
  fails('null', 'bad_request');
  fails('"str"', 'bad_request');
  fails('{"id":"c1"}', 'bad_request', 'c1');
  fails('{"type":5}', 'bad_request');
  fails('{"type":"send","id":5,"to":"bob","body":"x"}', 'bad_request');
  fails(`{"type":"send","id":"${'x'.repeat(65)}","to":"bob","body":"x"}`, 'bad_request');
  fails('{"type":"send","id":"c","to":"bad user","body":"x"}', 'bad_request', 'c');
  fails(`{"type":"send","id":"c","to":"${'u'.repeat(65)}","body":"x"}`, 'bad_request', 'c');
  fails('{"type":"send","id":"c","to":"","body":"x"}', 'bad_request', 'c');
  fails('{"type":"send","id":"c","to":"bob","body":5}', 'bad_request', 'c');
  fails('{"type":"send","id":"c","to":"bob"}', 'bad_request', 'c');
  fails('{"type":"join","id":"c"}', 'bad_request', 'c');
  fails('{"type":"publish","id":"c","room":"r"}', 'bad_request', 'c');
  fails('{"type":"presence","id":"c","users":[]}', 'bad_request', 'c');
  fails('{"type":"presence","id":"c","users":"bob"}', 'bad_request', 'c');
  fails('{"type":"presence","id":"c","users":["ok","no way"]}', 'bad_request', 'c');
  fails(`{"type":"presence","id":"c","users":${JSON.stringify(Array.from({ length: 101 }, (_, i) => `u${i}`))}}`, 'bad_request', 'c');
  fails(`{"type":"watch","id":"c","users":${JSON.stringify(Array.from({ length: 1001 }, (_, i) => `u${i}`))}}`, 'bad_request', 'c');
  fails('{"type":"hello"}', 'bad_request');
  fails('{"type":"hello","token":""}', 'bad_request');
  fails('{"type":"refresh","id":"r"}', 'bad_request', 'r');
  fails('{"type":"refresh","id":"r","token":""}', 'bad_request', 'r');
  fails('{"type":"refresh","id":"r","token":42}', 'bad_request', 'r');
  fails(`{"type":"refresh","id":"r","token":"${'t'.repeat(8193)}"}`, 'bad_request', 'r');
});

t.test('unknown type is unknown_type with the id', async () => {
  fails('{"type":"dance","id":"c9"}', 'unknown_type', 'c9');
});

t.test('body limit is 16 KiB of UTF-8, not characters', async (t) => {
  const ok = 'a'.repeat(MAX_BODY_BYTES);
  t.equal((decodeClientFrame(JSON.stringify({ type: 'send', to: 'b', body: ok })) as { body: string }).body.length, MAX_BODY_BYTES);
  fails(JSON.stringify({ type: 'send', id: 'big', to: 'b', body: ok + 'a' }), 'too_large', 'big');
  // 6000 three-byte characters = 18000 bytes > 16384, though only 6000 characters.
  fails(JSON.stringify({ type: 'publish', id: 'u8', room: 'r', body: '€'.repeat(6000) }), 'too_large', 'u8');
  t.ok(decodeClientFrame(JSON.stringify({ type: 'publish', room: 'r', body: '€'.repeat(5461) })));
});

t.test('hot-path encoders produce exactly what encodeServerFrame does', async (t) => {
  const body = 'quotes " backslash \\ newline \n unicode € and </script>';
  t.same(JSON.parse(encodeMessage('01ARZ3NDEKTSV4RRFFQ69G5FAV', 'a.b@c', 'x:y-z_1', body, 1732270000000)),
    JSON.parse(encodeServerFrame({ type: 'message', msg: '01ARZ3NDEKTSV4RRFFQ69G5FAV', from: 'a.b@c', to: 'x:y-z_1', body, ts: 1732270000000 })));
  t.same(JSON.parse(encodeRoomMessage('01ARZ3NDEKTSV4RRFFQ69G5FAV', 'lobby', 'alice', body, 5)),
    { type: 'room_message', msg: '01ARZ3NDEKTSV4RRFFQ69G5FAV', room: 'lobby', from: 'alice', body, ts: 5 });
  t.same(JSON.parse(encodeMessageAck('id "1"', 'delivered', 'M', 7)), { type: 'ack', id: 'id "1"', status: 'delivered', msg: 'M', ts: 7 });
  t.same(JSON.parse(encodeMessageAck(undefined, 'offline', 'M', 7)), { type: 'ack', status: 'offline', msg: 'M', ts: 7 });
});

t.test('bytes: junk that cannot be an object is refused before decoding; the rest decodes as text', async (t) => {
  const refused = (bytes: Buffer): string => {
    try {
      decodeClientFrameBytes(bytes);
    } catch (err) {
      t.type(err, FrameError);
      return `${(err as FrameError).code}: ${(err as FrameError).message}`;
    }
    return 'decoded';
  };
  for (const junk of ['not json', '[1]', '"s"', '42', 'true', '', '   ', '\uFEFF{"type":"join","room":"r"}']) {
    t.equal(refused(Buffer.from(junk)), 'bad_request: frame must be a JSON object', JSON.stringify(junk));
  }
  t.equal(refused(Buffer.from([0xff, 0xfe, 0x7b])), 'bad_request: frame must be a JSON object', 'binary junk');
  t.same(decodeClientFrameBytes(Buffer.from(' \t\r\n{"type":"join","id":"j","room":"r"}')), { type: 'join', id: 'j', room: 'r' });
  // A view into a larger buffer (as a socket read hands it over) decodes only its own bytes.
  const big = Buffer.from('xx{"type":"leave","room":"r"}yy');
  t.same(decodeClientFrameBytes(big.subarray(2, big.length - 2)), { type: 'leave', room: 'r' });
  t.equal(refused(Buffer.from('{"type":"dance","id":"d"}')), 'unknown_type: unknown frame type "dance"');
});
