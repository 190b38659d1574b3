#!/usr/bin/env node
// Generates src/generated/mesh-codec/index.ts from proto/mesh.proto (run by `npm run gen`).
//
// The peer link's codec: one encode and one decode function per message type, straight between
// the wire and plain objects of the shape @grpc/proto-loader produces with the project's options
// (camelCase names, defaults filled in, 64-bit numbers as JS numbers, oneof name in `kind`/`body`)
// — without protobufjs's fromObject/toObject passes or a `Long` per 64-bit field. The output is
// never edited; change proto/mesh.proto or this generator. Wire primitives: src/util/proto-wire.ts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const protoFile = join(root, 'proto', 'mesh.proto');
const outDir = join(root, 'src', 'generated', 'mesh-codec');
const PACKAGE = 'chatmesh.mesh.v1';

const pb = new protobuf.Root().loadSync(protoFile, { keepCase: false });
pb.resolveAll();
const ns = pb.lookup(PACKAGE);
const types = ns.nestedArray.filter((t) => t instanceof protobuf.Type);

const SCALARS = { string: 2, bytes: 2, uint32: 0, uint64: 0, bool: 0 };
for (const t of types) {
  for (const f of t.fieldsArray) {
    if (!(f.resolvedType instanceof protobuf.Type) && !(f.type in SCALARS)) {
      throw new Error(`gen-mesh-codec: ${t.name}.${f.name} has type ${f.type}, which the generator does not handle yet`);
    }
  }
}

const prop = (name) => (/^[A-Za-z_$][\w$]*$/.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`);
const isMsg = (f) => f.resolvedType instanceof protobuf.Type;

function defaultOf(f) {
  if (f.repeated) return '[]';
  if (isMsg(f)) return 'null';
  return { string: "''", bytes: 'EMPTY', uint32: '0', uint64: '0', bool: 'false' }[f.type];
}

function encoder(t) {
  const lines = [`function e${t.name}(w: ProtoWriter, m: any): void {`, '  let v: any;'];
  for (const f of [...t.fieldsArray].sort((a, b) => a.id - b.id)) {
    const tag = (wt) => (f.id << 3) | wt;
    lines.push(`  v = m${prop(f.name)};`);
    if (isMsg(f)) {
      const body = `{ w.varint(${tag(2)}); const at = w.fork(); e${f.resolvedType.name}(w, x); w.join(at); }`;
      if (f.repeated) lines.push(`  if (v != null) for (const x of v) ${body}`);
      else lines.push(`  if (v != null) { const x = v; ${body} }`);
      continue;
    }
    const put = { string: 'w.string(x)', bytes: 'w.bytes(x)', uint32: 'w.varint(x >>> 0)', uint64: 'w.uint64(x)', bool: 'w.varint(x ? 1 : 0)' }[f.type];
    if (f.repeated && SCALARS[f.type] === 0) {
      // Packed, as proto3 does by default.
      lines.push(`  if (v != null && v.length > 0) { w.varint(${tag(2)}); const at = w.fork(); for (const x of v) ${put}; w.join(at); }`);
    } else if (f.repeated) {
      lines.push(`  if (v != null) for (const x of v) { w.varint(${tag(2)}); ${put}; }`);
    } else {
      // proto3: a field at its default is not written, except a set member of a oneof.
      const isDefault = { string: "v === ''", bytes: 'v.length === 0', uint32: 'v === 0', uint64: "(v === 0 || v === '0')", bool: 'v === false' }[f.type];
      const cond = f.partOf ? 'v != null' : `v != null && !(${isDefault})`;
      lines.push(`  if (${cond}) { const x = v; w.varint(${tag(SCALARS[f.type])}); ${put}; }`);
    }
  }
  lines.push('}');
  return lines.join('\n');
}

function decoder(t) {
  const init = [];
  for (const o of t.oneofsArray) init.push(`${o.name}: undefined`);
  for (const f of t.fieldsArray) if (!f.partOf) init.push(`${JSON.stringify(f.name)}: ${defaultOf(f)}`);
  const lines = [
    `function d${t.name}(r: ProtoReader, end: number): any {`,
    `  const m: any = { ${init.join(', ')} };`,
    '  while (r.pos < end) {',
    '    const t = r.varint();',
    '    switch (t) {',
  ];
  for (const f of t.fieldsArray) {
    const p = `m${prop(f.name)}`;
    const oneof = f.partOf
      ? ` if (m.${f.partOf.name} !== undefined && m.${f.partOf.name} !== '${f.name}') m[m.${f.partOf.name}] = undefined; m.${f.partOf.name} = '${f.name}';`
      : '';
    if (isMsg(f)) {
      const read = `d${f.resolvedType.name}(r, r.end(end))`;
      lines.push(`      case ${(f.id << 3) | 2}: ${f.repeated ? `${p}.push(${read});` : `${p} = ${read};`}${oneof} break;`);
      continue;
    }
    const read = { string: 'r.string(end)', bytes: 'r.bytes(end)', uint32: 'r.uint32()', uint64: 'r.varint()', bool: 'r.bool()' }[f.type];
    const wt = SCALARS[f.type];
    if (f.repeated) {
      lines.push(`      case ${(f.id << 3) | wt}: ${p}.push(${read}); break;`);
      if (wt === 0) {
        lines.push(`      case ${(f.id << 3) | 2}: { const e = r.end(end); while (r.pos < e) ${p}.push(${read}); if (r.pos !== e) throw new ProtoDecodeError('${t.name}.${f.name}: packed field overran'); break; }`);
      }
    } else {
      lines.push(`      case ${(f.id << 3) | wt}: ${p} = ${read};${oneof} break;`);
    }
  }
  lines.push(
    '      default: r.skip(t & 7, end);',
    '    }',
    '  }',
    `  if (r.pos !== end) throw new ProtoDecodeError('${t.name}: a field overran the message');`,
    '  return m;',
    '}',
  );
  return lines.join('\n');
}

const out = [
  '// Generated by scripts/gen-mesh-codec.mjs from proto/mesh.proto. Do not edit.',
  '/* eslint-disable */',
  "import { ProtoDecodeError, ProtoReader, ProtoWriter } from '../../util/proto-wire.js';",
  "import type { Batch, Batch__Output } from '../chatmesh/mesh/v1/Batch.js';",
  "import type { Envelope, Envelope__Output } from '../chatmesh/mesh/v1/Envelope.js';",
  '',
  'const EMPTY = Buffer.alloc(0);',
  '/** One writer for every message: encoding is synchronous. */',
  'const writer = new ProtoWriter();',
  '',
  '/** Encodes a `Batch` (proto-loader input shape) to protobuf bytes. */',
  'export function encodeBatch(b: Batch): Buffer {',
  '  try {',
  '    eBatch(writer, b);',
  '  } catch (err) {',
  '    writer.pos = 0;',
  '    throw err;',
  '  }',
  '  return writer.finish();',
  '}',
  '',
  '/** Decodes protobuf bytes to a `Batch` (proto-loader output shape); throws `ProtoDecodeError`. */',
  'export function decodeBatch(buf: Buffer): Batch__Output {',
  '  return dBatch(new ProtoReader(buf), buf.length);',
  '}',
  '',
  '/** Encodes one `Envelope` (tests and size checks). */',
  'export function encodeEnvelope(e: Envelope): Buffer {',
  '  try {',
  '    eEnvelope(writer, e);',
  '  } catch (err) {',
  '    writer.pos = 0;',
  '    throw err;',
  '  }',
  '  return writer.finish();',
  '}',
  '',
  '/** Decodes one `Envelope`; throws `ProtoDecodeError`. */',
  'export function decodeEnvelope(buf: Buffer): Envelope__Output {',
  '  return dEnvelope(new ProtoReader(buf), buf.length);',
  '}',
  '',
  ...types.flatMap((t) => [encoder(t), '', decoder(t), '']),
];

mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'index.ts'), `${out.join('\n')}`);
// src/generated is CommonJS (proto-loader's types); this folder is an ES module like the rest.
writeFileSync(join(outDir, 'package.json'), '{"type":"module"}\n');
