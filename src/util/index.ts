export * from './clock.js';
export * from './token-bucket.js';
export * from './ulid.js';
export * from './ws-url.js';
