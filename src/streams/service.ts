/**
 * The stream layer's core: writes go to every replica of a stream before they count (the client's
 * ack waits for it), reads merge what the reachable replicas hold, and the calls peers make are
 * served from this node's store. Hand-off (handoff.ts) moves streams when their replicas change.
 */
import type { Logger } from '../log.js';
import type { StreamCall__Output, StreamCallBody, StreamReply__Output, StreamReplyBody } from '../mesh/index.js';
import { ChatError, ErrorCode } from '../protocol/index.js';
import type { Placement } from './placement.js';
import type { StreamStats, StreamView, StreamReplicaView } from './stats.js';
import type { RangeQuery, RangeResult, StreamEntry, StreamItem, StreamStore } from './types.js';
import { fromEntryMsg, sameSet, toEntryMsg, toSummary } from './wire.js';
import { answerQuery } from './queries.js';
import type { QueryAnswer, StreamQuerySpec } from './queries.js';
import { fromQueryMsg, queryAll, queryReplicas, toAnswerMsg } from './query-fanout.js';
import type { QueryFanoutDeps } from './query-fanout.js';

/** How the stream layer reaches other nodes (the mesh's stream calls). */
export interface StreamCallsPort {
  call(peer: string, body: StreamCallBody): Promise<StreamReply__Output>;
  tell(peer: string, body: StreamCallBody): boolean;
}

/** Options of {@link StreamService}. */
export interface StreamServiceOptions {
  readonly selfId: string;
  readonly store: StreamStore;
  readonly calls: StreamCallsPort;
  readonly placement: Placement;
  readonly stats: StreamStats;
  readonly log: Logger;
  /** Monotonic ms. */
  readonly monotonic: () => number;
  /** Moves this node's message clock past an id it received. */
  readonly observe: (id: string) => void;
  /** A write confirmed by every replica, with how long that took, in ms. */
  readonly onWriteLatency?: (ms: number) => void;
  /** An append arrived for a stream this node is not a replica of: hand it on. */
  readonly onForeignAppend?: (stream: string) => void;
  /** Most bytes of frames in one read answer to a peer; more are left for the next page. Default 1 MiB. */
  readonly maxReplyBytes?: number;
  /** After the first current replica answered a read, how long the others may still take, ms. Default 500. */
  readonly readGraceMs?: number;
}

/** Entries waiting to leave for one peer, and the writes waiting for its answer. */
interface Outbound {
  readonly entries: ReturnType<typeof toEntryMsg>[];
  bytes: number;
  readonly writes: PendingWrite[];
}

/** A write waiting for its replicas: settled once every one confirmed, or the first failed. */
interface PendingWrite {
  /** Replicas (plus one for the set-up) still to confirm. */
  left: number;
  failed: boolean;
  readonly items: readonly StreamItem[];
  /** Monotonic ms. */
  readonly started: number;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/** How long a mailbox clear waits for an append to ride along with, at most, in ms. */
const CLEAR_DELAY_MS = 25;
/** Clears waiting (ids) beyond which they leave at once. */
const MAX_CLEARS_WAITING = 20_000;

/** How long a stream counts as "receiving a hand-off" after an offer was answered, at most, in ms. */
const RECEIVING_MS = 60_000;

/**
 * Replicated streams. Every method may be called concurrently. A write resolves once every replica
 * (in this node's view) has the entries durably; it rejects with `unavailable` when one does not
 * confirm, so no client is ever acked for what is not kept.
 */
export class StreamService {
  /** Appends per stream seen here (hand-off drops a stream only if none came in meanwhile). */
  private readonly touches = new Map<string, number>();
  /** Streams whose hand-off to this node is in progress, until when (monotonic ms). */
  private readonly receiving = new Map<string, number>();
  private readonly maxReplyBytes: number;
  private readonly readGraceMs: number;
  /** Settles once every local append called so far has (the store applies them in call order). */
  private appended: Promise<unknown> = Promise.resolve();
  /** Appends to peers collected in this event-loop turn, per node: one call (and one answer) each. */
  private readonly outbox = new Map<string, Outbound>();
  private flushing = false;
  /** Mailbox clears for peers, by node and stream, waiting to ride along with an append. */
  private readonly lateClears = new Map<string, Map<string, string[]>>();
  private clearsWaiting = 0;
  private clearTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: StreamServiceOptions) {
    this.maxReplyBytes = opts.maxReplyBytes ?? 1024 * 1024;
    this.readGraceMs = opts.readGraceMs ?? 500;
  }

  get store(): StreamStore {
    return this.opts.store;
  }

  /** Appends-so-far counter of a stream (see hand-off). */
  touched(stream: string): number {
    return this.touches.get(stream) ?? 0;
  }

  /** Forgets a stream's counter (it was dropped). */
  forget(stream: string): void {
    this.touches.delete(stream);
  }

  /** Keeps `items` on every replica of their streams; resolves when all confirmed. */
  write(items: readonly StreamItem[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const w: PendingWrite = { left: 1, failed: false, items, started: this.opts.monotonic(), resolve, reject };
      // Usually one or two replica nodes: grouped without a Map, in the order they come.
      const nodes: string[] = [];
      const lists: StreamItem[][] = [];
      for (const it of items) {
        for (const node of this.opts.placement.writeSet(it.stream)) {
          const i = nodes.indexOf(node);
          if (i >= 0) lists[i]!.push(it);
          else {
            nodes.push(node);
            lists.push([it]);
          }
        }
      }
      for (let i = 0; i < nodes.length; i++) {
        w.left++;
        const node = nodes[i]!;
        if (node === this.opts.selfId) {
          this.appendLocal(lists[i]!).then(() => this.settleWrite(w, undefined), (err: unknown) => this.settleWrite(w, err ?? new Error('append failed')));
        } else {
          this.appendRemote(node, lists[i]!, w);
        }
      }
      this.settleWrite(w, undefined);
    });
  }

  /** One replica of a write answered (`err` undefined: it has the entries). */
  private settleWrite(w: PendingWrite, err: unknown): void {
    if (w.failed) return;
    if (err !== undefined) {
      w.failed = true;
      // Replicas that did confirm keep the message (in history); it must not come out of the
      // mailbox as if it had been stored, since the sender is told it failed.
      for (const it of w.items) if (it.entry.pending) this.clear(it.stream, [it.entry.id]);
      this.opts.stats.replicationFailures++;
      this.opts.log.debug({ err }, 'a replicated write failed');
      w.reject(new ChatError(ErrorCode.Unavailable, 'the message could not be kept on its replicas now; nothing was delivered, try again'));
      return;
    }
    if (--w.left > 0) return;
    this.opts.stats.replicatedWrites++;
    this.opts.onWriteLatency?.(this.opts.monotonic() - w.started);
    w.resolve();
  }

  /**
   * Queues entries for one peer; everything queued for it in this turn leaves as one append call
   * (at most ~1 MiB: a bigger one is sent at once and a new one started). Calls to one peer leave
   * and are answered in order, so writes resolve in the order they were made.
   */
  private appendRemote(node: string, items: readonly StreamItem[], w: PendingWrite): void {
    const box = this.box(node);
    for (const it of items) {
      box.entries.push(toEntryMsg(it));
      box.bytes += it.entry.frame.length + 96;
    }
    box.writes.push(w);
    if (box.bytes >= 1024 * 1024) {
      this.outbox.delete(node);
      this.send(node, box);
    }
  }

  /** The outbox of a peer for this turn (a flush is scheduled with the first). */
  private box(node: string): Outbound {
    let box = this.outbox.get(node);
    if (!box) this.outbox.set(node, box = { entries: [], bytes: 0, writes: [] });
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
    return box;
  }

  private flush(): void {
    this.flushing = false;
    const boxes = [...this.outbox];
    this.outbox.clear();
    for (const [node, box] of boxes) this.send(node, box);
  }

  private send(node: string, box: Outbound): void {
    // Mailbox clears waiting for this node ride along.
    const clears = this.takeClears(node);
    this.opts.calls.call(node, { append: { entries: box.entries, clears } }).then(
      () => { for (const w of box.writes) this.settleWrite(w, undefined); },
      (err: unknown) => { for (const w of box.writes) this.settleWrite(w, err ?? new Error('append failed')); },
    );
  }

  /** The clears waiting for `node`, as the wire has them; none wait afterwards. */
  private takeClears(node: string): Array<{ stream: string; ids: string[] }> {
    const waiting = this.lateClears.get(node);
    if (!waiting) return [];
    this.lateClears.delete(node);
    return [...waiting].map(([stream, ids]) => ({ stream, ids }));
  }

  /** Sends the clears no append took along (they waited `CLEAR_DELAY_MS`). */
  private flushClears(): void {
    this.clearTimer = undefined;
    this.clearsWaiting = 0;
    for (const node of [...this.lateClears.keys()]) {
      // Only clears: nobody waits for them (a lost clear replays a message once more at worst).
      this.opts.calls.tell(node, { append: { entries: [], clears: this.takeClears(node) } });
    }
  }

  private appendLocal(items: readonly StreamItem[]): Promise<void> {
    for (const it of items) this.touches.set(it.stream, (this.touches.get(it.stream) ?? 0) + 1);
    this.opts.stats.appends += items.length;
    const done = this.opts.store.append(items);
    this.appended = done.catch(() => undefined);
    return done;
  }

  /** Resolves once every local append called before this call has completed (or failed). */
  settled(): Promise<void> {
    return this.appended.then(() => undefined);
  }

  /**
   * Part of a stream, merged over the replicas that answer (the union of what they hold, oldest
   * first). Rejects with `unavailable` when none answers.
   */
  async read(stream: string, q: RangeQuery): Promise<RangeResult> {
    const nodes = this.opts.placement.readSet(stream);
    // Nodes past the current replicas (recent views) only add to an answer: at least one current
    // replica must answer, or the read is unavailable (an empty extra is not "nothing kept").
    const current = this.opts.placement.writeSet(stream).length;
    const results = await this.gather(nodes.map((node) => (node === this.opts.selfId
      ? this.opts.store.range(stream, q)
      : this.opts.calls.call(node, {
        read: { stream, after: q.after ?? '', before: q.before ?? '', with: q.with ?? '', pendingOnly: q.pendingOnly ?? false, limit: q.limit, newest: q.from === 'newest' },
      }).then((r) => ({ entries: (r.range?.entries ?? []).map((m) => fromEntryMsg(m).entry), more: r.range?.more ?? false })))), current);
    const byId = new Map<string, StreamEntry>();
    let more = false;
    let answered = 0;
    for (const [i, r] of results.entries()) {
      if (r.status === 'rejected') continue;
      if (i < current) answered++;
      more ||= r.value.more;
      for (const e of r.value.entries) {
        const had = byId.get(e.id);
        // A mailbox mark only clears: one copy that says "sent" wins.
        if (!had || (had.pending && !e.pending)) byId.set(e.id, e);
      }
    }
    if (answered === 0) {
      throw new ChatError(ErrorCode.Unavailable, 'no replica of this stream answered; try again later');
    }
    let entries = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (entries.length > q.limit) {
      more = true;
      entries = q.from === 'newest' ? entries.slice(entries.length - q.limit) : entries.slice(0, q.limit);
    }
    for (const e of entries) this.opts.observe(e.id);
    return { entries, more };
  }

  /**
   * Settles the reads; once a current replica (index < `current`) has answered, the others get
   * `readGraceMs` more, then count as not answered: every replica holds every acked message, so a
   * hung one must not hold up a device's sync for the whole call timeout.
   */
  private gather<T>(reads: Array<Promise<T>>, current: number): Promise<Array<PromiseSettledResult<T>>> {
    const results: Array<PromiseSettledResult<T> | undefined> = reads.map(() => undefined);
    return new Promise((resolve) => {
      let left = reads.length;
      let timer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        clearTimeout(timer);
        resolve(results.map((r) => r ?? { status: 'rejected', reason: new Error('no answer within the read grace') }));
      };
      reads.forEach((p, i) => {
        p.then((value) => { results[i] = { status: 'fulfilled', value }; }, (reason: unknown) => { results[i] = { status: 'rejected', reason }; })
          .finally(() => {
            if (--left === 0) return finish();
            if (i < current && results[i]!.status === 'fulfilled' && timer === undefined) {
              timer = setTimeout(finish, this.readGraceMs);
              timer.unref();
            }
          });
      });
      if (left === 0) finish();
    });
  }

  /**
   * Runs summary queries (queries.ts) on their replicas, one call per node: one merged answer per
   * query, or undefined where no current replica answered.
   */
  query(queries: readonly StreamQuerySpec[]): Promise<Array<QueryAnswer | undefined>> {
    return queryReplicas(this.fanout(), queries);
  }

  /** Like {@link query}, but rejects with `unavailable` unless every query was answered. */
  queryAll(queries: readonly StreamQuerySpec[]): Promise<QueryAnswer[]> {
    return queryAll(this.fanout(), queries);
  }

  private fanout(): QueryFanoutDeps {
    const { selfId, store, placement, calls, observe } = this.opts;
    return { selfId, store, placement, calls, observe, graceMs: this.readGraceMs };
  }

  /** Clears mailbox marks on every replica (best effort: a lost clear replays a message once more). */
  clear(stream: string, ids: readonly string[]): void {
    if (ids.length === 0) return;
    for (const node of this.opts.placement.readSet(stream)) {
      if (node === this.opts.selfId) {
        this.opts.store.clearPending(stream, ids).catch((err: unknown) => this.opts.log.warn({ err, stream }, 'could not clear mailbox marks'));
        continue;
      }
      // Not urgent (a mark cleared late replays a message to a device that connects meanwhile,
      // which drops it as a duplicate): it waits for the next append to that node, or a while.
      let waiting = this.lateClears.get(node);
      if (!waiting) this.lateClears.set(node, waiting = new Map());
      const list = waiting.get(stream);
      if (list) list.push(...ids);
      else waiting.set(stream, [...ids]);
      this.clearsWaiting += ids.length;
    }
    if (this.clearsWaiting >= MAX_CLEARS_WAITING) this.flushClears();
    else if (this.clearTimer === undefined && this.lateClears.size > 0) {
      this.clearTimer = setTimeout(() => this.flushClears(), CLEAR_DELAY_MS);
      this.clearTimer.unref();
    }
  }

  /** Marks streams as receiving a hand-off (this node answered an offer for them). */
  markReceiving(streams: readonly string[]): void {
    const until = this.opts.monotonic() + RECEIVING_MS;
    for (const s of streams) this.receiving.set(s, until);
  }

  private isReceiving(stream: string): boolean {
    const until = this.receiving.get(stream);
    if (until === undefined) return false;
    if (until > this.opts.monotonic()) return true;
    this.receiving.delete(stream);
    return false;
  }

  /** Serves a stream call from a peer. */
  async serve(peer: string, call: StreamCall__Output): Promise<StreamReplyBody> {
    const { store, placement } = this.opts;
    switch (call.body) {
      case 'append': {
        const a = call.append!;
        const items = a.entries.map(fromEntryMsg);
        for (const it of items) this.opts.observe(it.entry.id);
        const appended = items.length > 0 ? this.appendLocal(items) : Promise.resolve();
        const cleared = a.clears.map((k) => store.clearPending(k.stream, k.ids));
        await Promise.all([appended, ...cleared]);
        const streams = new Set(items.map((it) => it.stream));
        if (a.handoff && a.last) for (const s of streams) this.receiving.delete(s);
        // Kept, never dropped: a stream this node is not a replica of (in its view) is handed on.
        for (const s of streams) if (!placement.isReplica(s)) this.opts.onForeignAppend?.(s);
        return { done: {} };
      }
      case 'read': {
        const r = call.read!;
        const res = await store.range(r.stream, {
          ...(r.after && { after: r.after }), ...(r.before && { before: r.before }), ...(r.with && { with: r.with }),
          pendingOnly: r.pendingOnly, limit: r.limit, from: r.newest ? 'newest' : 'oldest',
        });
        return { range: this.capped(res, r.newest, r.stream) };
      }
      case 'clear':
        await store.clearPending(call.clear!.stream, call.clear!.ids);
        return { done: {} };
      case 'offer': {
        const wanted = call.offer!.streams.filter((s) => !sameSet(store.digest(s.stream), s)).map((s) => s.stream);
        this.markReceiving(wanted);
        return { wanted: { streams: wanted } };
      }
      case 'info': {
        const s = call.info!.stream;
        return { summary: toSummary(s, store.digest(s), this.isReceiving(s)) };
      }
      case 'query': {
        const answers = await Promise.all(call.query!.queries.map((q) => answerQuery(store, fromQueryMsg(q))));
        return { answers: { answers: answers.map(toAnswerMsg) } };
      }
      default:
        throw new Error(`unknown stream call from ${peer}`);
    }
  }

  /** A read answer within `maxReplyBytes` (the rest is left for the caller's next page). */
  private capped(res: RangeResult, newest: boolean, stream: string): { entries: ReturnType<typeof toEntryMsg>[]; more: boolean } {
    const list = newest ? [...res.entries].reverse() : res.entries;
    let bytes = 0;
    let n = 0;
    for (const e of list) {
      bytes += e.frame.length + 64;
      if (n > 0 && bytes > this.maxReplyBytes) break;
      n++;
    }
    const kept = list.slice(0, n);
    if (newest) kept.reverse();
    return { entries: kept.map((entry) => toEntryMsg({ stream, entry })), more: res.more || n < list.length };
  }

  /** Where a stream is kept and what each replica holds (`ctl stream`). */
  async describe(stream: string): Promise<StreamView> {
    const { placement } = this.opts;
    const writeSet = placement.writeSet(stream);
    const nodes = placement.readSet(stream);
    const rows = await Promise.all(nodes.map(async (node, i): Promise<StreamReplicaView> => {
      const rank = i + 1;
      try {
        const s = node === this.opts.selfId
          ? toSummary(stream, this.opts.store.digest(stream), this.isReceiving(stream))
          : (await this.opts.calls.call(node, { info: { stream } })).summary!;
        return {
          rank, node, reachable: true, error: writeSet.includes(node) ? '' : 'not a replica any more (hand-off pending)',
          messages: Number(s.count ?? 0), oldest: s.oldest ?? '', newest: s.newest ?? '', pending: Number(s.pending ?? 0), handoff: s.receiving ?? false,
        };
      } catch (err) {
        return { rank, node, reachable: false, error: (err as Error).message, messages: 0, oldest: '', newest: '', pending: 0, handoff: false };
      }
    }));
    return { stream, replicas: placement.replicas, nodes: rows };
  }
}
