export * from './server.js';
export * from './static.js';
