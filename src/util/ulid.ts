import { randomFillSync } from 'node:crypto';
import type { Clock } from './clock.js';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'; // Crockford base32

/**
 * Monotonic ULID generator: 26 characters, 48-bit ms time + 80 random bits, lexicographically
 * sortable by time. Within one ms the random part is incremented, so ids from one generator are
 * strictly increasing; 80 random bits make collisions between nodes negligible. One generator per
 * node (no module-level state); synchronous, safe for any caller.
 */
export class UlidGenerator {
  private lastTime = -1;
  private readonly rand = new Uint8Array(10);
  private readonly clock: Clock;
  private readonly random: (n: number) => Uint8Array;

  constructor(clock: Clock, random?: (n: number) => Uint8Array) {
    this.clock = clock;
    this.random = random ?? pooledRandom();
  }

  /** Returns a new id. */
  next(): string {
    let t = Math.floor(this.clock.now());
    if (t <= this.lastTime) {
      this.increment();
      t = this.lastTime;
    } else {
      this.lastTime = t;
      this.rand.set(this.random(10));
    }
    return encodeTime(t) + crockfordBytes(this.rand);
  }

  private increment(): void {
    for (let i = this.rand.length - 1; i >= 0; i--) {
      const v = this.rand[i]!;
      if (v < 255) { this.rand[i] = v + 1; return; }
      this.rand[i] = 0;
    }
    // 80-bit overflow within one ms: borrow the next millisecond.
    this.lastTime += 1;
  }
}

/** Random bytes from a pool refilled 4 KiB at a time (one system call per ~400 ids, not per id). */
function pooledRandom(): (n: number) => Uint8Array {
  const pool = Buffer.alloc(4096);
  let offset = pool.length;
  return (n) => {
    if (offset + n > pool.length) {
      randomFillSync(pool);
      offset = 0;
    }
    const out = pool.subarray(offset, offset + n);
    offset += n;
    return out;
  };
}

/** `n` (a non-negative integer) as `width` Crockford base32 digits, most significant first. */
export function crockfordNumber(n: number, width: number): string {
  let out = '';
  for (let i = 0; i < width; i++) {
    out = ALPHABET[n % 32]! + out;
    n = Math.floor(n / 32);
  }
  return out;
}

function encodeTime(t: number): string {
  return crockfordNumber(t, 10);
}

/** Bytes as Crockford base32, 5 bits per character, big-endian (a partial last group is dropped). */
export function crockfordBytes(bytes: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >> bits) & 31]!;
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}
