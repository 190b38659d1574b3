/**
 * Routing: pure logic that decides where a topic's messages go. Rendezvous hashing picks each
 * topic's home; the home keeps the complete owner sets ({@link OwnerDirectory}); every node caches
 * complete sets in a bounded LRU ({@link RouteTable}); peer links send in batches
 * ({@link Batcher}). Nothing here does I/O or reads a clock. Other folders import only this file.
 */
export { hash53, hashLanes, mix53 } from './hash.js';
export { Rendezvous, movedTopics, type MovedTopic } from './rendezvous.js';
export {
  RouteTable,
  DEFAULT_ROUTE_CACHE_SIZE,
  MAX_ROUTE_PAGE,
  type RouteEntry,
  type RouteRow,
  type RouteTableOptions,
  type EntryCheck,
} from './route-table.js';
export {
  OwnerDirectory,
  ownerDigest,
  digestEquals,
  type OwnerDigest,
  type DirectoryChange,
  type OwnerDirectoryOptions,
} from './owner-directory.js';
export { Batcher, scheduleImmediate, type BatcherOptions } from './batcher.js';
