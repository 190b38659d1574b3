/**
 * The on-disk `StreamStore` (`--data-dir`), on classic-level (LevelDB). Entries live on disk only;
 * in memory it keeps the digest of every stream (the shared {@link StreamIndex}), rebuilt at open
 * by a keys-only scan. Writes go through one queue: the calls issued while a batch is being
 * written wait and then go together into the next batch, written with `sync: true` — one fsync for
 * all of them (group commit). Layout: level-format.ts; how a group becomes a batch: level-draft.ts.
 */
import type { RangeQuery, RangeResult, StoreLimits, StoreTotals, StreamDigest, StreamItem, StreamStore } from '../types.js';
import { StoreOpenError } from '../types.js';
import { Draft } from './level-draft.js';
import { loadIndex, readRange, type StreamDb } from './level-format.js';
import { openError, openStreamDb } from './level-open.js';
import { checkItems, checkLimits, checkQuery, checkStream, StoreClosedError, type StreamIndex } from './stream-index.js';

/** A write (or group of writes) of the disk store failed; the callers of that group get it. */
export class StoreWriteError extends Error {
  readonly code = 'STORE_WRITE_FAILED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreWriteError';
  }
}

/** A queued write call. */
interface Job {
  run(draft: Draft): Promise<unknown>;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/**
 * Opens the store in `dir` (created when missing) and loads its index. Throws
 * {@link StoreOpenError}: `locked` (another node or store holds it), `permission`, `corrupt`
 * (damaged, or not a chatmesh store), `other`. Close the store to release the directory's lock.
 *
 * @param limits the bounds (RangeError when out of range), applied from the next write on.
 * @param now the wall clock in ms, read on each append for the TTL.
 */
export async function openLevelStreamStore(dir: string, limits: StoreLimits, now: () => number = Date.now): Promise<LevelStreamStore> {
  const checked = checkLimits(limits);
  const db = await openStreamDb(dir);
  try {
    return new LevelStreamStore(db, await loadIndex(db), checked, now, dir);
  } catch (err) {
    await db.close().catch(() => undefined);
    if (typeof (err as { code?: unknown }).code === 'string') throw openError(err, dir);
    throw new StoreOpenError('corrupt', `data dir ${dir} holds a damaged store (${(err as Error).message}): restore it from a backup, or move it away and start with an empty one`, { cause: err });
  }
}

/**
 * Streams on disk. Every method may be called concurrently. Writes (`append`, `clearPending`,
 * `drop`, `sweep`) take effect in call order and resolve once fsynced; reads see what was written
 * before they started. `digest`, `streams` and `totals` come from memory and may run ahead of the
 * disk by the group being written. `totals().trimmed` counts since open.
 */
export class LevelStreamStore implements StreamStore {
  private queue: Job[] = [];
  private flushing: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private failed: Error | undefined;
  private batches = 0;
  /** Range reads in progress, which close() lets finish. */
  private readonly reads = new Set<Promise<unknown>>();

  /** Use {@link openLevelStreamStore}. */
  constructor(
    private readonly db: StreamDb,
    private index: StreamIndex,
    private readonly limits: StoreLimits,
    private readonly now: () => number,
    /** The data dir. */
    readonly dir: string,
  ) {}

  /** Synced batches written since open: one per group commit (a test and bench counter). */
  get writeBatches(): number {
    return this.batches;
  }

  append(items: readonly StreamItem[]): Promise<void> {
    try {
      checkItems(items);
    } catch (err) {
      return Promise.reject(err);
    }
    // Copied: the call runs later, with the group it joins.
    const copy = items.slice();
    return this.enqueue((d) => d.append(copy));
  }

  range(stream: string, query: RangeQuery): Promise<RangeResult> {
    try {
      if (this.closing) throw new StoreClosedError();
      checkQuery(query);
    } catch (err) {
      return Promise.reject(err);
    }
    const read = readRange(this.db, stream, query);
    this.reads.add(read);
    const done = () => this.reads.delete(read);
    read.then(done, done);
    return read;
  }

  clearPending(stream: string, ids: readonly string[]): Promise<void> {
    try {
      checkStream(stream);
    } catch (err) {
      return Promise.reject(err);
    }
    const copy = ids.slice();
    return this.enqueue((d) => d.clearPending(stream, copy));
  }

  drop(stream: string): Promise<void> {
    return this.enqueue((d) => d.drop(stream));
  }

  digest(stream: string): StreamDigest | undefined {
    return this.index.digest(stream);
  }

  streams(): string[] {
    return this.index.streams();
  }

  group(group: string): string[] {
    return this.index.group(group);
  }

  groupCount(group: string): number {
    return this.index.groupCount(group);
  }

  sweep(nowMs: number): Promise<number> {
    return this.enqueue((d) => d.sweep(nowMs));
  }

  totals(): StoreTotals {
    return this.index.totals();
  }

  /**
   * Refuses new calls, lets the queued writes and the reads in progress finish, then closes the
   * database (releasing its lock). Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.flushing;
      await Promise.allSettled(this.reads);
      await this.db.close();
    })();
    return this.closing;
  }

  private enqueue<T>(run: (draft: Draft) => Promise<T>): Promise<T> {
    if (this.closing) return Promise.reject(new StoreClosedError());
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (value: unknown) => void, reject });
      this.flushing ??= this.flush();
    });
  }

  /** Writes groups until the queue is empty. Never rejects. */
  private async flush(): Promise<void> {
    // Let the calls made in this same tick join the first group.
    await null;
    while (this.queue.length > 0) await this.commit(this.queue.splice(0));
    this.flushing = undefined;
  }

  private async commit(group: Job[]): Promise<void> {
    const draft = new Draft(this.db, this.index, this.limits, this.now);
    const results: unknown[] = [];
    try {
      for (const job of group) results.push(await job.run(draft));
      if (draft.size > 0) {
        await this.db.batch(draft.operations(), { sync: true });
        this.batches++;
      }
    } catch (err) {
      const failure = new StoreWriteError(`stream store ${this.dir}: a write failed (${(err as Error)?.message ?? err})`, { cause: err });
      for (const job of group) job.reject(failure);
      await this.reload(failure);
      return;
    }
    group.forEach((job, i) => job.resolve(results[i]));
  }

  /** After a failed group: the index ran ahead of the disk, read it again from the disk. */
  private async reload(failure: StoreWriteError): Promise<void> {
    try {
      this.index = await loadIndex(this.db);
    } catch (err) {
      this.failed = new StoreWriteError(`stream store ${this.dir} is unusable after a failed write: ${failure.message}`, { cause: err });
    }
  }
}
