/**
 * A connection's presence: `presence` queries and the users it watches (`watch`/`unwatch`,
 * `presence_change` events). Every registration with the router is undone when the connection
 * goes, also one that completes after it went.
 */
import { topicName, userTopic } from '../core/index.js';
import type { Router, Topic } from '../core/index.js';
import { ChatError, ErrorCode, MAX_WATCHED_PER_CONNECTION } from '../protocol/index.js';
import type { PresenceStatus, ServerFrame } from '../protocol/index.js';

/** What the watches need from their connection. */
export interface WatchOwner {
  send(frame: ServerFrame): boolean;
  /** Answers a frame with an `ack` carrying `users`. */
  ack(id: string | undefined, extra: { users: Record<string, PresenceStatus> }): void;
  fail(err: unknown, id: string | undefined): void;
  closed(): boolean;
}

/** The watched users of one connection. Not shared; all methods may be called at any time. */
export class Watches {
  private readonly watched = new Set<string>();
  private readonly onPresence = (topic: Topic, online: boolean): void => {
    this.owner.send({ type: 'presence_change', user: topicName(topic), status: online ? 'online' : 'offline' });
  };

  constructor(private readonly router: Router, private readonly owner: WatchOwner) {}

  /** `presence`: who of these is online now. */
  query(users: readonly string[], id: string | undefined): void {
    this.router.online(users.map(userTopic)).then(
      (map) => {
        const status = statusRecord(users, (u) => map.get(userTopic(u)) === true);
        this.owner.send(id === undefined ? { type: 'presence', users: status } : { type: 'presence', id, users: status });
      },
      (err: unknown) => this.owner.fail(err, id),
    );
  }

  /** `watch`: acked with the users' current status once every registration completed. */
  watch(users: readonly string[], id: string | undefined): void {
    const { router } = this;
    const fresh = users.filter((u) => !this.watched.has(u));
    if (this.watched.size + fresh.length > MAX_WATCHED_PER_CONNECTION) {
      throw new ChatError(ErrorCode.BadRequest, `a connection may watch at most ${MAX_WATCHED_PER_CONNECTION} users (watching ${this.watched.size})`);
    }
    for (const u of fresh) this.watched.add(u);
    // A watch completes asynchronously; by then the client may have unwatched or gone. Whatever
    // is no longer wanted is unregistered here, so no registration outlives its connection.
    Promise.allSettled(users.map((u) => router.watch(userTopic(u), this.onPresence))).then((results) => {
      let failure: unknown;
      results.forEach((r, i) => {
        const u = users[i]!;
        if (r.status === 'rejected') {
          failure ??= r.reason;
          return;
        }
        if (this.owner.closed() || !this.watched.has(u)) router.unwatch(userTopic(u), this.onPresence);
      });
      if (this.owner.closed()) return;
      if (failure !== undefined) {
        // The frame failed as a whole: undo the users it added (not those watched before it).
        for (const u of fresh) {
          if (this.watched.delete(u)) router.unwatch(userTopic(u), this.onPresence);
        }
        return this.owner.fail(failure, id);
      }
      this.owner.ack(id, { users: statusRecord(users, (_u, i) => (results[i] as PromiseFulfilledResult<boolean>).value) });
    });
  }

  /** `unwatch`. */
  unwatch(users: readonly string[]): void {
    for (const u of users) {
      if (this.watched.delete(u)) this.router.unwatch(userTopic(u), this.onPresence);
    }
  }

  /** The connection went: every watch is undone. */
  clear(): void {
    for (const u of this.watched) this.router.unwatch(userTopic(u), this.onPresence);
    this.watched.clear();
  }
}

function statusRecord(users: readonly string[], online: (u: string, i: number) => boolean): Record<string, PresenceStatus> {
  const out: Record<string, PresenceStatus> = Object.create(null) as Record<string, PresenceStatus>;
  users.forEach((u, i) => { out[u] = online(u, i) ? 'online' : 'offline'; });
  return out;
}
