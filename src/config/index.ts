export * from './node-config.js';
