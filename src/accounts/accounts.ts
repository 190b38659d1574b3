/**
 * What a user has, kept like messages (on the replicas of their account's group, on disk with
 * `--data-dir`): room memberships and read markers (names.ts), and the summaries a client's first
 * screen needs (`rooms`, `members`, `conversations`), computed where the streams are kept.
 */
import { ChatError, ErrorCode, MAX_MEMBERSHIPS, MAX_UNREAD_COUNT } from '../protocol/index.js';
import type { ConversationSummary, RoomSummary } from '../protocol/index.js';
import { roomTopic, userTopic } from '../core/index.js';
import type { QueryAnswer, RangeQuery, RangeResult, StreamItem, StreamQuerySpec } from '../streams/index.js';
import { accountGroup, markerStream, memberStream, membersGroup, membershipStream, successorId, targetKey } from './names.js';
import type { ReadTarget } from './names.js';

/** What accounts need of the stream layer (`StreamService`). */
export interface AccountStreams {
  write(items: readonly StreamItem[]): Promise<void>;
  read(stream: string, q: RangeQuery): Promise<RangeResult>;
  queryAll(queries: readonly StreamQuerySpec[]): Promise<QueryAnswer[]>;
  /** Like queryAll, with undefined for a query none of whose replicas answered. */
  query(queries: readonly StreamQuerySpec[]): Promise<Array<QueryAnswer | undefined>>;
}

/** A user's account as loaded: rooms (with when they were joined) and read markers by target key. */
export interface AccountState {
  /** Room → id of the join (messages before it are not unread). */
  readonly rooms: ReadonlyMap<string, string>;
  /** `u:<peer>` / `r:<room>` → the message read up to. */
  readonly markers: ReadonlyMap<string, string>;
}

/** Entries of a group read per query while loading (an account holds ≤ 1000 rooms and its markers). */
const GROUP_PAGE = 10_000;

/** Options of {@link Accounts}. */
export interface AccountsOptions {
  readonly streams: AccountStreams;
  /** Ids for membership changes (the node's message clock: they sort with messages). */
  readonly nextId: () => string;
}

/** Accounts of every user. Stateless apart from its options; every method may be called concurrently. */
export class Accounts {
  constructor(private readonly opts: AccountsOptions) {}

  /** The user's rooms and read markers (merged over the replicas); `unavailable` when none answers. */
  async load(user: string): Promise<AccountState> {
    const rooms = new Map<string, string>();
    const markers = new Map<string, string>();
    for (const { stream, entry } of await this.group(accountGroup(user))) {
      const key = stream.slice(stream.indexOf('/') + 1);
      if (key.startsWith('j:')) {
        if (entry.frame === 'join') rooms.set(key.slice(2), entry.id);
      } else {
        markers.set(key, entry.id);
      }
    }
    return { rooms, markers };
  }

  /**
   * Makes `user` (a member of `current` rooms) a member of `room`; resolves with the id of the
   * change once it is kept. Throws at once (`bad_request`) when that would pass the limit.
   */
  join(user: string, room: string, current: number): Promise<string> {
    if (current >= MAX_MEMBERSHIPS) {
      throw new ChatError(ErrorCode.BadRequest, `a user may be a member of at most ${MAX_MEMBERSHIPS} rooms; leave one first`);
    }
    return this.setMembership(user, room, 'join');
  }

  /** Ends `user`'s membership of `room`. */
  leave(user: string, room: string): Promise<string> {
    return this.setMembership(user, room, 'leave');
  }

  private async setMembership(user: string, room: string, frame: 'join' | 'leave'): Promise<string> {
    const id = this.opts.nextId();
    const entry = { id, with: '', frame, pending: false };
    await this.opts.streams.write([
      { stream: membershipStream(user, room), entry },
      { stream: memberStream(room, user), entry },
    ]);
    return id;
  }

  /**
   * Marks `target` read up to `msg`, which must be a kept message of that conversation or room
   * (else `bad_request`). A marker only moves forward: an older `msg` changes nothing.
   */
  async markRead(user: string, target: ReadTarget, msg: string): Promise<void> {
    const stream = 'with' in target ? userTopic(user) : roomTopic(target.room);
    const page = await this.opts.streams.read(stream, {
      ...('with' in target && { with: target.with }), before: successorId(msg), limit: 1, from: 'newest',
    });
    if (page.entries[0]?.id !== msg) {
      const where = 'with' in target ? `your conversation with ${target.with}` : `room "${target.room}"`;
      throw new ChatError(ErrorCode.BadRequest, `message ${msg} is not a kept message of ${where}`);
    }
    await this.opts.streams.write([{ stream: markerStream(user, target), entry: { id: msg, with: '', frame: '', pending: false } }]);
  }

  /**
   * The user's rooms: members, last message, unread (after the marker or the join), most recent
   * activity first. `known`: the account as the caller already holds it (else it is read).
   */
  async rooms(user: string, known?: AccountState): Promise<RoomSummary[]> {
    const state = known ?? await this.load(user);
    const rooms = [...state.rooms];
    const queries = rooms.flatMap(([room, joinedAt]): StreamQuerySpec[] => {
      const marker = state.markers.get(targetKey({ room })) ?? '';
      return [
        { kind: 'tail', stream: roomTopic(room), after: marker > joinedAt ? marker : joinedAt, self: user },
        { kind: 'group', stream: membersGroup(room), limit: 0 },
      ];
    });
    const answers = await this.opts.streams.queryAll(queries);
    const out = rooms.map(([room, joinedAt], i) => {
      const tail = answers[2 * i]!;
      const last = tail.entries[0]?.entry;
      return { room, members: answers[2 * i + 1]!.count, last: last?.frame, unread: Math.min(tail.count, MAX_UNREAD_COUNT), activity: last && last.id > joinedAt ? last.id : joinedAt };
    });
    out.sort((a, b) => (a.activity < b.activity ? 1 : a.activity > b.activity ? -1 : 0));
    return out.map(({ activity: _activity, ...r }) => r);
  }

  /** A page of a room's members (user ids after `after`, ascending). */
  async members(room: string, after: string | undefined, limit: number): Promise<{ users: string[]; more: boolean }> {
    const users: string[] = [];
    const group = membersGroup(room);
    let cursor = after === undefined ? undefined : memberStream(room, after);
    for (;;) {
      const [page] = await this.opts.streams.queryAll([{ kind: 'group', stream: group, ...(cursor !== undefined && { after: cursor }), limit: limit - users.length }]);
      for (const { stream, entry } of page!.entries) if (entry.frame === 'join') users.push(stream.slice(group.length + 1));
      const last = page!.entries[page!.entries.length - 1];
      if (!page!.more || last === undefined) return { users, more: false };
      if (users.length >= limit) return { users, more: true };
      cursor = last.stream;
    }
  }

  /** A page of the user's conversations, most recent first, with unread counts (`known`: as for {@link rooms}). */
  async conversations(user: string, before: string | undefined, limit: number, known?: AccountState): Promise<{ conversations: ConversationSummary[]; more: boolean }> {
    const state = known ?? await this.load(user);
    const markers = new Map<string, string>();
    for (const [key, msg] of state.markers) if (key.startsWith('u:')) markers.set(key.slice(2), msg);
    const [page] = await this.opts.streams.queryAll([{ kind: 'conversations', stream: userTopic(user), self: user, ...(before !== undefined && { before }), limit, markers }]);
    // How far each other party read (their marker of this conversation), for "seen" after a reload;
    // best effort: a party whose account does not answer now is shown without it.
    const peers = page!.entries.map(({ entry }) => entry.with);
    const seen = await this.opts.streams.query(peers.map((peer): StreamQuerySpec => ({ kind: 'tail', stream: markerStream(peer, { with: user }), self: user })));
    return {
      conversations: page!.entries.map(({ entry }, i) => {
        const read = peers[i] === user ? undefined : seen[i]?.entries[0]?.entry.id;
        return { with: entry.with, last: entry.frame, unread: page!.counts[i] ?? 0, ...(read !== undefined && { seen: read }) };
      }),
      more: page!.more,
    };
  }

  /** Every entry of a group (paged), merged over its replicas. */
  private async group(group: string): Promise<QueryAnswer['entries']> {
    const out: Array<QueryAnswer['entries'][number]> = [];
    let after: string | undefined;
    for (;;) {
      const [page] = await this.opts.streams.queryAll([{ kind: 'group', stream: group, ...(after !== undefined && { after }), limit: GROUP_PAGE }]);
      out.push(...page!.entries);
      const last = page!.entries[page!.entries.length - 1];
      if (!page!.more || last === undefined) break;
      after = last.stream;
    }
    return out;
  }
}
