export * from './topic.js';
export * from './local-hub.js';
export * from './watchers.js';
export * from './router.js';
