import type { WebSocket } from 'ws';
import type { Authenticator } from '../auth/index.js';
import { roomTopic, userTopic, topicName } from '../core/index.js';
import type { Router, Subscriber, Topic } from '../core/index.js';
import type { Logger } from '../log.js';
import {
  ChatError, CloseCode, ErrorCode, FrameError, MAX_WATCHED_PER_CONNECTION, decodeClientFrame, encodeServerFrame,
  encodeMessage, encodeMessageAck, encodeRoomMessage,
} from '../protocol/index.js';
import type { ClientFrame, HelloFrame, PresenceStatus, ServerFrame } from '../protocol/index.js';
import { TokenBucket } from '../util/index.js';
import type { Clock, UlidGenerator } from '../util/index.js';
import type { GatewayOptions } from './options.js';
import type { GatewayStats } from './stats.js';

/** Max rooms one connection may have joined at once. */
export const MAX_ROOMS_PER_CONNECTION = 1000;

/** What every connection of a gateway shares. */
export interface GatewayContext {
  readonly nodeId: string;
  readonly router: Router;
  readonly auth: Authenticator;
  /** Generates message ids. */
  readonly ids: UlidGenerator;
  readonly clock: Clock;
  readonly log: Logger;
  readonly opts: GatewayOptions;
  readonly stats: GatewayStats;
}

type State = 'hello' | 'auth' | 'ready' | 'closed';

/**
 * One client connection: authentication, frame handling and its subscriptions. Every frame that
 * carries an `id` gets exactly one answer: an `ack`/`presence`, or an `error`.
 */
export class ClientConnection implements Subscriber {
  readonly session: string;
  user: string | undefined;
  /** Set by every pong and frame; cleared by each heartbeat tick. */
  alive = true;
  private state: State = 'hello';
  /** Authenticated and subscribed to its user topic (from before the welcome until cleanup). */
  private registered = false;
  private corked = false;
  private pending: string[] = [];
  private readonly rooms = new Set<string>();
  private readonly watched = new Set<string>();
  private readonly bucket: TokenBucket;
  private helloTimer: NodeJS.Timeout | undefined;
  /** Resolves when the underlying socket has closed. */
  readonly socketClosed: Promise<void>;
  private readonly onPresence = (topic: Topic, online: boolean): void => {
    this.send({ type: 'presence_change', user: topicName(topic), status: online ? 'online' : 'offline' });
  };

  constructor(
    private readonly ws: WebSocket,
    private readonly ctx: GatewayContext,
    session: string,
    private readonly onClosed: (conn: ClientConnection) => void,
  ) {
    this.session = session;
    this.bucket = new TokenBucket({ ratePerSec: ctx.opts.rateLimitPerSec, burst: ctx.opts.rateLimitBurst, clock: ctx.clock });
    this.helloTimer = setTimeout(() => this.reject('no hello within the deadline'), ctx.opts.helloTimeoutMs);
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on('pong', () => { this.alive = true; });
    this.socketClosed = new Promise((resolve) => ws.once('close', () => resolve()));
    ws.on('close', () => this.cleanup());
    ws.on('error', (err) => ctx.log.debug({ err, session }, 'client socket error'));
  }

  /** Subscriber: writes a frame unless the connection is closing; drops a slow consumer. */
  write(data: string): boolean {
    if (this.state === 'closed' || this.ws.readyState !== 1 /* OPEN */) return false;
    if (this.ws.bufferedAmount + data.length > this.ctx.opts.maxBufferedBytes) {
      this.ctx.stats.slowConsumers++;
      this.ctx.log.warn({ session: this.session, user: this.user, buffered: this.ws.bufferedAmount }, 'dropping slow consumer');
      this.close(CloseCode.SlowConsumer, 'slow consumer: send buffer full');
      return false;
    }
    this.cork();
    this.ws.send(data);
    this.ctx.stats.framesOut++;
    return true;
  }

  /**
   * Frames written in one event-loop turn leave in one system call: the socket is corked at the
   * first write of a turn and uncorked on the next tick. One writev per frame was the largest
   * single cost of a busy node.
   */
  private cork(): void {
    if (this.corked) return;
    const socket = (this.ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    if (!socket) return;
    this.corked = true;
    socket.cork();
    process.nextTick(() => {
      this.corked = false;
      socket.uncork();
    });
  }

  /** Closes with `code`; terminates if the client does not complete the close handshake. */
  close(code: number, reason: string, graceMs = 2000): void {
    if (this.state === 'closed') return;
    this.cleanup();
    this.ws.close(code, reason);
    setTimeout(() => this.ws.terminate(), graceMs).unref();
  }

  /** Terminates the socket at once (heartbeat timeout). */
  terminate(): void {
    this.cleanup();
    this.ws.terminate();
  }

  /** Sends a ping; the pong sets `alive`. */
  ping(): void {
    this.alive = false;
    if (this.ws.readyState === 1) this.ws.ping();
  }

  private send(frame: ServerFrame): boolean {
    return this.write(encodeServerFrame(frame));
  }

  private sendError(code: ErrorCode, message: string, id: string | undefined): void {
    this.ctx.stats.countError(code);
    this.send(id === undefined ? { type: 'error', code, message } : { type: 'error', id, code, message });
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.state === 'closed') return;
    this.alive = true;
    this.ctx.stats.framesIn++;
    if (isBinary) {
      if (this.state === 'hello') return this.reject('the first frame must be a hello text frame');
      return this.sendError(ErrorCode.BadRequest, 'binary frames are not supported; send JSON text frames', undefined);
    }
    const text = data.toString('utf8');
    switch (this.state) {
      case 'hello':
        return this.onHello(text);
      case 'auth':
        if (this.pending.length >= this.ctx.opts.maxPendingBeforeWelcome) {
          return this.sendError(ErrorCode.RateLimited, 'too many frames before welcome', requestIdOf(text));
        }
        this.pending.push(text);
        return;
      case 'ready':
        return this.onFrame(text);
    }
  }

  private onHello(text: string): void {
    let frame: ClientFrame;
    try {
      frame = decodeClientFrame(text);
    } catch (err) {
      return this.reject(`the first frame must be a valid hello: ${(err as Error).message}`);
    }
    if (frame.type !== 'hello') return this.reject('the first frame must be hello');
    this.state = 'auth';
    void this.authenticate(frame);
  }

  private async authenticate(hello: HelloFrame): Promise<void> {
    let user: string;
    try {
      user = await this.ctx.auth.authenticate(hello);
    } catch (err) {
      return this.reject(err instanceof ChatError ? err.message : 'authentication failed');
    }
    if (this.state !== 'auth') return; // closed meanwhile
    clearTimeout(this.helloTimer);
    this.helloTimer = undefined;
    this.user = user;
    this.registered = true;
    this.ctx.stats.authenticated++;
    // Routable at welcome: the welcome goes out once the user's home knows this connection.
    // Frames that arrive meanwhile wait in `pending`, as before the hello was checked.
    await this.ctx.router.subscribe(userTopic(user), this);
    if (this.state !== 'auth') return; // closed meanwhile
    this.state = 'ready';
    const welcome = { type: 'welcome' as const, user, node: this.ctx.nodeId, session: this.session };
    this.send(hello.id === undefined ? welcome : { ...welcome, id: hello.id });
    const pending = this.pending;
    this.pending = [];
    for (const text of pending) this.onFrame(text);
  }

  private reject(why: string): void {
    if (this.state === 'closed') return;
    this.sendError(ErrorCode.Unauthorized, why, undefined);
    this.close(CloseCode.Unauthorized, 'unauthorized');
  }

  private onFrame(text: string): void {
    if (this.state !== 'ready') return;
    let frame: ClientFrame;
    try {
      frame = decodeClientFrame(text);
    } catch (err) {
      const e = err as FrameError;
      return this.sendError(e.code, e.message, e.requestId);
    }
    if (!this.bucket.take()) {
      return this.sendError(ErrorCode.RateLimited, `rate limit: ${this.ctx.opts.rateLimitPerSec} frames/s, burst ${this.ctx.opts.rateLimitBurst}`, frame.id);
    }
    try {
      this.dispatch(frame);
    } catch (err) {
      this.fail(err, frame.id);
    }
  }

  private fail(err: unknown, id: string | undefined): void {
    if (err instanceof ChatError) return this.sendError(err.code, err.message, id);
    this.ctx.log.error({ err, session: this.session }, 'frame handler failed');
    this.sendError(ErrorCode.Unavailable, 'internal error; nothing was delivered', id);
  }

  private ack(id: string | undefined, extra: Omit<Extract<ServerFrame, { type: 'ack' }>, 'type' | 'id'> = {}): void {
    this.send(id === undefined ? { type: 'ack', ...extra } : { type: 'ack', id, ...extra });
  }

  private dispatch(frame: ClientFrame): void {
    const user = this.user!;
    switch (frame.type) {
      case 'hello':
        throw new ChatError(ErrorCode.BadRequest, 'already authenticated');
      case 'send': {
        this.ctx.stats.directMessages++;
        const ts = this.ctx.clock.now();
        const msg = this.ctx.ids.next();
        const data = encodeMessage(msg, user, frame.to, frame.body, ts);
        const toRecipient = this.ctx.router.publish(userTopic(frame.to), data, frame.to === user ? this.session : undefined);
        if (frame.to !== user) {
          // Copy to the sender's other devices; the ack speaks only of the recipient.
          this.ctx.router.publish(userTopic(user), data, this.session).catch((err: unknown) => {
            this.ctx.log.warn({ err, user }, 'could not copy a message to the sender\'s other devices');
          });
        }
        toRecipient.then(
          (n) => { this.write(encodeMessageAck(frame.id, n > 0 ? 'delivered' : 'offline', msg, ts)); },
          (err: unknown) => this.fail(err, frame.id),
        );
        return;
      }
      case 'join':
        if (!this.rooms.has(frame.room) && this.rooms.size >= MAX_ROOMS_PER_CONNECTION) {
          throw new ChatError(ErrorCode.BadRequest, `a connection may join at most ${MAX_ROOMS_PER_CONNECTION} rooms`);
        }
        this.rooms.add(frame.room);
        // Acked once the room's home knows this member: a publish after the ack reaches it.
        void this.ctx.router.subscribe(roomTopic(frame.room), this).then(() => {
          if (this.state === 'ready') this.ack(frame.id);
        });
        return;
      case 'leave':
        this.rooms.delete(frame.room);
        this.ctx.router.unsubscribe(roomTopic(frame.room), this);
        return this.ack(frame.id);
      case 'publish': {
        if (!this.rooms.has(frame.room)) throw new ChatError(ErrorCode.NotMember, `join room "${frame.room}" before publishing to it`);
        this.ctx.stats.roomMessages++;
        const ts = this.ctx.clock.now();
        const msg = this.ctx.ids.next();
        const data = encodeRoomMessage(msg, frame.room, user, frame.body, ts);
        this.ctx.router.publish(roomTopic(frame.room), data, this.session).then(
          (n) => { this.write(encodeMessageAck(frame.id, n > 0 ? 'delivered' : 'no_subscribers', msg, ts)); },
          (err: unknown) => this.fail(err, frame.id),
        );
        return;
      }
      case 'presence':
        this.ctx.router.online(frame.users.map(userTopic)).then(
          (map) => {
            const users = statusRecord(frame.users, (u) => map.get(userTopic(u)) === true);
            this.send(frame.id === undefined ? { type: 'presence', users } : { type: 'presence', id: frame.id, users });
          },
          (err: unknown) => this.fail(err, frame.id),
        );
        return;
      case 'watch':
        return this.watch(frame.users, frame.id);
      case 'unwatch':
        for (const u of frame.users) {
          if (this.watched.delete(u)) this.ctx.router.unwatch(userTopic(u), this.onPresence);
        }
        return this.ack(frame.id);
    }
  }

  private watch(users: readonly string[], id: string | undefined): void {
    const fresh = users.filter((u) => !this.watched.has(u));
    if (this.watched.size + fresh.length > MAX_WATCHED_PER_CONNECTION) {
      throw new ChatError(ErrorCode.BadRequest, `a connection may watch at most ${MAX_WATCHED_PER_CONNECTION} users (watching ${this.watched.size})`);
    }
    for (const u of fresh) this.watched.add(u);
    // A watch completes asynchronously; by then the client may have unwatched or gone. Whatever
    // is no longer wanted is unregistered here, so no registration outlives its connection.
    Promise.allSettled(users.map((u) => this.ctx.router.watch(userTopic(u), this.onPresence))).then((results) => {
      let failure: unknown;
      results.forEach((r, i) => {
        const u = users[i]!;
        if (r.status === 'rejected') {
          failure ??= r.reason;
          return;
        }
        if (this.state === 'closed' || !this.watched.has(u)) this.ctx.router.unwatch(userTopic(u), this.onPresence);
      });
      if (this.state === 'closed') return;
      if (failure !== undefined) {
        // The frame failed as a whole: undo the users it added (not those watched before it).
        for (const u of fresh) {
          if (this.watched.delete(u)) this.ctx.router.unwatch(userTopic(u), this.onPresence);
        }
        return this.fail(failure, id);
      }
      this.ack(id, { users: statusRecord(users, (_u, i) => (results[i] as PromiseFulfilledResult<boolean>).value) });
    });
  }

  private unwatchAll(): void {
    for (const u of this.watched) this.ctx.router.unwatch(userTopic(u), this.onPresence);
    this.watched.clear();
  }

  private cleanup(): void {
    if (this.state === 'closed') return;
    const wasReady = this.registered;
    this.registered = false;
    this.state = 'closed';
    clearTimeout(this.helloTimer);
    this.pending = [];
    if (wasReady) {
      this.ctx.stats.authenticated--;
      this.ctx.router.unsubscribe(userTopic(this.user!), this);
      for (const room of this.rooms) this.ctx.router.unsubscribe(roomTopic(room), this);
      this.rooms.clear();
      this.unwatchAll();
    }
    this.onClosed(this);
  }
}

/** The request id of a frame not decoded yet, if it has a valid one (so its answer can echo it). */
function requestIdOf(text: string): string | undefined {
  try {
    const id = (JSON.parse(text) as { id?: unknown }).id;
    return typeof id === 'string' && id.length <= 64 ? id : undefined;
  } catch {
    return undefined;
  }
}

function statusRecord(users: readonly string[], online: (u: string, i: number) => boolean): Record<string, PresenceStatus> {
  const out: Record<string, PresenceStatus> = Object.create(null) as Record<string, PresenceStatus>;
  users.forEach((u, i) => { out[u] = online(u, i) ? 'online' : 'offline'; });
  return out;
}
