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
  // An unknown or expired `since` replays the whole kept stream (protocol.md).
  const from = since !== undefined && await holds(streams, stream, since) ? since : undefined;
  if (since === undefined) {
    await run({ pendingOnly: true });
  } else if (from === undefined) {
    await run({ pendingOnly: false });
  } else if (await run({ pendingOnly: true, before: from })) {
    await run({ pendingOnly: false, after: from });
  }
  return count;
}

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** Whether the stream keeps message `id`: the first entry after the id just below it is `id`. */
async function holds(streams: StreamService, stream: string, id: string): Promise<boolean> {
  const below = predecessor(id);
  if (below === undefined) return false;
  const page = await streams.read(stream, { after: below, limit: 1, from: 'oldest' });
  return page.entries[0]?.id === id;
}

/** The greatest id below `id` (same length and alphabet), or undefined for the smallest id. */
function predecessor(id: string): string | undefined {
  let i = id.length - 1;
  while (i >= 0 && id[i] === '0') i--;
  if (i < 0) return undefined;
  return id.slice(0, i) + ALPHABET[ALPHABET.indexOf(id[i]!) - 1]! + 'Z'.repeat(id.length - i - 1);
}
