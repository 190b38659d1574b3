/**
 * A Consul-HTTP-API-compatible test agent (one node, dev-mode style) implementing exactly the
 * endpoints chatmesh calls, with Consul's JSON shapes, `X-Consul-Index` blocking queries, TTL
 * expiry, DeregisterCriticalServiceAfter reaping and (optionally) ACLs:
 *
 *   PUT /v1/agent/service/register          PUT /v1/agent/service/deregister/:id
 *   PUT /v1/agent/check/(pass|warn|fail)/:id PUT /v1/agent/check/update/:id
 *   GET /v1/health/service/:name            GET /v1/agent/self, GET /v1/status/leader
 *
 * As a real agent (hashicorp/consul `agent/http.go`, `agent/agent_endpoint.go`, `agent/agent.go`,
 * `acl/errors.go`):
 * - X-Consul-Index / -KnownLeader / -LastContact only on the query endpoint (`setMeta`), also on
 *   its ACL errors (the deferred `setMeta` runs with an empty QueryMeta: index 1, no known leader);
 *   never on the agent's write endpoints or on parse errors.
 * - The reaper makes a pass every `reapIntervalMs` (real `check_reap_interval`: 30 s) and removes a
 *   service whose check has been critical for longer than its DeregisterCriticalServiceAfter, raised
 *   to `deregisterCriticalMinMs` (real `check_deregister_interval_min`: 1 min) when below it. So a
 *   service goes between max(after, 1 min) and that plus 30 s after its check turned critical. Drive
 *   it fast with an injected `now` and `tick()`.
 * - A service Address of `0.0.0.0`, `::` or `[::]` is refused: 400 "Invalid service address".
 * - Unknown check or service ids: 404 "Unknown check ID ..." / "Unknown service ID ...".
 * - ACLs (`acl` option): the token comes from `?token=`, `X-Consul-Token` or `Authorization: Bearer`;
 *   none means the anonymous token. An unknown token gets 403 "ACL not found" on every endpoint but
 *   status/leader; a write the token may not do gets 403 "Permission denied: ... lacks permission
 *   'service:write' on "name"". health/service does not refuse: it drops the entries the token may
 *   not read (service:read on the service and node:read on the node) and says so in
 *   X-Consul-Results-Filtered-By-ACLs, so an anonymous query under default deny answers 200 [].
 *
 * Deliberate differences, all for testability: only TTL checks; no wait jitter; an output-only check
 * change bumps the index at once (real: deferred by check_update_interval); re-registering a service
 * replaces its check set (status of kept ids preserved); ACL rules are a small subset (exact and
 * prefix rules on service, node and agent; exact beats the longest prefix; no roles, no intentions).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';

/** Status of a check in the fake agent. */
export type FakeCheckStatus = 'passing' | 'warning' | 'critical';

/** Options of {@link startFakeConsul}. */
export interface FakeConsulOptions {
  /** Listen host. Default `127.0.0.1` (also the node's Address). */
  readonly host?: string;
  /** Listen port. Default 0 (any free port; read it back from the handle). */
  readonly port?: number;
  /** Node name. Default `fake-consul`. */
  readonly nodeName?: string;
  /** Datacenter. Default `dc1`. */
  readonly datacenter?: string;
  /** Clock for TTLs and reaping, ms. Default `Date.now`. Blocking-query waits always use real timers. */
  readonly now?: () => number;
  /** How often (real timer) TTL expiry and the reaper's schedule are evaluated, ms (also on every
   *  request and on `tick()`). Default 20. */
  readonly tickMs?: number;
  /** Time between two reaper passes, ms of `now`. Default 30 000 (Consul's check_reap_interval). */
  readonly reapIntervalMs?: number;
  /** Floor of DeregisterCriticalServiceAfter, ms. Default 60 000 (Consul's check_deregister_interval_min). */
  readonly deregisterCriticalMinMs?: number;
  /** Enables ACLs. Default: disabled (every call allowed, tokens ignored, as in Consul). */
  readonly acl?: FakeAclOptions;
}

/** Access a rule grants, as in Consul's rule language. `write` implies `read`. */
export type FakeAclPolicy = 'read' | 'write' | 'deny';

/** One ACL rule: `service "web" { policy = "write" }` is `{ resource: 'service', name: 'web', policy: 'write' }`,
 *  `node_prefix "" { policy = "read" }` is `{ resource: 'node', name: '', prefix: true, policy: 'read' }`. */
export interface FakeAclRule {
  readonly resource: 'service' | 'node' | 'agent';
  readonly name: string;
  readonly prefix?: boolean;
  readonly policy: FakeAclPolicy;
}

/** An ACL token the fake knows. */
export interface FakeAclToken {
  /** The secret a client sends. */
  readonly secretId: string;
  /** Shown in "Permission denied" messages. Default: a random UUID. */
  readonly accessorId?: string;
  /** Allowed everything (like the bootstrap / initial management token). */
  readonly management?: boolean;
  readonly rules?: readonly FakeAclRule[];
}

/** ACL settings of the fake. */
export interface FakeAclOptions {
  /** What applies when no rule of the token matches. Default `deny` (the production setting). */
  readonly defaultPolicy?: 'allow' | 'deny';
  readonly tokens?: readonly FakeAclToken[];
}

/** The rules of a Consul service identity (templated policy `builtin/service`): what a token for
 *  service `name` gets, and what chatmesh needs: write on itself, read on every service and node. */
export function serviceIdentityRules(name: string): FakeAclRule[] {
  return [
    { resource: 'service', name, policy: 'write' },
    { resource: 'service', name: `${name}-sidecar-proxy`, policy: 'write' },
    { resource: 'service', name: '', prefix: true, policy: 'read' },
    { resource: 'node', name: '', prefix: true, policy: 'read' },
  ];
}

/** One request as the fake saw it (see {@link FakeConsul.requests}). */
export interface FakeRequest {
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  readonly query: string;
  /** The token the request carried (any of the three ways), undefined for none. */
  readonly token: string | undefined;
  /** HTTP status answered; 0 when the connection went away first (a blocking query cut off). */
  readonly status: number;
}

/** One check as {@link FakeConsul.services} reports it. */
export interface FakeCheckState {
  readonly checkId: string;
  readonly name: string;
  readonly status: FakeCheckStatus;
  readonly output: string;
  readonly ttlMs: number;
  readonly deregisterCriticalServiceAfterMs: number | undefined;
}

/** One registered service as {@link FakeConsul.services} reports it. */
export interface FakeServiceState {
  readonly id: string;
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
  readonly checks: readonly FakeCheckState[];
}

/** Options of {@link FakeConsul.restart}. */
export interface FakeRestartOptions {
  /** Keep services, checks and the index (like an agent with a data dir). Default false (dev agent: all lost). */
  readonly keepState?: boolean;
  /** Runs while the agent is down (port closed), e.g. to assert what clients do during the outage. */
  readonly whileDown?: () => unknown;
}

/** A running fake agent. */
export interface FakeConsul {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** Stops listening, ends pending blocking queries (their sockets are destroyed) and stops timers. Idempotent. */
  close(): Promise<void>;
  /** Goes away (like `close`) and comes back on the same port. */
  restart(options?: FakeRestartOptions): Promise<void>;
  /** Snapshot of the registered services, sorted by id. */
  services(): FakeServiceState[];
  /** The current (global) raft-like index. */
  index(): number;
  /** Blocking queries currently parked. */
  pendingQueries(): number;
  /** Evaluates TTL expiry, and runs the reaper if its pass is due, now (useful with an injected clock). */
  tick(): void;
  /** Every request so far (answered or cut off), oldest first. */
  requests(): readonly FakeRequest[];
  /** Runtime control of ACLs; throws if the fake was started without `acl`. */
  readonly acl: {
    setDefaultPolicy(policy: 'allow' | 'deny'): void;
    addToken(token: FakeAclToken): void;
    removeToken(secretId: string): void;
  };
}

const UNITS_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** Parses a Go `time.Duration` string (`10s`, `1m30s`, `1.5h`, `500ms`, `0`) to ms; undefined if invalid. */
export function parseGoDurationMs(text: string): number | undefined {
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') return undefined;
  let total = 0;
  const part = /^(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;
  while (rest !== '') {
    const m = part.exec(rest);
    if (m === null) return undefined;
    total += Number(m[1]) * (UNITS_MS[m[2] ?? ''] ?? NaN);
    rest = rest.slice(m[0].length);
  }
  return Number.isFinite(total) ? sign * total : undefined;
}

const MAX_WAIT_MS = 600_000; // Consul caps `wait` at 10 min
const DEFAULT_WAIT_MS = 300_000; // and defaults it to 5 min

interface CheckRec {
  id: string;
  name: string;
  notes: string;
  status: FakeCheckStatus;
  output: string;
  ttlMs: number;
  deregisterAfterMs: number | undefined;
  expiresAt: number;
  criticalSince: number | undefined;
  createIndex: number;
  modifyIndex: number;
}

interface ServiceRec {
  id: string;
  name: string;
  address: string;
  port: number;
  tags: string[];
  meta: Record<string, string>;
  checks: CheckRec[];
  createIndex: number;
  modifyIndex: number;
}

interface State {
  nodeId: string;
  index: number;
  services: Map<string, ServiceRec>;
  /** Last index that changed anything under a (lower-cased) service name. */
  nameIndex: Map<string, number>;
}

interface Waiter {
  name: string;
  minIndex: number;
  fire(): void;
  cancel(): void;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Carries the query meta headers (an error of the query endpoint's RPC, after `defer setMeta`). */
    readonly queryMeta = false,
  ) {
    super(message);
  }
}

const ANONYMOUS_ACCESSOR = '00000000-0000-0000-0000-000000000002';

interface Identity {
  readonly accessorId: string;
  readonly anonymous: boolean;
  readonly management: boolean;
  readonly rules: readonly FakeAclRule[];
}

/** Consul's `ipaddr.IsAny`: the addresses a service may not advertise. */
const ANY_ADDRESS = new Set(['0.0.0.0', '::', '[::]']);

const STATUSES: readonly string[] = ['passing', 'warning', 'critical'];

function freshState(): State {
  // A booting agent has already done some raft work; start above 1 like a real one.
  return { nodeId: randomUUID(), index: 10, services: new Map(), nameIndex: new Map() };
}

/** Case-insensitive field lookup: Go's encoding/json matches keys that way. */
function field(obj: Record<string, unknown>, name: string): unknown {
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(obj)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 1 << 20) reject(new HttpError(413, 'Request body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Starts a fake agent; resolves once it listens. */
export async function startFakeConsul(options: FakeConsulOptions = {}): Promise<FakeConsul> {
  const host = options.host ?? '127.0.0.1';
  const nodeName = options.nodeName ?? 'fake-consul';
  const dc = options.datacenter ?? 'dc1';
  const now = options.now ?? Date.now;
  const tickMs = options.tickMs ?? 20;
  const deregMinMs = options.deregisterCriticalMinMs ?? 60_000;
  const reapIntervalMs = options.reapIntervalMs ?? 30_000;
  let nextReapAt = now() + reapIntervalMs;
  const log: FakeRequest[] = [];

  const aclOn = options.acl !== undefined;
  let defaultPolicy: 'allow' | 'deny' = options.acl?.defaultPolicy ?? 'deny';
  const tokens = new Map<string, Identity>();
  const addToken = (t: FakeAclToken): void => {
    tokens.set(t.secretId, { accessorId: t.accessorId ?? randomUUID(), anonymous: false, management: t.management === true, rules: [...(t.rules ?? [])] });
  };
  for (const t of options.acl?.tokens ?? []) addToken(t);
  const anonymous: Identity = { accessorId: ANONYMOUS_ACCESSOR, anonymous: true, management: false, rules: [] };

  /** The token of a request, read the way Consul's `parseToken` does: ?token, X-Consul-Token, Authorization: Bearer. */
  function tokenOf(req: http.IncomingMessage, url: URL): string | undefined {
    const q = url.searchParams.get('token');
    if (q !== null && q !== '') return q;
    const h = req.headers['x-consul-token'];
    if (typeof h === 'string' && h !== '') return h;
    const m = /^bearer\s+(\S+)/i.exec(req.headers.authorization ?? '');
    return m?.[1];
  }

  /** Resolves a token like the ACL resolver: unknown -> 403 "ACL not found"; none -> anonymous. */
  function resolve(token: string | undefined, queryMeta = false): Identity {
    if (!aclOn || token === undefined) return anonymous;
    const id = tokens.get(token);
    if (id === undefined) throw new HttpError(403, 'ACL not found', queryMeta);
    return id;
  }

  function allowed(id: Identity, resource: FakeAclRule['resource'], name: string, need: 'read' | 'write'): boolean {
    if (!aclOn || id.management) return true;
    const exact = id.rules.find((r) => r.resource === resource && r.prefix !== true && r.name === name);
    const prefix = id.rules
      .filter((r) => r.resource === resource && r.prefix === true && name.startsWith(r.name))
      .sort((a, b) => b.name.length - a.name.length)[0];
    const policy = (exact ?? prefix)?.policy ?? (defaultPolicy === 'allow' ? 'write' : 'deny');
    return policy === 'write' || (policy === 'read' && need === 'read');
  }

  /** acl.PermissionDeniedError's text for a named resource. */
  function authorize(id: Identity, resource: FakeAclRule['resource'], name: string, need: 'read' | 'write'): void {
    if (allowed(id, resource, name, need)) return;
    const who = id.anonymous ? 'anonymous token' : `token with AccessorID '${id.accessorId}'`;
    const tail = id.anonymous ? '. The anonymous token is used implicitly when a request does not specify a token.' : '';
    throw new HttpError(403, `Permission denied: ${who} lacks permission '${resource}:${need}' on ${JSON.stringify(name)}${tail}`);
  }

  let state = freshState();
  const waiters = new Set<Waiter>();
  let server: http.Server | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let port = options.port ?? 0;

  const nameIndex = (name: string): number => state.nameIndex.get(name.toLowerCase()) ?? state.index;

  function bump(...names: string[]): number {
    state.index += 1;
    for (const n of names) state.nameIndex.set(n.toLowerCase(), state.index);
    return state.index;
  }

  function notify(): void {
    for (const w of [...waiters]) if (nameIndex(w.name) > w.minIndex) w.fire();
  }

  function setStatus(svc: ServiceRec, c: CheckRec, status: FakeCheckStatus, output: string): void {
    if (status === 'critical' && c.status !== 'critical') c.criticalSince = now();
    if (status !== 'critical') c.criticalSince = undefined;
    if (c.status === status && c.output === output) return;
    c.status = status;
    c.output = output;
    c.modifyIndex = bump(svc.name);
  }

  function evaluate(): void {
    const t = now();
    const before = state.index;
    for (const svc of [...state.services.values()]) {
      for (const c of svc.checks) {
        if (t >= c.expiresAt) {
          c.expiresAt = Infinity; // re-armed by the next update
          setStatus(svc, c, 'critical', 'TTL expired');
        }
      }
    }
    // Consul's reapServices: one pass per check_reap_interval, not on every check update.
    if (t >= nextReapAt) {
      nextReapAt = t + reapIntervalMs;
      for (const svc of [...state.services.values()]) {
        const reap = svc.checks.some(
          (c) => c.deregisterAfterMs !== undefined && c.deregisterAfterMs > 0 && c.criticalSince !== undefined && t - c.criticalSince > Math.max(c.deregisterAfterMs, deregMinMs),
        );
        if (reap) {
          state.services.delete(svc.id);
          bump(svc.name);
        }
      }
    }
    if (state.index !== before) notify();
  }

  function findCheck(id: string): { svc: ServiceRec; check: CheckRec } | undefined {
    for (const svc of state.services.values()) {
      const check = svc.checks.find((c) => c.id === id);
      if (check !== undefined) return { svc, check };
    }
    return undefined;
  }

  // ---- JSON shapes ----

  const nodeJson = () => ({
    ID: state.nodeId,
    Node: nodeName,
    Address: host,
    Datacenter: dc,
    TaggedAddresses: { lan: host, lan_ipv4: host, wan: host, wan_ipv4: host },
    Meta: { 'consul-network-segment': '' },
    CreateIndex: 5,
    ModifyIndex: 5,
  });
  const checkJson = (c: CheckRec, svc: ServiceRec | undefined) => ({
    Node: nodeName,
    CheckID: c.id,
    Name: c.name,
    Status: c.status,
    Notes: c.notes,
    Output: c.output,
    ServiceID: svc?.id ?? '',
    ServiceName: svc?.name ?? '',
    ServiceTags: svc?.tags ?? [],
    Type: svc === undefined ? '' : 'ttl',
    Interval: '',
    Timeout: '',
    ExposedPort: 0,
    Definition: {},
    CreateIndex: c.createIndex,
    ModifyIndex: c.modifyIndex,
  });
  const serfHealth: CheckRec = {
    id: 'serfHealth', name: 'Serf Health Status', notes: '', status: 'passing', output: 'Agent alive and reachable',
    ttlMs: 0, deregisterAfterMs: undefined, expiresAt: Infinity, criticalSince: undefined, createIndex: 5, modifyIndex: 5,
  };
  const entryJson = (svc: ServiceRec) => ({
    Node: nodeJson(),
    Service: {
      ID: svc.id,
      Service: svc.name,
      Tags: svc.tags,
      Address: svc.address,
      Meta: svc.meta,
      Port: svc.port,
      Weights: { Passing: 1, Warning: 1 },
      EnableTagOverride: false,
      Proxy: { Mode: '', MeshGateway: {}, Expose: {} },
      Connect: {},
      PeerName: '',
      CreateIndex: svc.createIndex,
      ModifyIndex: svc.modifyIndex,
    },
    Checks: [checkJson(serfHealth, undefined), ...svc.checks.map((c) => checkJson(c, svc))],
  });

  // ---- handlers ----

  function parseCheck(def: Record<string, unknown>, serviceId: string, serviceName: string, i: number, count: number, t: number): CheckRec {
    const ttlText = field(def, 'TTL');
    const ttlMs = typeof ttlText === 'string' ? parseGoDurationMs(ttlText) : undefined;
    if (ttlMs === undefined || ttlMs <= 0) throw new HttpError(400, 'Check is not valid: fake-consul supports only TTL checks with a TTL > 0');
    const statusRaw = field(def, 'Status') ?? '';
    if (statusRaw !== '' && (typeof statusRaw !== 'string' || !STATUSES.includes(statusRaw))) {
      throw new HttpError(400, "Status for checks must 'passing', 'warning', 'critical'");
    }
    const deregText = field(def, 'DeregisterCriticalServiceAfter');
    const deregisterAfterMs = typeof deregText === 'string' && deregText !== '' ? parseGoDurationMs(deregText) : undefined;
    if (typeof deregText === 'string' && deregText !== '' && deregisterAfterMs === undefined) throw new HttpError(400, `Request decode failed: time: invalid duration "${deregText}"`);
    const idRaw = field(def, 'CheckID') ?? field(def, 'ID');
    const status = (statusRaw === '' ? 'critical' : statusRaw) as FakeCheckStatus;
    return {
      id: typeof idRaw === 'string' && idRaw !== '' ? idRaw : `service:${serviceId}${count > 1 ? `:${i + 1}` : ''}`,
      name: typeof field(def, 'Name') === 'string' && field(def, 'Name') !== '' ? String(field(def, 'Name')) : `Service '${serviceName}' check`,
      notes: typeof field(def, 'Notes') === 'string' ? String(field(def, 'Notes')) : '',
      status,
      output: '',
      ttlMs,
      deregisterAfterMs,
      expiresAt: t + ttlMs,
      criticalSince: status === 'critical' ? t : undefined,
      createIndex: 0,
      modifyIndex: 0,
    };
  }

  function register(body: unknown, token: string | undefined): void {
    if (!isRecord(body)) throw new HttpError(400, 'Request decode failed: body must be a JSON object');
    const name = field(body, 'Name');
    if (typeof name !== 'string' || name === '') throw new HttpError(400, 'Missing service name');
    const idRaw = field(body, 'ID');
    const id = typeof idRaw === 'string' && idRaw !== '' ? idRaw : name;
    const port = field(body, 'Port') ?? 0;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65_535) throw new HttpError(400, 'Request decode failed: Port must be an integer');
    const address = field(body, 'Address') ?? '';
    if (typeof address !== 'string') throw new HttpError(400, 'Request decode failed: Address must be a string');
    // Checked at the agent because registration is not synchronous with the catalog.
    if (ANY_ADDRESS.has(address)) throw new HttpError(400, 'Invalid service address');
    const tags = field(body, 'Tags') ?? [];
    if (!Array.isArray(tags) || !tags.every((x) => typeof x === 'string')) throw new HttpError(400, 'Request decode failed: Tags must be strings');
    const meta = field(body, 'Meta') ?? {};
    if (!isRecord(meta) || !Object.values(meta).every((x) => typeof x === 'string')) throw new HttpError(400, 'Request decode failed: Meta values must be strings');
    for (const k of Object.keys(meta)) if (!/^[A-Za-z0-9_-]{1,128}$/.test(k)) throw new HttpError(400, `Invalid Service Meta: Key contains invalid characters: ${k}`);
    const defs: Record<string, unknown>[] = [];
    const check = field(body, 'Check');
    if (isRecord(check) && Object.keys(check).length > 0) defs.push(check);
    const checks = field(body, 'Checks');
    if (Array.isArray(checks)) for (const c of checks) if (isRecord(c)) defs.push(c);
    const t = now();
    const recs = defs.map((d, i) => parseCheck(d, id, name, i, defs.length, t));

    const old = state.services.get(id);
    // vetServiceRegister: write on the new name, and on the name of a service it would overwrite.
    const who = resolve(token);
    authorize(who, 'service', name, 'write');
    if (old !== undefined && old.name !== name) authorize(who, 'service', old.name, 'write');
    for (const c of recs) {
      // Consul restores the status and output of a check it already had (agent state snapshot).
      const prev = old?.checks.find((p) => p.id === c.id) ?? findCheck(c.id)?.check;
      if (prev !== undefined) Object.assign(c, { status: prev.status, output: prev.output, criticalSince: prev.criticalSince, createIndex: prev.createIndex, modifyIndex: prev.modifyIndex });
    }
    const svc: ServiceRec = { id, name, address, port, tags: tags as string[], meta: meta as Record<string, string>, checks: recs, createIndex: old?.createIndex ?? 0, modifyIndex: old?.modifyIndex ?? 0 };
    const comparable = (s: ServiceRec) => JSON.stringify(entryJson(s).Service) + JSON.stringify(s.checks.map((c) => checkJson(c, s)));
    if (old !== undefined && comparable(old) === comparable(svc)) {
      for (const [i, c] of old.checks.entries()) c.expiresAt = recs[i]?.expiresAt ?? c.expiresAt; // TTL timers restart
      return;
    }
    const index = bump(name, ...(old !== undefined && old.name !== name ? [old.name] : []));
    if (old === undefined) svc.createIndex = index;
    svc.modifyIndex = index;
    for (const c of recs) {
      if (c.createIndex === 0) c.createIndex = index;
      c.modifyIndex = index;
    }
    state.services.set(id, svc);
    notify();
  }

  function updateCheck(id: string, status: FakeCheckStatus, output: string, token: string | undefined): void {
    // vetCheckUpdate: resolve the token, then 404 for an unknown check, then service:write.
    const who = resolve(token);
    const found = findCheck(id);
    if (found === undefined) throw new HttpError(404, `Unknown check ID "${id}". Ensure that the check ID is passed, not the check name.`);
    authorize(who, 'service', found.svc.name, 'write');
    found.check.expiresAt = now() + found.check.ttlMs;
    setStatus(found.svc, found.check, status, output);
    notify();
  }

  function healthService(name: string, q: URLSearchParams, res: http.ServerResponse, token: string | undefined): void {
    let passing = false;
    if (q.has('passing')) {
      const v = q.get('passing') ?? '';
      if (['', '1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)) passing = true;
      else if (!['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) throw new HttpError(400, 'Invalid value for ?passing');
    }
    let waitMs = DEFAULT_WAIT_MS;
    const waitText = q.get('wait');
    if (waitText !== null && waitText !== '') {
      const w = parseGoDurationMs(waitText);
      if (w === undefined) throw new HttpError(400, 'Invalid wait time');
      waitMs = Math.min(Math.max(w, 0), MAX_WAIT_MS);
    }
    let minIndex = 0;
    const indexText = q.get('index');
    if (indexText !== null && indexText !== '') {
      if (!/^\d+$/.test(indexText)) throw new HttpError(400, 'Invalid index');
      minIndex = Number(indexText);
    }
    const tags = q.getAll('tag');
    const who = resolve(token, true); // in the RPC: its 403 comes after `defer setMeta`
    const respond = (): void => {
      const matching = [...state.services.values()]
        .filter((s) => s.name.toLowerCase() === name.toLowerCase())
        .filter((s) => tags.every((t) => s.tags.includes(t)))
        .filter((s) => !passing || s.checks.every((c) => c.status === 'passing'))
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      // filterACL on CheckServiceNodes: the entry needs node:read on its node and service:read on its service.
      const visible = matching.filter((s) => allowed(who, 'node', nodeName, 'read') && allowed(who, 'service', s.name, 'read'));
      send(res, 200, visible.map(entryJson), {
        index: nameIndex(name),
        headers: visible.length < matching.length ? { 'X-Consul-Results-Filtered-By-ACLs': 'true' } : {},
      });
    };
    // Consul blocks while the result's index is still at or below the client's index.
    if (minIndex > 0 && nameIndex(name) <= minIndex) {
      const w: Waiter = {
        name,
        minIndex,
        fire() {
          clearTimeout(timer);
          waiters.delete(w);
          respond();
        },
        cancel() {
          clearTimeout(timer);
          waiters.delete(w);
        },
      };
      const timer = setTimeout(() => w.fire(), waitMs);
      waiters.add(w);
      res.on('close', () => w.cancel());
      return;
    }
    respond();
  }

  interface SendOptions {
    /** Sets the query meta headers (X-Consul-Index and friends) with this index: query endpoints only. */
    readonly index?: number;
    readonly knownLeader?: boolean;
    readonly headers?: Readonly<Record<string, string>>;
    readonly text?: string;
  }

  function send(res: http.ServerResponse, status: number, body: unknown, o: SendOptions = {}): void {
    if (res.headersSent || res.destroyed) return;
    if (o.index !== undefined) {
      // setIndex never sends 0: a client would busy-loop on ?index=0.
      res.setHeader('X-Consul-Index', String(Math.max(o.index, 1)));
      res.setHeader('X-Consul-KnownLeader', String(o.knownLeader ?? true));
      res.setHeader('X-Consul-LastContact', '0');
    }
    for (const [k, v] of Object.entries(o.headers ?? {})) res.setHeader(k, v);
    const text = o.text;
    if (text !== undefined) {
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(text);
    } else if (body === undefined) {
      res.writeHead(status).end();
    } else {
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    }
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const expect = (m: string): void => {
      if (method !== m) throw new HttpError(405, `method ${method} not allowed`);
    };
    const tail = (prefix: string): string => decodeURIComponent(path.slice(prefix.length));
    const token = tokenOf(req, url);
    const rawBody = await readBody(req);
    evaluate();
    let m: RegExpExecArray | null;
    if (path === '/v1/agent/service/register') {
      expect('PUT');
      let body: unknown;
      try {
        body = JSON.parse(rawBody === '' ? 'null' : rawBody);
      } catch (err) {
        throw new HttpError(400, `Request decode failed: ${(err as Error).message}`);
      }
      register(body, token);
      return send(res, 200, undefined);
    }
    if (path.startsWith('/v1/agent/service/deregister/')) {
      expect('PUT');
      const id = tail('/v1/agent/service/deregister/');
      const who = resolve(token);
      const svc = state.services.get(id);
      if (svc === undefined) throw new HttpError(404, `Unknown service ID "${id}". Ensure that the service ID is passed, not the service name.`);
      authorize(who, 'service', svc.name, 'write');
      state.services.delete(id);
      bump(svc.name);
      notify();
      return send(res, 200, undefined);
    }
    if ((m = /^\/v1\/agent\/check\/(pass|warn|fail)\/(.+)$/.exec(path)) !== null) {
      expect('PUT');
      const status = ({ pass: 'passing', warn: 'warning', fail: 'critical' } as const)[m[1] as 'pass' | 'warn' | 'fail'];
      updateCheck(decodeURIComponent(m[2] ?? ''), status, url.searchParams.get('note') ?? '', token);
      return send(res, 200, undefined);
    }
    if (path.startsWith('/v1/agent/check/update/')) {
      expect('PUT');
      let body: unknown;
      try {
        body = JSON.parse(rawBody === '' ? '{}' : rawBody);
      } catch (err) {
        throw new HttpError(400, `Request decode failed: ${(err as Error).message}`);
      }
      const status = isRecord(body) ? field(body, 'Status') : undefined;
      if (typeof status !== 'string' || !STATUSES.includes(status)) throw new HttpError(400, `Invalid check status: '${String(status ?? '')}'`);
      const output = isRecord(body) && typeof field(body, 'Output') === 'string' ? String(field(body, 'Output')) : '';
      updateCheck(tail('/v1/agent/check/update/'), status as FakeCheckStatus, output, token);
      return send(res, 200, undefined);
    }
    if (path.startsWith('/v1/health/service/')) {
      expect('GET');
      return healthService(tail('/v1/health/service/'), url.searchParams, res, token);
    }
    if (path === '/v1/agent/self') {
      expect('GET');
      authorize(resolve(token), 'agent', nodeName, 'read');
      return send(res, 200, {
        Config: { Datacenter: dc, NodeName: nodeName, NodeID: state.nodeId, Server: true, Revision: 'fake', Version: '1.20.0-fake' },
        Member: { Name: nodeName, Addr: host, Port: 8301, Tags: { dc, role: 'consul' }, Status: 1 },
        Meta: { 'consul-network-segment': '' },
      });
    }
    if (path === '/v1/status/leader') {
      expect('GET');
      return send(res, 200, `${host}:8300`);
    }
    throw new HttpError(404, '404 page not found');
  }

  async function listen(): Promise<void> {
    const s = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const record = { method: req.method ?? 'GET', path: url.pathname, query: url.search, token: tokenOf(req, url), status: 0 };
      if (log.length < 100_000) log.push(record);
      res.on('finish', () => {
        record.status = res.statusCode;
      });
      handle(req, res).catch((err: unknown) => {
        // The deferred setMeta of an RPC error carries an empty QueryMeta: index 1, no known leader.
        const meta = err instanceof HttpError && err.queryMeta ? { index: 1, knownLeader: false } : {};
        if (err instanceof HttpError) send(res, err.status, undefined, { ...meta, text: err.message });
        else send(res, 500, undefined, { text: String(err) });
      });
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, host, () => {
        s.off('error', reject);
        resolve();
      });
    });
    port = (s.address() as AddressInfo).port;
    server = s;
    ticker = setInterval(evaluate, tickMs);
    ticker.unref();
  }

  async function shutdown(): Promise<void> {
    const s = server;
    if (s === undefined) return;
    server = undefined;
    clearInterval(ticker);
    for (const w of [...waiters]) w.cancel();
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    s.closeAllConnections(); // an agent going away drops every connection, blocked queries too
    await closed;
  }

  await listen();
  return {
    get url() {
      return `http://${host}:${port}`;
    },
    get port() {
      return port;
    },
    close: shutdown,
    async restart(opts = {}) {
      await shutdown();
      if (opts.keepState !== true) state = freshState();
      nextReapAt = now() + reapIntervalMs; // a new agent process starts its reaper anew
      await opts.whileDown?.();
      await listen();
    },
    services: () =>
      [...state.services.values()]
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        .map((s) => ({
          id: s.id,
          name: s.name,
          address: s.address,
          port: s.port,
          tags: [...s.tags],
          meta: { ...s.meta },
          checks: s.checks.map((c) => ({ checkId: c.id, name: c.name, status: c.status, output: c.output, ttlMs: c.ttlMs, deregisterCriticalServiceAfterMs: c.deregisterAfterMs })),
        })),
    index: () => state.index,
    pendingQueries: () => waiters.size,
    tick: evaluate,
    requests: () => log,
    acl: {
      setDefaultPolicy(policy) {
        if (!aclOn) throw new Error('fake-consul: started without acl');
        defaultPolicy = policy;
      },
      addToken(t) {
        if (!aclOn) throw new Error('fake-consul: started without acl');
        addToken(t);
      },
      removeToken(secretId) {
        if (!aclOn) throw new Error('fake-consul: started without acl');
        tokens.delete(secretId);
      },
    },
  };
}
