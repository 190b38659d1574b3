/**
 * Peers' client URLs (`Hello.public_url`) and the list `GET /nodes` answers. A peer's hello is
 * hostile input like any envelope: its URL is checked, and a bad one replaced by the fallback.
 */
import { checkWsUrl, defaultPublicUrl } from '../util/index.js';
import type { NodeIdentity } from './link.js';
import { ADDRESS_PATTERN } from './validate.js';
import type { Hello__Output } from './wire.js';

/** One entry of `GET /nodes`. */
export interface NodeUrl {
  readonly id: string;
  /** The WebSocket URL clients use to reach that node. */
  readonly url: string;
}

/**
 * The client URL of the peer that sent `h`: its `public_url` when that is a valid `ws:`/`wss:` URL
 * (see `checkWsUrl`), else `ws://<advertise host>:<http_port>/ws` (a peer of an older release sends
 * none), else none (no usable advertise address or port). `publicUrlRefused` says why a URL the
 * peer did send was not taken. Total: never throws.
 */
export function peerPublicUrl(h: Pick<Hello__Output, 'publicUrl' | 'advertise' | 'httpPort'>): Pick<NodeIdentity, 'publicUrl' | 'publicUrlRefused'> {
  let refused: string | undefined;
  if (h.publicUrl) {
    const c = checkWsUrl(h.publicUrl);
    if (c.url !== undefined) return { publicUrl: c.url };
    refused = c.problem;
  }
  const m = typeof h.advertise === 'string' ? ADDRESS_PATTERN.exec(h.advertise) : null;
  const port = h.httpPort;
  const fallback = m && Number.isInteger(port) && port > 0 && port <= 65535 ? checkWsUrl(defaultPublicUrl(m[1]!, port)).url : undefined;
  return { ...(fallback !== undefined && { publicUrl: fallback }), ...(refused !== undefined && { publicUrlRefused: refused }) };
}

/**
 * What `GET /nodes` lists: `self` first (pass undefined while this node drains, so its clients move
 * away), then every peer with an up link and a known URL, sorted by id (code-unit order). Reads the
 * links once; safe to call at any time.
 */
export function listNodeUrls(self: NodeUrl | undefined, links: Iterable<{ readonly state: string; readonly peer: NodeIdentity | undefined }>): NodeUrl[] {
  const peers: NodeUrl[] = [];
  for (const l of links) {
    if (l.state === 'up' && l.peer?.publicUrl !== undefined && l.peer.id !== self?.id) peers.push({ id: l.peer.id, url: l.peer.publicUrl });
  }
  peers.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return self ? [self, ...peers] : peers;
}
