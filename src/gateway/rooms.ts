/**
 * A connection's view of its user's account: the rooms it is subscribed to (the user's memberships,
 * restored before the welcome and kept in step by `joined`/`left` from the user's other devices)
 * and the read markers it knows (so that a `read` that does not move a marker forward is not
 * announced). Membership belongs to the user: `join`/`leave` are kept in the account, then told to
 * every other device through the user's topic.
 */
import { roomTopic, userTopic } from '../core/index.js';
import type { Subscriber } from '../core/index.js';
import type { Accounts, AccountState, ReadTarget } from '../accounts/index.js';
import { targetKey } from '../accounts/index.js';
import { ChatError, ErrorCode, encodeMembership, encodeReadEvent } from '../protocol/index.js';
import type { JoinFrame, LeaveFrame, ReadFrame } from '../protocol/index.js';
import type { GatewayContext } from './context.js';

/** What the rooms need of their connection: the connection itself, as the router knows it. */
export interface RoomsOwner extends Subscriber {
  /** The connection's user (set before the rooms are used). */
  readonly user: string;
  /** Writes a frame past the interception of account events. */
  writeRaw(data: string): boolean;
  ack(id: string | undefined): void;
  fail(err: unknown, id: string | undefined): void;
  closed(): boolean;
}

const JOINED_HEAD = '{"type":"joined","room":"';
const LEFT_HEAD = '{"type":"left","room":"';
const READ_HEAD = '{"type":"read","user":"';

/**
 * The rooms and read markers of one connection. Not shared. Both maps are allocated at their first
 * entry: a connection whose user has no room and no read marker keeps none.
 */
export class ConnectionRooms {
  /** Room → id of the join when known (restored, or joined here), for `rooms` without a read. */
  private rooms: Map<string, string | undefined> | undefined;
  private markers: Map<string, string> | undefined;
  /** The account was read at connect: the maps above follow it since. */
  private restored = false;

  constructor(private readonly ctx: GatewayContext & { readonly accounts: Accounts }, private readonly owner: RoomsOwner) {}

  /** Whether the connection's user is a member of the room (as far as this connection knows). */
  has(room: string): boolean {
    return this.rooms?.has(room) === true;
  }

  /**
   * Before the welcome: loads the account and subscribes to every room of it, so that a room
   * message published after the welcome reaches this connection. Rejects when the account could
   * not be read (the connection then starts without its rooms and is told so).
   */
  async restore(): Promise<void> {
    const state = await this.ctx.accounts.load(this.owner.user);
    for (const [key, msg] of state.markers) this.mark(key, msg);
    const joins: Array<Promise<void>> = [];
    for (const [room, joinedAt] of state.rooms) {
      if (this.has(room)) continue;
      this.roomMap().set(room, joinedAt);
      joins.push(this.ctx.router.subscribe(roomTopic(room), this.owner));
    }
    this.restored = true;
    await Promise.all(joins);
  }

  /**
   * The account as this connection follows it (restored at connect, kept in step by its own frames
   * and the events of the other devices), or undefined when it cannot stand in for a read: not
   * restored, or a room joined elsewhere whose join time is unknown here.
   */
  snapshot(): AccountState | undefined {
    if (!this.restored) return undefined;
    const rooms = new Map<string, string>();
    for (const [room, joinedAt] of this.rooms ?? []) {
      if (joinedAt === undefined) return undefined;
      rooms.set(room, joinedAt);
    }
    return { rooms, markers: new Map(this.markers) };
  }

  /**
   * `join`: kept in the account, then the other devices told; acked once it is kept and the room's
   * home knows this connection (a publish after the ack reaches it). The connection is a member at
   * once, so a `publish` pipelined behind the `join` is accepted; a join that cannot be kept is
   * undone and answered with the error.
   */
  join(frame: JoinFrame): void {
    const { room } = frame;
    if (this.has(room)) return this.owner.ack(frame.id);
    let kept: Promise<string>;
    try {
      kept = this.ctx.accounts.join(this.owner.user, room, this.rooms?.size ?? 0);
    } catch (err) {
      return this.owner.fail(err, frame.id);
    }
    this.roomMap().set(room, undefined);
    const subscribed = this.ctx.router.subscribe(roomTopic(room), this.owner);
    Promise.all([kept, subscribed]).then(([joinedAt]) => {
      if (this.has(room)) this.roomMap().set(room, joinedAt);
      this.tellDevices(encodeMembership('joined', room));
      if (!this.owner.closed()) this.owner.ack(frame.id);
    }, (err: unknown) => {
      if (this.has(room)) this.drop(room);
      this.owner.fail(err, frame.id);
    });
  }

  /** `leave`: ends the membership on every device (this connection at once). Leaving a room one is not in is acked too. */
  leave(frame: LeaveFrame): void {
    const { room } = frame;
    if (!this.has(room)) return this.owner.ack(frame.id);
    this.drop(room);
    this.ctx.accounts.leave(this.owner.user, room).then(() => {
      this.tellDevices(encodeMembership('left', room));
      if (!this.owner.closed()) this.owner.ack(frame.id);
    }, (err: unknown) => {
      // Still a member in the account: this connection follows the room again.
      if (!this.owner.closed() && !this.has(room)) {
        this.roomMap().set(room, undefined);
        void this.ctx.router.subscribe(roomTopic(room), this.owner);
      }
      this.owner.fail(err, frame.id);
    });
  }

  /** `read`: the marker kept, then every device of the reader (and, for a conversation, of the other party) told. */
  read(frame: ReadFrame): void {
    const target: ReadTarget = frame.with !== undefined ? { with: frame.with } : { room: frame.room! };
    if ('room' in target && !this.has(target.room)) {
      return this.owner.fail(notMember(target.room, 'marking it read'), frame.id);
    }
    const user = this.owner.user;
    this.ctx.accounts.markRead(user, target, frame.msg).then(() => {
      if (this.owner.closed()) return;
      this.owner.ack(frame.id);
      if (!this.mark(targetKey(target), frame.msg)) return; // not forward: nothing to tell
      const event = encodeReadEvent(user, target, frame.msg);
      this.publish(userTopic(user), event);
      if ('with' in target && target.with !== user) this.publish(userTopic(target.with), event);
    }, (err: unknown) => this.owner.fail(err, frame.id));
  }

  /**
   * A frame on its way to this connection: account events of its own user update the connection
   * first (a `joined` is written once the room's subscription is in place, so a client that saw it
   * gets the room's next message). Returns true when the frame was taken care of.
   */
  intercept(data: string): boolean {
    if (data.startsWith(JOINED_HEAD)) {
      const room = data.slice(JOINED_HEAD.length, data.indexOf('"', JOINED_HEAD.length));
      if (this.has(room)) return true; // this connection joined it itself
      this.roomMap().set(room, undefined);
      void this.ctx.router.subscribe(roomTopic(room), this.owner).then(() => {
        if (!this.owner.closed() && this.has(room)) this.owner.writeRaw(data);
      });
      return true;
    }
    if (data.startsWith(LEFT_HEAD)) {
      const room = data.slice(LEFT_HEAD.length, data.indexOf('"', LEFT_HEAD.length));
      if (!this.has(room)) return true;
      this.drop(room);
      return false;
    }
    if (data.startsWith(READ_HEAD + this.owner.user + '"')) {
      const m = /"(with|room)":"([^"]+)","msg":"([^"]+)"/.exec(data);
      if (m) this.mark(m[1] === 'with' ? `u:${m[2]}` : `r:${m[2]}`, m[3]!);
    }
    return false;
  }

  /** The connection went: its room subscriptions go. */
  clear(): void {
    for (const room of this.rooms?.keys() ?? []) this.ctx.router.unsubscribe(roomTopic(room), this.owner);
    this.rooms = undefined;
  }

  private roomMap(): Map<string, string | undefined> {
    return this.rooms ??= new Map();
  }

  /** Moves the marker of `key` forward to `msg`; false when it was there or further already. */
  private mark(key: string, msg: string): boolean {
    if ((this.markers?.get(key) ?? '') >= msg) return false;
    (this.markers ??= new Map()).set(key, msg);
    return true;
  }

  private drop(room: string): void {
    this.rooms?.delete(room);
    this.ctx.router.unsubscribe(roomTopic(room), this.owner);
  }

  /** To the user's other connections (this one already knows). */
  private tellDevices(event: string): void {
    this.ctx.router.publish(userTopic(this.owner.user), event, this.owner.session, { confirm: false }).catch((err: unknown) => {
      this.ctx.log.warn({ err, user: this.owner.user }, 'could not tell the user\'s other devices');
    });
  }

  private publish(topic: ReturnType<typeof userTopic>, event: string): void {
    this.ctx.router.publish(topic, event, undefined, { confirm: false }).catch((err: unknown) => {
      this.ctx.log.debug({ err, topic }, 'could not send a read event');
    });
  }
}

/** `not_member` for a room the user has not joined. */
export function notMember(room: string, doing: string): ChatError {
  return new ChatError(ErrorCode.NotMember, `join room "${room}" before ${doing}`);
}
