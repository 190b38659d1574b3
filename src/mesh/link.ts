import { Batcher } from '../routing/index.js';
import { meshProof, proofMatches } from './proof.js';
import { peerPublicUrl } from './public-url.js';
import { MAX_BATCH_BYTES } from './transport.js';
import type { LinkStream } from './transport.js';
import { ResultBatch } from './result-batch.js';
import { MESH_REVISION, PROTOCOL_VERSION } from './wire.js';
import type { Envelope, Envelope__Output, Hello, Hello__Output } from './wire.js';

/** Who a node is, as told in the link handshake. */
export interface NodeIdentity {
  readonly id: string;
  readonly incarnation: string;
  /** `host:meshPort` where it accepts links. */
  readonly advertise: string;
  readonly httpPort: number;
  readonly adminPort: number;
  /** WebSocket URL clients use to reach it (`--public-url`; for a peer, see `peerPublicUrl`). */
  readonly publicUrl?: string;
  /** A peer's hello carried a public URL that was refused (the fallback is used): why. */
  readonly publicUrlRefused?: string;
}

/** Why a handshake was refused. Only append. */
export const RefuseCode = {
  BadSecret: 'bad_secret',
  BadVersion: 'bad_version',
  WrongDirection: 'wrong_direction',
  Self: 'self',
  Duplicate: 'duplicate',
  Draining: 'draining',
  BadHello: 'bad_hello',
} as const;
export type RefuseCode = (typeof RefuseCode)[keyof typeof RefuseCode];

/** A refused handshake; `code` says why. */
export class LinkRefusedError extends Error {
  constructor(readonly code: RefuseCode | string, message: string, readonly peer?: NodeIdentity, readonly peerId?: string) {
    super(message);
    this.name = 'LinkRefusedError';
  }
}

/** Options of a link. */
export interface LinkOptions {
  /** Max envelopes per batch on the wire. Default 512. */
  readonly maxBatch: number;
  /**
   * Max bytes per batch on the wire (approximate, see `envelopeBytes`); an envelope larger than
   * this is refused by `send`. Default `MAX_BATCH_BYTES` (4 MiB); the transport's message limit
   * leaves headroom above it.
   */
  readonly maxBatchBytes: number;
  /** Max envelopes queued for the peer; beyond it `send` refuses. Default 100000. */
  readonly maxQueued: number;
  /** Max bytes queued for the peer (approximate, see `envelopeBytes`); beyond it `send` refuses. Default 64 MiB. */
  readonly maxQueuedBytes: number;
  /** A ping goes out when nothing else was sent for this long, in ms. Default 1000. */
  readonly pingIntervalMs: number;
  /** A peer silent for this long is dropped (hung process, half-open TCP), in ms. Default 5000. */
  readonly deadAfterMs: number;
  /** Time for the handshake, in ms. Default 5000. */
  readonly handshakeTimeoutMs: number;
  /**
   * When the previous batch left less than this long ago, the next waits until this long after it
   * (a small batch at low rates waits for company: one gRPC message costs about as much as 100
   * envelopes in one), in ms; 0: every batch leaves at the end of its event-loop turn. Default 0.
   */
  readonly lingerMs?: number;
  /**
   * The newest mesh revision this end speaks (see `MESH_REVISION`). Default `MESH_REVISION`;
   * tests set 0 to be a node of an older release.
   */
  readonly revision?: number;
}

/** Defaults of `LinkOptions`. */
export function defaultLinkOptions(): LinkOptions {
  return { maxBatch: 512, maxBatchBytes: MAX_BATCH_BYTES, maxQueued: 100_000, maxQueuedBytes: 64 * 1024 * 1024, pingIntervalMs: 1000, deadAfterMs: 5000, handshakeTimeoutMs: 5000, lingerMs: 0 };
}

/** What a link reports to its owner. */
export interface LinkHooks {
  /** Acceptor only: decides whether to take a peer; returns a refusal or undefined to accept. */
  admit?(peer: NodeIdentity): { code: RefuseCode; message: string } | undefined;
  /** Every envelope after the handshake, in order. */
  onEnvelope(link: PeerLink, env: Envelope__Output): void;
  /** The link is gone (only for links that came up). */
  onDown(link: PeerLink, err?: Error): void;
  /** A batch of `size` envelopes was written (for the batch-size histogram). */
  onBatchSent?(size: number): void;
}

/** Counters of one link, for the admin API. */
export interface LinkStats {
  batchesIn: number;
  batchesOut: number;
  itemsIn: number;
  itemsOut: number;
  /** ms since the epoch when the handshake completed. */
  upSince: number;
  lastError: string | undefined;
}

/**
 * One side of a peer link: the handshake, batched outbound traffic (coalesced per event-loop turn,
 * bounded), keepalive, and ordered inbound delivery. `send` may be called at any time; envelopes
 * sent before the handshake completes wait for it.
 */
export class PeerLink {
  state: 'handshake' | 'up' | 'closed' = 'handshake';
  peer: NodeIdentity | undefined;
  readonly stats: LinkStats = { batchesIn: 0, batchesOut: 0, itemsIn: 0, itemsOut: 0, upSince: 0, lastError: undefined };
  /** Resolves with the peer once the handshake completes; rejects if it fails. */
  readonly up: Promise<NodeIdentity>;
  /** Resolves when the link is closed, for whatever reason. */
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  private resolveUp!: (p: NodeIdentity) => void;
  private rejectUp!: (e: Error) => void;
  private readonly out: Batcher<Queued>;
  private congested = false;
  private queuedBytes = 0;
  /** Withdrawn envelopes that may still be queued; emptied whenever the queue is. */
  private readonly cancelled = new Set<Envelope>();
  private drainWaiters: Array<() => void> = [];
  private lastSent = Date.now();
  /** When the last batch was written (performance.now() ms). */
  private lastFlush = 0;
  private lastReceived = Date.now();
  private readonly timer: NodeJS.Timeout;
  /** Proof of the mesh secret, as sent in the hello and expected in the peer's. */
  private readonly proof: string;
  /** The mesh revision both ends speak (the smaller of the two), known once the link is up. */
  revision = 0;
  /** Results of the inbound batch being handled, sent as one envelope when it is done. */
  private readonly results = new ResultBatch();
  private inBatch = false;

  constructor(
    readonly stream: LinkStream,
    readonly role: 'dialer' | 'acceptor',
    private readonly self: NodeIdentity,
    secret: string | undefined,
    private readonly opts: LinkOptions,
    private readonly hooks: LinkHooks,
  ) {
    this.proof = meshProof(secret);
    this.up = new Promise((resolve, reject) => {
      this.resolveUp = resolve;
      this.rejectUp = reject;
    });
    this.up.catch(() => { /* observed by whoever awaits it */ });
    this.closed = new Promise((resolve) => { this.resolveClosed = resolve; });
    this.out = new Batcher<Queued>({
      maxBatch: opts.maxBatch,
      maxQueued: opts.maxQueued,
      flush: (items) => this.write(items),
      schedule: (fn) => {
        if (this.congested || this.state === 'handshake') this.drainWaiters.push(fn);
        else {
          const wait = (opts.lingerMs ?? 0) - (performance.now() - this.lastFlush);
          if (wait > 0) setTimeout(fn, wait);
          else setImmediate(fn);
        }
      },
    });
    stream.onBatch((b) => this.onBatch(b));
    stream.onClose((err) => this.onClosed(err));
    stream.onDrain(() => {
      this.congested = false;
      this.release();
    });
    this.timer = setInterval(() => this.tick(), Math.min(opts.pingIntervalMs, opts.deadAfterMs / 2));
    this.timer.unref();
    if (role === 'dialer') this.writeNow({ hello: this.hello() });
    setTimeout(() => {
      if (this.state === 'handshake') this.fail(new Error(`handshake with ${stream.remote} timed out`));
    }, opts.handshakeTimeoutMs).unref();
  }

  /** Envelopes waiting to be written. */
  get queueDepth(): number {
    return this.out.size;
  }

  /**
   * Queues an envelope for the peer. False when the link is closed, its queue is full, or the
   * envelope alone is larger than a batch may be (`maxBatchBytes`).
   */
  send(env: Envelope): boolean {
    if (this.state === 'closed') return false;
    const size = envelopeBytes(env);
    if (size > this.opts.maxBatchBytes) return false;
    if (this.queuedBytes + size > this.opts.maxQueuedBytes) return false;
    if (!this.out.push({ env, size })) return false;
    this.queuedBytes += size;
    return true;
  }

  /**
   * Withdraws an envelope that is still queued (a delivery already answered `unavailable`), so it
   * is never written. Envelopes already handed to the stream cannot be withdrawn.
   */
  cancel(env: Envelope): void {
    if (this.out.size > 0) this.cancelled.add(env);
  }

  /**
   * Answers a delivery from the peer. On a revision-1 link, the answers to one inbound batch
   * leave as one `DeliverResults`; to an older peer, one `DeliverResult` each. False when the
   * answer could not be queued (see `send`).
   */
  answerDelivery(id: number, count: number, notHere: boolean): boolean {
    if (this.revision < 1) return this.send({ result: { id, count, notHere } });
    if (this.results.add(id, count, notHere)) {
      if (!this.inBatch) return this.sendResults();
      return true;
    }
    const ok = this.sendResults();
    this.results.add(id, count, notHere);
    return ok;
  }

  private sendResults(): boolean {
    return this.results.size === 0 || this.send(this.results.take());
  }

  /** Says goodbye and ends the stream after what is queued. */
  close(reason: string): void {
    if (this.state === 'closed') return;
    if (this.state === 'up') {
      // What is queued, then the goodbye written directly: a full queue must not swallow it.
      this.out.flushNow();
      this.writeNow({ goodbye: { reason } });
    }
    this.stream.close();
    this.onClosed(undefined);
  }

  private hello(): Hello {
    return {
      protocolVersion: PROTOCOL_VERSION,
      nodeId: this.self.id,
      incarnation: this.self.incarnation,
      secret: this.proof,
      advertise: this.self.advertise,
      httpPort: this.self.httpPort,
      adminPort: this.self.adminPort,
      publicUrl: this.self.publicUrl ?? '',
      revision: this.opts.revision ?? MESH_REVISION,
    };
  }

  private writeNow(env: Envelope): void {
    this.stream.send({ items: [env] });
    this.lastSent = Date.now();
  }

  private write(all: Queued[]): void {
    for (const q of all) this.queuedBytes -= q.size;
    if (this.state === 'closed') return;
    let items = all;
    if (this.cancelled.size > 0) {
      items = all.filter((q) => !this.cancelled.has(q.env));
      if (this.out.size === 0) this.cancelled.clear();
      if (items.length === 0) return;
    }
    // Split by bytes too: the peer's transport refuses a message over its limit.
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < items.length; i++) {
      const size = items[i]!.size;
      if (i > start && bytes + size > this.opts.maxBatchBytes) {
        this.writeBatch(items.slice(start, i));
        start = i;
        bytes = 0;
      }
      bytes += size;
    }
    this.writeBatch(start === 0 ? items : items.slice(start));
  }

  private writeBatch(items: Queued[]): void {
    this.lastFlush = performance.now();
    this.stats.batchesOut++;
    this.stats.itemsOut += items.length;
    this.hooks.onBatchSent?.(items.length);
    this.lastSent = Date.now();
    if (!this.stream.send({ items: items.map((q) => q.env) })) this.congested = true;
  }

  private release(): void {
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const fn of w) setImmediate(fn);
  }

  private tick(): void {
    if (this.state !== 'up') return;
    const now = Date.now();
    if (now - this.lastReceived > this.opts.deadAfterMs) {
      this.fail(new Error(`peer ${this.peer?.id ?? this.stream.remote} silent for ${now - this.lastReceived} ms`));
      return;
    }
    if (now - this.lastSent >= this.opts.pingIntervalMs) this.send({ ping: { sentAtMs: now } });
  }

  private onBatch(b: { items: Envelope__Output[] }): void {
    if (this.state === 'closed') return;
    this.lastReceived = Date.now();
    this.stats.batchesIn++;
    this.stats.itemsIn += b.items.length;
    this.inBatch = true;
    try {
      this.handleBatch(b.items);
    } finally {
      this.inBatch = false;
      if (this.results.size > 0 && this.state === 'up' && !this.sendResults()) this.close('outbound queue full');
    }
  }

  private handleBatch(items: Envelope__Output[]): void {
    for (const env of items) {
      if (this.state === 'handshake') {
        this.onHandshake(env);
        continue;
      }
      if (this.state !== 'up') return;
      if (env.kind === 'ping') {
        this.send({ pong: { sentAtMs: env.ping!.sentAtMs } });
      } else if (env.kind === 'pong') {
        // lastReceived is enough.
      } else if (env.kind === 'goodbye') {
        this.stats.lastError = `peer said goodbye: ${env.goodbye!.reason}`;
        this.stream.close();
        this.onClosed(undefined);
        return;
      } else {
        this.hooks.onEnvelope(this, env);
      }
    }
  }

  private onHandshake(env: Envelope__Output): void {
    if (this.role === 'acceptor') {
      if (env.kind !== 'hello' || !env.hello) return this.refuse(RefuseCode.BadHello, 'the first item must be hello');
      const h = env.hello;
      if (h.protocolVersion !== PROTOCOL_VERSION) {
        return this.refuse(RefuseCode.BadVersion, `protocol version ${h.protocolVersion} is not ${PROTOCOL_VERSION}`);
      }
      if (!proofMatches(h.secret, this.proof)) return this.refuse(RefuseCode.BadSecret, 'wrong or missing --mesh-secret');
      const peer = identityOf(h);
      if (!peer) return this.refuse(RefuseCode.BadHello, 'hello has an empty id or incarnation');
      this.revision = Math.min(h.revision, this.opts.revision ?? MESH_REVISION);
      const no = this.hooks.admit?.(peer);
      if (no) return this.refuse(no.code, no.message, peer);
      this.writeNow({ welcome: this.hello() });
      return this.becomeUp(peer);
    }
    if (env.kind === 'refuse' && env.refuse) {
      const r = env.refuse;
      return this.fail(new LinkRefusedError(r.code, `${this.stream.remote} refused the link: ${r.code}: ${r.message}`, undefined, r.nodeId || undefined));
    }
    if (env.kind !== 'welcome' || !env.welcome) return this.fail(new Error('peer answered the hello with something else'));
    const w = env.welcome;
    if (w.protocolVersion !== PROTOCOL_VERSION) return this.fail(new LinkRefusedError(RefuseCode.BadVersion, `peer speaks protocol ${w.protocolVersion}`));
    if (!proofMatches(w.secret, this.proof)) return this.fail(new LinkRefusedError(RefuseCode.BadSecret, 'peer presented a wrong --mesh-secret'));
    const peer = identityOf(w);
    if (!peer) return this.fail(new LinkRefusedError(RefuseCode.BadHello, 'welcome has an empty id'));
    this.revision = Math.min(w.revision, this.opts.revision ?? MESH_REVISION);
    this.becomeUp(peer);
  }

  private refuse(code: RefuseCode, message: string, peer?: NodeIdentity): void {
    this.writeNow({ refuse: { code, message, nodeId: this.self.id } });
    this.fail(new LinkRefusedError(code, message, peer));
  }

  private becomeUp(peer: NodeIdentity): void {
    this.peer = peer;
    this.state = 'up';
    this.stats.upSince = Date.now();
    this.lastReceived = Date.now();
    this.stream.markTrusted?.();
    this.resolveUp(peer);
    this.release();
  }

  private fail(err: Error): void {
    this.stats.lastError = err.message;
    this.stream.close();
    this.onClosed(err);
  }

  private onClosed(err: Error | undefined): void {
    if (this.state === 'closed') return;
    const wasUp = this.state === 'up';
    this.state = 'closed';
    clearInterval(this.timer);
    // Whoever closed first, end our side too, so neither end keeps a half-open call.
    this.stream.close();
    this.out.clear();
    this.queuedBytes = 0;
    this.drainWaiters = [];
    if (err && !this.stats.lastError) this.stats.lastError = err.message;
    this.rejectUp(err ?? new Error(`link to ${this.stream.remote} closed`));
    this.resolveClosed();
    if (wasUp) this.hooks.onDown(this, err);
  }
}

/** An envelope waiting in a link's queue, with its size. */
interface Queued {
  readonly env: Envelope;
  readonly size: number;
}

/**
 * Approximate protobuf size of an envelope, in bytes (a little above it: every string counts its
 * UTF-8 bytes plus a tag and a length, every number 10). Deliveries, the bulk of the traffic, take
 * a shortcut.
 */
export function envelopeBytes(env: Envelope): number {
  const d = env.deliver;
  if (d) return Buffer.byteLength(d.data ?? '') + (d.topic?.length ?? 0) + (d.exceptSession?.length ?? 0) + 40;
  // Stream appends, the rest of a busy link's bulk: the frames dominate.
  const a = env.streamCall?.append;
  if (a) {
    let n = 32;
    for (const e of a.entries ?? []) n += Buffer.byteLength(e.frame ?? '') + (e.stream?.length ?? 0) + (e.id?.length ?? 0) + (e.with?.length ?? 0) + 24;
    for (const c of a.clears ?? []) n += (c.stream?.length ?? 0) + 8 + (c.ids?.length ?? 0) * 30;
    return n;
  }
  return approxBytes(env);
}

function approxBytes(v: unknown): number {
  switch (typeof v) {
    case 'string':
      return Buffer.byteLength(v) + 4;
    case 'number':
    case 'bigint':
      return 10;
    case 'boolean':
      return 2;
    case 'object': {
      if (v === null) return 0;
      if (Buffer.isBuffer(v)) return v.length + 4;
      let n = 4;
      if (Array.isArray(v)) for (const x of v) n += approxBytes(x);
      else for (const x of Object.values(v)) n += approxBytes(x);
      return n;
    }
    default:
      return 0;
  }
}

function identityOf(h: Hello__Output): NodeIdentity | undefined {
  if (!h.nodeId || !h.incarnation) return undefined;
  return { id: h.nodeId, incarnation: h.incarnation, advertise: h.advertise, httpPort: h.httpPort, adminPort: h.adminPort, ...peerPublicUrl(h) };
}
