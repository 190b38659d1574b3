import type { WebSocket } from 'ws';
import type { Authenticator } from '../auth/index.js';
import { roomTopic, userTopic } from '../core/index.js';
import type { Router, Subscriber } from '../core/index.js';
import type { Logger } from '../log.js';
import {
  BAD_SINCE, ChatError, CloseCode, ErrorCode, FrameError, RATE_LIMITED_NOTICE_INTERVAL_MS,
  decodeClientFrameBytes, encodeServerFrame,
} from '../protocol/index.js';
import type { ClientFrame, HelloFrame, RefreshFrame, ServerFrame } from '../protocol/index.js';
import { TokenBucket } from '../util/index.js';
import type { Clock, UlidGenerator } from '../util/index.js';
import type { MessageClock, StreamService, StreamStats } from '../streams/index.js';
import type { Accounts } from '../accounts/index.js';
import { publishToRoom, readHistory, sendDirect, syncDevice } from './messaging.js';
import { ConnectionRooms } from './rooms.js';
import { TypingThrottle, forwardTyping, listConversations, listMembers, listRooms } from './account-frames.js';
import { Watches } from './watching.js';
import type { Sender } from './messaging.js';
import { BadFrameWindow } from './bad-frame-window.js';
import { TokenExpiry } from './token-expiry.js';
import type { GatewayOptions } from './options.js';
import type { GatewayStats } from './stats.js';

/** Time a client gets to answer a 1008 close before its socket is destroyed, in ms. Shorter than
 *  the usual grace: the socket stops being read at once, so a flooder costs nothing meanwhile. */
export const POLICY_CLOSE_GRACE_MS = 1000;

/** What every connection of a gateway shares. */
export interface GatewayContext {
  readonly nodeId: string;
  readonly router: Router;
  readonly auth: Authenticator;
  /** Generates session ids. */
  readonly ids: UlidGenerator;
  /** Generates message ids (the node's hybrid logical clock). */
  readonly messageIds: MessageClock;
  /** Kept messages; undefined with storage off (`--history-size 0`). */
  readonly streams?: StreamService;
  /** What users have: memberships, read markers, summaries (kept also with `--history-size 0`). */
  readonly accounts: Accounts;
  readonly streamStats?: StreamStats;
  readonly clock: Clock;
  readonly log: Logger;
  readonly opts: GatewayOptions;
  readonly stats: GatewayStats;
}

type State = 'hello' | 'auth' | 'ready' | 'closed';

/**
 * One client connection: authentication, frame handling and its subscriptions. Every frame that
 * carries an `id` gets exactly one answer: an `ack`/`presence`, or an `error` (`rate_limited` for a
 * frame over the rate limit; one that is not even JSON gets one `rate_limited` without id at most
 * once per `RATE_LIMITED_NOTICE_INTERVAL_MS`).
 */
export class ClientConnection implements Subscriber, Sender {
  readonly session: string;
  user!: string;
  /** Set by every pong and frame; cleared by each heartbeat tick. */
  alive = true;
  private state: State = 'hello';
  /** Authenticated and subscribed to its user topic (from before the welcome until cleanup). */
  private registered = false;
  private corked = false;
  /** Frames that arrived between the hello and the welcome, undecoded. */
  private pending: Buffer[] = [];
  /** Reading is paused until the rate limiter has a token again. */
  private throttled = false;
  /** Reading stopped for good (1008): the close is not waited for. */
  private readingStopped = false;
  /** The user's rooms as this connection follows them, and the read markers it knows. */
  private readonly rooms: ConnectionRooms;
  private readonly typing: TypingThrottle;
  /**
   * From the welcome until a while after `synced`: the direct-message ids written to this
   * connection (live or replayed), so that a message both replayed and delivered live in that
   * window is written once, whichever comes first.
   */
  private recentIds: Set<string> | undefined;
  /** Frames for this connection between its subscription and its welcome: the welcome goes first. */
  private early: string[] | undefined;
  private earlyBytes = 0;
  private readonly watches: Watches;
  private readonly bucket: TokenBucket;
  private readonly badFrames: BadFrameWindow;
  /** Monotonic time before which no further `rate_limited` notice is sent. */
  private rateNoticeAfter = -Infinity;
  private helloTimer: NodeJS.Timeout | undefined;
  /** When the connection's token expires (never without a token, in dev auth). */
  private readonly expiry: TokenExpiry;
  /** Resolves when the underlying socket has closed. */
  readonly socketClosed: Promise<void>;

  constructor(
    private readonly ws: WebSocket,
    private readonly ctx: GatewayContext,
    session: string,
    private readonly onClosed: (conn: ClientConnection) => void,
  ) {
    this.session = session;
    this.bucket = new TokenBucket({ ratePerSec: ctx.opts.rateLimitPerSec, burst: ctx.opts.rateLimitBurst, clock: ctx.clock });
    this.badFrames = new BadFrameWindow({ max: Math.max(1, Math.floor(ctx.opts.maxBadFrames)), windowMs: ctx.opts.badFrameWindowMs, clock: ctx.clock });
    this.expiry = new TokenExpiry(ctx.clock, () => this.expired());
    this.watches = new Watches({
      router: ctx.router,
      send: (frame) => this.send(frame),
      ack: (id, extra) => this.ack(id, extra),
      fail: (err, id) => this.fail(err, id),
      closed: () => this.state === 'closed',
    });
    this.rooms = new ConnectionRooms(ctx, {
      sub: this,
      user: () => this.user,
      writeRaw: (data) => this.writeRaw(data),
      ack: (id) => this.ack(id),
      fail: (err, id) => this.fail(err, id),
      closed: () => this.state === 'closed',
    });
    this.typing = new TypingThrottle(() => ctx.clock.monotonic());
    this.helloTimer = setTimeout(() => this.reject('no hello within the deadline'), ctx.opts.helloTimeoutMs);
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on('pong', () => { this.alive = true; });
    // The server answers pings itself (autoPong is off): a ping is a frame and counts too.
    ws.on('ping', (data) => this.onPing(data));
    this.socketClosed = new Promise((resolve) => ws.once('close', () => resolve()));
    ws.on('close', () => this.cleanup());
    ws.on('error', (err) => ctx.log.debug({ err, session }, 'client socket error'));
  }

  /**
   * Subscriber: writes a frame unless the connection is closing; drops a slow consumer. Account
   * events of the user's other devices (`joined`, `left`, `read`) update the connection first.
   */
  write(data: string): boolean {
    if (this.state === 'closed' || this.ws.readyState !== 1 /* OPEN */) return false;
    if (data.charCodeAt(9) !== 0x6d /* m of "message" */ && this.rooms.intercept(data)) return true;
    return this.writeRaw(data);
  }

  private writeRaw(data: string): boolean {
    if (this.state === 'closed' || this.ws.readyState !== 1 /* OPEN */) return false;
    if (this.early) {
      this.earlyBytes += data.length;
      if (this.earlyBytes <= this.ctx.opts.maxBufferedBytes) {
        this.early.push(data);
        return true;
      }
    }
    // One answer larger than the bound itself (a `rooms` of 1000 rooms whose last messages are
    // long) goes out when nothing else waits: memory stays within the bound or that one frame.
    const buffered = this.ws.bufferedAmount;
    if ((buffered > 0 && buffered + data.length > this.ctx.opts.maxBufferedBytes) || this.earlyBytes > this.ctx.opts.maxBufferedBytes) {
      this.ctx.stats.slowConsumers++;
      this.ctx.log.warn({ session: this.session, user: this.user, buffered: this.ws.bufferedAmount }, 'dropping slow consumer');
      this.close(CloseCode.SlowConsumer, 'slow consumer: send buffer full');
      return false;
    }
    if (this.recentIds && data.startsWith(MESSAGE_HEAD)) {
      const id = data.slice(MESSAGE_HEAD.length, MESSAGE_HEAD.length + 26);
      if (this.recentIds.has(id)) return true; // written already (replayed, then live, or the reverse)
      if (this.recentIds.size < MAX_RECENT_IDS) this.recentIds.add(id);
    }
    this.cork();
    this.ws.send(data);
    this.ctx.stats.framesOut++;
    return true;
  }

  /** Resolves when the send buffer is below a quarter of its bound (a replay's next page may go). */
  drained(): Promise<void> {
    const low = this.ctx.opts.maxBufferedBytes / 4;
    if (this.ws.bufferedAmount <= low || this.state === 'closed') return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.ws.bufferedAmount <= low || this.state === 'closed') resolve();
        else setTimeout(check, 10).unref();
      };
      setTimeout(check, 10).unref();
    });
  }

  /** Whether a message id was written live during the replay. */
  seen(id: string): boolean {
    return this.recentIds?.has(id) ?? false;
  }

  /** Sender: whether the connection's user is a member of the room. */
  inRoom(room: string): boolean {
    return this.rooms.has(room);
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

  /**
   * Closes with `code`; terminates if the client does not complete the close handshake within
   * `graceMs`. With `stopReading`, nothing more is read from the socket (an abuser's frames stay in
   * the kernel's buffers instead of costing CPU); the handshake then ends by the terminate.
   */
  close(code: number, reason: string, graceMs = 2000, stopReading = false): void {
    if (this.state === 'closed') return;
    this.cleanup();
    this.ws.close(code, reason);
    if (stopReading) {
      this.readingStopped = true;
      this.ws.pause();
    }
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
    if ((code === ErrorCode.BadRequest || code === ErrorCode.UnknownType) && this.badFrames.record()) {
      this.ctx.stats.policyViolations++;
      this.ctx.log.debug({ session: this.session, user: this.user }, 'too many bad frames: closing with 1008');
      this.close(CloseCode.PolicyViolation, 'too many bad frames', POLICY_CLOSE_GRACE_MS, true);
    }
  }

  /**
   * A frame over the rate limit is not handled, and reading pauses until the bucket refills (so a
   * flooder gets few frames read at all). A text frame with a request id is answered
   * `rate_limited` with that id (the contract: every frame with an id gets exactly one answer;
   * finding the id is one JSON.parse, and reading is paused, so that stays cheap). Any other frame
   * gets no answer of its own: the client hears `rate_limited` without id at most once per interval.
   */
  private dropOverLimit(data: Buffer, isBinary: boolean): void {
    this.ctx.stats.framesDropped++;
    this.throttle();
    const id = isBinary || this.state === 'hello' ? undefined : requestIdOf(data);
    if (id !== undefined) {
      const { rateLimitPerSec: r, rateLimitBurst: b } = this.ctx.opts;
      return this.sendError(ErrorCode.RateLimited, `rate limit: ${r} frames/s, burst ${b}; this frame was not handled`, id);
    }
    const now = this.ctx.clock.monotonic();
    if (now < this.rateNoticeAfter) return;
    this.rateNoticeAfter = now + RATE_LIMITED_NOTICE_INTERVAL_MS;
    const { rateLimitPerSec: rate, rateLimitBurst: burst } = this.ctx.opts;
    this.sendError(ErrorCode.RateLimited,
      `rate limit: ${rate} frames/s, burst ${burst}; frames over it are dropped unread and get no answer`, undefined);
  }

  /**
   * Stops reading the socket until the bucket has a token again. What the client sends meanwhile
   * waits in the kernel's buffers and then its own (TCP backpressure): a flooder over the limit costs
   * a few reads per refill instead of receiving, unmasking and dropping every frame.
   */
  private throttle(): void {
    if (this.throttled || this.state === 'closed') return;
    this.throttled = true;
    this.ws.pause();
    setTimeout(() => {
      this.throttled = false;
      if (!this.readingStopped) this.ws.resume();
    }, Math.max(1, Math.ceil(this.bucket.msUntil(1)))).unref();
  }

  private onPing(data: Buffer): void {
    this.alive = true;
    if (this.state === 'closed' || this.ws.readyState !== 1 /* OPEN */) return;
    if (!this.bucket.take()) {
      this.ctx.stats.framesDropped++;
      this.throttle();
      return;
    }
    this.ws.pong(data);
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.state === 'closed') return;
    this.alive = true;
    this.ctx.stats.framesIn++;
    // Every frame counts, before any decoding: a frame over the limit costs one bucket check.
    if (!this.bucket.take()) return this.dropOverLimit(data, isBinary);
    if (isBinary) {
      if (this.state === 'hello') return this.reject('the first frame must be a hello text frame');
      return this.sendError(ErrorCode.BadRequest, 'binary frames are not supported; send JSON text frames', undefined);
    }
    switch (this.state) {
      case 'hello':
        return this.onHello(data);
      case 'auth':
        if (this.pending.length >= this.ctx.opts.maxPendingBeforeWelcome) {
          return this.sendError(ErrorCode.RateLimited, 'too many frames before welcome', requestIdOf(data));
        }
        this.pending.push(data);
        return;
      case 'ready':
        return this.onFrame(data);
    }
  }

  private onHello(data: Buffer): void {
    let frame: ClientFrame;
    try {
      frame = decodeClientFrameBytes(data);
    } catch (err) {
      // A hello that is fine but for its `since` is answered, and the client may send a good one.
      if (err instanceof FrameError && err.message === BAD_SINCE) return this.sendError(err.code, err.message, err.requestId);
      return this.reject(`the first frame must be a valid hello: ${(err as Error).message}`);
    }
    if (frame.type !== 'hello') return this.reject('the first frame must be hello');
    this.state = 'auth';
    void this.authenticate(frame);
  }

  private async authenticate(hello: HelloFrame): Promise<void> {
    let user: string;
    let exp: number | undefined;
    try {
      ({ user, exp } = await this.ctx.auth.authenticate(hello));
    } catch (err) {
      return this.reject(err instanceof ChatError ? err.message : 'authentication failed');
    }
    if (this.state !== 'auth') return; // closed meanwhile
    clearTimeout(this.helloTimer);
    this.helloTimer = undefined;
    this.expiry.arm(exp);
    this.user = user;
    this.registered = true;
    this.ctx.stats.authenticated++;
    // Routable at welcome: the welcome goes out once the user's home knows this connection.
    // Frames that arrive meanwhile wait in `pending`, as before the hello was checked; messages
    // for the connection meanwhile wait in `early`, so that the welcome is its first frame.
    this.early = [];
    this.recentIds = new Set();
    await this.ctx.router.subscribe(userTopic(user), this);
    if (this.state !== 'auth') return; // closed meanwhile
    // The user's rooms, before the welcome: a room message published after it reaches this device.
    let restored = true;
    try {
      await this.rooms.restore();
    } catch (err) {
      restored = false;
      this.ctx.log.warn({ err, user }, 'could not load an account at connect');
    }
    if (this.state !== 'auth') return; // closed meanwhile
    this.state = 'ready';
    const early = this.early;
    this.early = undefined;
    this.earlyBytes = 0;
    const welcome = { type: 'welcome' as const, user, node: this.ctx.nodeId, session: this.session };
    this.send(hello.id === undefined ? welcome : { ...welcome, id: hello.id });
    for (const data of early) this.writeRaw(data);
    if (!restored) {
      this.sendError(ErrorCode.Unavailable, 'could not load your rooms and read state now; room messages will not reach this connection until you reconnect', undefined);
    }
    // Live deliveries of replayed messages can still be under way when `synced` goes out.
    void syncDevice(this.ctx, user, hello.since, this).finally(() => {
      setTimeout(() => { this.recentIds = undefined; }, RECENT_IDS_AFTER_SYNC_MS).unref();
    });
    const pending = this.pending;
    this.pending = [];
    for (const data of pending) this.onFrame(data);
  }

  /** Answers `unauthorized` (echoing `id` when the frame had one) and closes with 4401. */
  private reject(why: string, id?: string): void {
    if (this.state === 'closed') return;
    this.sendError(ErrorCode.Unauthorized, why, id);
    this.close(CloseCode.Unauthorized, 'unauthorized');
  }

  /** The token expired without a refresh: `token_expired`, then close 4401. */
  private expired(): void {
    if (this.state === 'closed') return;
    this.ctx.stats.tokensExpired++;
    this.sendError(ErrorCode.TokenExpired, 'the token expired without a refresh; sign in again with a new token', undefined);
    this.close(CloseCode.Unauthorized, 'token expired');
  }

  /** `refresh`: a new token for the same user replaces the old one's expiry. */
  private refresh(frame: RefreshFrame): void {
    if (!this.expiry.hasToken) {
      throw new ChatError(ErrorCode.BadRequest, 'this connection signed in without a token (dev auth): it never expires and has no token to refresh');
    }
    this.ctx.auth.verifyToken(frame.token).then(
      ({ user, exp }) => {
        if (this.state !== 'ready') return;
        if (user !== this.user) return this.reject('the refresh token is for another user', frame.id);
        this.ctx.stats.tokensRefreshed++;
        this.expiry.arm(exp);
        this.ack(frame.id);
      },
      (err: unknown) => {
        if (this.state !== 'ready') return;
        this.reject(`refresh refused: ${err instanceof ChatError ? err.message : 'invalid token'}`, frame.id);
      },
    );
  }

  private onFrame(data: Buffer): void {
    if (this.state !== 'ready') return;
    let frame: ClientFrame;
    try {
      frame = decodeClientFrameBytes(data);
    } catch (err) {
      const e = err as FrameError;
      return this.sendError(e.code, e.message, e.requestId);
    }
    try {
      this.dispatch(frame);
    } catch (err) {
      this.fail(err, frame.id);
    }
  }

  /** Sender: answers a frame that failed. */
  fail(err: unknown, id: string | undefined): void {
    if (this.state === 'closed') return;
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
      case 'send':
        return sendDirect(this.ctx, this, frame);
      case 'join':
        this.ctx.stats.membershipsChanged++;
        return this.rooms.join(frame);
      case 'leave':
        this.ctx.stats.membershipsChanged++;
        return this.rooms.leave(frame);
      case 'read':
        this.ctx.stats.readMarks++;
        return this.rooms.read(frame);
      case 'rooms':
        return listRooms(this.ctx, this, frame, this.rooms.snapshot());
      case 'members':
        return listMembers(this.ctx, this, frame);
      case 'conversations':
        return listConversations(this.ctx, this, frame, this.rooms.snapshot());
      case 'typing':
        return forwardTyping(this.ctx, this, frame, this.typing);
      case 'publish':
        return publishToRoom(this.ctx, this, frame);
      case 'history':
        return readHistory(this.ctx, this, frame);
      case 'presence':
        return this.watches.query(frame.users, frame.id);
      case 'watch':
        return this.watches.watch(frame.users, frame.id);
      case 'unwatch':
        this.watches.unwatch(frame.users);
        return this.ack(frame.id);
      case 'refresh':
        return this.refresh(frame);
    }
  }

  private cleanup(): void {
    if (this.state === 'closed') return;
    const wasReady = this.registered;
    this.registered = false;
    this.state = 'closed';
    clearTimeout(this.helloTimer);
    this.expiry.stop();
    this.pending = [];
    if (wasReady) {
      this.ctx.stats.authenticated--;
      this.ctx.router.unsubscribe(userTopic(this.user!), this);
      this.rooms.clear();
      this.watches.clear();
    }
    this.onClosed(this);
  }
}

/** How long after `synced` a connection still drops a second copy of a message id, ms. */
const RECENT_IDS_AFTER_SYNC_MS = 10_000;
/** Most message ids a connection remembers for that (a replay is at most --history-size). */
const MAX_RECENT_IDS = 100_000;

/** How every direct message frame starts (encodeMessage); the message id follows. */
const MESSAGE_HEAD = '{"type":"message","msg":"';

/** The request id of a frame not decoded yet, if it has a valid one (so its answer can echo it). */
function requestIdOf(data: Buffer): string | undefined {
  try {
    const id = (JSON.parse(data.toString('utf8')) as { id?: unknown }).id;
    return typeof id === 'string' && id.length <= 64 ? id : undefined;
  } catch {
    return undefined;
  }
}
