/**
 * Consul discovery: registers this node with a TTL check it keeps passing, and watches
 * `health/service/<name>?passing` with blocking queries (rate-limited, see `blocking-query.ts`).
 * When the agent is unreachable or refuses the token, the last known targets stay in place, the
 * status turns unhealthy (one log line per change, not one per retry) and both loops keep retrying;
 * when the agent comes back without our registration (a TTL pass answers 404) the node registers again.
 */
import { createWatchLimiter, nextWatchIndex } from './blocking-query.js';
import { ConsulErrorCode, createConsulApi, serviceCheckId } from './consul-api.js';
import type { ConsulApi, HealthServiceEntry } from './consul-api.js';
import { CONSUL_ACL_FILTERED, ConsulStatus, failureOf } from './consul-status.js';
import type { ConsulFailure, ConsulLoop, DiscoveryLogger } from './consul-status.js';
import type { Discovery, DiscoveryListener, DiscoveryStatus, DiscoveryStatusListener, PeerTarget, SelfRegistration } from './types.js';

export type { DiscoveryLogger } from './consul-status.js';

/** Sleeps `ms` or until `signal` aborts; never rejects. Injected in tests. */
export type SleepFn = (ms: number, signal: AbortSignal) => Promise<void>;

/** Options of {@link createConsulDiscovery}; every field but `self` has a default. */
export interface ConsulDiscoveryOptions {
  /** This node: registered as service id `self.id` at `self.address:self.meshPort`. */
  readonly self: SelfRegistration;
  /** Agent address (`http://h:p`, `https://h:p` or `h:p`). Default `http://127.0.0.1:8500`. */
  readonly agentUrl?: string;
  /** ACL token, sent as `X-Consul-Token` on every call. Default none (the agent's default token).
   *  It needs `service:write` on `serviceName`, and `service:read` + `node:read` to see the peers. */
  readonly token?: string;
  /** Consul service name all nodes of the mesh register under. Default `chatmesh`. */
  readonly serviceName?: string;
  /** Extra service tags. Default none. */
  readonly tags?: readonly string[];
  /** TTL of the health check, ms. Default 10 000. */
  readonly ttlMs?: number;
  /** How often the TTL check is passed, ms; must be below `ttlMs`. Default `ttlMs / 3`. */
  readonly passIntervalMs?: number;
  /** The agent removes a registration whose check stayed critical this long, ms. Default 60 000 (Consul's minimum). */
  readonly deregisterCriticalAfterMs?: number;
  /** Longest a blocking query is held by the agent, ms (1..600 000). Default 30 000. */
  readonly waitMs?: number;
  /** Timeout of one non-blocking call, ms. Default 5 000. */
  readonly requestTimeoutMs?: number;
  /** First retry delay after a failure, ms; doubles per failure, with jitter. Default 250. */
  readonly retryMinMs?: number;
  /** Cap of the retry delay, ms. Default 10 000. */
  readonly retryMaxMs?: number;
  /** Health queries the watch may make back to back before the rate limit applies (integer >= 1). Default 2. */
  readonly watchBurst?: number;
  /** Once `watchBurst` is spent, at most one health query per this many ms. Default 1 000. */
  readonly watchIntervalMs?: number;
  /** Logger. Default: silent. */
  readonly logger?: DiscoveryLogger;
  /** Sleep used for pass intervals and back-off. Default: a real timer. */
  readonly sleep?: SleepFn;
  /** Random source for jitter, in [0, 1). Default `Math.random`. */
  readonly random?: () => number;
  /** Clock for the watch rate limit and `status().since`, ms. Default `Date.now`. */
  readonly now?: () => number;
}

/** Defaults of {@link ConsulDiscoveryOptions} (`passIntervalMs` defaults to `ttlMs / 3`). */
export const CONSUL_DISCOVERY_DEFAULTS = {
  agentUrl: 'http://127.0.0.1:8500',
  serviceName: 'chatmesh',
  ttlMs: 10_000,
  deregisterCriticalAfterMs: 60_000,
  waitMs: 30_000,
  requestTimeoutMs: 5_000,
  retryMinMs: 250,
  retryMaxMs: 10_000,
  // Consul's docs suggest a token bucket with burst 2 and, under churn, "polling at a reasonable rate
  // (say every 15 seconds)". A mesh wants membership news sooner than that, and each node runs one
  // watch, so the sustained rate is one query per second per node.
  watchBurst: 2,
  watchIntervalMs: 1_000,
} as const;

/** Stable codes of {@link ConsulDiscoveryError}. */
export const ConsulDiscoveryErrorCode = {
  InvalidOptions: 'DISCOVERY_INVALID_OPTIONS',
  AlreadyStarted: 'DISCOVERY_ALREADY_STARTED',
  Stopped: 'DISCOVERY_STOPPED',
} as const;
/** One of the {@link ConsulDiscoveryErrorCode} values. */
export type ConsulDiscoveryErrorCode = (typeof ConsulDiscoveryErrorCode)[keyof typeof ConsulDiscoveryErrorCode];

/** Misuse of a Consul discovery (bad options, start twice, start after stop). */
export class ConsulDiscoveryError extends Error {
  override readonly name = 'ConsulDiscoveryError';
  readonly code: ConsulDiscoveryErrorCode;
  constructor(code: ConsulDiscoveryErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

type Resolved = Required<Omit<ConsulDiscoveryOptions, 'token' | 'logger'>> & Pick<ConsulDiscoveryOptions, 'token'> & { logger: DiscoveryLogger };

const silent: DiscoveryLogger = { debug() {}, info() {}, warn() {}, error() {} };

const defaultSleep: SleepFn = (ms, signal) =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });

function resolveOptions(o: ConsulDiscoveryOptions): Resolved {
  const d = CONSUL_DISCOVERY_DEFAULTS;
  const ttlMs = o.ttlMs ?? d.ttlMs;
  const r: Resolved = {
    self: o.self,
    agentUrl: o.agentUrl ?? d.agentUrl,
    token: o.token,
    serviceName: o.serviceName ?? d.serviceName,
    tags: o.tags ?? [],
    ttlMs,
    passIntervalMs: o.passIntervalMs ?? ttlMs / 3,
    deregisterCriticalAfterMs: o.deregisterCriticalAfterMs ?? d.deregisterCriticalAfterMs,
    waitMs: o.waitMs ?? d.waitMs,
    requestTimeoutMs: o.requestTimeoutMs ?? d.requestTimeoutMs,
    retryMinMs: o.retryMinMs ?? d.retryMinMs,
    retryMaxMs: o.retryMaxMs ?? d.retryMaxMs,
    watchBurst: o.watchBurst ?? d.watchBurst,
    watchIntervalMs: o.watchIntervalMs ?? d.watchIntervalMs,
    logger: o.logger ?? silent,
    sleep: o.sleep ?? defaultSleep,
    random: o.random ?? Math.random,
    now: o.now ?? Date.now,
  };
  const bad = (msg: string): never => {
    throw new ConsulDiscoveryError(ConsulDiscoveryErrorCode.InvalidOptions, `consul discovery: ${msg}`);
  };
  const positive = (name: keyof Resolved, max = Number.MAX_SAFE_INTEGER): void => {
    const v = r[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > max) bad(`${name} must be a number in (0, ${max}], got ${String(v)}`);
  };
  positive('ttlMs');
  positive('passIntervalMs');
  positive('deregisterCriticalAfterMs');
  positive('waitMs', 600_000);
  positive('requestTimeoutMs');
  positive('retryMinMs');
  positive('retryMaxMs');
  positive('watchIntervalMs');
  if (!Number.isInteger(r.watchBurst) || r.watchBurst < 1) bad(`watchBurst must be an integer >= 1, got ${String(r.watchBurst)}`);
  if (r.token !== undefined && !/^[\x21-\x7e]*$/.test(r.token)) bad('token must be printable ASCII without spaces');
  if (r.passIntervalMs >= r.ttlMs) bad(`passIntervalMs (${r.passIntervalMs}) must be below ttlMs (${r.ttlMs})`);
  if (r.retryMinMs > r.retryMaxMs) bad(`retryMinMs (${r.retryMinMs}) must not exceed retryMaxMs (${r.retryMaxMs})`);
  if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(r.serviceName)) bad(`serviceName must be DNS-safe ([A-Za-z0-9-]), got "${r.serviceName}"`);
  const s = r.self;
  if (typeof s?.id !== 'string' || s.id === '' || s.id.includes('/')) bad('self.id must be a non-empty string without "/"');
  if (typeof s.address !== 'string' || s.address === '') bad('self.address must be a non-empty string');
  const port = (name: string, v: number, min: number): void => {
    if (!Number.isInteger(v) || v < min || v > 65_535) bad(`self.${name} must be an integer port, got ${v}`);
  };
  port('meshPort', s.meshPort, 1);
  port('httpPort', s.httpPort, 0);
  port('adminPort', s.adminPort, 0);
  return r;
}

/** `host:port`, bracketing IPv6 literals. */
function joinHostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

function toTarget(e: HealthServiceEntry): PeerTarget | undefined {
  const host = e.Service.Address !== '' ? e.Service.Address : e.Node.Address;
  if (host === '' || !Number.isInteger(e.Service.Port) || e.Service.Port <= 0) return undefined;
  const meta = Object.fromEntries(Object.entries(e.Service.Meta ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const incarnation = meta['incarnation'];
  return Object.freeze({
    address: joinHostPort(host, e.Service.Port),
    id: meta['node_id'] ?? e.Service.ID,
    ...(incarnation === undefined ? {} : { incarnation }),
    meta: Object.freeze(meta),
  });
}

/** A sleep that `wake()` cuts short, also when `wake()` came just before the sleep started. */
class Alarm {
  readonly #sleep: SleepFn;
  #current: AbortController | undefined;
  #woken = false;
  constructor(sleep: SleepFn) {
    this.#sleep = sleep;
  }
  wake(): void {
    this.#woken = true;
    this.#current?.abort();
  }
  async sleep(ms: number): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return;
    }
    const ac = new AbortController();
    this.#current = ac;
    try {
      await this.#sleep(ms, ac.signal);
    } finally {
      this.#current = undefined;
      this.#woken = false;
    }
  }
}

class ConsulDiscovery implements Discovery {
  readonly #o: Resolved;
  readonly #api: ConsulApi;
  readonly #log: DiscoveryLogger;
  readonly #checkId: string;
  readonly #listeners = new Set<DiscoveryListener>();
  #state: 'new' | 'running' | 'stopped' = 'new';
  #targets: readonly PeerTarget[] = Object.freeze([]);
  #targetsKey = '[]';
  readonly #health: ConsulStatus;
  #leaving = false;
  #deregistering: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  /** Aborts the blocking query and the rate-limit waits at stop. */
  readonly #stopAbort = new AbortController();
  /** Cut a loop's current sleep short (agent back, leaving, stopping). */
  readonly #alarms: Record<ConsulLoop, Alarm>;
  #heartbeatLoop: Promise<void> | undefined;
  #watchLoop: Promise<void> | undefined;

  constructor(o: Resolved) {
    this.#o = o;
    this.#log = o.logger;
    this.#checkId = serviceCheckId(o.self.id);
    this.#health = new ConsulStatus({ agentUrl: o.agentUrl, logger: o.logger, now: o.now });
    this.#alarms = { heartbeat: new Alarm(o.sleep), watch: new Alarm(o.sleep) };
    this.#api = createConsulApi({ agentUrl: o.agentUrl, requestTimeoutMs: o.requestTimeoutMs, ...(o.token === undefined ? {} : { token: o.token }) });
  }

  async start(): Promise<void> {
    if (this.#state === 'stopped') throw new ConsulDiscoveryError(ConsulDiscoveryErrorCode.Stopped, 'consul discovery: start after stop');
    if (this.#state === 'running') throw new ConsulDiscoveryError(ConsulDiscoveryErrorCode.AlreadyStarted, 'consul discovery: already started');
    this.#state = 'running';
    // Register first so that peers see us as early as possible, then take the first membership answer.
    await new Promise<void>((resolve) => {
      this.#heartbeatLoop = this.#heartbeat(resolve);
    });
    await new Promise<void>((resolve) => {
      this.#watchLoop = this.#watch(resolve);
    });
  }

  targets(): readonly PeerTarget[] {
    return this.#targets;
  }

  onChange(listener: DiscoveryListener): () => void {
    const wrapped: DiscoveryListener = (t) => listener(t);
    this.#listeners.add(wrapped);
    return () => {
      this.#listeners.delete(wrapped);
    };
  }

  status(): DiscoveryStatus {
    return this.#health.current();
  }

  onStatusChange(listener: DiscoveryStatusListener): () => void {
    return this.#health.onChange(listener);
  }

  deregister(): Promise<void> {
    this.#deregistering ??= this.#deregister().catch((err: unknown) => {
      this.#deregistering = undefined; // a later call tries again
      throw err;
    });
    return this.#deregistering;
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #deregister(): Promise<void> {
    this.#leaving = true;
    this.#alarms.heartbeat.wake();
    // Let an in-flight pass or registration finish, so that it cannot land after the deregistration.
    if (this.#heartbeatLoop === undefined) return; // never started: nothing registered
    await this.#heartbeatLoop;
    try {
      await this.#api.deregister(this.#o.self.id);
      this.#log.info({ serviceId: this.#o.self.id }, 'deregistered from consul');
    } catch (err) {
      if (failureOf(err).code !== ConsulErrorCode.NotFound) throw err; // already gone counts as done
    }
  }

  async #stop(): Promise<void> {
    if (this.#state === 'new') this.#state = 'stopped'; // a start() racing with this stop must not run
    try {
      await this.deregister();
    } catch (err) {
      const f = failureOf(err);
      this.#log.warn({ code: f.code, detail: f.detail }, 'consul deregistration failed at stop; the agent reaps the service once its check stays critical');
    }
    this.#state = 'stopped';
    this.#stopAbort.abort();
    this.#alarms.heartbeat.wake();
    this.#alarms.watch.wake();
    await Promise.all([this.#heartbeatLoop, this.#watchLoop]);
    this.#api.destroy();
  }

  #running(): boolean {
    return this.#state === 'running';
  }

  /** Delay after `failures` consecutive failures: exponential, capped, with equal jitter. */
  #backoffMs(failures: number): number {
    const cap = Math.min(this.#o.retryMaxMs, this.#o.retryMinMs * 2 ** Math.min(failures - 1, 30));
    return cap / 2 + (this.#o.random() * cap) / 2;
  }

  /** Records a call's outcome in the status. When one loop works again while the other still backs
   *  off, the other retries now: the node recovers within one call, not one (up to retryMaxMs) back-off. */
  #report(loop: ConsulLoop, failure: ConsulFailure | undefined): void {
    if (this.#health.report(loop, failure)) this.#alarms[loop === 'heartbeat' ? 'watch' : 'heartbeat'].wake();
  }

  async #registerSelf(): Promise<void> {
    const { self, serviceName, tags, ttlMs, deregisterCriticalAfterMs } = this.#o;
    await this.#api.register({
      id: self.id,
      name: serviceName,
      address: self.address,
      port: self.meshPort,
      tags,
      meta: { http_port: String(self.httpPort), admin_port: String(self.adminPort), incarnation: self.incarnation, node_id: self.id },
      check: { ttlMs, deregisterCriticalServiceAfterMs: deregisterCriticalAfterMs, name: `${serviceName} TTL` },
    });
    // A new TTL check starts critical: pass it at once rather than wait a whole interval.
    await this.#api.passCheck(this.#checkId);
    this.#log.info({ serviceId: self.id, serviceName }, 'registered with consul');
  }

  /** Registers, then passes the TTL check every `passIntervalMs` until leaving or stopped. */
  async #heartbeat(onFirstAttempt: () => void): Promise<void> {
    let needRegister = true;
    let failures = 0;
    try {
      while (this.#running() && !this.#leaving) {
        let delayMs = this.#o.passIntervalMs;
        const registering = needRegister;
        try {
          if (registering) await this.#registerSelf();
          else await this.#api.passCheck(this.#checkId);
          needRegister = false;
          failures = 0;
          this.#report('heartbeat', undefined);
        } catch (err) {
          const f = failureOf(err);
          if (f.code === ConsulErrorCode.NotFound && !registering) {
            // The agent forgot us (restarted without state, or reaped us): register again now.
            this.#log.warn({ code: f.code, checkId: this.#checkId }, 'consul agent does not know our check; re-registering');
            needRegister = true;
            delayMs = 0;
          } else {
            failures += 1;
            delayMs = Math.min(this.#backoffMs(failures), this.#o.passIntervalMs);
            this.#report('heartbeat', f);
            // Every retry at debug, without a stack: the status change above was the one warning.
            this.#log.debug({ ...f, failures, retryInMs: Math.round(delayMs) }, registering ? 'consul registration failed; retrying' : 'consul TTL pass failed; retrying');
          }
        }
        onFirstAttempt();
        if (delayMs > 0 && this.#running() && !this.#leaving) await this.#alarms.heartbeat.sleep(delayMs);
      }
    } finally {
      onFirstAttempt();
    }
  }

  /** Blocking-query loop over `health/service/<name>?passing`; keeps the last targets on errors. */
  async #watch(onFirstAnswer: () => void): Promise<void> {
    const limiter = createWatchLimiter({ burst: this.#o.watchBurst, intervalMs: this.#o.watchIntervalMs, now: this.#o.now });
    let index = 0n;
    let failures = 0;
    try {
      while (this.#running()) {
        // After a failure the back-off has spaced this query already (and an agent that is back
        // should be asked at once); after an answer, the rate limit spaces it.
        for (let waitMs = failures > 0 ? 0 : limiter.take(); waitMs > 0 && this.#running(); waitMs = limiter.take()) {
          await this.#o.sleep(waitMs, this.#stopAbort.signal);
        }
        if (!this.#running()) break;
        try {
          const r = await this.#api.healthService({
            service: this.#o.serviceName,
            passing: true,
            index,
            waitMs: this.#o.waitMs,
            signal: this.#stopAbort.signal,
          });
          // After an outage, pass now: a 404 tells the heartbeat to re-register without waiting an interval.
          if (failures > 0) this.#alarms.heartbeat.wake();
          failures = 0;
          // Consul answers a token without read rights with fewer entries, not a 403: a node that
          // cannot see its peers is as broken as one that cannot reach Consul.
          this.#report(
            'watch',
            r.filteredByAcls
              ? { code: CONSUL_ACL_FILTERED, operation: 'health.service', detail: `Consul hid "${this.#o.serviceName}" entries the token may not read (X-Consul-Results-Filtered-By-ACLs)` }
              : undefined,
          );
          index = nextWatchIndex(index, r.index);
          this.#update(r.entries);
        } catch (err) {
          if (!this.#running()) break;
          const f = failureOf(err);
          failures += 1;
          index = 0n; // after an outage the agent may be a new one: ask without blocking first
          const delayMs = this.#backoffMs(failures);
          this.#report('watch', f);
          this.#log.debug({ ...f, failures, retryInMs: Math.round(delayMs) }, 'consul health query failed; keeping the last known targets; retrying');
          onFirstAnswer();
          await this.#alarms.watch.sleep(delayMs);
          continue;
        }
        onFirstAnswer();
      }
    } finally {
      onFirstAnswer();
    }
  }

  #update(entries: readonly HealthServiceEntry[]): void {
    const byAddress = new Map<string, { target: PeerTarget; modifyIndex: number }>();
    for (const e of entries) {
      if (e.Service.ID === this.#o.self.id) continue;
      const target = toTarget(e);
      if (target === undefined) {
        this.#log.debug({ serviceId: e.Service.ID }, 'consul entry without a usable address; skipped');
        continue;
      }
      const modifyIndex = e.Service.ModifyIndex ?? 0;
      const prev = byAddress.get(target.address);
      if (prev !== undefined) {
        this.#log.warn({ address: target.address, ids: [prev.target.id, target.id] }, 'two consul registrations share an address; keeping the newer');
        if (prev.modifyIndex >= modifyIndex) continue;
      }
      byAddress.set(target.address, { target, modifyIndex });
    }
    const targets = [...byAddress.values()].map((v) => v.target).sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
    const key = JSON.stringify(targets);
    if (key === this.#targetsKey) return;
    this.#targetsKey = key;
    this.#targets = Object.freeze(targets);
    this.#log.debug({ targets: targets.map((t) => t.address) }, 'consul membership changed');
    for (const listener of [...this.#listeners]) {
      try {
        listener(this.#targets);
      } catch (err) {
        this.#log.error({ code: 'DISCOVERY_LISTENER_FAILED', err }, 'discovery listener threw');
      }
    }
  }
}

/**
 * Creates a Consul-backed {@link Discovery}. Options are validated here (throws
 * `DISCOVERY_INVALID_OPTIONS`); nothing touches the network before `start()`. `start()` registers
 * this node (service id = `self.id`, meta `http_port`, `admin_port`, `incarnation`, `node_id`, a TTL
 * check `service:<id>`) and resolves after the first membership answer or the first failed attempt.
 * `deregister()` and `stop()` are idempotent and may be called concurrently.
 */
export function createConsulDiscovery(options: ConsulDiscoveryOptions): Discovery {
  return new ConsulDiscovery(resolveOptions(options));
}
