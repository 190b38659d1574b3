import type { Topic } from '../core/index.js';

/**
 * While a node drains, a user whose last connection here closed stays registered for `lingerMs`,
 * so watchers see no offline flap when the client reconnects to another node meanwhile; then
 * `release(topic)` tells the home (unless a connection came back here). Not thread-safe; timers only.
 */
export class DrainLinger {
  private draining = false;
  private readonly held = new Map<Topic, NodeJS.Timeout>();
  private waiters: Array<() => void> = [];

  constructor(private readonly lingerMs: number, private readonly release: (topic: Topic) => void) {}

  /** From now on, {@link hold} keeps user topics. */
  start(): void {
    this.draining = true;
  }

  /** The last local connection of `topic` closed: true when it is held (do not tell the home now). */
  hold(topic: Topic): boolean {
    if (!this.draining || !topic.startsWith('u:')) return false;
    const t = setTimeout(() => {
      this.held.delete(topic);
      this.release(topic);
      this.settled();
    }, this.lingerMs);
    t.unref();
    this.held.set(topic, t);
    return true;
  }

  /** A connection of `topic` came back here: it is no longer held. */
  cancel(topic: Topic): void {
    const t = this.held.get(topic);
    if (t === undefined) return;
    clearTimeout(t);
    this.held.delete(topic);
    this.settled();
  }

  /** Resolves once nothing is held (at most `lingerMs` after the last hold). */
  done(): Promise<void> {
    if (this.held.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Drops every hold without releasing (shutting down). */
  close(): void {
    for (const t of this.held.values()) clearTimeout(t);
    this.held.clear();
    this.settled();
  }

  private settled(): void {
    if (this.held.size > 0) return;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
