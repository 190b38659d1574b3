/**
 * Request/answer calls that the stream layer makes to other nodes over the peer links. The mesh
 * carries them (batched with everything else) and ties each answer to its call; what a call means
 * is the stream layer's business (src/streams), handed in as the `serve` option.
 */
import type { StreamCall, StreamCall__Output } from '../generated/chatmesh/mesh/v1/StreamCall.js';
import type { StreamReply, StreamReply__Output } from '../generated/chatmesh/mesh/v1/StreamReply.js';
import type { PeerLink } from './link.js';
import { PendingRequests } from './pending.js';

export type { StreamCall, StreamCall__Output, StreamReply, StreamReply__Output };
export type { StreamEntry as StreamEntryMsg, StreamEntry__Output as StreamEntryMsg__Output } from '../generated/chatmesh/mesh/v1/StreamEntry.js';
export type { StreamSummary, StreamSummary__Output } from '../generated/chatmesh/mesh/v1/StreamSummary.js';
export type { StreamQuery, StreamQuery__Output } from '../generated/chatmesh/mesh/v1/StreamQuery.js';
export type { StreamAnswer, StreamAnswer__Output } from '../generated/chatmesh/mesh/v1/StreamAnswer.js';

/** A call's body: one of the StreamCall cases, without the id. */
export type StreamCallBody = Omit<StreamCall, 'id'>;
/** An answer's body, without the id. */
export type StreamReplyBody = Omit<StreamReply, 'id'>;

/** Why a call failed without an answer. */
export class StreamCallError extends Error {
  readonly code = 'STREAM_CALL_FAILED';
  constructor(readonly peer: string, readonly reason: 'no_link' | 'queue_full' | 'gone' | 'timeout' | 'refused', message: string) {
    super(message);
    this.name = 'StreamCallError';
  }
}

/** Options of {@link StreamCalls}. */
export interface StreamCallsOptions {
  readonly selfId: string;
  /** The up link to a peer, if any. */
  readonly link: (peer: string) => PeerLink | undefined;
  /** Serves a call from `peer`; the answer (or an error answer when it rejects) goes back on its link. */
  readonly serve: (peer: string, call: StreamCall__Output) => Promise<StreamReplyBody>;
  /** Monotonic ms. */
  readonly monotonic: () => number;
  /** A call unanswered for this long fails with reason `timeout`, in ms. Default 5000. */
  readonly timeoutMs?: number;
}

/**
 * Calls to peers with answers. A call fails (rejects with {@link StreamCallError}) when there is no
 * link, the link's queue is full, the link goes down before the answer, or the answer is late; an
 * error answer rejects with reason `refused`. All methods may be called at any time.
 */
export class StreamCalls {
  private readonly pending: PendingRequests<StreamReply__Output>;

  constructor(private readonly opts: StreamCallsOptions) {
    this.pending = new PendingRequests(opts.timeoutMs ?? 5000, opts.monotonic);
  }

  /** Calls `peer`; resolves with its answer. */
  call(peer: string, body: StreamCallBody): Promise<StreamReply__Output> {
    const link = this.opts.link(peer);
    if (!link) return Promise.reject(new StreamCallError(peer, 'no_link', `no link to ${peer}`));
    return new Promise((resolve, reject) => {
      const id = this.pending.add(peer, (reply) => {
        if (reply.error) reject(new StreamCallError(peer, 'refused', `${peer}: ${reply.error}`));
        else resolve(reply);
      }, (why) => reject(new StreamCallError(peer, why, why === 'timeout' ? `${peer} did not answer in time` : `the link to ${peer} went down`)));
      if (!link.send({ streamCall: { ...body, id } })) {
        this.pending.fail(id, 'gone');
      }
    });
  }

  /** Sends a call that wants no answer; false when it could not be queued. */
  tell(peer: string, body: StreamCallBody): boolean {
    const link = this.opts.link(peer);
    return link ? link.send({ streamCall: { ...body, id: 0 } }) : false;
  }

  /** A call arrived from `peer` on `link`: serve it and answer on that link. */
  onCall(link: PeerLink, peer: string, call: StreamCall__Output): void {
    this.opts.serve(peer, call).then(
      (body) => {
        if (!call.id || link.send({ streamReply: { ...body, id: call.id } })) return;
        // Too large for one batch (or the link's queue is full): the caller hears why at once.
        link.send({ streamReply: { id: call.id, error: 'the answer does not fit in one message; ask for less' } });
      },
      (err: unknown) => {
        if (call.id) link.send({ streamReply: { id: call.id, error: err instanceof Error ? err.message.slice(0, 500) : 'failed' } });
      },
    );
  }

  /** An answer arrived from `peer`. */
  onReply(peer: string, reply: StreamReply__Output): void {
    this.pending.settle(reply.id, peer, reply);
  }

  /** `peer`'s link went down: its calls fail. */
  failPeer(peer: string): void {
    this.pending.failPeer(peer);
  }

  /** Calls in flight. */
  get inFlight(): number {
    return this.pending.size;
  }

  close(): void {
    this.pending.close();
  }
}
