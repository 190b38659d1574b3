/**
 * The mesh wire format: generated types of proto/mesh.proto and its loader. Nothing else in the
 * code base names generated files.
 */
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from '../generated/mesh.js';
import { decodeBatch, encodeBatch } from '../generated/mesh-codec/index.js';
import type { Batch, Batch__Output } from '../generated/chatmesh/mesh/v1/Batch.js';

export type { Batch, Batch__Output } from '../generated/chatmesh/mesh/v1/Batch.js';
export type { Envelope, Envelope__Output } from '../generated/chatmesh/mesh/v1/Envelope.js';
export type { Hello, Hello__Output } from '../generated/chatmesh/mesh/v1/Hello.js';
export type { RouteUpdate__Output } from '../generated/chatmesh/mesh/v1/RouteUpdate.js';
export type { MeshClient } from '../generated/chatmesh/mesh/v1/Mesh.js';

/**
 * Version of the mesh protocol; peers with another version are refused. 2: owner acknowledgements,
 * members views on lookups and broadcasts (authoritative negative answers), the secret proven in
 * call metadata. 3: stream calls (kept messages, src/streams). A mesh on an older version is upgraded by restarting all of its nodes on the new release.
 */
export const PROTOCOL_VERSION = 3;

/**
 * The newest revision of `PROTOCOL_VERSION` this release speaks (`Hello.revision`). Revisions are
 * backwards compatible: a link uses the smaller of its two ends' revisions, so a mesh upgrades one
 * node at a time. 1: `DeliverResults` (one envelope answers every delivery of a batch).
 */
export const MESH_REVISION = 1;

/** The loader options, identical to the `gen` script's flags so runtime objects match the types. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** Absolute path of a file under the package's `proto/`, from `src/` or `dist/`. */
export function protoPath(file: string): string {
  const p = fileURLToPath(new URL(`../../proto/${file}`, import.meta.url));
  if (!existsSync(p)) throw new Error(`proto file not found: ${p}`);
  return p;
}

/** The peer link's codec: generated from proto/mesh.proto (scripts/gen-mesh-codec.mjs), plain objects
 *  of proto-loader's shape straight to and from the wire, 64-bit fields as numbers, no `Long`s. */
export const meshCodec = {
  encode: (b: Batch): Buffer => encodeBatch(b),
  decode: (buf: Buffer): Batch__Output => decodeBatch(buf),
} as const;

/**
 * The `Mesh` service with the generated codec in place of proto-loader's (which converts every
 * message through protobufjs objects and `Long`s twice). Same path and wire format.
 */
export function meshService(): grpc.ServiceDefinition {
  const link = loadMeshProto().Mesh.service.Link;
  return {
    Link: {
      ...link,
      requestSerialize: meshCodec.encode,
      requestDeserialize: meshCodec.decode,
      responseSerialize: meshCodec.encode,
      responseDeserialize: meshCodec.decode,
    },
  } as grpc.ServiceDefinition;
}

/** Loads proto/mesh.proto. */
export function loadMeshProto(): ProtoGrpcType['chatmesh']['mesh']['v1'] {
  const def = protoLoader.loadSync(protoPath('mesh.proto'), PROTO_LOADER_OPTIONS);
  return (grpc.loadPackageDefinition(def) as unknown as ProtoGrpcType).chatmesh.mesh.v1;
}
