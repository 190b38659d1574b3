/**
 * The account frames that only read (`rooms`, `members`, `conversations`) and `typing`, which is
 * forwarded and never kept.
 */
import { roomTopic, userTopic } from '../core/index.js';
import type { Accounts, AccountState } from '../accounts/index.js';
import { TYPING_INTERVAL_MS, encodeConversations, encodeRooms, encodeServerFrame, encodeTyping } from '../protocol/index.js';
import type { ConversationsFrame, MembersFrame, RoomsFrame, TypingFrame } from '../protocol/index.js';
import type { GatewayContext } from './context.js';
import type { Sender } from './messaging.js';
import { notMember } from './rooms.js';

type Ctx = GatewayContext & { readonly accounts: Accounts };

/** `rooms`: the user's rooms with members, last message and unread, most recent activity first. */
export function listRooms(ctx: Ctx, from: Sender, frame: RoomsFrame, known: AccountState | undefined): void {
  ctx.accounts.rooms(from.user, known).then(
    (rooms) => { from.write(encodeRooms(frame.id, rooms)); },
    (err: unknown) => from.fail(err, frame.id),
  );
}

/** `members`: a page of a room's members with their status; members of the room only. */
export function listMembers(ctx: Ctx, from: Sender, frame: MembersFrame): void {
  if (!from.inRoom(frame.room)) throw notMember(frame.room, 'listing its members');
  ctx.accounts.members(frame.room, frame.after, frame.limit).then(async ({ users, more }) => {
    const online = users.length === 0 ? new Map() : await ctx.router.online(users.map(userTopic));
    const members = users.map((user) => ({ user, status: online.get(userTopic(user)) === true ? 'online' as const : 'offline' as const }));
    from.write(encodeServerFrame({ type: 'members', ...(frame.id !== undefined && { id: frame.id }), room: frame.room, members, more }));
  }).catch((err: unknown) => from.fail(err, frame.id));
}

/** `conversations`: a page of the user's direct conversations, most recent first. */
export function listConversations(ctx: Ctx, from: Sender, frame: ConversationsFrame, known: AccountState | undefined): void {
  ctx.accounts.conversations(from.user, frame.before, frame.limit, known).then(
    ({ conversations, more }) => { from.write(encodeConversations(frame.id, conversations, more)); },
    (err: unknown) => from.fail(err, frame.id),
  );
}

/** Targets a connection typed to recently, with when (monotonic ms); bounded. */
export class TypingThrottle {
  private readonly last = new Map<string, number>();
  constructor(private readonly monotonic: () => number) {}

  /** Whether a `typing` to `target` may be forwarded now (at most one per target per interval). */
  allow(target: string): boolean {
    const now = this.monotonic();
    const at = this.last.get(target);
    if (at !== undefined && now - at < TYPING_INTERVAL_MS) return false;
    if (this.last.size >= 1000) {
      for (const [k, t] of this.last) if (now - t >= TYPING_INTERVAL_MS) this.last.delete(k);
      if (this.last.size >= 1000) return false;
    }
    this.last.set(target, now);
    return true;
  }
}

/**
 * `typing`: forwarded to the other party's connections (or the room's other connections), at most
 * one per target per `TYPING_INTERVAL_MS`; to a room the user is not a member of, or over the
 * throttle, dropped silently (counted).
 */
export function forwardTyping(ctx: Ctx, from: Sender, frame: TypingFrame, throttle: TypingThrottle): void {
  if (frame.room !== undefined && !from.inRoom(frame.room)) {
    ctx.stats.typingDropped++;
    return;
  }
  const key = frame.to !== undefined ? `u:${frame.to}` : `r:${frame.room!}`;
  if (frame.to === from.user || !throttle.allow(key)) {
    ctx.stats.typingDropped++;
    return;
  }
  ctx.stats.typingForwarded++;
  const data = frame.to !== undefined ? encodeTyping(from.user, { to: frame.to }) : encodeTyping(from.user, { room: frame.room! });
  const topic = frame.to !== undefined ? userTopic(frame.to) : roomTopic(frame.room!);
  ctx.router.publish(topic, data, from.session, { confirm: false }).catch(() => { ctx.stats.typingDropped++; });
}
