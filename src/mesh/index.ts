export * from './transport.js';
export * from './memory-transport.js';
export * from './grpc-transport.js';
export * from './link.js';
export * from './peers.js';
export * from './pending.js';
export * from './stats.js';
export * from './mesh-router.js';
export { PROTOCOL_VERSION, loadMeshProto, protoPath, PROTO_LOADER_OPTIONS } from './wire.js';
