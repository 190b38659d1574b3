/**
 * A WebSocket test client: collects every frame, lets a test wait for the next frame matching a
 * predicate (never sleeping), and for the close event.
 */
import { WebSocket } from 'ws';

export type Frame = Record<string, unknown> & { type: string };

export class TestClient {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  private waiters: Array<() => void> = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;

  constructor(url: string) {
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => {
        this.wake();
        resolve({ code, reason: reason.toString() });
      });
    });
    this.ws.on('error', () => { /* surfaced through closed/opened */ });
    this.ws.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame);
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Sends a frame (an object is JSON-encoded, a string goes as is). */
  send(frame: object | string): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /**
   * Resolves with (and consumes) the oldest unconsumed frame that matches; frames skipped over stay readable
   * through `frames`. Rejects after `timeoutMs` or when the socket closes first.
   */
  async next(match: ((f: Frame) => boolean) | string = () => true, timeoutMs = 5000): Promise<Frame> {
    const pred = typeof match === 'string' ? (f: Frame) => f.type === match : match;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = 0; i < this.frames.length; i++) {
        const f = this.frames[i]!;
        if (pred(f)) {
          this.frames.splice(i, 1);
          return f;
        }
      }
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`socket closed while waiting; frames: ${JSON.stringify(this.frames.slice(-5))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a frame; got ${JSON.stringify(this.frames.slice(-5))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** The answer to the request with id `id`. */
  answer(id: string, timeoutMs = 5000): Promise<Frame> {
    return this.next((f) => f['id'] === id, timeoutMs);
  }

  /** Sends a frame with `id` and resolves with its answer. */
  async request(frame: Record<string, unknown> & { id: string }, timeoutMs = 5000): Promise<Frame> {
    this.send(frame);
    return this.answer(frame.id, timeoutMs);
  }

  /** Frames not yet consumed by `next`. */
  unread(): Frame[] {
    return [...this.frames];
  }

  close(): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close();
    return this.closed;
  }
}

/**
 * Opens a client and completes the dev-mode hello; resolves with the client and its welcome once
 * the device is synced (its mailbox, if any, stays readable in `frames`; `synced` is consumed).
 */
export async function connectAs(url: string, user: string): Promise<{ c: TestClient; welcome: Frame; synced: Frame }> {
  const c = new TestClient(url);
  await c.opened;
  c.send({ type: 'hello', user });
  const welcome = await c.next('welcome');
  const synced = await c.next('synced');
  return { c, welcome, synced };
}

/** Polls `cond` until it is true or the deadline passes. */
export async function eventually(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves like `p`, or rejects when it has not settled within `ms` (a test of missing behaviour fails instead of hanging). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms); }),
  ]);
}
