/**
 * Discovery: who the other nodes of the mesh are. The public surface of `src/discovery/`; other
 * folders import only this file.
 */
export type { Discovery, DiscoveryListener, DiscoveryStatus, DiscoveryStatusListener, PeerTarget, SelfRegistration } from './types.js';
export {
  CONSUL_DISCOVERY_DEFAULTS,
  ConsulDiscoveryError,
  ConsulDiscoveryErrorCode,
  createConsulDiscovery,
} from './consul.js';
export type { ConsulDiscoveryOptions, DiscoveryLogger, SleepFn } from './consul.js';
export { createWatchLimiter, nextWatchIndex } from './blocking-query.js';
export { CONSUL_ACL_FILTERED } from './consul-status.js';
export type { WatchLimiter, WatchLimiterOptions } from './blocking-query.js';
export { ConsulApiError, ConsulErrorCode, DEFAULT_AGENT_URL, parseAgentUrl } from './consul-api.js';
export { createStaticDiscovery, parsePeerAddress, StaticDiscoveryError, StaticDiscoveryErrorCode } from './static.js';
export type { PeerAddress, StaticDiscoveryOptions } from './static.js';
