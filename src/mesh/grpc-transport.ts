import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { RefuseCode } from './link.js';
import { MESH_PROOF_METADATA, meshProof, proofMatches } from './proof.js';
import { MAX_MESSAGE_BYTES } from './transport.js';
import type { LinkStream, MeshTransport } from './transport.js';
import { wrapClientCall, wrapServerCall } from './grpc-stream.js';
import { meshService } from './wire.js';
import type { Batch, Batch__Output, MeshClient } from './wire.js';

/** PEM contents for mutual TLS on peer links. */
export interface MeshTls {
  /** This node's certificate chain. */
  readonly cert: Buffer;
  readonly key: Buffer;
  /** The CA that signs every peer's certificate; the only trust anchor. */
  readonly ca: Buffer;
}

/** Reads the PEM files of `--mesh-tls-cert/key/ca`. Throws the fs error (the config checked them). */
export function loadMeshTls(files: { cert: string; key: string; ca: string }): MeshTls {
  return { cert: readFileSync(files.cert), key: readFileSync(files.key), ca: readFileSync(files.ca) };
}

/** Options of the gRPC transport. */
export interface GrpcTransportOptions {
  /** HTTP/2 keepalive ping interval on every link, in ms. Default 5000. */
  readonly keepaliveMs?: number;
  /** A link whose keepalive ping is not answered within this is dropped, in ms. Default 5000. */
  readonly keepaliveTimeoutMs?: number;
  /**
   * `--mesh-secret`. Dialed calls carry its proof in metadata; the listener refuses a call without
   * the right proof (UNAUTHENTICATED) before it reads any message, and closes its connection.
   */
  readonly secret?: string | undefined;
  /** Mutual TLS: both ends present a certificate the CA signed; others fail the TLS handshake. */
  readonly tls?: MeshTls | undefined;
  /**
   * A connection on which no link has completed its handshake this long after it was accepted is
   * closed, in ms: also one that never sends the TLS hello or the HTTP/2 preface. Default 10000.
   */
  readonly handshakeDeadlineMs?: number;
  /** Max accepted connections not yet trusted (see `handshakeDeadlineMs`); more are closed at once. Default 256. */
  readonly maxPendingConnections?: number;
  /** Max such connections from one IP address. Default 32. */
  readonly maxPendingPerAddress?: number;
  /** Max `Link` calls open on connections not yet trusted, all together (refused RESOURCE_EXHAUSTED). Default 16. */
  readonly maxPendingCalls?: number;
  /** Max size of one message either way, in bytes. Default `MAX_MESSAGE_BYTES` (5 MiB). */
  readonly maxMessageBytes?: number;
  /** A trusted connection with no call open this long is closed (GOAWAY), in ms. Default 60000. */
  readonly idleConnectionMs?: number;
}

/** Max `Link` calls one not-yet-trusted connection may have open at once. */
const MAX_CALLS_PER_PENDING_CONNECTION = 2;

/**
 * The TLS server name dialers send and check. Peers are dialed by address (often an IP, which SNI
 * may not carry), and identity is not checked by name: a peer is trusted because the mesh CA signed
 * its certificate, whatever names the certificate holds (see `dial`).
 */
const TLS_SERVER_NAME = 'chatmesh-mesh';

/** What the listener refused or dropped, since it started. */
export interface GrpcTransportCounters {
  /** Connections closed at accept: too many pending ones (in all, or from that address). */
  connectionsRefused: number;
  /** Connections closed because no link on them completed its handshake in time. */
  handshakeTimeouts: number;
  /** Calls refused without the mesh secret's proof. */
  callsUnauthenticated: number;
  /** Calls refused because too many were pending. */
  callsRefused: number;
}

interface Conn {
  readonly socket: Socket;
  readonly ip: string;
  trusted: boolean;
  timer: NodeJS.Timeout | undefined;
  /** Calls on this connection that count as pending (cleared when it becomes trusted). */
  readonly calls: Set<{ counted: boolean }>;
}

/**
 * The real mesh transport: one gRPC server per node, one `Link` call per link.
 *
 * The listener owns its TCP sockets (a `net.Server` whose connections are injected into grpc-js),
 * so it can bound what an unauthenticated caller costs: a connection is *pending* until a link on
 * it completes its handshake, and a pending connection is closed after `handshakeDeadlineMs`;
 * pending connections are capped in all and per address, and so are the calls on them. With a
 * secret or TLS, a caller without it never gets a message read: TLS fails before HTTP/2, and a
 * call without the secret's proof is refused when its headers arrive.
 */
export class GrpcTransport implements MeshTransport {
  private readonly service = meshService();
  private readonly Client = grpc.makeGenericClientConstructor(this.service, 'Mesh');
  private server: grpc.Server | undefined;
  private tcp: NetServer | undefined;
  private readonly clients = new Set<grpc.Client>();
  private readonly streams = new Set<LinkStream>();
  private readonly conns = new Map<string, Conn>();
  private readonly pendingByIp = new Map<string, number>();
  private pendingConns = 0;
  private pendingCalls = 0;
  private closing = false;
  private readonly channelOptions: grpc.ChannelOptions;
  private readonly proof: string;
  private readonly o: Required<Omit<GrpcTransportOptions, 'secret' | 'tls'>>;
  readonly counters: GrpcTransportCounters = { connectionsRefused: 0, handshakeTimeouts: 0, callsUnauthenticated: 0, callsRefused: 0 };

  constructor(private readonly opts: GrpcTransportOptions = {}) {
    this.o = {
      keepaliveMs: 5000, keepaliveTimeoutMs: 5000, handshakeDeadlineMs: 10_000, maxPendingConnections: 256,
      maxPendingPerAddress: 32, maxPendingCalls: 16, maxMessageBytes: MAX_MESSAGE_BYTES, idleConnectionMs: 60_000,
      ...Object.fromEntries(Object.entries(opts).filter(([k, v]) => v !== undefined && k !== 'secret' && k !== 'tls')),
    };
    for (const [k, v] of Object.entries(this.o)) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`GrpcTransport: ${k} must be a positive integer, got ${String(v)}`);
    }
    this.proof = meshProof(opts.secret);
    this.channelOptions = {
      'grpc.keepalive_time_ms': this.o.keepaliveMs,
      'grpc.keepalive_timeout_ms': this.o.keepaliveTimeoutMs,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': this.o.maxMessageBytes,
      'grpc.max_send_message_length': this.o.maxMessageBytes,
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

  /** Accepted connections still open, trusted or not. */
  get openConnections(): number {
    return this.conns.size;
  }

  /** Accepted connections on which no link has completed its handshake yet. */
  get pendingConnections(): number {
    return this.pendingConns;
  }

  /** The gRPC server, once listening. */
  get grpcServer(): grpc.Server | undefined {
    return this.server;
  }

  async listen(host: string, port: number, onStream: (s: LinkStream) => void): Promise<number> {
    const server = new grpc.Server({
      ...this.channelOptions,
      'grpc.http2.min_ping_interval_without_data_ms': 1000,
      'grpc.http2.max_ping_strikes': 0,
      // One link per connection (dialers use a channel each); a little room for a retry overlapping.
      'grpc.max_concurrent_streams': 16,
      'grpc.max_connection_idle_ms': this.o.idleConnectionMs,
      interceptors: [(_method, call) => this.gate(call)],
    });
    server.addService(this.service, {
      Link: (call: grpc.ServerDuplexStream<Batch__Output, Batch>) => {
        const peer = call.getPeer();
        const s = wrapServerCall(call, () => this.trust(peer));
        this.streams.add(s);
        s.onCloseInternal(() => this.streams.delete(s));
        onStream(s);
      },
    });
    this.server = server;
    const creds = this.opts.tls
      ? grpc.ServerCredentials.createSsl(this.opts.tls.ca, [{ cert_chain: this.opts.tls.cert, private_key: this.opts.tls.key }], true)
      : grpc.ServerCredentials.createInsecure();
    const injector = server.createConnectionInjector(creds);
    const tcp = createServer({ noDelay: true }, (socket) => this.accept(socket, (s) => injector.injectConnection(s)));
    this.tcp = tcp;
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ host: host.replace(/^\[(.*)\]$/, '$1'), port }, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
    return (tcp.address() as AddressInfo).port;
  }

  /** A new TCP connection: tracked as pending, closed at the deadline unless a link comes up on it. */
  private accept(socket: Socket, inject: (s: Socket) => void): void {
    const ip = socket.remoteAddress ?? 'unknown';
    const fromIp = this.pendingByIp.get(ip) ?? 0;
    if (this.closing || this.pendingConns >= this.o.maxPendingConnections || fromIp >= this.o.maxPendingPerAddress) {
      this.counters.connectionsRefused++;
      socket.destroy();
      return;
    }
    socket.on('error', () => { /* the session sees the close */ });
    const key = `${ip}:${socket.remotePort}`;
    const conn: Conn = { socket, ip, trusted: false, timer: undefined, calls: new Set() };
    conn.timer = setTimeout(() => {
      this.counters.handshakeTimeouts++;
      socket.destroy();
    }, this.o.handshakeDeadlineMs);
    conn.timer.unref();
    this.conns.set(key, conn);
    this.pendingConns++;
    this.pendingByIp.set(ip, fromIp + 1);
    socket.once('close', () => {
      if (this.conns.get(key) === conn) this.conns.delete(key);
      this.settle(conn);
    });
    inject(socket);
  }

  /** The connection leaves the pending state (trusted or closed): release what it counted. */
  private settle(conn: Conn): void {
    clearTimeout(conn.timer);
    conn.timer = undefined;
    if (conn.trusted) return;
    conn.trusted = true;
    this.pendingConns--;
    const left = (this.pendingByIp.get(conn.ip) ?? 1) - 1;
    if (left > 0) this.pendingByIp.set(conn.ip, left);
    else this.pendingByIp.delete(conn.ip);
    for (const c of conn.calls) {
      if (c.counted) this.pendingCalls--;
      c.counted = false;
    }
    conn.calls.clear();
  }

  private trust(peer: string): void {
    const conn = this.conns.get(peer);
    if (conn && !conn.trusted) this.settle(conn);
  }

  /**
   * Runs when a call's headers arrive, before its handler and before any of its messages is read:
   * refuses a call without the secret's proof, and calls beyond the caps of pending connections.
   */
  private gate(call: grpc.ServerInterceptingCallInterface): grpc.ServerInterceptingCall {
    let slot: { counted: boolean } | undefined;
    const release = (): void => {
      if (slot?.counted) this.pendingCalls--;
      if (slot) slot.counted = false;
    };
    const refuse = (code: grpc.status, details: string, conn: Conn | undefined): void => {
      call.sendStatus({ code, details, metadata: new grpc.Metadata() });
      // Nothing more is read from a caller that failed to authenticate: let the status leave, then close.
      if (conn && !conn.trusted && code === grpc.status.UNAUTHENTICATED) setTimeout(() => conn.socket.destroy(), 50).unref();
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => next({
        onReceiveMetadata: (metadata, mdNext) => {
          const info = call.getConnectionInfo();
          const conn = this.conns.get(`${info.remoteAddress}:${info.remotePort}`);
          if (this.proof !== '' && !proofMatches(metadata.get(MESH_PROOF_METADATA)[0], this.proof)) {
            this.counters.callsUnauthenticated++;
            return refuse(grpc.status.UNAUTHENTICATED, `${RefuseCode.BadSecret}: missing or wrong --mesh-secret`, conn);
          }
          if (conn && !conn.trusted) {
            if (conn.calls.size >= MAX_CALLS_PER_PENDING_CONNECTION || this.pendingCalls >= this.o.maxPendingCalls) {
              this.counters.callsRefused++;
              return refuse(grpc.status.RESOURCE_EXHAUSTED, 'too many mesh handshakes in progress; retry later', conn);
            }
            slot = { counted: true };
            conn.calls.add(slot);
            this.pendingCalls++;
          }
          mdNext(metadata);
        },
        onCancel: release,
      }),
    });
  }

  /**
   * Dials `address`. With TLS, the peer must present a certificate the CA signed; its names are
   * not checked against `address` (peers are dialed at advertised or learned addresses that a
   * certificate may not list, and every CA-signed node is admitted as a peer by the accepting side
   * anyway, so a name check would add no trust: the CA is the trust).
   */
  dial(address: string): LinkStream {
    const tls = this.opts.tls;
    const creds = tls
      ? grpc.credentials.createSsl(tls.ca, tls.key, tls.cert, { checkServerIdentity: () => undefined })
      : grpc.credentials.createInsecure();
    const client = new this.Client(address, creds, {
      ...this.channelOptions,
      // A connection per dial: closing the link closes its connection, and the listener's per-
      // connection accounting sees one link per connection.
      'grpc.use_local_subchannel_pool': 1,
      ...(tls && { 'grpc.ssl_target_name_override': TLS_SERVER_NAME }),
    }) as unknown as MeshClient & grpc.Client;
    this.clients.add(client);
    const metadata = new grpc.Metadata();
    if (this.proof !== '') metadata.set(MESH_PROOF_METADATA, this.proof);
    const call = client.Link(metadata);
    const s = wrapClientCall(call, address, () => {
      this.clients.delete(client);
      client.close();
    });
    this.streams.add(s);
    s.onCloseInternal(() => this.streams.delete(s));
    return s;
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const s of this.streams) s.close();
    for (const c of this.clients) c.close();
    this.clients.clear();
    this.tcp?.close();
    for (const conn of this.conns.values()) if (!conn.trusted) conn.socket.destroy();
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
    for (const conn of this.conns.values()) conn.socket.destroy();
  }
}
