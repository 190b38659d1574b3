/**
 * Summaries computed where streams are kept, so that a screen of many rooms and conversations costs
 * one call per replica node instead of a read per stream (accounts: `rooms`, `members`,
 * `conversations`, a device's memberships). Each query is answered from one store
 * ({@link answerQuery}); the answers of a stream's replicas are merged by union
 * ({@link mergeAnswers}), like reads.
 */
import { MAX_UNREAD_COUNT } from '../protocol/index.js';
import type { StreamEntry, StreamStore } from './types.js';

/**
 * - `tail`: the newest entry of `stream`, and how many entries after `after` are not from `self`
 *   (unread; at most `MAX_UNREAD_COUNT`).
 * - `group`: the state streams of group `stream` named after `after`, `limit` of them, each with
 *   its entry (`more` when there are others); `count`: how many of the whole group hold `join`.
 * - `conversations`: the conversations of user stream `stream` whose newest message is before
 *   `before`, most recent first, `limit` of them: the newest message of each, and per message the
 *   unread count (incoming after the reader's marker in `markers`, by other party).
 */
export type StreamQuerySpec =
  | { readonly kind: 'tail'; readonly stream: string; readonly after?: string; readonly self: string }
  | { readonly kind: 'group'; readonly stream: string; readonly after?: string; readonly limit: number }
  | {
    readonly kind: 'conversations'; readonly stream: string; readonly self: string; readonly before?: string; readonly limit: number;
    readonly markers: ReadonlyMap<string, string>;
  };

/** One query's answer. `entries` carry their stream name (group answers hold several streams). */
export interface QueryAnswer {
  readonly entries: ReadonlyArray<{ readonly stream: string; readonly entry: StreamEntry }>;
  readonly count: number;
  readonly more: boolean;
  /** conversations: unread per entry. */
  readonly counts: readonly number[];
}

/** Kind numbers on the wire (`StreamQuery.kind`). */
export const QUERY_KIND = { tail: 1, group: 2, conversations: 3 } as const;

/** Most entries of a group read per query (a group is a user's account or a room's members). */
export const MAX_GROUP_LIMIT = 10_000;
/** Entries read per page while scanning a user stream for its conversations. */
const SCAN_PAGE = 10_000;

/** Whether an encoded message frame was sent by `user` (encoders write `,"from":"<user>",`). */
export function isFrom(frame: string, user: string): boolean {
  return frame.includes(`,"from":"${user}",`);
}

/** Answers one query from this node's store. */
export async function answerQuery(store: StreamStore, q: StreamQuerySpec): Promise<QueryAnswer> {
  switch (q.kind) {
    case 'tail': {
      const [last, after] = await Promise.all([
        store.range(q.stream, { limit: 1, from: 'newest' }),
        store.range(q.stream, { ...(q.after ? { after: q.after } : {}), limit: MAX_UNREAD_COUNT + 1, from: 'newest' }),
      ]);
      let unread = 0;
      for (const e of after.entries) if (!isFrom(e.frame, q.self)) unread++;
      return { entries: last.entries.map((entry) => ({ stream: q.stream, entry })), count: Math.min(unread, MAX_UNREAD_COUNT), more: false, counts: [] };
    }
    case 'group': {
      const count = store.groupCount(q.stream);
      if (q.limit === 0) return { entries: [], count, more: false, counts: [] };
      const after = store.group(q.stream).filter((name) => q.after === undefined || name > q.after);
      const page = await Promise.all(after.slice(0, q.limit).map(async (stream) => ({ stream, entry: (await store.range(stream, { limit: 1, from: 'newest' })).entries[0] })));
      const held = page.filter((x): x is { stream: string; entry: StreamEntry } => x.entry !== undefined);
      return { entries: held, count, more: after.length > q.limit, counts: [] };
    }
    case 'conversations':
      return conversations(store, q);
  }
}

async function conversations(store: StreamStore, q: Extract<StreamQuerySpec, { kind: 'conversations' }>): Promise<QueryAnswer> {
  const convs = new Map<string, { entry: StreamEntry; unread: number }>();
  let before: string | undefined;
  for (;;) {
    const page = await store.range(q.stream, { ...(before !== undefined && { before }), limit: SCAN_PAGE, from: 'newest' });
    for (let i = page.entries.length - 1; i >= 0; i--) {
      const e = page.entries[i]!;
      let c = convs.get(e.with);
      if (c === undefined) convs.set(e.with, (c = { entry: e, unread: 0 }));
      const marker = q.markers.get(e.with) ?? '';
      if (e.id > marker && e.with !== q.self && c.unread < MAX_UNREAD_COUNT && !isFrom(e.frame, q.self)) c.unread++;
    }
    if (!page.more || page.entries.length === 0) break;
    before = page.entries[0]!.id;
  }
  return pageConversations([...convs.values()], q.stream, q.before, q.limit, false);
}

/** The page of conversations (newest last message first) before `before`. */
function pageConversations(
  list: Array<{ entry: StreamEntry; unread: number }>, stream: string, before: string | undefined, limit: number, more: boolean,
): QueryAnswer {
  const sorted = list.filter((c) => before === undefined || c.entry.id < before).sort((a, b) => (a.entry.id < b.entry.id ? 1 : -1));
  const page = sorted.slice(0, limit);
  return { entries: page.map((c) => ({ stream, entry: c.entry })), count: 0, more: more || sorted.length > limit, counts: page.map((c) => c.unread) };
}

/** Merges the answers of one query's replicas (union; the newest entry per key, the largest count). */
export function mergeAnswers(q: StreamQuerySpec, answers: readonly QueryAnswer[]): QueryAnswer {
  if (answers.length === 1) return answers[0]!;
  const count = Math.max(0, ...answers.map((a) => a.count));
  const more = answers.some((a) => a.more);
  switch (q.kind) {
    case 'tail': {
      let best: QueryAnswer['entries'][number] | undefined;
      for (const a of answers) for (const e of a.entries) if (!best || e.entry.id > best.entry.id) best = e;
      return { entries: best ? [best] : [], count, more: false, counts: [] };
    }
    case 'group': {
      const byName = new Map<string, QueryAnswer['entries'][number]>();
      for (const a of answers) {
        for (const e of a.entries) {
          const had = byName.get(e.stream);
          if (!had || e.entry.id > had.entry.id) byName.set(e.stream, e);
        }
      }
      const sorted = [...byName.values()].sort((a, b) => (a.stream < b.stream ? -1 : 1));
      return { entries: sorted.slice(0, q.limit), count, more: more || sorted.length > q.limit, counts: [] };
    }
    case 'conversations': {
      const byWith = new Map<string, { entry: StreamEntry; unread: number }>();
      for (const a of answers) {
        a.entries.forEach((e, i) => {
          const had = byWith.get(e.entry.with);
          const unread = a.counts[i] ?? 0;
          if (!had) byWith.set(e.entry.with, { entry: e.entry, unread });
          else byWith.set(e.entry.with, { entry: e.entry.id > had.entry.id ? e.entry : had.entry, unread: Math.max(unread, had.unread) });
        });
      }
      return pageConversations([...byWith.values()], q.stream, q.before, q.limit, more);
    }
  }
}
