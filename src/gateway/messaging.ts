/**
 * What a client's messages do: `send` and `publish` are kept in their streams on every replica
 * first, then delivered, then acked (`delivered`, `stored`, `no_subscribers`; `offline` only with
 * storage off); `history` pages a conversation or a room; after a welcome the device gets its
 * mailbox (or, with `since`, everything after that message), then `synced`.
 */
import { roomTopic, userTopic } from '../core/index.js';
import { ChatError, ErrorCode, encodeHistory, encodeMessage, encodeMessageAck, encodeRoomMessage } from '../protocol/index.js';
import type { HistoryFrame, PublishFrame, SendFrame } from '../protocol/index.js';
import { replay } from '../streams/index.js';
import type { ReplaySink, StreamItem } from '../streams/index.js';
import type { GatewayContext } from './context.js';

/** The connection a message came from. */
export interface Sender {
  readonly session: string;
  readonly user: string;
  /** Writes an encoded frame to this connection. */
  write(data: string): boolean;
  /** Answers a frame that failed (a `ChatError` keeps its code; anything else is `unavailable`). */
  fail(err: unknown, id: string | undefined): void;
  /** Whether this connection joined the room. */
  inRoom(room: string): boolean;
}

/** `send`: a direct message (a note when `to` is the sender). */
export function sendDirect(ctx: GatewayContext, from: Sender, frame: SendFrame): void {
  ctx.stats.directMessages++;
  const user = from.user;
  const note = frame.to === user;
  const ts = ctx.clock.now();
  const msg = ctx.messageIds.next();
  const data = encodeMessage(msg, user, frame.to, frame.body, ts);
  const deliver = (): Promise<number> => {
    const toRecipient = ctx.router.publish(userTopic(frame.to), data, note ? from.session : undefined, { msg, confirm: !note });
    if (!note) {
      // Copy to the sender's other devices; the ack speaks only of the recipient.
      ctx.router.publish(userTopic(user), data, from.session, { msg, confirm: false }).catch((err: unknown) => {
        ctx.log.warn({ err, user }, 'could not copy a message to the sender\'s other devices');
      });
    }
    return toRecipient;
  };
  const streams = ctx.streams;
  const answer = (status: string): void => { from.write(encodeMessageAck(frame.id, status, msg, ts)); };
  if (!streams) {
    deliver().then((n) => answer(n > 0 || note ? 'delivered' : 'offline'), (err: unknown) => from.fail(err, frame.id));
    return;
  }
  // Kept before delivered: a write that fails delivers nothing, and a device that connects after
  // the delivery found nobody reads the message from its mailbox (the append landed first).
  const items: StreamItem[] = note
    ? [{ stream: userTopic(user), entry: { id: msg, with: user, frame: data, pending: false } }]
    : [
      { stream: userTopic(frame.to), entry: { id: msg, with: user, frame: data, pending: true } },
      { stream: userTopic(user), entry: { id: msg, with: frame.to, frame: data, pending: false } },
    ];
  streams.write(items).then(deliver).then((n) => {
    if (note) return answer('delivered');
    if (n > 0) {
      streams.clear(userTopic(frame.to), [msg]);
      return answer('delivered');
    }
    answer('stored');
  }, (err: unknown) => from.fail(err, frame.id));
}

/** `publish`: a room message, kept in the room's stream whether or not anyone gets it now. */
export function publishToRoom(ctx: GatewayContext, from: Sender, frame: PublishFrame): void {
  if (!from.inRoom(frame.room)) throw new ChatError(ErrorCode.NotMember, `join room "${frame.room}" before publishing to it`);
  ctx.stats.roomMessages++;
  const ts = ctx.clock.now();
  const msg = ctx.messageIds.next();
  const data = encodeRoomMessage(msg, frame.room, from.user, frame.body, ts);
  const topic = roomTopic(frame.room);
  const deliver = (): Promise<number> => ctx.router.publish(topic, data, from.session, { msg });
  const kept = ctx.streams
    ? ctx.streams.write([{ stream: topic, entry: { id: msg, with: '', frame: data, pending: false } }]).then(deliver)
    : deliver();
  kept.then(
    (n) => { from.write(encodeMessageAck(frame.id, n > 0 ? 'delivered' : 'no_subscribers', msg, ts)); },
    (err: unknown) => from.fail(err, frame.id),
  );
}

/** `history`: a page of a conversation (`with`) or of a room the connection joined. */
export function readHistory(ctx: GatewayContext, from: Sender, frame: HistoryFrame): void {
  if (frame.room !== undefined && !from.inRoom(frame.room)) {
    throw new ChatError(ErrorCode.NotMember, `join room "${frame.room}" before reading its history`);
  }
  const streams = ctx.streams;
  if (!streams) {
    from.write(encodeHistory(frame.id, [], false));
    return;
  }
  const stream = frame.room !== undefined ? roomTopic(frame.room) : userTopic(from.user);
  streams.read(stream, {
    ...(frame.with !== undefined && { with: frame.with }), ...(frame.before !== undefined && { before: frame.before }),
    limit: frame.limit, from: 'newest',
  }).then(
    (page) => {
      if (ctx.streamStats) ctx.streamStats.historyReads++;
      from.write(encodeHistory(frame.id, page.entries.map((e) => e.frame), page.more));
    },
    (err: unknown) => from.fail(err, frame.id),
  );
}

/**
 * After a welcome: the mailbox (or everything after `since`), then `synced` with how many were
 * sent. When no replica of the user's stream answers, an `unavailable` error instead of `synced`
 * (reconnecting retries it).
 */
export function syncDevice(ctx: GatewayContext, user: string, since: string | undefined, sink: ReplaySink & Pick<Sender, 'fail'>): Promise<void> {
  const streams = ctx.streams;
  if (!streams) {
    sink.write('{"type":"synced","count":0}');
    return Promise.resolve();
  }
  return replay(streams, user, since, sink).then(
    (count) => {
      if (ctx.streamStats) {
        if (since === undefined) ctx.streamStats.mailboxReplayed += count;
        else ctx.streamStats.resumeReplayed += count;
      }
      sink.write(`{"type":"synced","count":${count}}`);
    },
    (err: unknown) => sink.fail(err instanceof ChatError ? new ChatError(ErrorCode.Unavailable, `could not read your ${since === undefined ? 'mailbox' : 'stream'} now (${err.message}); reconnect to retry`) : err, undefined),
  );
}
