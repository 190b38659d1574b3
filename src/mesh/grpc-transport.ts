import * as grpc from '@grpc/grpc-js';
import type { LinkStream, MeshTransport } from './transport.js';
import { loadMeshProto } from './wire.js';
import type { Batch, Batch__Output, MeshClient } from './wire.js';

/** Options of the gRPC transport. */
export interface GrpcTransportOptions {
  /** HTTP/2 keepalive ping interval on every link, in ms. Default 5000. */
  readonly keepaliveMs?: number;
  /** A link whose keepalive ping is not answered within this is dropped, in ms. Default 5000. */
  readonly keepaliveTimeoutMs?: number;
  /** Extra services to serve on the mesh port (health, reflection). */
  readonly addServices?: (server: grpc.Server) => void;
}

/** Max size of one batch message on the wire, in bytes. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** The real mesh transport: one gRPC server per node, one `Link` call per link. */
export class GrpcTransport implements MeshTransport {
  private readonly proto = loadMeshProto();
  private server: grpc.Server | undefined;
  private readonly clients = new Set<grpc.Client>();
  private readonly streams = new Set<LinkStream>();
  private readonly channelOptions: grpc.ChannelOptions;

  constructor(private readonly opts: GrpcTransportOptions = {}) {
    this.channelOptions = {
      'grpc.keepalive_time_ms': opts.keepaliveMs ?? 5000,
      'grpc.keepalive_timeout_ms': opts.keepaliveTimeoutMs ?? 5000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      // Reconnect quickly: the link layer has its own back-off.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 2000,
    };
  }

  /** Streams (calls) open on this transport, both directions. */
  get openStreams(): number {
    return this.streams.size;
  }

  /** Client channels this transport holds. */
  get openChannels(): number {
    return this.clients.size;
  }

  /** The gRPC server, once listening (to add services). */
  get grpcServer(): grpc.Server | undefined {
    return this.server;
  }

  async listen(host: string, port: number, onStream: (s: LinkStream) => void): Promise<number> {
    const server = new grpc.Server({
      ...this.channelOptions,
      'grpc.http2.min_ping_interval_without_data_ms': 1000,
      'grpc.http2.max_ping_strikes': 0,
    });
    server.addService(this.proto.Mesh.service, {
      Link: (call: grpc.ServerDuplexStream<Batch__Output, Batch>) => {
        const s = wrapServerCall(call);
        this.streams.add(s);
        s.onCloseInternal(() => this.streams.delete(s));
        onStream(s);
      },
    });
    this.opts.addServices?.(server);
    this.server = server;
    return new Promise((resolve, reject) => {
      server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
        if (err) reject(err);
        else resolve(bound);
      });
    });
  }

  dial(address: string): LinkStream {
    const client = new this.proto.Mesh(address, grpc.credentials.createInsecure(), this.channelOptions) as unknown as MeshClient & grpc.Client;
    this.clients.add(client);
    const call = client.Link();
    const s = wrapClientCall(call, address, () => {
      this.clients.delete(client);
      client.close();
    });
    this.streams.add(s);
    s.onCloseInternal(() => this.streams.delete(s));
    return s;
  }

  async close(): Promise<void> {
    for (const s of this.streams) s.close();
    for (const c of this.clients) c.close();
    this.clients.clear();
    const server = this.server;
    if (!server) return;
    // tryShutdown never completes while a bidi stream is open: give the ends a moment, then force.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 1000);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

type InternalStream = LinkStream & { onCloseInternal(cb: () => void): void };

function makeStream(
  remote: string,
  write: (b: Batch) => boolean,
  end: () => void,
  source: NodeJS.EventEmitter,
  closeEvents: string[],
  cleanup?: () => void,
  abort?: () => void,
): InternalStream {
  let closeCb: ((err?: Error) => void) | undefined;
  const internal: Array<() => void> = [];
  let closed = false;
  let ended = false;
  const finish = (err?: Error): void => {
    if (closed) return;
    closed = true;
    cleanup?.();
    for (const f of internal) f();
    closeCb?.(err);
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
      if (abort) {
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
    onCloseInternal(cb) {
      internal.push(cb);
    },
  };
}

function wrapClientCall(call: grpc.ClientDuplexStream<Batch, Batch__Output>, address: string, cleanup: () => void): InternalStream {
  const s = makeStream(address, (b) => call.write(b), () => call.end(), call, ['end', 'close'], cleanup, () => call.cancel());
  call.on('status', () => { /* surfaced through end/error */ });
  return s;
}

function wrapServerCall(call: grpc.ServerDuplexStream<Batch__Output, Batch>): InternalStream {
  const peer = call.getPeer();
  return makeStream(peer, (b) => call.write(b), () => call.end(), call, ['end', 'cancelled', 'close']);
}
