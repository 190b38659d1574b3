export * from './options.js';
export * from './stats.js';
export * from './connection.js';
export type { GatewayContext } from './context.js';
export * from './gateway.js';
export * from './bad-frame-window.js';
