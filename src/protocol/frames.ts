/**
 * Client frames as a discriminated union on `type`. Inbound frames are produced only by
 * `decodeClientFrame` (decode.ts), so every field here has been validated.
 */
import type { ErrorCode } from './errors.js';

/** `since`: resume after this message id instead of the mailbox. */
export interface HelloFrame { readonly type: 'hello'; readonly id?: string; readonly token?: string; readonly user?: string; readonly since?: string }
export interface SendFrame { readonly type: 'send'; readonly id?: string; readonly to: string; readonly body: string }
export interface JoinFrame { readonly type: 'join'; readonly id?: string; readonly room: string }
export interface LeaveFrame { readonly type: 'leave'; readonly id?: string; readonly room: string }
export interface PublishFrame { readonly type: 'publish'; readonly id?: string; readonly room: string; readonly body: string }
export interface PresenceFrame { readonly type: 'presence'; readonly id?: string; readonly users: readonly string[] }
export interface WatchFrame { readonly type: 'watch'; readonly id?: string; readonly users: readonly string[] }
export interface UnwatchFrame { readonly type: 'unwatch'; readonly id?: string; readonly users: readonly string[] }
/** A new token for the connection's user, before the old one expires (`--auth jwt`). */
export interface RefreshFrame { readonly type: 'refresh'; readonly id?: string; readonly token: string }

/** A page of a conversation (`with`) or of a room's stream (`room`): exactly one of the two. */
export interface HistoryFrame {
  readonly type: 'history'; readonly id?: string; readonly with?: string; readonly room?: string; readonly before?: string; readonly limit: number;
}

/** The user's rooms, with members, last message and unread count. */
export interface RoomsFrame { readonly type: 'rooms'; readonly id?: string }
/** A page of a room's members, by user id after `after`. */
export interface MembersFrame { readonly type: 'members'; readonly id?: string; readonly room: string; readonly after?: string; readonly limit: number }
/** A page of the user's direct conversations, most recent first, before the message `before`. */
export interface ConversationsFrame { readonly type: 'conversations'; readonly id?: string; readonly before?: string; readonly limit: number }
/** Marks a conversation (`with`) or a room read up to `msg`: exactly one of `with` and `room`. */
export interface ReadFrame { readonly type: 'read'; readonly id?: string; readonly with?: string; readonly room?: string; readonly msg: string }
/** The user is typing to `to` or in `room` (exactly one); no answer, never stored. */
export interface TypingFrame { readonly type: 'typing'; readonly id?: string; readonly to?: string; readonly room?: string }

/** Every frame a client may send. */
export type ClientFrame =
  | HelloFrame | SendFrame | JoinFrame | LeaveFrame | PublishFrame | PresenceFrame | WatchFrame | UnwatchFrame
  | RefreshFrame | HistoryFrame | RoomsFrame | MembersFrame | ConversationsFrame | ReadFrame | TypingFrame;
export type ClientFrameType = ClientFrame['type'];

export type PresenceStatus = 'online' | 'offline';

/** Frames the server sends. */
export type ServerFrame =
  | { type: 'welcome'; id?: string; user: string; node: string; session: string }
  | { type: 'ack'; id?: string; status?: string; msg?: string; ts?: number; users?: Record<string, PresenceStatus> }
  | { type: 'message'; msg: string; from: string; to: string; body: string; ts: number }
  | { type: 'room_message'; msg: string; room: string; from: string; body: string; ts: number }
  | { type: 'presence'; id?: string; users: Record<string, PresenceStatus> }
  | { type: 'presence_change'; user: string; status: PresenceStatus }
  | { type: 'error'; id?: string; code: ErrorCode; message: string }
  | { type: 'synced'; count: number }
  | { type: 'joined'; room: string }
  | { type: 'left'; room: string }
  | { type: 'members'; id?: string; room: string; members: Array<{ user: string; status: PresenceStatus }>; more: boolean };

/** Serializes a server frame for the wire. */
export function encodeServerFrame(frame: ServerFrame): string {
  return JSON.stringify(frame);
}

/*
 * Hot-path encoders: the same JSON as `encodeServerFrame`, built by hand. Safe because ids and
 * message ids are validated to characters JSON needs no escaping for ([A-Za-z0-9_.:@-]; ULIDs are
 * Crockford base32); only `body` and the client's request id go through JSON.stringify.
 */

/** `{"type":"message",...}` for a direct message. */
export function encodeMessage(msg: string, from: string, to: string, body: string, ts: number): string {
  return `{"type":"message","msg":"${msg}","from":"${from}","to":"${to}","body":${JSON.stringify(body)},"ts":${ts}}`;
}

/** `{"type":"room_message",...}` for a room message. */
export function encodeRoomMessage(msg: string, room: string, from: string, body: string, ts: number): string {
  return `{"type":"room_message","msg":"${msg}","room":"${room}","from":"${from}","body":${JSON.stringify(body)},"ts":${ts}}`;
}

/** The `ack` of a `send` or `publish`. */
export function encodeMessageAck(id: string | undefined, status: string, msg: string, ts: number): string {
  return `{"type":"ack",${id === undefined ? '' : `"id":${JSON.stringify(id)},`}"status":"${status}","msg":"${msg}","ts":${ts}}`;
}

/** The answer of a `history` request: `frames` are encoded message frames, oldest first. */
export function encodeHistory(id: string | undefined, frames: readonly string[], more: boolean): string {
  return `{"type":"history",${id === undefined ? '' : `"id":${JSON.stringify(id)},`}"messages":[${frames.join(',')}],"more":${more}}`;
}

/** `joined`/`left`: the user's membership changed on another device. */
export function encodeMembership(type: 'joined' | 'left', room: string): string {
  return `{"type":"${type}","room":"${room}"}`;
}

/** `read`: `user` read the conversation with `withUser` (or the room) up to `msg`. */
export function encodeReadEvent(user: string, target: { with: string } | { room: string }, msg: string): string {
  const where = 'with' in target ? `"with":"${target.with}"` : `"room":"${target.room}"`;
  return `{"type":"read","user":"${user}",${where},"msg":"${msg}"}`;
}

/** `typing`: `from` is typing to a user (`to`) or in a room. */
export function encodeTyping(from: string, target: { to: string } | { room: string }): string {
  const where = 'to' in target ? `"to":"${target.to}"` : `"room":"${target.room}"`;
  return `{"type":"typing","from":"${from}",${where}}`;
}

/** One room of a `rooms` answer; `last` is an encoded `room_message` frame or undefined. */
export interface RoomSummary { readonly room: string; readonly members: number; readonly last: string | undefined; readonly unread: number }

/** The answer of `rooms`. */
export function encodeRooms(id: string | undefined, rooms: readonly RoomSummary[]): string {
  const items = rooms.map((r) => `{"room":"${r.room}","members":${r.members},"last":${r.last ?? 'null'},"unread":${r.unread}}`);
  return `{"type":"rooms",${id === undefined ? '' : `"id":${JSON.stringify(id)},`}"rooms":[${items.join(',')}]}`;
}

/**
 * One conversation of a `conversations` answer; `last` is an encoded `message` frame; `seen`: the
 * message the other party read up to in it, when they have a read marker there.
 */
export interface ConversationSummary { readonly with: string; readonly last: string; readonly unread: number; readonly seen?: string }

/** The answer of `conversations`. */
export function encodeConversations(id: string | undefined, convs: readonly ConversationSummary[], more: boolean): string {
  const items = convs.map((c) => `{"with":"${c.with}","last":${c.last},"unread":${c.unread}${c.seen === undefined ? '' : `,"seen":"${c.seen}"`}}`);
  return `{"type":"conversations",${id === undefined ? '' : `"id":${JSON.stringify(id)},`}"conversations":[${items.join(',')}],"more":${more}}`;
}
