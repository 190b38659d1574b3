/**
 * Protocol-buffers wire primitives for generated codecs (src/generated/mesh-codec, made by
 * scripts/gen-mesh-codec.mjs from proto/mesh.proto): a growable writer and a bounds-checked reader
 * over one Buffer. Plain numbers only — a 64-bit varint is read as a JS number (exact up to 2^53,
 * which every 64-bit field of the mesh stays below: ids, counters, ms, 53-bit hashes), never as a
 * `Long`. Pure: no I/O.
 */

/** A message that is not valid protocol buffers (truncated, a bad length or wire type). */
export class ProtoDecodeError extends Error {
  readonly code = 'proto_decode';
  constructor(message: string) {
    super(message);
    this.name = 'ProtoDecodeError';
  }
}

const TWO_32 = 4294967296;

// Node's Buffer has these native UTF-8 fast paths (what `toString('utf8', ...)` and `write` call),
// undeclared in @types/node.
declare global {
  interface Buffer {
    utf8Slice(start: number, end: number): string;
    utf8Write(s: string, offset: number, length?: number): number;
  }
}

/** Bytes a varint of `v` (a non-negative integer below 2^53) takes. */
export function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 5;
  for (let x = Math.floor(v / 0x800000000); x > 0; x = Math.floor(x / 128)) n++;
  return n;
}

/**
 * Writes one message into a buffer that grows as needed; `finish` copies out exactly what was
 * written and resets it, so one writer serves every message of a stream. Not shared across calls
 * that interleave (encoding is synchronous, so one per module is enough).
 */
export class ProtoWriter {
  buf: Buffer;
  pos = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Room for `n` more bytes. */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** A non-negative integer below 2^53 (uint32 and uint64 fields, tags, lengths). */
  varint(v: number): void {
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    if (v < 0x80) {
      b[p++] = v;
    } else {
      let lo = v >>> 0;
      let hi = (v - lo) / TWO_32;
      while (hi > 0 || lo > 0x7f) {
        b[p++] = (lo & 0x7f) | 0x80;
        lo = ((lo >>> 7) | (hi << 25)) >>> 0;
        hi >>>= 7;
      }
      b[p++] = lo;
    }
    this.pos = p;
  }

  /** A 64-bit field given as a number, a decimal string or a Long-like object. */
  uint64(v: unknown): void {
    this.varint(toUint(v));
  }

  /** A UTF-8 string with its length prefix. */
  string(s: string): void {
    const max = s.length * 3;
    if (max < 0x80) {
      this.ensure(max + 1);
      const n = this.buf.utf8Write(s, this.pos + 1);
      this.buf[this.pos] = n;
      this.pos += n + 1;
      return;
    }
    const n = Buffer.byteLength(s);
    this.varint(n);
    this.ensure(n);
    this.buf.utf8Write(s, this.pos, n);
    this.pos += n;
  }

  /** Bytes with their length prefix. */
  bytes(v: Uint8Array): void {
    this.varint(v.length);
    this.ensure(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }

  /** Starts a length-delimited part: returns where its length goes (1 byte reserved). */
  fork(): number {
    this.ensure(1);
    return this.pos++;
  }

  /** Ends the part started at `at`: writes its length, moving the body if it needs more room. */
  join(at: number): void {
    const len = this.pos - at - 1;
    if (len < 0x80) {
      this.buf[at] = len;
      return;
    }
    const extra = varintSize(len) - 1;
    this.ensure(extra);
    this.buf.copy(this.buf, at + 1 + extra, at + 1, this.pos);
    const end = this.pos + extra;
    this.pos = at;
    this.varint(len);
    this.pos = end;
  }

  /** A copy of what was written; the writer is empty again. */
  finish(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    this.pos = 0;
    // A huge message must not pin its buffer for the life of the process.
    if (this.buf.length > 8 * 1024 * 1024) this.buf = Buffer.allocUnsafe(64 * 1024);
    return out;
  }
}

function toUint(v: unknown): number {
  if (typeof v === 'number') return v >= 0 ? Math.floor(v) : 0;
  if (typeof v === 'string') return toUint(Number(v));
  if (typeof v === 'object' && v !== null && typeof (v as { toNumber?: unknown }).toNumber === 'function') {
    return toUint((v as { toNumber(): number }).toNumber());
  }
  return 0;
}

/** Reads one message; every read is bounds-checked and throws `ProtoDecodeError` past the end. */
export class ProtoReader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  /** A varint as a number (exact below 2^53; above, rounded like a double). */
  varint(): number {
    const b = this.buf;
    let p = this.pos;
    if (p >= b.length) throw new ProtoDecodeError('truncated varint');
    let c = b[p++]!;
    if (c < 0x80) {
      this.pos = p;
      return c;
    }
    let v = c & 0x7f;
    let mul = 0x80;
    for (let i = 1; i < 10; i++) {
      if (p >= b.length) throw new ProtoDecodeError('truncated varint');
      c = b[p++]!;
      v += (c & 0x7f) * mul;
      if (c < 0x80) {
        this.pos = p;
        return v;
      }
      mul *= 0x80;
    }
    throw new ProtoDecodeError('varint longer than 10 bytes');
  }

  /** A uint32 field: the low 32 bits of the varint, like protobuf does. */
  uint32(): number {
    const v = this.varint();
    return v < TWO_32 ? v : v % TWO_32;
  }

  bool(): boolean {
    return this.varint() !== 0;
  }

  /** The end of a length-delimited part that starts here (its length read), checked against `limit`. */
  end(limit: number): number {
    const len = this.varint();
    const end = this.pos + len;
    if (end > limit) throw new ProtoDecodeError('length past the end of the message');
    return end;
  }

  string(limit: number): string {
    const end = this.end(limit);
    const s = this.buf.utf8Slice(this.pos, end);
    this.pos = end;
    return s;
  }

  bytes(limit: number): Buffer {
    const end = this.end(limit);
    const b = this.buf.subarray(this.pos, end);
    this.pos = end;
    return b;
  }

  /** Skips a field of this wire type. */
  skip(wireType: number, limit: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.pos = this.end(limit);
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new ProtoDecodeError(`wire type ${wireType} is not supported`);
    }
    if (this.pos > limit) throw new ProtoDecodeError('field past the end of the message');
  }
}
