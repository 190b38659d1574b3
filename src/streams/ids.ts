import { randomBytes } from 'node:crypto';
import { MESSAGE_ID_PATTERN } from '../protocol/index.js';
import { crockfordBytes, crockfordNumber } from '../util/index.js';
import type { Clock } from '../util/index.js';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'; // Crockford base32, in code-point order
const DECODE = new Map([...ALPHABET].map((c, i) => [c, i]));
const COUNTER_MAX = 32 ** 4 - 1; // 20 bits

/** A message id: 26 characters of Crockford base32 (the ULID alphabet and length). */
export const MESSAGE_ID = MESSAGE_ID_PATTERN;

/** True when `s` is a well-formed message id. */
export function isMessageId(s: unknown): s is string {
  return typeof s === 'string' && MESSAGE_ID.test(s);
}

/** The wall-clock ms a message id was made at (its first 10 characters). */
export function idTime(id: string): number {
  let t = 0;
  for (let i = 0; i < 10; i++) t = t * 32 + (DECODE.get(id[i]!) ?? 0);
  return t;
}

/** The smallest id made at wall-clock ms `t` or later (a bound for range reads by time). */
export function idAtTime(t: number): string {
  return crockfordNumber(Math.max(0, Math.floor(t)), 10) + '0'.repeat(16);
}

/**
 * Message ids from a hybrid logical clock, so that they sort in an order every node agrees on:
 * 10 characters of wall-clock ms, 4 of a counter within that ms, 12 of this generator's random tag
 * (60 bits: ids of two nodes never collide). A generator's ids only grow, even when the wall clock
 * steps back; and `observe` moves it past every id this node has seen, so a reply written after a
 * message arrived always sorts after it, on any node, whatever the skew of their clocks. One
 * generator per node; synchronous, safe for any caller.
 */
export class MessageClock {
  private lastTime = 0;
  private counter = 0;
  /** The greatest id observed so far. */
  private highest = '';
  private readonly tag: string;

  constructor(private readonly clock: Clock, tag?: string) {
    this.tag = tag ?? crockfordBytes(randomBytes(8)).slice(0, 12);
    if (!/^[0-9A-HJKMNP-TV-Z]{12}$/.test(this.tag)) throw new TypeError('a clock tag is 12 Crockford base32 characters');
  }

  /** A new id, greater than every id this clock made or observed. */
  next(): string {
    const now = Math.floor(this.clock.now());
    if (now > this.lastTime) {
      this.lastTime = now;
      this.counter = 0;
    } else if (this.counter < COUNTER_MAX) {
      this.counter++;
    } else {
      // A million ids in one ms: borrow the next ms.
      this.lastTime++;
      this.counter = 0;
    }
    return crockfordNumber(this.lastTime, 10) + crockfordNumber(this.counter, 4) + this.tag;
  }

  /** Moves the clock past `id` (a message this node received or stored). Ignores malformed ids. */
  observe(id: string): void {
    // Ids sort as they were made (time, counter, node): one not above the greatest observed so far
    // cannot move the clock. Most calls end here (a node observes every message it stores or
    // delivers, and those mostly arrive in order).
    if (id <= this.highest) return;
    if (!MESSAGE_ID.test(id)) return;
    const t = idTime(id);
    // An id from far in the future (a peer's clock gone wrong) would drag every later id with it:
    // follow at most one minute ahead of this node's own wall clock.
    if (t > this.clock.now() + 60_000) return;
    let c = 0;
    for (let i = 10; i < 14; i++) c = c * 32 + DECODE.get(id[i]!)!;
    if (t > this.lastTime || (t === this.lastTime && c > this.counter)) {
      this.lastTime = t;
      this.counter = c;
    }
    this.highest = id;
  }
}
