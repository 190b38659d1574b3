/**
 * Static discovery: the `--peers` list. Targets never change after `start()`; whether a peer is
 * live is the mesh link's business.
 */
import { isIP } from 'node:net';
import type { Discovery, DiscoveryListener, DiscoveryStatus, PeerTarget } from './types.js';

/** Stable codes of {@link StaticDiscoveryError}. */
export const StaticDiscoveryErrorCode = {
  /** A `--peers` entry is not `host:port`. */
  InvalidPeer: 'DISCOVERY_INVALID_PEER',
} as const;
/** One of the {@link StaticDiscoveryErrorCode} values. */
export type StaticDiscoveryErrorCode = (typeof StaticDiscoveryErrorCode)[keyof typeof StaticDiscoveryErrorCode];

/** A bad entry in a static peer list. `entry` is the offending input. */
export class StaticDiscoveryError extends Error {
  override readonly name = 'StaticDiscoveryError';
  readonly code: StaticDiscoveryErrorCode;
  readonly entry: string;
  constructor(code: StaticDiscoveryErrorCode, entry: string, reason: string) {
    super(`invalid peer "${entry}": ${reason} (expected host:port, IPv6 as [addr]:port)`);
    this.code = code;
    this.entry = entry;
  }
}

/** A validated, normalised peer address. */
export interface PeerAddress {
  /** Lower-cased host name or IP, without IPv6 brackets. */
  readonly host: string;
  readonly port: number;
  /** Normalised `host:port` (`[v6]:port`). */
  readonly address: string;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Parses and normalises one `host:port` (host: DNS name, IPv4, or bracketed IPv6; port 1..65535).
 * Surrounding whitespace is ignored. Throws {@link StaticDiscoveryError} `DISCOVERY_INVALID_PEER`.
 */
export function parsePeerAddress(entry: string): PeerAddress {
  const fail = (reason: string): never => {
    throw new StaticDiscoveryError(StaticDiscoveryErrorCode.InvalidPeer, entry, reason);
  };
  const s = entry.trim();
  let host: string;
  let portText: string;
  const v6 = /^\[([^\]]+)\]:([^:]*)$/.exec(s);
  if (v6 !== null) {
    host = (v6[1] ?? '').toLowerCase();
    portText = v6[2] ?? '';
    if (isIP(host) !== 6) fail('not an IPv6 address inside the brackets');
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) fail('missing port');
    if (s.indexOf(':') !== colon) fail('too many colons; bracket IPv6 addresses');
    host = s.slice(0, colon).toLowerCase();
    portText = s.slice(colon + 1);
    if (host === '') fail('missing host');
    if (/^[\d.]+$/.test(host)) {
      if (isIP(host) !== 4) fail('not a valid IPv4 address');
    } else if (host.length > 253 || !host.split('.').every((l) => LABEL.test(l))) {
      fail('not a valid host name');
    }
  }
  if (!/^\d{1,5}$/.test(portText)) fail('port must be a number');
  const port = Number(portText);
  if (port < 1 || port > 65_535) fail('port must be in 1..65535');
  return { host, port, address: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}` };
}

/** Options of {@link createStaticDiscovery}. */
export interface StaticDiscoveryOptions {
  /** `host:port` of the peers. Empty (or blank) entries and duplicates (after normalising) are dropped. */
  readonly peers: readonly string[];
  /** This node's own `host:meshPort`, dropped from `peers` if listed (so every node can share one list). Default none. */
  readonly selfAddress?: string;
}

/**
 * Creates a {@link Discovery} over a fixed list. Every entry is validated here: a bad one throws
 * {@link StaticDiscoveryError} (`DISCOVERY_INVALID_PEER`). `targets()` is empty until `start()`,
 * which publishes the list once to listeners (if non-empty), so code that only listens works with
 * both backends. `start`, `deregister` and `stop` are idempotent and do no I/O. Always healthy: whether a peer is
 * reachable is the mesh link's business.
 */
export function createStaticDiscovery(options: StaticDiscoveryOptions): Discovery {
  const self = options.selfAddress === undefined ? undefined : parsePeerAddress(options.selfAddress).address;
  const seen = new Set<string>();
  const list: PeerTarget[] = [];
  for (const entry of options.peers) {
    if (entry.trim() === '') continue;
    const { address } = parsePeerAddress(entry);
    if (address === self || seen.has(address)) continue;
    seen.add(address);
    list.push(Object.freeze({ address }));
  }
  const all: readonly PeerTarget[] = Object.freeze(list);
  const listeners = new Set<DiscoveryListener>();
  let current: readonly PeerTarget[] = Object.freeze([]);
  let state: 'new' | 'running' | 'stopped' = 'new';
  const healthy: DiscoveryStatus = Object.freeze({ healthy: true, since: Date.now() });

  return {
    async start() {
      if (state !== 'new') return;
      state = 'running';
      current = all;
      if (all.length === 0) return;
      for (const listener of [...listeners]) listener(current);
    },
    targets: () => current,
    onChange(listener) {
      const wrapped: DiscoveryListener = (t) => listener(t);
      listeners.add(wrapped);
      return () => {
        listeners.delete(wrapped);
      };
    },
    status: () => healthy,
    onStatusChange: () => () => {}, // never changes
    async deregister() {},
    async stop() {
      state = 'stopped';
      listeners.clear();
    },
  };
}
