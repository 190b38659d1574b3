/**
 * Fast, non-cryptographic string hashing for rendezvous hashing and digests.
 *
 * The core is cyrb53 (public domain): two independent 32-bit multiply-xor lanes over the string's
 * UTF-16 code units, finalised by a cross-lane avalanche into 53 bits, so the result is an exact,
 * non-negative JavaScript integer. It uses only `Math.imul` and shifts: no BigInt, no allocation,
 * no dependency on the platform or process (no random seed), so every node computes the same value.
 * It is not collision-resistant against an adversary; nothing here relies on that.
 */

/** 2^32, the modulus of one lane. */
const LANE = 0x1_0000_0000;

/**
 * Hashes `s` into two 32-bit lanes, written into `out[0]` and `out[1]` (unsigned), and returns
 * `out`. Lanes are the raw, not yet finalised state: feed them (optionally xor-ed with other lanes)
 * to {@link mix53}. Writing into a caller-owned buffer keeps the hot path free of allocation.
 *
 * @param s - any string; hashed as UTF-16 code units.
 * @param seed - 32-bit seed; different seeds give independent hash functions. Default 0.
 * @param out - receives the two lanes.
 */
export function hashLanes(s: string, seed: number, out: Uint32Array): Uint32Array {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  out[0] = h1;
  out[1] = h2;
  return out;
}

/**
 * Finalises two 32-bit lanes into a well-mixed 53-bit non-negative integer (every input bit
 * affects every output bit). Pure; safe to call from anywhere.
 *
 * @param a - first lane (any 32-bit integer; only the low 32 bits are used).
 * @param b - second lane.
 * @returns an integer in `[0, 2^53)`.
 */
export function mix53(a: number, b: number): number {
  let h1 = a | 0;
  let h2 = b | 0;
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return LANE * (h2 & 0x1fffff) + (h1 >>> 0);
}

/**
 * Hashes a string into a 53-bit non-negative integer (cyrb53). Deterministic across processes and
 * platforms. Allocation-free.
 *
 * @param s - any string; hashed as UTF-16 code units.
 * @param seed - 32-bit seed. Default 0.
 * @returns an integer in `[0, 2^53)`.
 */
export function hash53(s: string, seed = 0): number {
  // Same loop as hashLanes, inlined so the one-shot path needs no buffer.
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  return mix53(h1, h2);
}
