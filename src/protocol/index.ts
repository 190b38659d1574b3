export * from './limits.js';
export * from './errors.js';
export * from './frames.js';
export * from './decode.js';
