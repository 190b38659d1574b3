/**
 * Delivery results coalesced into one `DeliverResults` envelope (mesh revision 1): a node answers
 * every delivery of an inbound batch with one entry of a few bytes instead of one envelope each.
 * Pure: no I/O.
 */
import type { Envelope } from './wire.js';

/** Most entries in one `DeliverResults` (about 8 bytes each on the wire). */
export const MAX_RESULTS_PER_ENVELOPE = 4096;

/** Results collected for one peer, in the order they were answered. */
export class ResultBatch {
  private firstId = 0;
  private lastId = 0;
  private readonly gaps: number[] = [];
  private readonly counts: number[] = [];
  private readonly notHere: number[] = [];

  /** Entries held. */
  get size(): number {
    return this.counts.length;
  }

  /**
   * Adds the result of delivery `id`. False (nothing added) when it cannot follow the entries held
   * — its id is not above the last one's, or the batch is full —: take them first.
   */
  add(id: number, count: number, notHere: boolean): boolean {
    const n = this.counts.length;
    if (n === 0) this.firstId = id;
    else if (id <= this.lastId || id - this.lastId > 0xffffffff || n >= MAX_RESULTS_PER_ENVELOPE) return false;
    else this.gaps.push(id - this.lastId);
    if (notHere) this.notHere.push(n);
    this.counts.push(count);
    this.lastId = id;
    return true;
  }

  /** The envelope of the entries held; the batch is empty afterwards. */
  take(): Envelope {
    return { results: { firstId: this.firstId, idGaps: this.gaps.splice(0), counts: this.counts.splice(0), notHere: this.notHere.splice(0) } };
  }
}

/**
 * Calls `each` with every result of a (validated) `DeliverResults`, in order.
 */
export function forEachResult(r: { firstId: number; idGaps: number[]; counts: number[]; notHere: number[] }, each: (id: number, count: number, notHere: boolean) => void): void {
  let id = r.firstId;
  let nh = 0;
  for (let i = 0; i < r.counts.length; i++) {
    if (i > 0) id += r.idGaps[i - 1]!;
    const stale = r.notHere[nh] === i;
    if (stale) nh++;
    each(id, r.counts[i]!, stale);
  }
}
