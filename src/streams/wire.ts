/** Conversions between the stream layer's shapes and the mesh's stream messages. */
import type { StreamEntryMsg, StreamEntryMsg__Output, StreamSummary, StreamSummary__Output } from '../mesh/index.js';
import type { StreamDigest, StreamItem } from './types.js';

export function toEntryMsg(it: StreamItem): StreamEntryMsg {
  const e = it.entry;
  return { stream: it.stream, id: e.id, with: e.with, frame: e.frame, pending: e.pending };
}

export function fromEntryMsg(m: StreamEntryMsg__Output): StreamItem {
  return { stream: m.stream, entry: { id: m.id, with: m.with, frame: m.frame, pending: m.pending } };
}

export function toSummary(stream: string, d: StreamDigest | undefined, receiving = false): StreamSummary {
  return d
    ? { stream, count: d.count, pending: d.pending, oldest: d.oldest, newest: d.newest, hash: d.hash >>> 0, receiving }
    : { stream, count: 0, pending: 0, oldest: '', newest: '', hash: 0, receiving };
}

/** Whether a local digest equals a peer's summary (same set of ids, as far as a digest can tell). */
export function sameSet(d: StreamDigest | undefined, s: StreamSummary__Output): boolean {
  if (!d) return s.count === 0;
  return d.count === s.count && (d.hash >>> 0) === s.hash && d.newest === s.newest && d.oldest === s.oldest;
}
