/**
 * Checks of what peers send. Peers are authenticated by the mesh secret, but a buggy or hostile
 * peer must not be able to corrupt routing state or make this node allocate without bound.
 */
import { ID_PATTERN, MAX_FRAME_BYTES } from '../protocol/index.js';
import type { Envelope__Output } from './wire.js';

/** Max topics in one lookup request or one snapshot chunk from a peer. */
export const MAX_TOPICS_PER_ITEM = 10_000;
/** Max owners in one route update (one per node of the mesh). */
export const MAX_OWNERS_PER_ROUTE = 10_000;
/** Max connections one node may claim for one topic. */
export const MAX_COUNT = 10_000_000;
/** `host:port` as peers advertise it. */
export const ADDRESS_PATTERN = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):\d{1,5}$/;

/** True when `t` is `u:<id>` or `r:<id>`. */
export function isTopic(t: unknown): t is string {
  return typeof t === 'string' && (t.startsWith('u:') || t.startsWith('r:')) && ID_PATTERN.test(t.slice(2));
}

function count(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0 && n <= MAX_COUNT;
}

/** Why an envelope from a peer is unacceptable, or undefined when it is fine. */
export function invalidEnvelope(env: Envelope__Output): string | undefined {
  switch (env.kind) {
    case 'deliver': {
      const d = env.deliver!;
      if (!isTopic(d.topic)) return 'deliver: bad topic';
      // A delivery carries one encoded client frame; clients cannot send more than a frame.
      if (d.data.length > 2 * MAX_FRAME_BYTES) return 'deliver: data too large';
      if (d.exceptSession.length > 128) return 'deliver: bad session';
      return undefined;
    }
    case 'owner':
      return isTopic(env.owner!.topic) && count(env.owner!.count) ? undefined : 'owner: bad topic or count';
    case 'route': {
      const r = env.route!;
      if (!isTopic(r.topic) || r.owners.length > MAX_OWNERS_PER_ROUTE) return 'route: bad topic or owners';
      return r.owners.every((o) => o.nodeId !== '' && count(o.count)) ? undefined : 'route: bad owner';
    }
    case 'lookup': {
      const l = env.lookup!;
      return l.topics.length <= MAX_TOPICS_PER_ITEM && l.topics.every(isTopic) ? undefined : 'lookup: bad topics';
    }
    case 'lookupReply':
      return env.lookupReply!.routes.every((r) => isTopic(r.topic)) ? undefined : 'lookupReply: bad topic';
    case 'snapshot': {
      const s = env.snapshot!;
      if (s.topics.length > MAX_TOPICS_PER_ITEM) return 'snapshot: chunk too large';
      return s.topics.every((t) => isTopic(t.topic) && count(t.count)) ? undefined : 'snapshot: bad topic or count';
    }
    default:
      return undefined;
  }
}
