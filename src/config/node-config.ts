import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { AuthMode } from '../auth/index.js';
import { defaultGatewayOptions } from '../gateway/index.js';
import type { GatewayOptions } from '../gateway/index.js';
import type { LogLevel } from '../log.js';
import { LOG_LEVELS } from '../log.js';
import { checkWsUrl } from '../util/ws-url.js';

export type DiscoveryKind = 'static' | 'consul';

/** Everything a node is configured with. protocol.md §1 documents the flags behind these fields. */
export interface NodeConfig {
  /** Node id, unique in the mesh. Default (undefined here): `<hostname>-<bound mesh port>`. */
  readonly id: string | undefined;
  /** Address every listener binds to. Default `127.0.0.1`. */
  readonly host: string;
  /** Address peers and Consul use to reach this node. Default: `host`. */
  readonly advertise: string;
  /** HTTP port (WebSocket `/ws`, web client, `/healthz`, `/metrics`). Default 8080; 0 picks one. */
  readonly httpPort: number;
  /**
   * The WebSocket URL clients use to reach this node, as `GET /nodes` lists it (`--public-url`):
   * a `ws://` or `wss://` URL, normalized (see `checkWsUrl`). Undefined here means the default,
   * which the node fills in once it listens: `ws://<advertise>:<bound http port>/ws`.
   */
  readonly publicUrl: string | undefined;
  /** Node-to-node gRPC port. Default 7070; 0 picks one. */
  readonly meshPort: number;
  /** Admin gRPC port. Default 9090; 0 picks one. */
  readonly adminPort: number;
  readonly discovery: DiscoveryKind;
  /** Static discovery: `host:meshPort` of the other nodes. */
  readonly peers: readonly string[];
  readonly consulUrl: string;
  readonly serviceName: string;
  readonly auth: AuthMode;
  readonly jwtSecret: string | undefined;
  readonly meshSecret: string | undefined;
  readonly adminToken: string | undefined;
  /** Max entries of the LRU routing table. Default 1,000,000. */
  readonly routeCacheSize: number;
  /** `--mesh-linger-ms`: a peer-link batch that would follow the previous one sooner than this
   *  waits until this long after it, ms (0: never waits). */
  readonly meshLingerMs: number;
  /** Allow a mesh on a non-loopback address with neither a mesh secret nor mesh TLS. Default false. */
  readonly insecureMesh: boolean;
  /** Mutual TLS on peer links: PEM file paths of this node's certificate, its key, and the CA that
   *  signs every peer's certificate. All three or none. */
  readonly meshTlsCert: string | undefined;
  readonly meshTlsKey: string | undefined;
  readonly meshTlsCa: string | undefined;
  /** Consul ACL token sent with every Consul call (`--consul-token`, else `CONSUL_HTTP_TOKEN`). */
  readonly consulToken: string | undefined;
  /** Copies of every stream, on distinct nodes (`--replicas`). Default 2. */
  readonly replicas: number;
  /** Messages kept per stream; 0 keeps no message (accounts are still kept) (`--history-size`). Default 1000. */
  readonly historySize: number;
  /** Age after which a kept message is dropped, ms (`--history-ttl`). Default 7 days. */
  readonly historyTtlMs: number;
  /** Directory of the on-disk store; undefined: streams live in memory (`--data-dir`). */
  readonly dataDir: string | undefined;
  /** Cap on the messages this node keeps over all its streams; the oldest go first
   *  (`--max-stored-messages`). Default 1,000,000 in memory, 20,000,000 on disk. */
  readonly maxStoredMessages: number;
  readonly logLevel: LogLevel;
  readonly gateway: GatewayOptions;
}

/** Input of `resolveNodeConfig`: any subset, defaults fill the rest. */
export type NodeConfigInput = Partial<Omit<NodeConfig, 'gateway' | 'historyTtlMs'>> & {
  readonly gateway?: Partial<GatewayOptions>;
  /** ms, or a span like `30m`, `12h`, `7d`, `2w`. */
  readonly historyTtlMs?: number | string;
};

const SPAN_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Milliseconds of a span like `500ms`, `30s`, `30m`, `12h`, `7d`, `2w`; undefined when malformed. */
export function parseSpan(span: string): number | undefined {
  const m = /^(\d+)(ms|s|m|h|d|w)$/.exec(span.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * SPAN_UNITS[m[2]!]!;
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** Node ids: also the tie-break order of who dials whom. */
export const NODE_ID = /^[A-Za-z0-9_.:@-]{1,128}$/;

/** Default of `--mesh-linger-ms` (see `LinkOptions.lingerMs`). */
export const DEFAULT_MESH_LINGER_MS = 0;

/** The default node id for a bound mesh port. */
export function defaultNodeId(meshPort: number): string {
  return `${hostname()}-${meshPort}`;
}

/** A configuration error: the CLI prints `message` and exits 2. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** True when `host` is a loopback address (127.0.0.0/8, ::1, localhost): only this machine reaches it. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Reads a PEM file named by a `--mesh-tls-*` flag, or throws a `ConfigError` saying why it cannot. */
function readPem(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`--${flag}: cannot read "${path}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** Checks the mesh TLS flags: all three or none, readable, PEM that parses, key matching the certificate. */
function checkMeshTls(cfg: NodeConfig): void {
  const given = ([['mesh-tls-cert', cfg.meshTlsCert], ['mesh-tls-key', cfg.meshTlsKey], ['mesh-tls-ca', cfg.meshTlsCa]] as const).filter(([, v]) => v !== undefined);
  if (given.length === 0) return;
  if (given.length < 3) {
    const missing = ['mesh-tls-cert', 'mesh-tls-key', 'mesh-tls-ca'].filter((f) => !given.some(([g]) => g === f));
    throw new ConfigError(`--mesh-tls-cert, --mesh-tls-key and --mesh-tls-ca go together: missing --${missing.join(', --')}`);
  }
  const parse = <T>(flag: string, path: string, what: string, f: (pem: Buffer) => T): T => {
    const pem = readPem(flag, path);
    try {
      return f(pem);
    } catch (err) {
      throw new ConfigError(`--${flag}: "${path}" is not a PEM ${what} (${(err as Error).message})`);
    }
  };
  const cert = parse('mesh-tls-cert', cfg.meshTlsCert!, 'certificate', (p) => new X509Certificate(p));
  const key = parse('mesh-tls-key', cfg.meshTlsKey!, 'private key', (p) => createPrivateKey(p));
  parse('mesh-tls-ca', cfg.meshTlsCa!, 'CA certificate', (p) => new X509Certificate(p));
  if (!cert.checkPrivateKey(key)) throw new ConfigError(`--mesh-tls-key "${cfg.meshTlsKey!}" is not the key of --mesh-tls-cert "${cfg.meshTlsCert!}"`);
}

function span(name: string, v: number | string): number {
  const ms = typeof v === 'number' ? v : parseSpan(v);
  if (ms === undefined || !Number.isSafeInteger(ms) || ms < 0) throw new ConfigError(`--${name} must be a time span like 30m, 12h, 7d, 2w, got "${String(v)}"`);
  return ms;
}

function port(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 65535) throw new ConfigError(`--${name} must be a port number 0-65535, got ${String(v)}`);
  return v;
}

/** The normalized `--public-url`, undefined for none (the node's default), or a `ConfigError`. */
function publicUrl(v: string | undefined): string | undefined {
  if (v === undefined || v === '') return undefined;
  const c = checkWsUrl(v);
  if (c.problem !== undefined) throw new ConfigError(`--public-url must be a ws:// or wss:// URL clients can reach this node at (like wss://chat.example.com/ws): ${JSON.stringify(v.length > 100 ? `${v.slice(0, 100)}...` : v)} ${c.problem}`);
  return c.url;
}

/** Fills defaults and validates every field; throws `ConfigError` naming the flag. */
export function resolveNodeConfig(input: NodeConfigInput = {}): NodeConfig {
  const i = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as NodeConfigInput;
  const host = i.host ?? '127.0.0.1';
  const meshPort = port('mesh-port', i.meshPort ?? 7070);
  const cfg: NodeConfig = {
    id: i.id,
    host,
    advertise: i.advertise ?? host,
    httpPort: port('http-port', i.httpPort ?? 8080),
    publicUrl: publicUrl(i.publicUrl),
    meshPort,
    adminPort: port('admin-port', i.adminPort ?? 9090),
    discovery: i.discovery ?? 'static',
    peers: (i.peers ?? []).map((p) => p.trim()).filter((p) => p !== ''),
    consulUrl: i.consulUrl ?? 'http://127.0.0.1:8500',
    serviceName: i.serviceName ?? 'chatmesh',
    auth: i.auth ?? 'dev',
    jwtSecret: i.jwtSecret,
    meshSecret: i.meshSecret,
    adminToken: i.adminToken,
    routeCacheSize: i.routeCacheSize ?? 1_000_000,
    meshLingerMs: i.meshLingerMs ?? DEFAULT_MESH_LINGER_MS,
    insecureMesh: i.insecureMesh ?? false,
    meshTlsCert: i.meshTlsCert,
    meshTlsKey: i.meshTlsKey,
    meshTlsCa: i.meshTlsCa,
    consulToken: i.consulToken,
    replicas: i.replicas ?? 2,
    historySize: i.historySize ?? 1000,
    historyTtlMs: span('history-ttl', i.historyTtlMs ?? '7d'),
    dataDir: i.dataDir === '' ? undefined : i.dataDir,
    maxStoredMessages: i.maxStoredMessages ?? (i.dataDir ? 20_000_000 : 1_000_000),
    logLevel: i.logLevel ?? 'info',
    gateway: { ...defaultGatewayOptions(), ...Object.fromEntries(Object.entries(i.gateway ?? {}).filter(([, v]) => v !== undefined)) },
  };
  if (cfg.id !== undefined && !NODE_ID.test(cfg.id)) throw new ConfigError(`--id must match [A-Za-z0-9_.:@-]{1,128}, got "${cfg.id}"`);
  if (cfg.discovery !== 'static' && cfg.discovery !== 'consul') throw new ConfigError(`--discovery must be static or consul, got "${String(cfg.discovery)}"`);
  if (cfg.auth !== 'dev' && cfg.auth !== 'jwt') throw new ConfigError(`--auth must be dev or jwt, got "${String(cfg.auth)}"`);
  if (cfg.auth === 'jwt' && !cfg.jwtSecret) throw new ConfigError('--auth jwt needs --jwt-secret');
  if (!LOG_LEVELS.includes(cfg.logLevel)) throw new ConfigError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  if (!Number.isInteger(cfg.routeCacheSize) || cfg.routeCacheSize < 1) throw new ConfigError('--route-cache-size must be a positive integer');
  if (!Number.isInteger(cfg.meshLingerMs) || cfg.meshLingerMs < 0 || cfg.meshLingerMs > 50) {
    throw new ConfigError(`--mesh-linger-ms must be a whole number 0-50, got ${String(cfg.meshLingerMs)}`);
  }
  if (!Number.isInteger(cfg.replicas) || cfg.replicas < 1 || cfg.replicas > 16) throw new ConfigError(`--replicas must be a whole number 1-16, got ${String(cfg.replicas)}`);
  if (!Number.isInteger(cfg.historySize) || cfg.historySize < 0 || cfg.historySize > 100_000) {
    throw new ConfigError(`--history-size must be a whole number 0-100000 (0: no message kept), got ${String(cfg.historySize)}`);
  }
  if (cfg.historyTtlMs < 1000) throw new ConfigError('--history-ttl must be at least 1s');
  if (!Number.isInteger(cfg.maxStoredMessages) || cfg.maxStoredMessages < 1) throw new ConfigError('--max-stored-messages must be a positive whole number');
  for (const p of cfg.peers) {
    if (!/^[^\s:]+:\d{1,5}$/.test(p) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(p)) throw new ConfigError(`--peers entry "${p}" is not host:port`);
  }
  if (cfg.discovery === 'consul' && /^(0\.0\.0\.0|::|\[::\])$/.test(cfg.advertise)) {
    throw new ConfigError(`--discovery consul needs --advertise: peers cannot reach "${cfg.advertise}" (the wildcard --host)`);
  }
  try {
    new URL(cfg.consulUrl);
  } catch {
    throw new ConfigError(`--consul-url "${cfg.consulUrl}" is not a URL`);
  }
  checkMeshTls(cfg);
  if (!isLoopbackHost(cfg.host) && !cfg.meshSecret && cfg.meshTlsCert === undefined && !cfg.insecureMesh) {
    throw new ConfigError(`refusing to start an open mesh: --host ${cfg.host} exposes the mesh port to the network with neither --mesh-secret nor mesh TLS, `
      + 'and anyone who reaches it would be a full peer (it could write to every user\'s connections). '
      + 'Set --mesh-secret (same on every node) or --mesh-tls-cert/--mesh-tls-key/--mesh-tls-ca; or bind to a loopback --host; '
      + 'or pass --insecure-mesh if the network is trusted.');
  }
  for (const [k, v] of Object.entries(cfg.gateway)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ConfigError(`gateway option ${k} must be a positive number`);
  }
  return cfg;
}
