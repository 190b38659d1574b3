/**
 * A small typed wrapper around the `consul` npm package (2.x): the handful of agent and health
 * calls discovery needs, with correct types, abort support and errors that carry a stable `code`.
 *
 * Why a wrapper: the package's bundled `.d.ts` files are wrong in places (check options demand
 * `name` and `timeout`, watch `options` are typed as strings, `health.service` returns `any[]`, the
 * constructor type lacks `baseUrl`), and the response headers (`X-Consul-Index`) are only returned
 * when a request context with `includeResponse` is passed — an undocumented papi detail.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import Consul from 'consul';

/** Stable codes of {@link ConsulApiError}. */
export const ConsulErrorCode = {
  /** The agent could not be reached (connection refused or reset, DNS failure, ...). */
  Unreachable: 'CONSUL_UNREACHABLE',
  /** The agent did not answer within the request timeout. */
  Timeout: 'CONSUL_TIMEOUT',
  /** HTTP 404: unknown service or check id (the agent may have lost its state). */
  NotFound: 'CONSUL_NOT_FOUND',
  /** HTTP 403: the ACL system refused the call: the token lacks a permission ("Permission denied: ...")
   *  or is unknown ("ACL not found"). Consul answers 403 for both; `detail` has its text. */
  PermissionDenied: 'CONSUL_PERMISSION_DENIED',
  /** Any other non-2xx HTTP status. */
  Http: 'CONSUL_HTTP_ERROR',
  /** A 2xx answer whose body or headers are not what the Consul HTTP API promises. */
  BadResponse: 'CONSUL_BAD_RESPONSE',
  /** The caller's `AbortSignal` fired. */
  Aborted: 'CONSUL_ABORTED',
  /** The request was rejected before it was sent (bad argument). */
  InvalidArgument: 'CONSUL_INVALID_ARGUMENT',
} as const;
/** One of the {@link ConsulErrorCode} values. */
export type ConsulErrorCode = (typeof ConsulErrorCode)[keyof typeof ConsulErrorCode];

/** Every failure of a {@link ConsulApi} call. The original error, if any, is in `cause`. */
export class ConsulApiError extends Error {
  override readonly name = 'ConsulApiError';
  /** Stable machine-readable code. */
  readonly code: ConsulErrorCode;
  /** Which call failed, e.g. `agent.check.pass`. */
  readonly operation: string;
  /** HTTP status when the agent answered, else undefined. */
  readonly statusCode: number | undefined;
  /** The agent's own words when it answered with an error (its response body), else undefined. */
  readonly detail: string | undefined;

  constructor(code: ConsulErrorCode, operation: string, message: string, options?: { cause?: unknown; statusCode?: number; detail?: string }) {
    super(`${operation}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.operation = operation;
    this.statusCode = options?.statusCode;
    this.detail = options?.detail;
  }
}

/** Status of a Consul health check. */
export type CheckStatus = 'passing' | 'warning' | 'critical';

/** A TTL check attached to a service registration. */
export interface TtlCheck {
  /** Time to live, ms: the check turns critical unless passed within it. */
  readonly ttlMs: number;
  /** The agent deregisters the service after the check was critical this long, ms (Consul's minimum is 1 min). */
  readonly deregisterCriticalServiceAfterMs?: number;
  /** Initial status; Consul's default is `critical`. */
  readonly status?: CheckStatus;
  readonly name?: string;
  readonly notes?: string;
}

/** `PUT /v1/agent/service/register` input. The check id of `check` is `service:<id>`. */
export interface ServiceRegistration {
  readonly id: string;
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly tags?: readonly string[];
  readonly meta?: Readonly<Record<string, string>>;
  readonly check?: TtlCheck;
}

/** `Node` of a health entry (fields discovery reads; Consul sends more). */
export interface HealthNode {
  readonly ID: string;
  readonly Node: string;
  readonly Address: string;
  readonly Datacenter: string;
  readonly Meta?: Readonly<Record<string, string>> | null;
}

/** `Service` of a health entry. `Address` is empty when the service uses the node's address. */
export interface HealthService {
  readonly ID: string;
  readonly Service: string;
  readonly Tags: readonly string[] | null;
  readonly Address: string;
  readonly Port: number;
  readonly Meta: Readonly<Record<string, string>> | null;
  readonly CreateIndex?: number;
  readonly ModifyIndex?: number;
}

/** One check of a health entry (the node's `serfHealth` and the service's own checks). */
export interface HealthCheck {
  readonly Node: string;
  readonly CheckID: string;
  readonly Name: string;
  readonly Status: CheckStatus;
  readonly Output: string;
  readonly ServiceID: string;
  readonly ServiceName: string;
}

/** One element of `GET /v1/health/service/:name`. */
export interface HealthServiceEntry {
  readonly Node: HealthNode;
  readonly Service: HealthService;
  readonly Checks: readonly HealthCheck[];
}

/** Result of {@link ConsulApi.healthService}: the entries and the `X-Consul-Index` to block on next. */
export interface HealthServiceResult {
  readonly entries: readonly HealthServiceEntry[];
  /** `X-Consul-Index` of the answer; pass it back as `index` to block until it moves. */
  readonly index: bigint;
  /** Consul left entries out that the token may not read (`X-Consul-Results-Filtered-By-ACLs: true`,
   *  Consul 1.11+; older agents filter without saying so). */
  readonly filteredByAcls: boolean;
}

/** `GET /v1/health/service/:name` query. */
export interface HealthServiceQuery {
  readonly service: string;
  /** Only entries whose checks are all passing. */
  readonly passing?: boolean;
  readonly tag?: string;
  /** Blocking query: return once the result's index is past this one (or at `waitMs`). 0 or absent: no blocking. */
  readonly index?: bigint;
  /** Longest the agent holds a blocking query, ms. Default: the agent's (5 min). Consul caps it at 10 min. */
  readonly waitMs?: number;
  readonly signal?: AbortSignal;
}

/** Per-call options. */
export interface CallOptions {
  readonly signal?: AbortSignal;
}

/** Options of {@link createConsulApi}. */
export interface ConsulApiOptions {
  /** Agent address, as `http://host:port`, `https://host:port` or `host:port` (the `CONSUL_HTTP_ADDR` forms). Default `http://127.0.0.1:8500`. */
  readonly agentUrl?: string;
  /** ACL token, sent as `X-Consul-Token` on every call (blocking queries and deregistration too).
   *  Default none (the agent then uses its default token, usually `anonymous`). */
  readonly token?: string;
  /** Timeout of one non-blocking call, ms. A blocking query gets `waitMs + waitMs/16 + requestTimeoutMs`. Default 5000. */
  readonly requestTimeoutMs?: number;
}

/**
 * The Consul calls discovery makes. Calls may run concurrently. Every failure rejects with a
 * {@link ConsulApiError}.
 */
export interface ConsulApi {
  /** `PUT /v1/agent/service/register`. Idempotent for the same definition. */
  register(registration: ServiceRegistration, options?: CallOptions): Promise<void>;
  /** `PUT /v1/agent/service/deregister/:id`. Rejects `CONSUL_NOT_FOUND` for an unknown id. */
  deregister(serviceId: string, options?: CallOptions): Promise<void>;
  /** `PUT /v1/agent/check/pass/:id`. Rejects `CONSUL_NOT_FOUND` when the agent does not know the check. */
  passCheck(checkId: string, options?: CallOptions & { readonly note?: string }): Promise<void>;
  /** `PUT /v1/agent/check/fail/:id`. Rejects `CONSUL_NOT_FOUND` when the agent does not know the check. */
  failCheck(checkId: string, options?: CallOptions & { readonly note?: string }): Promise<void>;
  /** `GET /v1/health/service/:name`, optionally blocking; returns the entries and `X-Consul-Index`. */
  healthService(query: HealthServiceQuery): Promise<HealthServiceResult>;
  /** Releases the keep-alive sockets. Calls made afterwards open new ones. */
  destroy(): void;
}

/** Default of {@link ConsulApiOptions.agentUrl}. */
export const DEFAULT_AGENT_URL = 'http://127.0.0.1:8500';

/** The id Consul gives the single check of a service registered with `Check`: `service:<serviceId>`. */
export function serviceCheckId(serviceId: string): string {
  return `service:${serviceId}`;
}

/**
 * Parses an agent address (`http://h:p`, `https://h:p`, `h:p`, `h`) into the `consul` constructor's
 * host/port/secure. Throws a `CONSUL_INVALID_ARGUMENT` error on anything else.
 */
export function parseAgentUrl(agentUrl: string): { host: string; port: number; secure: boolean } {
  const withScheme = /^[a-z]+:\/\//i.test(agentUrl) ? agentUrl : `http://${agentUrl}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch (err) {
    throw new ConsulApiError(ConsulErrorCode.InvalidArgument, 'config', `invalid agent URL "${agentUrl}"`, { cause: err });
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '' || (url.pathname !== '/' && url.pathname !== '')) {
    throw new ConsulApiError(ConsulErrorCode.InvalidArgument, 'config', `invalid agent URL "${agentUrl}" (want http(s)://host:port)`);
  }
  const secure = url.protocol === 'https:';
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port: url.port === '' ? (secure ? 443 : 8500) : Number(url.port), secure };
}

// ---- the raw package surface we use, typed correctly (keys are normalised by the package) ----

/** papi request context: `cancel` aborts the request, `includeResponse` makes calls resolve `[res, body]`. */
interface RequestContext extends EventEmitter {
  includeResponse: true;
}
interface RawCommon {
  ctx: RequestContext;
  timeout: number;
  /** Sent as the `X-Consul-Token` header by the package's common options. */
  token?: string;
}
interface RawCheck {
  ttl: string;
  deregistercriticalserviceafter?: string;
  status?: CheckStatus;
  name?: string;
  notes?: string;
}
interface RawConsul {
  agent: {
    service: {
      register(o: RawCommon & { id: string; name: string; address: string; port: number; tags?: string[]; meta?: Record<string, string>; check?: RawCheck }): Promise<[IncomingMessage]>;
      deregister(o: RawCommon & { id: string }): Promise<[IncomingMessage]>;
    };
    check: {
      pass(o: RawCommon & { id: string; note?: string }): Promise<[IncomingMessage]>;
      fail(o: RawCommon & { id: string; note?: string }): Promise<[IncomingMessage]>;
    };
  };
  health: {
    service(o: RawCommon & { service: string; passing?: boolean; tag?: string; index?: string; wait?: string }): Promise<[IncomingMessage, unknown]>;
  };
  destroy(): void;
}

/** Shape of the errors papi (the package's HTTP layer) and node:http reject with. */
interface RawError {
  message?: unknown;
  code?: unknown;
  isAbort?: boolean;
  isTimeout?: boolean;
  isValidation?: boolean;
  isCodec?: boolean;
  isResponse?: boolean;
  statusCode?: number;
  /** papi's ResponseError: the response, with its decoded body. */
  response?: { body?: unknown };
}

/** Longest agent answer kept as an error's `detail`, characters. */
const MAX_DETAIL = 500;

/** The agent's own words from an error response: papi only puts a text body under 80 characters in
 *  the message (else "forbidden"), and Consul's 403 texts are longer. */
function bodyText(e: RawError): string | undefined {
  const body = e.response?.body;
  const text = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : undefined;
  const trimmed = text?.trim();
  return trimmed === undefined || trimmed === '' ? undefined : trimmed.slice(0, MAX_DETAIL);
}

function toMs(ms: number): string {
  return `${Math.max(0, Math.round(ms))}ms`;
}

function wrapError(operation: string, err: unknown, signal: AbortSignal | undefined): ConsulApiError {
  if (err instanceof ConsulApiError) return err;
  const e: RawError = typeof err === 'object' && err !== null ? (err as RawError) : {};
  const message = typeof e.message === 'string' ? e.message.replace(/^consul: [\w.]+: /, '') : String(err);
  if (signal?.aborted === true || e.isAbort === true) return new ConsulApiError(ConsulErrorCode.Aborted, operation, 'aborted', { cause: err });
  if (e.isTimeout === true) return new ConsulApiError(ConsulErrorCode.Timeout, operation, message, { cause: err });
  if (e.isResponse === true && typeof e.statusCode === 'number') {
    const code = e.statusCode === 404 ? ConsulErrorCode.NotFound : e.statusCode === 403 ? ConsulErrorCode.PermissionDenied : ConsulErrorCode.Http;
    const detail = bodyText(e) ?? message;
    return new ConsulApiError(code, operation, `HTTP ${e.statusCode}: ${detail}`, { cause: err, statusCode: e.statusCode, detail });
  }
  if (e.isValidation === true) return new ConsulApiError(ConsulErrorCode.InvalidArgument, operation, message, { cause: err });
  if (e.isCodec === true) return new ConsulApiError(ConsulErrorCode.BadResponse, operation, message, { cause: err });
  return new ConsulApiError(ConsulErrorCode.Unreachable, operation, message, { cause: err });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks the fields discovery relies on; the rest of Consul's entry passes through untouched. */
function validateEntries(body: unknown): HealthServiceEntry[] | string {
  if (!Array.isArray(body)) return 'body is not an array';
  for (const [i, entry] of body.entries()) {
    if (!isRecord(entry) || !isRecord(entry['Node']) || !isRecord(entry['Service']) || !Array.isArray(entry['Checks'])) {
      return `entry ${i} lacks Node/Service/Checks`;
    }
    const s = entry['Service'];
    if (typeof s['ID'] !== 'string' || typeof s['Port'] !== 'number' || typeof entry['Node']['Address'] !== 'string') {
      return `entry ${i} lacks Service.ID/Service.Port/Node.Address`;
    }
  }
  return body as HealthServiceEntry[];
}

/**
 * Creates a {@link ConsulApi} on top of one `consul` client (one keep-alive agent). Call
 * `destroy()` when done. Throws `CONSUL_INVALID_ARGUMENT` for a bad `agentUrl`.
 */
export function createConsulApi(options: ConsulApiOptions = {}): ConsulApi {
  const requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
  if (!Number.isFinite(requestTimeoutMs) || requestTimeoutMs <= 0) {
    throw new ConsulApiError(ConsulErrorCode.InvalidArgument, 'config', `requestTimeoutMs must be > 0, got ${requestTimeoutMs}`);
  }
  const { host, port, secure } = parseAgentUrl(options.agentUrl ?? DEFAULT_AGENT_URL);
  const token = options.token === '' ? undefined : options.token;
  // A header value node:http would refuse: fail here, with a clear code, not on every call as "unreachable".
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) {
    throw new ConsulApiError(ConsulErrorCode.InvalidArgument, 'config', 'the ACL token must be printable ASCII without spaces');
  }
  const client = new Consul({ host, port, secure });
  const raw = client as unknown as RawConsul;

  /** Runs one package call with a fresh papi context wired to `signal`; maps every failure. */
  async function call<T>(operation: string, signal: AbortSignal | undefined, timeoutMs: number, fn: (common: RawCommon) => Promise<T>): Promise<T> {
    if (signal?.aborted === true) throw new ConsulApiError(ConsulErrorCode.Aborted, operation, 'aborted before start');
    const ctx = Object.assign(new EventEmitter(), { includeResponse: true as const });
    const onAbort = (): void => {
      ctx.emit('cancel');
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      // The token goes with each call explicitly rather than through the package's client-wide
      // `defaults`, so no call path (blocking query, deregistration) can be built without it.
      return await fn({ ctx, timeout: timeoutMs, ...(token === undefined ? {} : { token }) });
    } catch (err) {
      throw wrapError(operation, err, signal);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  return {
    async register(reg, opts) {
      const check = reg.check;
      await call('agent.service.register', opts?.signal, requestTimeoutMs, (common) =>
        raw.agent.service.register({
          ...common,
          id: reg.id,
          name: reg.name,
          address: reg.address,
          port: reg.port,
          ...(reg.tags === undefined ? {} : { tags: [...reg.tags] }),
          ...(reg.meta === undefined ? {} : { meta: { ...reg.meta } }),
          ...(check === undefined
            ? {}
            : {
                check: {
                  ttl: toMs(check.ttlMs),
                  ...(check.deregisterCriticalServiceAfterMs === undefined ? {} : { deregistercriticalserviceafter: toMs(check.deregisterCriticalServiceAfterMs) }),
                  ...(check.status === undefined ? {} : { status: check.status }),
                  ...(check.name === undefined ? {} : { name: check.name }),
                  ...(check.notes === undefined ? {} : { notes: check.notes }),
                },
              }),
        }),
      );
    },

    async deregister(serviceId, opts) {
      await call('agent.service.deregister', opts?.signal, requestTimeoutMs, (common) => raw.agent.service.deregister({ ...common, id: serviceId }));
    },

    async passCheck(checkId, opts) {
      await call('agent.check.pass', opts?.signal, requestTimeoutMs, (common) =>
        raw.agent.check.pass({ ...common, id: checkId, ...(opts?.note === undefined ? {} : { note: opts.note }) }),
      );
    },

    async failCheck(checkId, opts) {
      await call('agent.check.fail', opts?.signal, requestTimeoutMs, (common) =>
        raw.agent.check.fail({ ...common, id: checkId, ...(opts?.note === undefined ? {} : { note: opts.note }) }),
      );
    },

    async healthService(q) {
      const operation = 'health.service';
      const blocking = q.index !== undefined && q.index > 0n;
      // The agent may hold a blocking query up to wait + wait/16 (its jitter); allow that plus a normal call.
      const waitMs = q.waitMs ?? 300_000;
      const timeoutMs = blocking ? waitMs + waitMs / 16 + requestTimeoutMs : requestTimeoutMs;
      const [res, body] = await call(operation, q.signal, timeoutMs, (common) =>
        raw.health.service({
          ...common,
          service: q.service,
          ...(q.passing === true ? { passing: true } : {}),
          ...(q.tag === undefined ? {} : { tag: q.tag }),
          // The package sends `index=undefined` for a present-but-undefined key, so only set defined ones.
          ...(blocking ? { index: String(q.index) } : {}),
          ...(q.waitMs === undefined ? {} : { wait: toMs(q.waitMs) }),
        }),
      );
      const header = res.headers['x-consul-index'];
      if (typeof header !== 'string' || !/^\d+$/.test(header)) {
        throw new ConsulApiError(ConsulErrorCode.BadResponse, operation, `missing or bad X-Consul-Index header: ${String(header)}`);
      }
      // An empty body (no content) arrives as undefined; the API always sends at least `[]`.
      const entries = validateEntries(body);
      if (typeof entries === 'string') throw new ConsulApiError(ConsulErrorCode.BadResponse, operation, entries);
      return { entries, index: BigInt(header), filteredByAcls: res.headers['x-consul-results-filtered-by-acls'] === 'true' };
    },

    destroy() {
      client.destroy();
    },
  };
}
