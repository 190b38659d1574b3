import type { Batch, Batch__Output } from './wire.js';

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
