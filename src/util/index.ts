export * from './clock.js';
export * from './token-bucket.js';
export * from './ulid.js';
