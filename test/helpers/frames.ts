/**
 * Server frames that a peer may deliver (src/mesh/validate.ts `DELIVERABLE_FRAMES`), for tests that
 * publish through the mesh directly: a delivery whose data is not such a frame makes the receiving
 * node drop the link.
 */
import { encodeMessage, encodeRoomMessage } from '../../src/protocol/index.js';

let seq = 0;

/**
 * A valid frame for `topic` carrying `body`: a `message` from `from` to the topic's user for `u:`
 * topics, a `room_message` from `from` for `r:` topics. Each call gets a new message id.
 */
export function frameFor(topic: string, body: string, from = 'tester'): string {
  const msg = `T${(++seq).toString().padStart(8, '0')}`;
  const name = topic.slice(2);
  return topic.startsWith('r:') ? encodeRoomMessage(msg, name, from, body, 1) : encodeMessage(msg, from, name, body, 1);
}

/** The `body` of a frame made by `frameFor` (or any message frame), for assertions. */
export function bodyOf(data: string): string {
  return (JSON.parse(data) as { body: string }).body;
}
