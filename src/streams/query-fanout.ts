/**
 * Queries (queries.ts) over the replicas: every node that is asked for at least one query gets one
 * call with all of its queries; the answers of each query's replicas are merged. Like reads, a
 * query needs an answer from one of its current replicas; the others get a grace period after the
 * last query got one, then count as silent.
 */
import type { StreamQuery, StreamQuery__Output, StreamAnswer, StreamAnswer__Output } from '../mesh/index.js';
import { ChatError, ErrorCode } from '../protocol/index.js';
import type { Placement } from './placement.js';
import { QUERY_KIND, answerQuery, mergeAnswers } from './queries.js';
import type { QueryAnswer, StreamQuerySpec } from './queries.js';
import type { StreamCallsPort } from './service.js';
import type { StreamStore } from './types.js';
import { fromEntryMsg, toEntryMsg } from './wire.js';

/**
 * Queries per call: a tail answer carries a whole message (≤ 16 KiB body), so 100 of them stay well
 * inside one batch on the link.
 */
export const QUERIES_PER_CALL = 100;

/** What the fan-out needs of its node. */
export interface QueryFanoutDeps {
  readonly selfId: string;
  readonly store: StreamStore;
  readonly placement: Placement;
  readonly calls: StreamCallsPort;
  /** After every query had a current replica's answer, how long the others may still take, ms. */
  readonly graceMs: number;
  /** Moves this node's message clock past an id it received. */
  readonly observe: (id: string) => void;
}

/**
 * Runs `queries` on their replicas; resolves with one merged answer per query, in order, or
 * undefined for a query none of whose current replicas answered.
 */
export async function queryReplicas(deps: QueryFanoutDeps, queries: readonly StreamQuerySpec[]): Promise<Array<QueryAnswer | undefined>> {
  const byNode = new Map<string, number[]>();
  const current = queries.map((q) => new Set(deps.placement.writeSet(q.stream)));
  queries.forEach((q, i) => {
    for (const node of deps.placement.readSet(q.stream)) {
      let list = byNode.get(node);
      if (!list) byNode.set(node, (list = []));
      list.push(i);
    }
  });
  // One call per node and chunk of queries (a chunk's answer fits one message).
  const calls: Array<[string, number[]]> = [];
  for (const [node, idx] of byNode) {
    for (let k = 0; k < idx.length; k += QUERIES_PER_CALL) calls.push([node, idx.slice(k, k + QUERIES_PER_CALL)]);
  }
  const got: QueryAnswer[][] = queries.map(() => []);
  const answered = queries.map(() => false);
  let waiting = queries.length;
  await new Promise<void>((resolve) => {
    let left = calls.length;
    let timer: NodeJS.Timeout | undefined;
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    if (left === 0) return done();
    for (const [node, idx] of calls) {
      const run = node === deps.selfId
        ? Promise.all(idx.map((i) => answerQuery(deps.store, queries[i]!)))
        : deps.calls.call(node, { query: { queries: idx.map((i) => toQueryMsg(queries[i]!)) } })
          .then((r) => (r.answers?.answers ?? []).map(fromAnswerMsg));
      run.then((answers) => {
        answers.forEach((a, k) => {
          const i = idx[k];
          if (i === undefined) return;
          got[i]!.push(a);
          if (current[i]!.has(node) && !answered[i]) {
            answered[i] = true;
            waiting--;
          }
        });
      }, () => undefined).finally(() => {
        if (--left === 0) return done();
        if (waiting === 0 && timer === undefined) timer = setTimeout(done, deps.graceMs).unref();
      });
    }
  });
  return queries.map((q, i) => {
    if (!answered[i]) return undefined;
    const merged = mergeAnswers(q, got[i]!);
    for (const e of merged.entries) deps.observe(e.entry.id);
    return merged;
  });
}

/** Like {@link queryReplicas}, but rejects with `unavailable` when any query went unanswered. */
export async function queryAll(deps: QueryFanoutDeps, queries: readonly StreamQuerySpec[]): Promise<QueryAnswer[]> {
  const answers = await queryReplicas(deps, queries);
  if (answers.some((a) => a === undefined)) throw new ChatError(ErrorCode.Unavailable, 'no replica of your data answered; try again later');
  return answers as QueryAnswer[];
}

export function toQueryMsg(q: StreamQuerySpec): StreamQuery {
  switch (q.kind) {
    case 'tail':
      return { kind: QUERY_KIND.tail, stream: q.stream, after: q.after ?? '', self: q.self };
    case 'group':
      return { kind: QUERY_KIND.group, stream: q.stream, after: q.after ?? '', limit: q.limit };
    case 'conversations':
      return {
        kind: QUERY_KIND.conversations, stream: q.stream, self: q.self, before: q.before ?? '', limit: q.limit,
        markers: [...q.markers].map(([w, msg]) => ({ with: w, msg })),
      };
  }
}

/** A validated query from a peer (validate-streams.ts checked its fields). */
export function fromQueryMsg(m: StreamQuery__Output): StreamQuerySpec {
  switch (m.kind) {
    case QUERY_KIND.tail:
      return { kind: 'tail', stream: m.stream, ...(m.after && { after: m.after }), self: m.self };
    case QUERY_KIND.group:
      return { kind: 'group', stream: m.stream, ...(m.after && { after: m.after }), limit: m.limit };
    default:
      return {
        kind: 'conversations', stream: m.stream, self: m.self, ...(m.before && { before: m.before }), limit: m.limit,
        markers: new Map(m.markers.map((k) => [k.with, k.msg])),
      };
  }
}

export function toAnswerMsg(a: QueryAnswer): StreamAnswer {
  return { entries: a.entries.map(toEntryMsg), count: a.count, more: a.more, counts: [...a.counts] };
}

function fromAnswerMsg(m: StreamAnswer__Output): QueryAnswer {
  return { entries: m.entries.map(fromEntryMsg), count: m.count, more: m.more, counts: m.counts };
}
