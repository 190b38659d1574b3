/**
 * Stream stores: {@link MemoryStreamStore} (default) and {@link LevelStreamStore} (`--data-dir`),
 * both implementing `StreamStore` (../types.ts) with the same bounds and the same answers.
 * Layout, durability and bounds: docs/storage.md.
 */
import type { StoreLimits, StreamStore } from '../types.js';
import { openLevelStreamStore } from './level.js';
import { MemoryStreamStore } from './memory.js';

export { MemoryStreamStore } from './memory.js';
export { LevelStreamStore, openLevelStreamStore, StoreWriteError } from './level.js';
export { StoreClosedError, MAX_RANGE_LIMIT } from './stream-index.js';

/** How {@link createStreamStore} builds a store. */
export interface StreamStoreOptions {
  /** Directory of the on-disk store (`--data-dir`); without it the store is in memory. */
  readonly dataDir?: string | undefined;
  /** The bounds (RangeError when out of range). */
  readonly limits: StoreLimits;
  /** Wall clock in ms, for the TTL. */
  readonly now: () => number;
}

/**
 * The store a node runs with: on disk in `dataDir` when given (throws `StoreOpenError` when it
 * cannot be opened), else in memory.
 */
export async function createStreamStore(opts: StreamStoreOptions): Promise<StreamStore> {
  if (opts.dataDir !== undefined) return openLevelStreamStore(opts.dataDir, opts.limits, opts.now);
  return new MemoryStreamStore(opts.limits, opts.now);
}
