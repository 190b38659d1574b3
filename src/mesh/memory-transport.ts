import type { LinkStream, MeshTransport } from './transport.js';
import { meshCodec } from './wire.js';
import type { Batch, Batch__Output } from './wire.js';

/** Encodes and decodes with the real codec, so tests see exactly what gRPC would deliver. */
interface Codec {
  encode(b: Batch): Buffer;
  decode(buf: Buffer): Batch__Output;
}

function makeCodec(): Codec {
  return meshCodec;
}

/**
 * An in-memory network of mesh transports for multi-node tests without sockets. Batches are
 * encoded and decoded with the real protobuf codec and delivered asynchronously in FIFO order.
 */
export class MemoryNetwork {
  private readonly codec = makeCodec();
  private readonly listeners = new Map<string, { onStream: (s: LinkStream) => void; streams: Set<MemoryStream> }>();
  private nextPort = 10_000;
  /** Pairs `a|b` (addresses, both orders) between which no new stream can be opened. */
  private readonly blocked = new Set<string>();
  /** The two ends (listening addresses) of each dialed stream, for {@link cut}. */
  private readonly ends = new Map<MemoryStream, { from: string | undefined; to: string }>();

  /** A transport on this network. */
  transport(): MeshTransport {
    let bound: string | undefined;
    const net = this;
    const mine = new Set<MemoryStream>();
    return {
      listen(host, port, onStream) {
        const p = port === 0 ? net.nextPort++ : port;
        bound = `${host}:${p}`;
        if (net.listeners.has(bound)) return Promise.reject(new Error(`address in use: ${bound}`));
        net.listeners.set(bound, { onStream, streams: new Set() });
        return Promise.resolve(p);
      },
      dial(address) {
        const s = net.connect(address, bound);
        mine.add(s);
        return s;
      },
      close() {
        for (const s of mine) s.fail(new Error('transport closed'));
        if (bound) net.crash(bound, 'transport closed');
        return Promise.resolve();
      },
    };
  }

  /** Kills every stream of the node listening at `address`, as if its process died. */
  crash(address: string, why = 'crashed'): void {
    const l = this.listeners.get(address);
    if (!l) return;
    this.listeners.delete(address);
    for (const s of l.streams) s.fail(new Error(why));
  }

  /** From now on, dials between the nodes at `a` and `b` fail (a partial partition, for tests). */
  block(a: string, b: string): void {
    this.blocked.add(`${a}|${b}`).add(`${b}|${a}`);
  }

  /** Cuts the links between the nodes at `a` and `b` (both alive) and blocks new ones until
   *  {@link unblock}: a link flap, or a partial partition. */
  cut(a: string, b: string): void {
    this.block(a, b);
    for (const [stream, ends] of this.ends) {
      if ((ends.from === a && ends.to === b) || (ends.from === b && ends.to === a)) stream.fail(new Error('connection reset (cut)'));
    }
  }

  /** Undoes {@link block}. */
  unblock(a: string, b: string): void {
    this.blocked.delete(`${a}|${b}`);
    this.blocked.delete(`${b}|${a}`);
  }

  private connect(address: string, from: string | undefined): MemoryStream {
    const a = new MemoryStream(address, this.codec);
    const l = this.listeners.get(address);
    if (!l || this.blocked.has(`${from}|${address}`)) {
      setImmediate(() => a.fail(new Error(`connect ECONNREFUSED ${address}`)));
      return a;
    }
    const b = new MemoryStream('inbound', this.codec);
    a.peer = b;
    b.peer = a;
    l.streams.add(b);
    this.ends.set(a, { from, to: address });
    a.onCloseInternal(() => this.ends.delete(a));
    setImmediate(() => l.onStream(b));
    return a;
  }
}

class MemoryStream implements LinkStream {
  peer: MemoryStream | undefined;
  private batchCb: ((b: Batch__Output) => void) | undefined;
  private closeCb: ((err?: Error) => void) | undefined;
  private closed = false;
  private inbox: Batch__Output[] = [];

  constructor(readonly remote: string, private readonly codec: Codec) {}

  send(batch: Batch): boolean {
    if (this.closed || !this.peer) return false;
    const copy = this.codec.decode(this.codec.encode(batch));
    const peer = this.peer;
    setImmediate(() => peer.receive(copy));
    return true;
  }

  private receive(b: Batch__Output): void {
    if (this.closed) return;
    if (this.batchCb) this.batchCb(b);
    else this.inbox.push(b);
  }

  close(): void {
    if (this.closed) return;
    const peer = this.peer;
    // Deliver what is in flight first, like a graceful end of a real stream.
    setImmediate(() => {
      this.finish(undefined);
      if (peer) setImmediate(() => peer.finish(undefined));
    });
  }

  fail(err: Error): void {
    this.finish(err);
    const peer = this.peer;
    if (peer) setImmediate(() => peer.finish(err));
  }

  private finish(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.internalClose?.();
    this.closeCb?.(err);
  }

  private internalClose: (() => void) | undefined;

  /** For the network's bookkeeping: called once when this end closes. */
  onCloseInternal(cb: () => void): void {
    this.internalClose = cb;
  }

  onBatch(cb: (batch: Batch__Output) => void): void {
    this.batchCb = cb;
    const inbox = this.inbox;
    this.inbox = [];
    for (const b of inbox) cb(b);
  }

  onClose(cb: (err?: Error) => void): void {
    this.closeCb = cb;
  }

  onDrain(): void { /* never congested */ }
}
