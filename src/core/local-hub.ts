import type { Topic } from './topic.js';

/** A local connection as the hub sees it. */
export interface Subscriber {
  /** Connection id, unique mesh-wide. */
  readonly session: string;
  /**
   * Writes an encoded frame to the client. Returns true when it was handed to the socket, false
   * when the connection is closing or was just dropped as a slow consumer. Never throws. `bytes`,
   * when given, is `data` already encoded as UTF-8 (shared by every connection a frame goes to,
   * so it is encoded once); the subscriber must not modify it.
   */
  write(data: string, bytes?: Buffer): boolean;
}

/**
 * The topics of this node's own connections: the truth this node is authoritative for. Pure
 * bookkeeping, no I/O besides calling `Subscriber.write`.
 */
export class LocalHub {
  private readonly subs = new Map<Topic, Map<string, Subscriber>>();
  private users = 0;

  /** Adds `sub` to `topic`. Returns true when the topic was not owned here before. Idempotent. */
  add(topic: Topic, sub: Subscriber): boolean {
    let set = this.subs.get(topic);
    const gained = set === undefined;
    if (!set) {
      set = new Map();
      this.subs.set(topic, set);
      if (topic.startsWith('u:')) this.users++;
    }
    set.set(sub.session, sub);
    return gained;
  }

  /** Removes `sub` from `topic`. Returns true when that was the topic's last local subscriber. */
  remove(topic: Topic, sub: Subscriber): boolean {
    const set = this.subs.get(topic);
    if (!set || !set.delete(sub.session)) return false;
    if (set.size > 0) return false;
    this.subs.delete(topic);
    if (topic.startsWith('u:')) this.users--;
    return true;
  }

  /**
   * Writes `data` to every local subscriber of `topic` except the connection `exceptSession`.
   * Returns how many connections it was written to.
   */
  deliver(topic: Topic, data: string, exceptSession?: string): number {
    const set = this.subs.get(topic);
    if (!set) return 0;
    let written = 0;
    // A write may drop a slow consumer, which deletes it from this very map: a Map iterator
    // skips deleted entries and goes on, so no copy of the set is needed.
    if (set.size === 1) {
      for (const sub of set.values()) if (sub.session !== exceptSession && sub.write(data)) written++;
      return written;
    }
    // Many connections (a room, a user's devices): the frame is encoded to UTF-8 once for all.
    const bytes = Buffer.from(data);
    for (const sub of set.values()) {
      if (sub.session !== exceptSession && sub.write(data, bytes)) written++;
    }
    return written;
  }

  /** True when `session` is subscribed to `topic` here. */
  isSubscribed(topic: Topic, session: string): boolean {
    return this.subs.get(topic)?.has(session) ?? false;
  }

  /** Number of local connections subscribed to `topic`. */
  count(topic: Topic): number {
    return this.subs.get(topic)?.size ?? 0;
  }

  /** True when at least one local connection holds `topic`. */
  owns(topic: Topic): boolean {
    return this.subs.has(topic);
  }

  /** Every topic owned here, with its local connection count. */
  entries(): IterableIterator<[Topic, number]> {
    const it = this.subs.entries();
    return (function* () {
      for (const [t, s] of it) yield [t, s.size] as [Topic, number];
    })();
  }

  /** Number of distinct users with a connection here. */
  get userCount(): number {
    return this.users;
  }

  /** Number of topics owned here. */
  get size(): number {
    return this.subs.size;
  }
}
