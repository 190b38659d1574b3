/**
 * The outbound side of one client connection: frames held until the welcome (which is always the
 * first frame), the slow-consumer bound, one copy of each direct message around a replay, and
 * corking (every frame of an event-loop turn leaves in one system call).
 */
import type { WebSocket } from 'ws';

/** How long after `synced` a connection still drops a second copy of a message id, ms. */
export const RECENT_IDS_AFTER_SYNC_MS = 10_000;
/** Most message ids a connection remembers for that (a replay is at most --history-size). */
const MAX_RECENT_IDS = 100_000;
/** How every direct message frame starts (encodeMessage); the message id follows. */
const MESSAGE_HEAD = '{"type":"message","msg":"';

/** ws send options of a text frame given as a Buffer. */
const TEXT = { binary: false } as const;

/** What the writer needs of its connection. */
export interface FrameWriterOptions {
  /** Bound of the unsent data (`--max-buffered-bytes`). */
  readonly maxBufferedBytes: number;
  /** The connection is closing: nothing more is written. */
  readonly closed: () => boolean;
  /** The bound was passed: the connection is dropped as a slow consumer. */
  readonly slowConsumer: () => void;
  /** A frame went to the socket (a counter). */
  readonly written: () => void;
}

/** Writes one connection's frames. Not shared; synchronous apart from `drained`. */
export class FrameWriter {
  private corked = false;
  /** Frames for this connection between its subscription and its welcome. */
  private early: string[] | undefined;
  private earlyBytes = 0;
  /**
   * From the welcome until a while after `synced`: the direct-message ids written to this
   * connection (live or replayed), so that a message both replayed and delivered live in that
   * window is written once, whichever comes first.
   */
  private recentIds: Set<string> | undefined;

  constructor(private readonly ws: WebSocket, private readonly opts: FrameWriterOptions) {}

  /** From now until {@link releaseEarly}, frames wait (the welcome is not written yet). */
  holdUntilWelcome(): void {
    this.early = [];
    this.recentIds = new Set();
  }

  /** Writes `welcome`, then what waited for it: the welcome is always the first frame. */
  releaseEarly(welcome: string): void {
    const early = this.early ?? [];
    this.early = undefined;
    this.earlyBytes = 0;
    this.write(welcome);
    for (const data of early) this.write(data);
  }

  /** The replay is over: after a while, stop remembering which messages were written. */
  forgetRecentLater(): void {
    setTimeout(() => { this.recentIds = undefined; }, RECENT_IDS_AFTER_SYNC_MS).unref();
  }

  /** Whether a message id was written live during the replay. */
  seen(id: string): boolean {
    return this.recentIds?.has(id) ?? false;
  }

  /**
   * Writes a frame, or holds it until the welcome; false when it was not (closing, slow consumer).
   * `bytes`: the frame already encoded as UTF-8, shared with other connections (sent as is).
   */
  write(data: string, bytes?: Buffer): boolean {
    if (this.opts.closed() || this.ws.readyState !== 1 /* OPEN */) return false;
    const max = this.opts.maxBufferedBytes;
    if (this.early) {
      this.earlyBytes += data.length;
      if (this.earlyBytes <= max) {
        this.early.push(data);
        return true;
      }
    }
    // One answer larger than the bound itself (a `rooms` of 1000 rooms whose last messages are
    // long) goes out when nothing else waits: memory stays within the bound or that one frame.
    const buffered = this.ws.bufferedAmount;
    if ((buffered > 0 && buffered + data.length > max) || this.earlyBytes > max) {
      this.opts.slowConsumer();
      return false;
    }
    if (this.recentIds && data.startsWith(MESSAGE_HEAD)) {
      const id = data.slice(MESSAGE_HEAD.length, MESSAGE_HEAD.length + 26);
      if (this.recentIds.has(id)) return true; // written already (replayed, then live, or the reverse)
      if (this.recentIds.size < MAX_RECENT_IDS) this.recentIds.add(id);
    }
    this.cork();
    if (bytes) this.ws.send(bytes, TEXT);
    else this.ws.send(data);
    this.opts.written();
    return true;
  }

  /** Resolves when the send buffer is below a quarter of its bound (a replay's next page may go). */
  drained(): Promise<void> {
    const low = this.opts.maxBufferedBytes / 4;
    if (this.ws.bufferedAmount <= low || this.opts.closed()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.ws.bufferedAmount <= low || this.opts.closed()) resolve();
        else setTimeout(check, 10).unref();
      };
      setTimeout(check, 10).unref();
    });
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
}
