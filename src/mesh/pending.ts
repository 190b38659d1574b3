/**
 * Requests waiting for a peer's answer, by id, each tied to the peer it went to (so a link that
 * goes down fails exactly its own requests) and bounded by a timeout.
 */
export class PendingRequests<T> {
  private readonly byId = new Map<number, { peer: string; resolve: (v: T) => void; fail: (why: 'gone' | 'timeout') => void; timer: NodeJS.Timeout }>();
  private seq = 0;

  constructor(private readonly timeoutMs: number) {}

  /** Registers a request to `peer`; returns its id. */
  add(peer: string, resolve: (v: T) => void, fail: (why: 'gone' | 'timeout') => void): number {
    const id = ++this.seq;
    const timer = setTimeout(() => {
      if (this.byId.delete(id)) fail('timeout');
    }, this.timeoutMs);
    timer.unref();
    this.byId.set(id, { peer, resolve, fail, timer });
    return id;
  }

  /** Completes request `id` if it is pending and went to `peer`. */
  settle(id: number, peer: string, value: T): boolean {
    const p = this.byId.get(id);
    if (!p || p.peer !== peer) return false;
    this.byId.delete(id);
    clearTimeout(p.timer);
    p.resolve(value);
    return true;
  }

  /** Fails request `id` (e.g. it could not be sent). */
  fail(id: number, why: 'gone' | 'timeout'): void {
    const p = this.byId.get(id);
    if (!p) return;
    this.byId.delete(id);
    clearTimeout(p.timer);
    p.fail(why);
  }

  /** Fails every request that went to `peer` (its link went down). */
  failPeer(peer: string): void {
    for (const [id, p] of this.byId) {
      if (p.peer !== peer) continue;
      this.byId.delete(id);
      clearTimeout(p.timer);
      p.fail('gone');
    }
  }

  get size(): number {
    return this.byId.size;
  }
}
