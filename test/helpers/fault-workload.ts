/**
 * The fault suite's workload: users that stay connected to two nodes of the mesh while a third one
 * fails, continuous direct messages between the two sides, continuous `presence` queries, and a
 * watcher on each side. Every user stays online the whole time, so every `offline` answer about
 * one of them is false, and every `presence_change` about one of them is a flap. Counts what the
 * contract (protocol.md §2) forbids.
 */
import { WebSocket } from 'ws';
import { sleep } from './fault-mesh.js';

export type Frame = Record<string, unknown> & { type: string };

/** Options of a `FaultConn`. */
export interface FaultConnOptions {
  /** Called synchronously with the `welcome` frame, inside the socket's message event. */
  readonly onWelcome?: (f: Frame) => void;
  /** Every frame that is not the welcome and not an answer to a `request` (message, presence_change...). */
  readonly onEvent?: (f: Frame) => void;
  /** The socket closed (expected or not). */
  readonly onClose?: (code: number, reason: string) => void;
  /** Time allowed from the upgrade to the welcome, ms. Default 15000. */
  readonly welcomeTimeoutMs?: number;
}

/**
 * One client connection in dev-auth mode: sends `hello` on open, matches answers to requests by
 * `id`, hands every other frame to `onEvent`. Keeps no frame history (the workload counts instead).
 */
export class FaultConn {
  readonly ws: WebSocket;
  readonly welcome: Promise<Frame>;
  readonly closed: Promise<{ code: number; reason: string }>;
  private seq = 0;
  private readonly pending = new Map<string, (f: Frame) => void>();
  private welcomed = false;

  constructor(readonly url: string, readonly user: string, private readonly opts: FaultConnOptions = {}) {
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.closed = new Promise((res) => this.ws.once('close', (code, reason) => {
      const r = reason.toString();
      opts.onClose?.(code, r);
      res({ code, reason: r });
    }));
    this.welcome = new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`no welcome for ${user} at ${url}`)), opts.welcomeTimeoutMs ?? 15_000);
      this.ws.once('open', () => this.ws.send(JSON.stringify({ type: 'hello', user })));
      this.ws.once('close', (code) => { clearTimeout(timer); rej(new Error(`closed ${code} before the welcome of ${user}`)); });
      this.ws.on('message', (data) => {
        const f = JSON.parse(data.toString()) as Frame;
        if (!this.welcomed && f.type === 'welcome') {
          this.welcomed = true;
          clearTimeout(timer);
          opts.onWelcome?.(f);
          res(f);
          return;
        }
        if (!this.welcomed && f.type === 'error') {
          clearTimeout(timer);
          rej(new Error(`hello of ${user} refused: ${JSON.stringify(f)}`));
          return;
        }
        const id = f['id'];
        if (typeof id === 'string' && (f.type === 'ack' || f.type === 'presence' || f.type === 'error')) {
          const done = this.pending.get(id);
          if (done) {
            this.pending.delete(id);
            done(f);
            return;
          }
        }
        opts.onEvent?.(f);
      });
    });
    this.welcome.catch(() => undefined);
    this.ws.on('error', () => { /* surfaced through close */ });
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Requests whose answer has not arrived. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Sends `frame` with a fresh `id`; resolves with its answer (never rejects; may never resolve). */
  request(frame: Record<string, unknown>): Promise<Frame> {
    const id = `r${++this.seq}`;
    const p = new Promise<Frame>((res) => this.pending.set(id, res));
    this.ws.send(JSON.stringify({ ...frame, id }));
    return p;
  }

  terminate(): void {
    this.ws.terminate();
  }
}

/** What a scenario measured. Every counter but `sends`, `delivered`, `presenceAnswers`, `unavailable` and `maxAnswerMs` should be 0. */
export interface Counts {
  users: number;
  sends: number;
  delivered: number;
  /** `send` to an online user acked `offline`. */
  falseOfflineAcks: number;
  /** `send` to an online user acked `stored` (kept for later instead of delivered: also false). */
  falseStoredAcks: number;
  /** `unavailable` errors (allowed by the contract; reported). */
  unavailable: number;
  /** Errors other than `unavailable`, by code in `errorCodes`. */
  otherErrors: number;
  errorCodes: Record<string, number>;
  presenceQueries: number;
  presenceAnswers: number;
  /** Per-user `offline` entries in `presence` answers about online users. */
  falsePresence: number;
  /** `offline` entries in the ack of the `watch` sent after every welcome. */
  watchAckOffline: number;
  /** `presence_change` events about watched users (all stay online): each is false. An `online`
   *  that corrects a false `offline` of the watch ack is not counted here (the ack was). */
  presenceChanges: number;
  /** Users with at least one false `presence_change`. */
  flappedUsers: number;
  /** A message id received twice on one connection. */
  duplicates: number;
  /** Acked `delivered` but never received by the recipient. */
  missing: number;
  /** Received although acked `offline` or answered `unavailable`. */
  phantom: number;
  /** Received out of one sender's send order to that recipient. */
  reordered: number;
  /** A `message` frame at a connection of neither its sender nor its recipient. */
  misrouted: number;
  /** Requests never answered (by the end of the settle period). */
  unanswered: number;
  /** Workload connections closed by the server (unexpectedly). */
  disconnects: number;
  /** Slowest answer to a request, ms. */
  maxAnswerMs: number;
  /** The false counts by phase of the scenario (only phases where any was non-zero). */
  byPhase: Record<string, Partial<Record<PhaseKey, number>>>;
  /** Up to 10 users of each kind of false answer, for debugging (sorted). */
  samples: { flapped: string[]; offlineAckedTo: string[]; presenceOffline: string[] };
}

type PhaseKey = 'falseOfflineAcks' | 'falseStoredAcks' | 'falsePresence' | 'presenceChanges' | 'unavailable' | 'otherErrors' | 'duplicates';

/** Options of a `Workload`. */
export interface WorkloadOptions {
  /** WebSocket URL of the node of side A and of side B. */
  readonly urlA: string;
  readonly urlB: string;
  /** Users in total, half on each side. Default 300. */
  readonly users?: number;
  /** Direct messages per second, both directions together. Default 200. */
  readonly sendsPerSec?: number;
  /** `presence` queries per second, both sides together. Default 20. */
  readonly presencePerSec?: number;
  /** Users asked about per `presence` query. Default 10. */
  readonly presenceBatch?: number;
  /** User id prefix. Default ''. */
  readonly prefix?: string;
}

/** What a watcher was last told about a user: by the watch ack, or by an event (before the ack: `preAck`). */
interface Told {
  readonly status: string;
  readonly fromAck: boolean;
  readonly preAck?: boolean;
}

interface SendRecord {
  readonly to: string;
  status?: string;
  msg?: string;
  received: number;
}

/**
 * Connects users to side A and side B, a watcher on each side watching every user of the other
 * side, and once `run()` is called keeps sending and asking until `stop()`. Not reusable.
 */
export class Workload {
  readonly a: FaultConn[] = [];
  readonly b: FaultConn[] = [];
  /** The current phase label; false counts are attributed to the phase their answer arrived in. */
  phase = 'setup';
  private readonly opts: Required<WorkloadOptions>;
  private readonly watchers: FaultConn[] = [];
  /** Per watcher: user -> last status the watcher was told, and whether that came from the watch ack. */
  private readonly told = new Map<FaultConn, Map<string, Told>>();
  private readonly flapped = new Set<string>();
  private readonly sendsBySeq = new Map<number, SendRecord>();
  private readonly seenByConn = new Map<FaultConn, Set<string>>();
  private readonly lastPairSeq = new Map<string, number>();
  private readonly pairSeq = new Map<string, number>();
  private globalSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly c: Counts = {
    users: 0, sends: 0, delivered: 0, falseOfflineAcks: 0, falseStoredAcks: 0, unavailable: 0, otherErrors: 0, errorCodes: {},
    presenceQueries: 0, presenceAnswers: 0, falsePresence: 0, watchAckOffline: 0, presenceChanges: 0, flappedUsers: 0,
    duplicates: 0, missing: 0, phantom: 0, reordered: 0, misrouted: 0, unanswered: 0, disconnects: 0, maxAnswerMs: 0, byPhase: {},
    samples: { flapped: [], offlineAckedTo: [], presenceOffline: [] },
  };
  private readonly offlineAckedTo = new Set<string>();
  private readonly presenceOffline = new Set<string>();
  /** Changes about each extra watched user (see `watch(extra)`), as `watcher:status`. */
  readonly extraChanges = new Map<string, string[]>();

  constructor(opts: WorkloadOptions) {
    this.opts = { users: 300, sendsPerSec: 200, presencePerSec: 20, presenceBatch: 10, prefix: '', ...opts };
  }

  private bump(key: PhaseKey, n = 1): void {
    this.c[key] += n;
    const p = (this.c.byPhase[this.phase] ??= {});
    p[key] = (p[key] ?? 0) + n;
  }

  private conn(url: string, user: string, watcher = false): FaultConn {
    const c = new FaultConn(url, user, {
      onEvent: (f) => (watcher ? this.onWatcherEvent(c, f) : this.onUserEvent(c, f)),
      onClose: () => { if (!this.stopped) this.c.disconnects++; },
    });
    this.seenByConn.set(c, new Set());
    return c;
  }

  /**
   * Connects both watchers, then every user (at most 50 handshakes at once); resolves right after
   * the last welcome, so a `watch()` that follows is sent the moment every user has its welcome.
   */
  async connect(): Promise<void> {
    const half = Math.floor(this.opts.users / 2);
    const p = this.opts.prefix;
    const wa = this.conn(this.opts.urlA, `${p}watcher-a`, true);
    const wb = this.conn(this.opts.urlB, `${p}watcher-b`, true);
    await Promise.all([wa.welcome, wb.welcome]);
    this.watchers.push(wa, wb);
    const todo: Array<() => FaultConn> = [];
    for (let i = 0; i < half; i++) {
      todo.push(() => { const c = this.conn(this.opts.urlA, `${p}a${i}`); this.a.push(c); return c; });
      todo.push(() => { const c = this.conn(this.opts.urlB, `${p}b${i}`); this.b.push(c); return c; });
    }
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < todo.length) await todo[next++]!().welcome;
    };
    await Promise.all(Array.from({ length: 50 }, worker));
    this.c.users = this.a.length + this.b.length;
  }

  /**
   * The `watch` sent after every welcome: watcher A watches side B's users (plus `extra`), watcher
   * B side A's (plus `extra`). Counts `offline` entries of the acks. Changes about `extra` users are
   * recorded in `extraChanges` instead of `presenceChanges`.
   */
  async watch(extra: readonly string[] = []): Promise<void> {
    for (const u of extra) this.extraChanges.set(u, []);
    const [wa, wb] = this.watchers as [FaultConn, FaultConn];
    await Promise.all([[wa, [...this.b.map((c) => c.user), ...extra]] as const, [wb, [...this.a.map((c) => c.user), ...extra]] as const]
      .map(async ([w, users]) => {
        const told = new Map<string, Told>();
        this.told.set(w, told);
        const ack = await w.request({ type: 'watch', users });
        if (ack.type !== 'ack') {
          this.countError(ack);
          return;
        }
        for (const [u, s] of Object.entries(ack['users'] as Record<string, string>)) {
          if (s === 'offline') this.c.watchAckOffline++;
          const before = told.get(u);
          if (!before) {
            told.set(u, { status: s, fromAck: true });
          } else if (before.preAck && s === 'online') {
            // An `online` event before an ack that says online too: a spurious transition.
            this.countChange(u);
          } // else an `online` event, then an ack that says offline: the ack was counted false.
        }
      }));
  }

  private onWatcherEvent(w: FaultConn, f: Frame): void {
    if (f.type !== 'presence_change') return this.onUserEvent(w, f);
    const user = f['user'] as string;
    const status = f['status'] as string;
    const told = this.told.get(w) ?? new Map<string, Told>();
    this.told.set(w, told);
    const prev = told.get(user);
    told.set(user, { status, fromAck: false, preAck: prev === undefined && status === 'online' });
    if (status === 'online' && prev?.status === 'offline' && prev.fromAck) return; // corrects the watch ack
    if (prev === undefined && status === 'online') return; // before the ack: judged when the ack comes
    this.countChange(user, `${w.user}:${status}`);
  }

  private countChange(user: string, what = 'online'): void {
    const extra = this.extraChanges.get(user);
    if (extra) {
      extra.push(what);
      return;
    }
    this.bump('presenceChanges');
    this.flapped.add(user);
  }

  private onUserEvent(c: FaultConn, f: Frame): void {
    if (f.type !== 'message') return;
    const seen = this.seenByConn.get(c)!;
    const msg = f['msg'] as string;
    if (seen.has(msg)) {
      this.bump('duplicates');
      return;
    }
    seen.add(msg);
    if (f['to'] !== c.user && f['from'] !== c.user) this.c.misrouted++;
    const m = /^g(\d+)\.p(\d+)$/.exec(String(f['body']));
    if (!m) return;
    const rec = this.sendsBySeq.get(Number(m[1]));
    if (rec) rec.received++;
    const pair = `${String(f['from'])}>${c.user}`;
    const ps = Number(m[2]);
    if (ps < (this.lastPairSeq.get(pair) ?? 0)) this.c.reordered++;
    else this.lastPairSeq.set(pair, ps);
  }

  private countError(f: Frame): void {
    const code = String(f['code']);
    if (code === 'unavailable') {
      this.bump('unavailable');
      return;
    }
    this.bump('otherErrors');
    this.c.errorCodes[code] = (this.c.errorCodes[code] ?? 0) + 1;
  }

  private timed(p: Promise<Frame>, t0: number): Promise<Frame> {
    return p.then((f) => {
      const ms = Date.now() - t0;
      if (ms > this.c.maxAnswerMs) this.c.maxAnswerMs = ms;
      return f;
    });
  }

  private sendOne(): void {
    const fromA = Math.random() < 0.5;
    const [src, dst] = fromA ? [this.a, this.b] : [this.b, this.a];
    const from = src[Math.floor(Math.random() * src.length)];
    const to = dst[Math.floor(Math.random() * dst.length)];
    if (!from?.open || !to) return;
    const g = ++this.globalSeq;
    const pair = `${from.user}>${to.user}`;
    const ps = (this.pairSeq.get(pair) ?? 0) + 1;
    this.pairSeq.set(pair, ps);
    const rec: SendRecord = { to: to.user, received: 0 };
    this.sendsBySeq.set(g, rec);
    this.c.sends++;
    void this.timed(from.request({ type: 'send', to: to.user, body: `g${g}.p${ps}` }), Date.now()).then((f) => {
      if (f.type === 'ack') {
        rec.status = String(f['status']);
        rec.msg = f['msg'] as string;
        if (rec.status === 'delivered') this.c.delivered++;
        else if (rec.status === 'offline') this.bump('falseOfflineAcks');
        else if (rec.status === 'stored') this.bump('falseStoredAcks');
        if (rec.status === 'offline' || rec.status === 'stored') this.offlineAckedTo.add(to.user);
      } else {
        rec.status = f.type === 'error' ? `error:${String(f['code'])}` : f.type;
        this.countError(f);
      }
    });
  }

  private askOne(): void {
    const fromA = Math.random() < 0.5;
    const [src, dst] = fromA ? [this.a, this.b] : [this.b, this.a];
    const asker = src[Math.floor(Math.random() * src.length)];
    if (!asker?.open || dst.length === 0) return;
    const users = new Set<string>();
    const want = Math.min(this.opts.presenceBatch, dst.length);
    while (users.size < want) users.add(dst[Math.floor(Math.random() * dst.length)]!.user);
    this.c.presenceQueries++;
    void this.timed(asker.request({ type: 'presence', users: [...users] }), Date.now()).then((f) => {
      if (f.type !== 'presence') return this.countError(f);
      for (const [u, s] of Object.entries(f['users'] as Record<string, string>)) {
        this.c.presenceAnswers++;
        if (s !== 'online') {
          this.bump('falsePresence');
          this.presenceOffline.add(u);
        }
      }
    });
  }

  /** Starts the continuous sends and presence queries (ticks of 20 ms). */
  run(): void {
    let sendDue = 0;
    let askDue = 0;
    let last = Date.now();
    this.timer = setInterval(() => {
      const now = Date.now();
      const dt = Math.min(now - last, 200) / 1000;
      last = now;
      sendDue += dt * this.opts.sendsPerSec;
      askDue += dt * this.opts.presencePerSec;
      for (; sendDue >= 1; sendDue--) this.sendOne();
      for (; askDue >= 1; askDue--) this.askOne();
    }, 20);
  }

  private allConns(): FaultConn[] {
    return [...this.a, ...this.b, ...this.watchers];
  }

  /**
   * Stops sending, waits up to `answersMs` for every answer and then up to `messagesMs` for every
   * message acked delivered, and returns the counts. Closing the connections is left to `close()`.
   */
  async stop(answersMs = 12_000, messagesMs = 3000): Promise<Counts> {
    if (this.timer) clearInterval(this.timer);
    this.phase = 'settle';
    const pending = (): number => this.allConns().reduce((n, c) => n + (c.open ? c.pendingCount : 0), 0);
    for (const deadline = Date.now() + answersMs; pending() > 0 && Date.now() < deadline;) await sleep(50);
    const missing = (): number => [...this.sendsBySeq.values()].filter((r) => r.status === 'delivered' && r.received === 0).length;
    for (const deadline = Date.now() + messagesMs; missing() > 0 && Date.now() < deadline;) await sleep(50);
    this.stopped = true;
    this.c.unanswered = pending();
    this.c.missing = missing();
    this.c.phantom = [...this.sendsBySeq.values()].filter((r) => r.received > 0 && (r.status === 'offline' || r.status === 'error:unavailable')).length;
    return this.snapshot();
  }

  /** Counts so far. */
  snapshot(): Counts {
    const sample = (s: Set<string>): string[] => [...s].sort().slice(0, 10);
    return {
      ...this.c, flappedUsers: this.flapped.size, errorCodes: { ...this.c.errorCodes }, byPhase: structuredClone(this.c.byPhase),
      samples: { flapped: sample(this.flapped), offlineAckedTo: sample(this.offlineAckedTo), presenceOffline: sample(this.presenceOffline) },
    };
  }

  /** Terminates every connection of the workload. */
  close(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const c of this.allConns()) c.terminate();
  }
}
