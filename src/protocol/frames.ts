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

/** Every frame a client may send. */
export type ClientFrame =
  | HelloFrame | SendFrame | JoinFrame | LeaveFrame | PublishFrame | PresenceFrame | WatchFrame | UnwatchFrame
  | RefreshFrame | HistoryFrame;
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
  | { type: 'synced'; count: number };

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
