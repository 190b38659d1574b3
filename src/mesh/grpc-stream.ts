/**
 * The two ends of a `Link` call as `LinkStream`s: writes, graceful end, and one close report
 * whichever way the call ends.
 */
import * as grpc from '@grpc/grpc-js';
import { LinkRefusedError, RefuseCode } from './link.js';
import type { LinkStream } from './transport.js';
import type { Batch, Batch__Output } from './wire.js';

export type InternalStream = LinkStream & { onCloseInternal(cb: () => void): void };

function makeStream(
  remote: string,
  write: (b: Batch) => boolean,
  end: () => void,
  source: NodeJS.EventEmitter,
  closeEvents: string[],
  opts: { cleanup?: () => void; abort?: () => void; mapError?: (err: Error) => Error; trusted?: () => void } = {},
): InternalStream {
  let closeCb: ((err?: Error) => void) | undefined;
  const internal: Array<() => void> = [];
  let closed = false;
  let ended = false;
  const finish = (err?: Error): void => {
    if (closed) return;
    closed = true;
    opts.cleanup?.();
    for (const f of internal) f();
    closeCb?.(err && opts.mapError ? opts.mapError(err) : err);
  };
  for (const ev of closeEvents) {
    source.on(ev, (arg?: unknown) => finish(arg instanceof Error ? arg : ev === 'cancelled' ? new Error('cancelled') : undefined));
  }
  source.on('error', (err: Error) => finish(err));
  return {
    remote,
    send(batch) {
      if (closed || ended) return false;
      return write(batch);
    },
    close() {
      // Also after the other side ended: our end completes the call (the server sends its status).
      if (ended) return;
      ended = true;
      try {
        end();
      } catch { /* already gone */ }
      // A peer that never finishes its side must not keep the call (and its channel) forever.
      if (opts.abort) {
        const abort = opts.abort;
        setTimeout(() => {
          if (closed) return;
          abort();
          finish(undefined);
        }, 2000).unref();
      }
    },
    onBatch(cb) {
      source.on('data', cb);
    },
    onClose(cb) {
      closeCb = cb;
    },
    onDrain(cb) {
      source.on('drain', cb);
    },
    markTrusted() {
      opts.trusted?.();
    },
    onCloseInternal(cb) {
      internal.push(cb);
    },
  };
}

export function wrapClientCall(call: grpc.ClientDuplexStream<Batch, Batch__Output>, address: string, cleanup: () => void): InternalStream {
  const s = makeStream(address, (b) => call.write(b), () => call.end(), call, ['end', 'close'], {
    cleanup,
    abort: () => call.cancel(),
    // The listener refused the call at its headers: say so the way a refused handshake does.
    mapError: (err) => ((err as grpc.ServiceError).code === grpc.status.UNAUTHENTICATED
      ? new LinkRefusedError(RefuseCode.BadSecret, `${address} refused the link: ${(err as grpc.ServiceError).details}`)
      : err),
  });
  call.on('status', () => { /* surfaced through end/error */ });
  return s;
}

export function wrapServerCall(call: grpc.ServerDuplexStream<Batch__Output, Batch>, trusted: () => void): InternalStream {
  return makeStream(call.getPeer(), (b) => call.write(b), () => call.end(), call, ['end', 'cancelled', 'close'], { trusted });
}
