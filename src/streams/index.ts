export * from './types.js';
export * from './ids.js';
export * from './stats.js';
export { Placement, type PlacementOptions } from './placement.js';
export { StreamService, type StreamServiceOptions, type StreamCallsPort } from './service.js';
export { HandOff, type HandOffOptions } from './handoff.js';
export { replay, type ReplaySink } from './replay.js';
export { NodeStreams, type NodeStreamsOptions } from './node-streams.js';
export { isFrom, type QueryAnswer, type StreamQuerySpec } from './queries.js';
