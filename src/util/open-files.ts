/**
 * The open-files limit against `--max-connections`: every client connection is a file descriptor,
 * so a node whose limit is lower than its connection cap fails new connections (EMFILE) long before
 * the cap, and then cannot open a peer link or a file either. At start the node reads its limit
 * (Linux: /proc/self/limits; elsewhere nothing is checked) and warns once when it is too low.
 * Pure apart from `readOpenFilesLimit`.
 */
import { readFileSync } from 'node:fs';

/** Descriptors a node needs besides its client connections: stdio, its three listeners, epoll and
 *  friends, DNS, the admin API's and Consul's connections, files of the web client. */
export const BASE_RESERVED_FDS = 100;
/** Per configured peer: the peer link's socket, one each way while links are being set up. */
export const FDS_PER_PEER = 2;
/** With `--data-dir`: LevelDB keeps up to this many table files open (classic-level's default). */
export const DATA_DIR_FDS = 1000;

/** A process's open-files limit; `Infinity` when unlimited. */
export interface OpenFilesLimit {
  readonly soft: number;
  readonly hard: number;
}

/** The "Max open files" line of /proc/<pid>/limits text; undefined when there is none. */
export function parseOpenFilesLimit(limitsText: string): OpenFilesLimit | undefined {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(limitsText);
  if (!m) return undefined;
  const num = (s: string): number => (s === 'unlimited' ? Infinity : Number(s));
  return { soft: num(m[1]!), hard: num(m[2]!) };
}

/** This process's open-files limit, or undefined where it cannot be read (not Linux). */
export function readOpenFilesLimit(read: () => string = () => readFileSync('/proc/self/limits', 'utf8')): OpenFilesLimit | undefined {
  try {
    return parseOpenFilesLimit(read());
  } catch {
    return undefined;
  }
}

/** Descriptors to keep for everything but client connections. */
export function reservedFds(opts: { readonly peers: number; readonly dataDir: boolean }): number {
  return BASE_RESERVED_FDS + FDS_PER_PEER * opts.peers + (opts.dataDir ? DATA_DIR_FDS : 0);
}

/** A limit too low for `--max-connections`. */
export interface OpenFilesShortfall {
  /** The soft limit (what the process gets; Node raises it to the hard limit at start). */
  readonly limit: number;
  readonly hardLimit: number;
  readonly maxConnections: number;
  readonly reserved: number;
  /** About how many client connections the node can really hold. */
  readonly holdable: number;
  /** The limit `--max-connections` needs. */
  readonly needed: number;
}

/** The shortfall when `limit` is below `maxConnections` plus `reserved`; undefined when it is enough. */
export function openFilesShortfall(limit: OpenFilesLimit | undefined, maxConnections: number, reserved: number): OpenFilesShortfall | undefined {
  if (!limit || !Number.isFinite(limit.soft)) return undefined;
  const needed = maxConnections + reserved;
  if (limit.soft >= needed) return undefined;
  return { limit: limit.soft, hardLimit: limit.hard, maxConnections, reserved, holdable: Math.max(0, limit.soft - reserved), needed };
}

/** The warning's text: both numbers, what the node can really hold, and how to raise the limit. */
export function openFilesWarning(s: OpenFilesShortfall): string {
  const hard = Number.isFinite(s.hardLimit) ? String(s.hardLimit) : 'unlimited';
  return `open-files limit too low: ${s.limit} (ulimit -n; hard limit ${hard}) is below --max-connections ${s.maxConnections} ` +
    `+ ${s.reserved} descriptors kept for listeners, peer links and files. This node can hold only about ${s.holdable} ` +
    `client connections; past that, new connections fail (EMFILE), and so do new peer links and files. ` +
    `Raise the limit to at least ${s.needed}: \`ulimit -n ${s.needed}\` in the shell that starts the node ` +
    `(the hard limit too, as root), LimitNOFILE=${s.needed} in its systemd unit, \`ulimits: { nofile: ${s.needed} }\` ` +
    `in docker compose (\`docker run --ulimit nofile=${s.needed}\`); or lower --max-connections to ${s.holdable}.`;
}

/** Logs the warning once at start when this process's open-files limit is below what it needs. */
export function warnIfFewOpenFiles(
  log: { warn(obj: object, msg: string): void },
  opts: { readonly maxConnections: number; readonly peers: number; readonly dataDir: boolean; readonly limit?: OpenFilesLimit | undefined },
): OpenFilesShortfall | undefined {
  const limit = 'limit' in opts ? opts.limit : readOpenFilesLimit();
  const s = openFilesShortfall(limit, opts.maxConnections, reservedFds(opts));
  if (s) log.warn({ openFilesLimit: s.limit, openFilesHardLimit: s.hardLimit, maxConnections: s.maxConnections, reservedFds: s.reserved, holdableConnections: s.holdable }, openFilesWarning(s));
  return s;
}
