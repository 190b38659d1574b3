/**
 * Requests waiting for a peer's answer, by id, each tied to the peer it went to (so a link that
 * goes down fails exactly its own requests) and bounded by a timeout. Deadlines are checked by one
 * sweep timer instead of a timer per request: a busy link has thousands in flight.
 */
interface Pending<T> {
  readonly peer: string;
  readonly resolve: (v: T) => void;
  readonly fail: (why: 'gone' | 'timeout') => void;
  readonly deadline: number;
}

export class PendingRequests<T> {
  private readonly byId = new Map<number, Pending<T>>();
  private seq = 0;
  private sweeper: NodeJS.Timeout | undefined;

  /** @param now - monotonic ms (the node's clock); deadlines are measured on it. */
  constructor(private readonly timeoutMs: number, private readonly now: () => number = () => performance.now()) {}

  /** Registers a request to `peer`; returns its id. */
  add(peer: string, resolve: (v: T) => void, fail: (why: 'gone' | 'timeout') => void): number {
    const id = ++this.seq;
    this.byId.set(id, { peer, resolve, fail, deadline: this.now() + this.timeoutMs });
    if (!this.sweeper) {
      this.sweeper = setInterval(() => this.sweep(), Math.max(10, Math.min(250, this.timeoutMs / 4)));
      this.sweeper.unref();
    }
    return id;
  }

  /** Completes request `id` if it is pending and went to `peer`. */
  settle(id: number, peer: string, value: T): boolean {
    const p = this.byId.get(id);
    if (!p || p.peer !== peer) return false;
    this.byId.delete(id);
    p.resolve(value);
    return true;
  }

  /** Fails request `id` (e.g. it could not be sent). */
  fail(id: number, why: 'gone' | 'timeout'): void {
    const p = this.byId.get(id);
    if (!p) return;
    this.byId.delete(id);
    p.fail(why);
  }

  /** Fails every request that went to `peer` (its link went down). */
  failPeer(peer: string): void {
    for (const [id, p] of this.byId) {
      if (p.peer !== peer) continue;
      this.byId.delete(id);
      p.fail('gone');
    }
  }

  /** Requests in flight. */
  get size(): number {
    return this.byId.size;
  }

  /** Fails every request and stops the sweep timer. */
  close(): void {
    for (const [id, p] of this.byId) {
      this.byId.delete(id);
      p.fail('gone');
    }
    this.stop();
  }

  private sweep(): void {
    const now = this.now();
    // Insertion order is deadline order (one fixed timeout), so stop at the first live one.
    for (const [id, p] of this.byId) {
      if (p.deadline > now) break;
      this.byId.delete(id);
      p.fail('timeout');
    }
    if (this.byId.size === 0) this.stop();
  }

  private stop(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }
}
