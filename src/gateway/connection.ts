import type { WebSocket } from 'ws';
import { userTopic } from '../core/index.js';
import type { Subscriber } from '../core/index.js';
import { BAD_SINCE, ChatError, CloseCode, ErrorCode, FrameError, decodeClientFrameBytes, encodeServerFrame } from '../protocol/index.js';
import type { ClientFrame, HelloFrame, RefreshFrame, ServerFrame } from '../protocol/index.js';
import { publishToRoom, readHistory, sendDirect, syncDevice } from './messaging.js';
import type { Sender } from './messaging.js';
import { ConnectionRooms } from './rooms.js';
import { FrameWriter } from './frame-writer.js';
import { RateGuard, requestIdOf } from './rate-guard.js';
import type { GatewayContext } from './context.js';
import { TypingThrottle, forwardTyping, listConversations, listMembers, listRooms } from './account-frames.js';
import { Watches } from './watching.js';
import { BadFrameWindow } from './bad-frame-window.js';
import { TokenExpiry } from './token-expiry.js';

/** A client socket with its connection (how the shared listeners find it). */
type SocketOf = WebSocket & { chatmeshConnection: ClientConnection };

/** Time a client gets to answer a 1008 close before its socket is destroyed, in ms. Shorter than
 *  the usual grace: the socket stops being read at once, so a flooder costs nothing meanwhile. */
export const POLICY_CLOSE_GRACE_MS = 1000;

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
  /** Frames that arrived between the hello and the welcome, undecoded (allocated at the first). */
  private pending: Buffer[] | undefined;
  /** Reading stopped for good (1008): the close is not waited for. */
  private stoppedReading = false;
  /** The user's rooms as this connection follows them, and the read markers it knows. */
  private readonly rooms: ConnectionRooms;
  /** Targets of recent `typing` frames: allocated at the connection's first (most send none). */
  private typing: TypingThrottle | undefined;
  /** Frames out: held until the welcome, slow-consumer bound, one copy per message id, corked. */
  private readonly out: FrameWriter;
  /** Presence queries and watched users: allocated at the first `presence`/`watch`. */
  private watches: Watches | undefined;
  private readonly rate: RateGuard;
  /** Allocated at the first bad frame (a well-behaved connection never has one). */
  private badFrames: BadFrameWindow | undefined;
  private helloTimer: NodeJS.Timeout | undefined;
  /** When the connection's token expires: only a connection signed in with a token has one. */
  private expiry: TokenExpiry | undefined;

  /*
   * Memory per idle connection: a node holds tens of thousands. The connection itself is the hooks
   * object of its parts (rate guard, rooms, frame writer, watches: no options object and no closure
   * per part), its socket's listeners are functions shared by every connection (they find the
   * connection on the socket), and what most connections never use is allocated at first use.
   */
  constructor(
    private readonly ws: WebSocket,
    private readonly ctx: GatewayContext,
    session: string,
    private readonly onClosed: (conn: ClientConnection) => void,
  ) {
    this.session = session;
    this.rate = new RateGuard(ws, ctx, this);
    this.rooms = new ConnectionRooms(ctx, this);
    this.out = new FrameWriter(ws, this);
    this.helloTimer = setTimeout(() => this.reject('no hello within the deadline'), ctx.opts.helloTimeoutMs);
    (ws as SocketOf).chatmeshConnection = this;
    ws.on('message', ClientConnection.onSocketMessage);
    ws.on('pong', ClientConnection.onSocketPong);
    // The server answers pings itself (autoPong is off): a ping is a frame and counts too.
    ws.on('ping', ClientConnection.onSocketPing);
    ws.on('close', ClientConnection.onSocketClose);
    ws.on('error', ClientConnection.onSocketError);
  }

  // The socket's listeners, shared by every connection (`this` is the socket).
  private static onSocketMessage(this: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
    (this as SocketOf).chatmeshConnection.onMessage(data as Buffer, isBinary);
  }

  private static onSocketPong(this: WebSocket): void {
    (this as SocketOf).chatmeshConnection.alive = true;
  }

  private static onSocketPing(this: WebSocket, data: Buffer): void {
    (this as SocketOf).chatmeshConnection.onPing(data);
  }

  private static onSocketClose(this: WebSocket): void {
    (this as SocketOf).chatmeshConnection.cleanup();
  }

  private static onSocketError(this: WebSocket, err: Error): void {
    const conn = (this as SocketOf).chatmeshConnection;
    conn.ctx.log.debug({ err, session: conn.session }, 'client socket error');
  }

  /** Resolves when the underlying socket has closed. */
  socketClosed(): Promise<void> {
    if (this.ws.readyState === 3 /* CLOSED */) return Promise.resolve();
    return new Promise((resolve) => this.ws.once('close', () => resolve()));
  }

  // ------------------------------------------------------------ hooks of the connection's parts

  /** The connection is closing: nothing more is written or handled (every part asks). */
  closed(): boolean {
    return this.state === 'closed';
  }

  /** RateGuard: reading stopped for good (1008), a pause is never undone. */
  readingStopped(): boolean {
    return this.stoppedReading;
  }

  /** FrameWriter: the bound of the unsent data (`--max-buffered-bytes`). */
  get maxBufferedBytes(): number {
    return this.ctx.opts.maxBufferedBytes;
  }

  /** FrameWriter: the bound was passed; the connection is dropped as a slow consumer. */
  slowConsumer(): void {
    this.ctx.stats.slowConsumers++;
    this.ctx.log.warn({ session: this.session, user: this.user, buffered: this.ws.bufferedAmount }, 'dropping slow consumer');
    this.close(CloseCode.SlowConsumer, 'slow consumer: send buffer full');
  }

  /** FrameWriter: a frame went to the socket. */
  written(): void {
    this.ctx.stats.framesOut++;
  }

  /** ConnectionRooms: writes a frame past the interception of account events. */
  writeRaw(data: string): boolean {
    return this.out.write(data);
  }

  /**
   * Subscriber: writes a frame unless the connection is closing; drops a slow consumer. Account
   * events of the user's other devices (`joined`, `left`, `read`) update the connection first.
   */
  write(data: string, bytes?: Buffer): boolean {
    if (this.state === 'closed' || this.ws.readyState !== 1 /* OPEN */) return false;
    if (data.charCodeAt(9) !== 0x6d /* m of "message" */ && this.rooms.intercept(data)) return true;
    return this.out.write(data, bytes);
  }

  /** Resolves when the send buffer is below a quarter of its bound (a replay's next page may go). */
  drained(): Promise<void> {
    return this.out.drained();
  }

  /** Whether a message id was written live during the replay. */
  seen(id: string): boolean {
    return this.out.seen(id);
  }

  /** Sender: whether the connection's user is a member of the room. */
  inRoom(room: string): boolean {
    return this.rooms.has(room);
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
      this.stoppedReading = true;
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

  /** Writes a server frame (also the Watches' hook). */
  send(frame: ServerFrame): boolean {
    return this.write(encodeServerFrame(frame));
  }

  /** Answers `error` (also the RateGuard's hook); the 101st bad frame within the window closes with 1008. */
  sendError(code: ErrorCode, message: string, id: string | undefined): void {
    this.ctx.stats.countError(code);
    this.send(id === undefined ? { type: 'error', code, message } : { type: 'error', id, code, message });
    if ((code === ErrorCode.BadRequest || code === ErrorCode.UnknownType) && this.badFrameWindow().record()) {
      this.ctx.stats.policyViolations++;
      this.ctx.log.debug({ session: this.session, user: this.user }, 'too many bad frames: closing with 1008');
      this.close(CloseCode.PolicyViolation, 'too many bad frames', POLICY_CLOSE_GRACE_MS, true);
    }
  }

  private onPing(data: Buffer): void {
    this.alive = true;
    if (this.state === 'closed' || this.ws.readyState !== 1 /* OPEN */) return;
    if (this.rate.take()) this.ws.pong(data);
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.state === 'closed') return;
    this.alive = true;
    this.ctx.stats.framesIn++;
    // Every frame counts, before any decoding: a frame over the limit costs one bucket check.
    if (!this.rate.take()) return this.rate.refused(data, isBinary, this.state === 'hello');
    if (isBinary) {
      if (this.state === 'hello') return this.reject('the first frame must be a hello text frame');
      return this.sendError(ErrorCode.BadRequest, 'binary frames are not supported; send JSON text frames', undefined);
    }
    switch (this.state) {
      case 'hello':
        return this.onHello(data);
      case 'auth':
        if ((this.pending?.length ?? 0) >= this.ctx.opts.maxPendingBeforeWelcome) {
          return this.sendError(ErrorCode.RateLimited, 'too many frames before welcome', requestIdOf(data));
        }
        (this.pending ??= []).push(data);
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
    this.armExpiry(exp);
    this.user = user;
    this.registered = true;
    this.ctx.stats.authenticated++;
    // Routable at welcome: the welcome goes out once the user's home knows this connection.
    // Frames that arrive meanwhile wait in `pending`, as before the hello was checked; messages
    // for the connection meanwhile wait in `early`, so that the welcome is its first frame.
    this.out.holdUntilWelcome();
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
    const welcome = { type: 'welcome' as const, user, node: this.ctx.nodeId, session: this.session };
    this.out.releaseEarly(encodeServerFrame(hello.id === undefined ? welcome : { ...welcome, id: hello.id }));
    if (!restored) {
      this.sendError(ErrorCode.Unavailable, 'could not load your rooms and read state now; room messages will not reach this connection until you reconnect', undefined);
    }
    // Live deliveries of replayed messages can still be under way when `synced` goes out.
    void syncDevice(this.ctx, user, hello.since, this).finally(() => this.out.forgetRecentLater());
    const pending = this.pending;
    this.pending = undefined;
    for (const data of pending ?? []) this.onFrame(data);
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
    if (!this.expiry?.hasToken) {
      throw new ChatError(ErrorCode.BadRequest, 'this connection signed in without a token (dev auth): it never expires and has no token to refresh');
    }
    this.ctx.auth.verifyToken(frame.token).then(
      ({ user, exp }) => {
        if (this.state !== 'ready') return;
        if (user !== this.user) return this.reject('the refresh token is for another user', frame.id);
        this.ctx.stats.tokensRefreshed++;
        this.armExpiry(exp);
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

  /** Answers `ack` (also the hook of the rooms and the watches). */
  ack(id: string | undefined, extra: Omit<Extract<ServerFrame, { type: 'ack' }>, 'type' | 'id'> = {}): void {
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
        return forwardTyping(this.ctx, this, frame, this.typing ??= new TypingThrottle(() => this.ctx.clock.monotonic()));
      case 'publish':
        return publishToRoom(this.ctx, this, frame);
      case 'history':
        return readHistory(this.ctx, this, frame);
      case 'presence':
        return this.watching().query(frame.users, frame.id);
      case 'watch':
        return this.watching().watch(frame.users, frame.id);
      case 'unwatch':
        this.watches?.unwatch(frame.users);
        return this.ack(frame.id);
      case 'refresh':
        return this.refresh(frame);
    }
  }

  private watching(): Watches {
    return this.watches ??= new Watches(this.ctx.router, this);
  }

  private badFrameWindow(): BadFrameWindow {
    return this.badFrames ??= new BadFrameWindow({ max: Math.max(1, Math.floor(this.ctx.opts.maxBadFrames)), windowMs: this.ctx.opts.badFrameWindowMs, clock: this.ctx.clock });
  }

  /** Arms the token's expiry (`exp` in JWT seconds; undefined: never expires). */
  private armExpiry(exp: number | undefined): void {
    if (exp === undefined && this.expiry === undefined) return; // no token: nothing to arm
    (this.expiry ??= new TokenExpiry(this.ctx.clock, () => this.expired())).arm(exp);
  }

  private cleanup(): void {
    if (this.state === 'closed') return;
    const wasReady = this.registered;
    this.registered = false;
    this.state = 'closed';
    clearTimeout(this.helloTimer);
    this.expiry?.stop();
    this.pending = undefined;
    if (wasReady) {
      this.ctx.stats.authenticated--;
      this.ctx.router.unsubscribe(userTopic(this.user!), this);
      this.rooms.clear();
      this.watches?.clear();
    }
    this.onClosed(this);
  }
}
