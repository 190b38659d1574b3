/**
 * What a device gets right after its welcome: the mailbox (messages acked `stored` and not yet sent
 * to any device), or with `since` everything of the user's stream after that message (and whatever
 * is still in the mailbox from before it). Oldest first, a page at a time, each page only once the
 * device's send buffer has room: a long replay never holds up live traffic or trips the
 * slow-consumer bound.
 */
import type { StreamService } from './service.js';

/** The device being replayed to. */
export interface ReplaySink {
  /** Writes one frame; false when the connection is gone (the replay stops). */
  write(frame: string): boolean;
  /** Resolves when the connection's send buffer has room for another page. */
  drained(): Promise<void>;
  /** Whether this message id was already written to the device live (it is not sent twice). */
  seen(id: string): boolean;
}

/** Messages per page of a replay. */
const PAGE = 100;

/**
 * Replays to `sink`; resolves with how many messages were written. The mailbox marks of what was
 * written are cleared (on every replica) as each page completes.
 */
export async function replay(streams: StreamService, user: string, since: string | undefined, sink: ReplaySink): Promise<number> {
  const stream = `u:${user}`;
  let count = 0;
  const run = async (query: { pendingOnly: boolean; before?: string; after?: string }): Promise<boolean> => {
    let after = query.after;
    for (;;) {
      const page = await streams.read(stream, { pendingOnly: query.pendingOnly, ...(query.before && { before: query.before }), ...(after && { after }), limit: PAGE, from: 'oldest' });
      const cleared: string[] = [];
      for (const e of page.entries) {
        if (!sink.seen(e.id)) {
          if (!sink.write(e.frame)) return false;
          count++;
        }
        if (e.pending) cleared.push(e.id);
      }
      streams.clear(stream, cleared);
      if (!page.more || page.entries.length === 0) return true;
      after = page.entries[page.entries.length - 1]!.id;
      await sink.drained();
    }
  };
  if (since === undefined) {
    await run({ pendingOnly: true });
  } else if (await run({ pendingOnly: true, before: since })) {
    await run({ pendingOnly: false, after: since });
  }
  return count;
}
