import type { Batch, Batch__Output } from './wire.js';

/**
 * Largest batch a link writes, in bytes (approximate protobuf size, see `envelopeBytes`): a link
 * splits what it flushes into batches of at most this, and refuses an envelope larger than it.
 */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;

/**
 * Largest message a transport sends or accepts after a peer authenticated, in bytes: the largest
 * batch plus headroom for the estimate's error. Before that, nothing is read at all (a secret or
 * TLS is checked first) — see `GrpcTransport`.
 */
export const MAX_MESSAGE_BYTES = MAX_BATCH_BYTES + 1024 * 1024;

/**
 * One bidirectional stream of batches between two nodes, either end. The gRPC transport wraps a
 * `Link` call; the in-memory transport pairs two objects. Callbacks are set once by the link.
 */
export interface LinkStream {
  /** Something to name the other end in logs (an address, or `inbound`). */
  readonly remote: string;
  /** Writes a batch; false means the stream's buffer is full: wait for `onDrain`. */
  send(batch: Batch): boolean;
  /** Ends the stream gracefully (the other end sees it close). Idempotent. */
  close(): void;
  onBatch(cb: (batch: Batch__Output) => void): void;
  /** Called once when the stream is gone, with the error if it failed. */
  onClose(cb: (err?: Error) => void): void;
  onDrain(cb: () => void): void;
  /**
   * The link's handshake succeeded: the peer is who it claims to be (or, on an open mesh, is a
   * peer by definition). The transport lifts what it imposes on connections that have not got
   * that far (handshake deadline, caps on pending connections). Optional; called at most once.
   */
  markTrusted?(): void;
}

/** How nodes reach each other. Real: gRPC. Tests: in memory. */
export interface MeshTransport {
  /** Starts accepting; resolves with the bound port. */
  listen(host: string, port: number, onStream: (s: LinkStream) => void): Promise<number>;
  /** Opens a stream to `address` (`host:port`); failures surface through `onClose`. */
  dial(address: string): LinkStream;
  /** Stops listening and drops every stream; resolves when done. */
  close(): Promise<void>;
}
