// The generated peer-link codec (scripts/gen-mesh-codec.mjs) against proto-loader's, which it
// replaced: for random batches of every envelope kind built from proto/mesh.proto itself, each
// decodes what the other encodes to the same objects, so a node on this release and a node on the
// previous one read each other's batches alike. Hostile bytes give ProtoDecodeError, nothing else.
import t from 'tap';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { loadMeshProto, meshCodec, protoPath } from '../src/mesh/index.js';
import type { Batch, Batch__Output } from '../src/mesh/wire.js';
import { ProtoDecodeError, ProtoReader, ProtoWriter, varintSize } from '../src/util/proto-wire.js';

const link = loadMeshProto().Mesh.service.Link;
const oldEncode = (b: Batch): Buffer => link.requestSerialize(b);
const oldDecode = (buf: Buffer): Batch__Output => link.requestDeserialize(buf) as Batch__Output;
const root = new protobuf.Root().loadSync(protoPath('mesh.proto'), { keepCase: false });
root.resolveAll();

const SEED = process.env.FUZZ_SEED === undefined ? {} : { seed: Number(process.env.FUZZ_SEED) };

/** JSON form without `undefined` members: proto-loader leaves an unset oneof out, the codec sets it undefined. */
const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

const text = fc.oneof(
  { weight: 5, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 300, unit: 'grapheme' }) },
  { weight: 1, arbitrary: fc.constantFrom('', 'x'.repeat(200), '€'.repeat(50), '\u{1F600}ok') },
);
const u32 = fc.oneof(fc.nat({ max: 300 }), fc.constantFrom(0, 127, 128, 16383, 16384, 2 ** 31, 2 ** 32 - 1));
const u64 = fc.oneof(fc.nat({ max: 300 }), fc.constantFrom(0, 2 ** 32 - 1, 2 ** 32, 2 ** 35 + 7, 2 ** 53 - 1), fc.maxSafeNat());

/** An arbitrary plain object of a message type, its fields drawn from the schema. */
function arbitraryOf(type: protobuf.Type, depth: number): fc.Arbitrary<Record<string, unknown>> {
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of type.fieldsArray) {
    if (f.partOf) continue;
    let one: fc.Arbitrary<unknown>;
    if (f.resolvedType instanceof protobuf.Type) {
      if (depth > 3) continue;
      one = arbitraryOf(f.resolvedType, depth + 1);
    } else {
      one = ({ string: text, uint32: u32, uint64: u64, bool: fc.boolean() } as Record<string, fc.Arbitrary<unknown>>)[f.type]!;
    }
    parts[f.name] = f.repeated ? fc.array(one, { maxLength: 3 }) : one;
  }
  const base = fc.record(parts, { requiredKeys: [] });
  if (type.oneofsArray.length === 0) return base;
  // One member of each oneof set (or none).
  const oneofs = type.oneofsArray.map((o) => fc.option(fc.oneof(...o.fieldsArray.map((f) => (
    f.resolvedType instanceof protobuf.Type ? arbitraryOf(f.resolvedType, depth + 1) : text
  ).map((v) => ({ [f.name]: v }))))));
  return fc.tuple(base, ...oneofs).map(([b, ...os]) => Object.assign({}, b, ...os.filter(Boolean)));
}

const envelopeType = root.lookupType('chatmesh.mesh.v1.Envelope');
const batchArb = fc.array(arbitraryOf(envelopeType, 0), { maxLength: 6 }).map((items) => ({ items }) as Batch);

t.test('the codec and proto-loader decode each other\'s batches to the same objects, for every envelope kind', (t) => {
  const kinds = new Set<string>();
  fc.assert(fc.property(batchArb, (b) => {
    const theirs = oldDecode(oldEncode(b));
    for (const e of theirs.items) if (e.kind) kinds.add(e.kind);
    t.same(plain(meshCodec.decode(oldEncode(b))), plain(theirs));
    t.same(plain(oldDecode(meshCodec.encode(b))), plain(theirs));
  }), { numRuns: 3000, ...SEED });
  t.equal(kinds.size, envelopeType.oneofsArray[0]!.fieldsArray.length, 'every envelope kind was generated');
  t.end();
});

t.test('64-bit fields come out as numbers, exact up to 2^53, never Longs', (t) => {
  for (const id of [0, 1, 2 ** 32, 2 ** 53 - 1]) {
    const got = meshCodec.decode(meshCodec.encode({ items: [{ deliver: { id, topic: 'u:bob', data: '{}', acceptedAtMs: id } }] }));
    t.equal(got.items[0]!.deliver!.id, id);
    t.equal(typeof got.items[0]!.deliver!.acceptedAtMs, 'number');
  }
  t.end();
});

t.test('a long envelope (length prefix past one byte) and a batch of thousands keep every byte', (t) => {
  const data = 'é'.repeat(70_000);
  const items = Array.from({ length: 5000 }, (_, i) => ({ result: { id: i, count: i % 3, notHere: i % 7 === 0 } }));
  const got = meshCodec.decode(meshCodec.encode({ items: [{ deliver: { id: 9, topic: 'r:lobby', data } }, ...items] }));
  t.equal(got.items[0]!.deliver!.data, data);
  t.equal(got.items.length, 5001);
  t.same(got.items[4000]!.result, { id: 3999, count: 0, notHere: false });
  t.end();
});

t.test('hostile bytes: a ProtoDecodeError or a value, never another exception', (t) => {
  const valid = meshCodec.encode({ items: [{ deliver: { id: 7, topic: 'u:bob', data: '{"type":"x"}', msg: 'm' } }, { ping: { sentAtMs: 5 } }] });
  let errors = 0;
  const tryDecode = (buf: Buffer): void => {
    try {
      meshCodec.decode(buf);
    } catch (err) {
      if (!(err instanceof ProtoDecodeError)) throw err;
      errors++;
    }
  };
  for (let n = 0; n < valid.length; n++) tryDecode(valid.subarray(0, n));
  t.ok(errors > 0, 'truncations are refused');
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => tryDecode(Buffer.from(bytes))), { numRuns: 20_000, ...SEED });
  // A length that points past the end, and an 11-byte varint.
  t.throws(() => meshCodec.decode(Buffer.from([0x0a, 0x7f, 0x00])), ProtoDecodeError);
  t.throws(() => meshCodec.decode(Buffer.from([0x08, ...Array(10).fill(0xff), 0x01])), ProtoDecodeError);
  t.end();
});

t.test('wire primitives: varints of every size, lengths that need moving', (t) => {
  const w = new ProtoWriter(4);
  const values = [0, 1, 127, 128, 300, 16384, 2 ** 21, 2 ** 28, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 42 + 3, 2 ** 53 - 1];
  for (const v of values) w.varint(v);
  const at = w.fork();
  w.string('x'.repeat(20_000));
  w.join(at);
  const buf = w.finish();
  const r = new ProtoReader(buf);
  for (const v of values) t.equal(r.varint(), v, `varint ${v}`);
  const end = r.end(buf.length);
  t.equal(r.string(end), 'x'.repeat(20_000), 'the nested part kept its body after its length grew to 3 bytes');
  t.equal(r.pos, buf.length);
  t.equal(varintSize(2 ** 53 - 1), 8);
  t.end();
});
