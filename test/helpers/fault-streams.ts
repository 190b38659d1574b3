/**
 * The fault suite's message-stream workload (protocol.md "Mailbox, resume and history"): users spread
 * over the nodes of a `FaultMesh` send direct messages to each other; some go offline (a graceful
 * close) and come back part of the time, so that some sends are acked `stored`; a connection that
 * closes under a user (its node died or drained) reconnects at once to another live node with
 * `since` = the newest message id that user received. Every message that reaches its recipient is
 * counted by `msg` id, live, from the mailbox or from a resume; histories are read page by page.
 */
import { spawn } from 'node:child_process';
import { WebSocket } from 'ws';
import { faultCli, sleep } from './fault-mesh.js';
import { freePort } from './procs.js';

export type Frame = Record<string, unknown> & { type: string };

/** When a message frame arrived on a connection, relative to its welcome and `synced`. */
export type MessageWhen = 'before-welcome' | 'replay' | 'live';

/** Options of a {@link StreamConn}. */
export interface StreamConnOptions {
  /** Resume after this message id (`hello` with `since`) instead of the mailbox. */
  readonly since?: string;
  /**
   * Every `message` / `room_message` frame and when it came: before the welcome (the server may
   * write live messages to a connection it has subscribed before the welcome is out), between the
   * welcome and `synced` (mailbox or resume; live ones may come meanwhile too), or after `synced`.
   */
  readonly onMessage?: (f: Frame, when: MessageWhen) => void;
  /** The socket closed (expected or not); `welcomed`: after the welcome. */
  readonly onClose?: (code: number, reason: string, welcomed: boolean) => void;
  /** Time allowed from the upgrade to the welcome, ms. Default 10000. */
  readonly welcomeTimeoutMs?: number;
}

/**
 * One dev-auth client connection that knows the stream frames: `hello` (with `since`) on open,
 * `synced` (or the `error` without id that replaces it when no replica answered), answers matched to
 * requests by `id` whatever their type (`ack`, `history`, `error`...).
 */
export class StreamConn {
  readonly ws: WebSocket;
  /** The welcome; rejects when the socket closes first, the hello is refused or times out. */
  readonly welcome: Promise<Frame>;
  /** `synced`, or the `error` frame without id sent instead; rejects when the socket closes first. */
  readonly synced: Promise<Frame>;
  readonly closed: Promise<{ code: number; reason: string }>;
  private seq = 0;
  private readonly pending = new Map<string, (f: Frame | undefined) => void>();
  private welcomed = false;
  private isSynced = false;

  constructor(readonly url: string, readonly user: string, readonly opts: StreamConnOptions = {}) {
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    let onWelcome!: (f: Frame) => void;
    let onSynced!: (f: Frame) => void;
    let failWelcome!: (e: Error) => void;
    let failSynced!: (e: Error) => void;
    this.welcome = new Promise((res, rej) => { onWelcome = res; failWelcome = rej; });
    this.synced = new Promise((res, rej) => { onSynced = res; failSynced = rej; });
    this.welcome.catch(() => undefined);
    this.synced.catch(() => undefined);
    const timer = setTimeout(() => {
      failWelcome(new Error(`no welcome for ${user} at ${url}`));
      this.ws.terminate();
    }, opts.welcomeTimeoutMs ?? 10_000);
    this.closed = new Promise((res) => this.ws.once('close', (code, reason) => {
      clearTimeout(timer);
      const r = reason.toString();
      failWelcome(new Error(`closed ${code} before the welcome of ${user} at ${url}`));
      failSynced(new Error(`closed ${code} before synced of ${user} at ${url}`));
      for (const done of this.pending.values()) done(undefined);
      this.pending.clear();
      opts.onClose?.(code, r, this.welcomed);
      res({ code, reason: r });
    }));
    this.ws.once('open', () => this.ws.send(JSON.stringify({ type: 'hello', user, ...(opts.since !== undefined && { since: opts.since }) })));
    this.ws.on('error', () => { /* surfaced through close */ });
    this.ws.on('message', (data) => {
      const f = JSON.parse(data.toString()) as Frame;
      if (!this.welcomed) {
        if (f.type === 'welcome') {
          this.welcomed = true;
          clearTimeout(timer);
          onWelcome(f);
        } else if (f.type === 'error') {
          clearTimeout(timer);
          failWelcome(new Error(`hello of ${user} refused: ${JSON.stringify(f)}`));
        } else if (f.type === 'message' || f.type === 'room_message') {
          opts.onMessage?.(f, 'before-welcome');
        }
        return;
      }
      const id = f['id'];
      if (typeof id === 'string') {
        const done = this.pending.get(id);
        if (done) {
          this.pending.delete(id);
          done(f);
          return;
        }
      }
      if (f.type === 'message' || f.type === 'room_message') {
        opts.onMessage?.(f, this.isSynced ? 'live' : 'replay');
      } else if (!this.isSynced && (f.type === 'synced' || (f.type === 'error' && id === undefined))) {
        this.isSynced = f.type === 'synced';
        onSynced(f);
      }
    });
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Requests whose answer has not arrived. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Sends `frame` with a fresh `id`; resolves with its answer, or undefined when the socket closed first. */
  request(frame: Record<string, unknown>): Promise<Frame | undefined> {
    if (!this.open) return Promise.resolve(undefined);
    const id = `q${++this.seq}`;
    const p = new Promise<Frame | undefined>((res) => this.pending.set(id, res));
    this.ws.send(JSON.stringify({ ...frame, id }));
    return p;
  }

  /** A graceful close (every frame the server wrote before it saw the close still arrives). */
  close(): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    else if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000, 'bye');
    return this.closed;
  }

  terminate(): void {
    this.ws.terminate();
  }
}

/** A whole conversation or room read through `history`, oldest first. */
export interface HistoryRead {
  /** Message ids, oldest first, in the order the pages gave them. */
  readonly ids: string[];
  readonly frames: Frame[];
  readonly pages: number;
  /** The answer that ended the read early (an `error`, or undefined for a closed socket). */
  readonly failed?: Frame | 'closed';
}

/**
 * Reads a conversation (`{ with }`) or a room (`{ room }`) through every page, newest page first,
 * each next one `before` the oldest message of the last (at most `maxPages`).
 */
export async function readWholeHistory(conn: StreamConn, target: { with: string } | { room: string }, limit = 100, maxPages = 200): Promise<HistoryRead> {
  let frames: Frame[] = [];
  let before: string | undefined;
  let pages = 0;
  for (; pages < maxPages;) {
    const r = await conn.request({ type: 'history', ...target, limit, ...(before !== undefined && { before }) });
    if (!r) return { ids: frames.map((f) => f['msg'] as string), frames, pages, failed: 'closed' };
    if (r.type !== 'history') return { ids: frames.map((f) => f['msg'] as string), frames, pages, failed: r };
    pages++;
    const msgs = r['messages'] as Frame[];
    frames = [...msgs, ...frames];
    if (r['more'] !== true || msgs.length === 0) break;
    before = msgs[0]!['msg'] as string;
  }
  return { ids: frames.map((f) => f['msg'] as string), frames, pages };
}

/** How `ids` (one history, oldest first) compares with the `expected` ids. */
export interface HistoryCheck {
  /** Expected ids absent. */
  missing: string[];
  /** Ids that occur more than once (each counted once per extra copy). */
  duplicates: number;
  /** Places where an id is not greater than the one before it. */
  outOfOrder: number;
  /** Ids present but not expected (a send answered `unavailable` or unanswered may have been kept). */
  extra: number;
}

export function checkHistory(ids: readonly string[], expected: ReadonlySet<string>): HistoryCheck {
  const seen = new Set<string>();
  let duplicates = 0;
  let outOfOrder = 0;
  let extra = 0;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (seen.has(id)) duplicates++;
    seen.add(id);
    if (i > 0 && !(id > ids[i - 1]!)) outOfOrder++;
    if (!expected.has(id)) extra++;
  }
  return { missing: [...expected].filter((id) => !seen.has(id)), duplicates, outOfOrder, extra };
}

/** A live node a client may (re)connect to. */
export interface LoadNode {
  readonly index: number;
  readonly url: string;
}

/** Options of a {@link DmLoad}. */
export interface DmLoadOptions {
  /** Users in total (user k's first connection goes to node k mod 3). */
  readonly users: number;
  /** Direct messages per second, all senders together. */
  readonly sendsPerSec: number;
  /** Share of users that go offline part of the time (0..1). Default 0.25. */
  readonly flakyShare?: number;
  /** How long a flaky user stays online / offline, ms, uniformly in [min, max]. Defaults [1500, 3000] / [1000, 2500]. */
  readonly onlineMs?: readonly [number, number];
  readonly offlineMs?: readonly [number, number];
  /** The nodes clients may connect to now (live and not leaving). */
  readonly nodes: () => LoadNode[];
  /** User id prefix. Default 'u'. */
  readonly prefix?: string;
  /**
   * Share of sends that go to one of the sender's friends (user k's friends are k+1..k+friends mod
   * users: on other nodes and on its own), so that conversations grow long enough to page through;
   * the rest go to anyone. Defaults 0.8 and 3.
   */
  readonly friendShare?: number;
  readonly friends?: number;
}

/** One `send` and what became of it. */
export interface SendRecord {
  readonly seq: number;
  readonly from: string;
  readonly to: string;
  /** Node of the sender's connection. */
  readonly fromNode: number;
  readonly sentAt: number;
  readonly phase: string;
  /** `delivered`, `stored`, `error:<code>`, or `no-answer` (the connection closed first); undefined while pending. */
  status?: string;
  /** The phase the answer came in. */
  answeredIn?: string;
  msg?: string;
}

/** One connection of a user, for the record. */
interface ConnRecord {
  readonly node: number;
  readonly mode: 'initial' | 'back' | 'moved';
  readonly since?: string;
  readonly at: number;
  welcomedAt?: number;
  syncedAt?: number;
  syncedCount?: number;
  closedAt?: number;
  code?: number;
}

type UserState = 'connecting' | 'online' | 'leaving' | 'closing' | 'offline' | 'down';

class LoadUser {
  conn: StreamConn | undefined;
  node = -1;
  state: UserState = 'offline';
  synced = false;
  /** When the next toggle (flaky) or reconnect attempt is due, ms since epoch. */
  due = 0;
  /** Times it came back after going offline (alternates mailbox and resume). */
  backs = 0;
  /** Received message ids (messages to this user from others) and how often. */
  readonly received = new Map<string, number>();
  /** The greatest message id received (a resume's `since`). */
  maxReceived: string | undefined;
  readonly conns: ConnRecord[] = [];
  constructor(readonly name: string, readonly home: number, readonly flaky: boolean) {}
}

/** What a {@link DmLoad} counted. */
export interface DmCounts {
  users: number;
  flakyUsers: number;
  sends: number;
  delivered: number;
  stored: number;
  unavailable: number;
  /** Sends whose connection closed before the answer (may or may not arrive). */
  noAnswer: number;
  /** Sends still unanswered when counted. */
  pending: number;
  /** Answers other than delivered/stored/unavailable, by status. */
  other: Record<string, number>;
  /** Status counts per phase label the send was made in, and per phase its answer came in. */
  byPhase: Record<string, Record<string, number>>;
  byAnswerPhase: Record<string, Record<string, number>>;
  /** Messages to their recipient, first arrival, by path (live, before the welcome, mailbox, resume). */
  firstLive: number;
  firstBeforeWelcome: number;
  firstMailbox: number;
  firstResume: number;
  /** Copies beyond the first of one message at its recipient (live and replayed, or replayed twice). */
  duplicates: number;
  /** Messages the user sent, replayed to them by a resume (their stream holds both sides). */
  ownReplayed: number;
  /** `message` frames at a user who is neither party. */
  misrouted: number;
  /** Received although the send was answered `unavailable` / never answered (allowed; reported). */
  arrivedUnacked: number;
  /** Acked (delivered or stored) and not received by the recipient. */
  missing: number;
  /** Connections closed under a welcomed user (node died or drained), each followed by a reconnect with since. */
  movedReconnects: number;
  /** Flaky users coming back: through the mailbox / with since. */
  backMailbox: number;
  backResume: number;
  /** Connection attempts that got no welcome (node down or leaving); retried elsewhere. */
  connectFailures: number;
  /** `synced` replaced by an `unavailable` error (reconnected to retry). */
  syncErrors: number;
  /** Sum of `synced.count` over every connection. */
  syncedTotal: number;
}

const pick = <T>(a: readonly T[]): T | undefined => a[Math.floor(Math.random() * a.length)];
const between = (r: readonly [number, number]): number => r[0] + Math.random() * (r[1] - r[0]);

/**
 * The direct-message workload. `connect()` brings every user online; `run()` starts sending and
 * the flaky users' comings and goings; `stop()` stops sending, brings everyone online and waits
 * for the answers; `settle()` polls until every acked message reached its recipient. Not reusable.
 */
export class DmLoad {
  /** The current phase label (sends are counted by the phase they were sent in). */
  phase = 'setup';
  readonly users: LoadUser[] = [];
  readonly sends: SendRecord[] = [];
  private readonly o: Required<DmLoadOptions>;
  private timer: NodeJS.Timeout | undefined;
  private sending = false;
  /** Flaky users stop going offline; offline ones come back. */
  private settling = false;
  private closed = false;
  private readonly c = {
    firstLive: 0, firstBeforeWelcome: 0, firstMailbox: 0, firstResume: 0, duplicates: 0, ownReplayed: 0, misrouted: 0,
    movedReconnects: 0, backMailbox: 0, backResume: 0, connectFailures: 0, syncErrors: 0, syncedTotal: 0,
  };

  constructor(opts: DmLoadOptions) {
    this.o = {
      flakyShare: 0.25, onlineMs: [1500, 3000], offlineMs: [1000, 2500], prefix: 'u', friendShare: 0.8, friends: 3, ...opts,
    };
    // Every step-th user is flaky (spread over the nodes like the others, since homes go k mod 3).
    const step = this.o.flakyShare > 0 ? Math.max(1, Math.round(1 / this.o.flakyShare)) : 0;
    for (let k = 0; k < this.o.users; k++) {
      this.users.push(new LoadUser(`${this.o.prefix}${k}`, k % 3, step > 0 && k % step === step - 1));
    }
  }

  /** Connects every user to its home node (or another live one); resolves once all are synced. */
  async connect(timeoutMs = 20_000): Promise<void> {
    for (const u of this.users) this.open(u, 'initial');
    this.timer = setInterval(() => this.tick(), 20);
    await this.until(() => this.users.every((u) => u.state === 'online' && u.synced), timeoutMs, 'every user online and synced');
  }

  /** Starts sending and the flaky users' toggles. */
  run(): void {
    this.sending = true;
    const now = Date.now();
    for (const u of this.users) if (u.flaky) u.due = now + between(this.o.onlineMs);
  }

  /**
   * Stops sending, brings every user back online (synced) and waits until every send was answered
   * (or its connection closed). Resolves with the ms it took.
   */
  async stop(timeoutMs = 30_000): Promise<number> {
    const t0 = Date.now();
    this.sending = false;
    this.settling = true;
    for (const u of this.users) if (u.state === 'leaving') u.state = 'online';
    await this.until(() => this.sends.every((s) => s.status !== undefined)
      && this.users.every((u) => u.state === 'online' && u.synced), timeoutMs, 'every send answered and every user online and synced');
    return Date.now() - t0;
  }

  /** Polls until every acked message reached its recipient; resolves with the ms it took (or -1 at the deadline). */
  async settle(timeoutMs = 30_000): Promise<number> {
    const t0 = Date.now();
    for (const deadline = t0 + timeoutMs; Date.now() < deadline;) {
      if (this.missing().length === 0) return Date.now() - t0;
      await sleep(50);
    }
    return this.missing().length === 0 ? Date.now() - t0 : -1;
  }

  /** Sends acked delivered or stored. */
  acked(): SendRecord[] {
    return this.sends.filter((s) => s.status === 'delivered' || s.status === 'stored');
  }

  /** Acked sends whose message has not reached its recipient. */
  missing(): SendRecord[] {
    const byName = new Map(this.users.map((u) => [u.name, u]));
    return this.acked().filter((s) => !byName.get(s.to)!.received.has(s.msg!));
  }

  /** Acked message ids per user per peer (both parties of every acked send). */
  conversations(): Map<string, Map<string, Set<string>>> {
    const out = new Map<string, Map<string, Set<string>>>();
    const add = (u: string, peer: string, msg: string): void => {
      let m = out.get(u);
      if (!m) out.set(u, m = new Map());
      let s = m.get(peer);
      if (!s) m.set(peer, s = new Set());
      s.add(msg);
    };
    for (const s of this.acked()) {
      add(s.from, s.to, s.msg!);
      add(s.to, s.from, s.msg!);
    }
    return out;
  }

  /** The user's current connection (online after `stop`). */
  connOf(user: string): StreamConn | undefined {
    return this.users.find((u) => u.name === user)?.conn;
  }

  counts(): DmCounts {
    const statuses: Record<string, number> = {};
    const byPhase: Record<string, Record<string, number>> = {};
    const byAnswerPhase: Record<string, Record<string, number>> = {};
    for (const s of this.sends) {
      const k = s.status ?? 'pending';
      statuses[k] = (statuses[k] ?? 0) + 1;
      const p = byPhase[s.phase] ??= {};
      p[k] = (p[k] ?? 0) + 1;
      const a = byAnswerPhase[s.answeredIn ?? 'pending'] ??= {};
      a[k] = (a[k] ?? 0) + 1;
    }
    const { delivered = 0, stored = 0, 'error:unavailable': unavailable = 0, 'no-answer': noAnswer = 0, pending = 0, ...other } = statuses;
    const byName = new Map(this.users.map((u) => [u.name, u]));
    const arrivedUnacked = this.sends.filter((s) => s.msg === undefined ? false : (s.status !== 'delivered' && s.status !== 'stored' && byName.get(s.to)!.received.has(s.msg))).length;
    return {
      users: this.users.length, flakyUsers: this.users.filter((u) => u.flaky).length, sends: this.sends.length,
      delivered, stored, unavailable, noAnswer, pending, other, byPhase, byAnswerPhase, ...this.c, arrivedUnacked, missing: this.missing().length,
    };
  }

  /**
   * What is known of a missing message, for a report: the send, and the recipient's connections
   * around it (node, how it connected, `since`, when it was welcomed, synced and closed).
   */
  describeMissing(s: SendRecord): Record<string, unknown> {
    const u = this.users.find((x) => x.name === s.to)!;
    const rel = (t: number | undefined): number | undefined => (t === undefined ? undefined : t - s.sentAt);
    return {
      msg: s.msg, from: s.from, to: s.to, status: s.status, fromNode: s.fromNode, phase: s.phase,
      recipientConns: u.conns.map((c) => ({
        node: c.node, mode: c.mode, since: c.since, sinceBeforeMsg: c.since === undefined ? undefined : c.since < s.msg!,
        atMs: rel(c.at), welcomedMs: rel(c.welcomedAt), syncedMs: rel(c.syncedAt), syncedCount: c.syncedCount, closedMs: rel(c.closedAt), code: c.code,
      })),
    };
  }

  /** Closes every connection and stops the timers. */
  close(): void {
    this.closed = true;
    this.sending = false;
    if (this.timer) clearInterval(this.timer);
    for (const u of this.users) u.conn?.terminate();
  }

  private async until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    for (const deadline = Date.now() + timeoutMs; !cond();) {
      if (Date.now() > deadline) {
        const states: Record<string, number> = {};
        for (const u of this.users) states[`${u.state}${u.synced ? '+synced' : ''}`] = (states[`${u.state}${u.synced ? '+synced' : ''}`] ?? 0) + 1;
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: users ${JSON.stringify(states)}, unanswered sends ${this.sends.filter((s) => s.status === undefined).length}`);
      }
      await sleep(25);
    }
  }

  private open(u: LoadUser, mode: ConnRecord['mode']): void {
    const live = this.o.nodes();
    let target: LoadNode | undefined;
    if (mode === 'initial') target = live.find((n) => n.index === u.home);
    // After a loss, another node than the one just lost, when there is one.
    target ??= pick(live.filter((n) => n.index !== u.node)) ?? pick(live);
    if (!target) {
      u.state = 'down';
      u.due = Date.now() + 200;
      return;
    }
    let since: string | undefined;
    if (mode === 'moved') since = u.maxReceived;
    if (mode === 'back') {
      u.backs++;
      // Half come back through the mailbox, half resume from the newest message they had.
      since = u.backs % 2 === 0 ? u.maxReceived : undefined;
      if (since === undefined) this.c.backMailbox++;
      else this.c.backResume++;
    }
    if (mode === 'moved') this.c.movedReconnects++;
    const rec: ConnRecord = { node: target.index, mode, ...(since !== undefined && { since }), at: Date.now() };
    u.conns.push(rec);
    u.node = target.index;
    u.state = 'connecting';
    u.synced = false;
    const resume = since !== undefined;
    const conn: StreamConn = new StreamConn(target.url, u.name, {
      ...(since !== undefined && { since }),
      onMessage: (f, when) => this.onMessage(u, f, when, resume),
      onClose: (code, _reason, welcomed) => {
        rec.closedAt = Date.now();
        rec.code = code;
        if (u.conn !== conn || this.closed) return;
        u.conn = undefined;
        u.synced = false;
        if (u.state === 'closing') {
          u.state = 'offline';
          u.due = Date.now() + between(this.o.offlineMs);
          return;
        }
        if (!welcomed) this.c.connectFailures++;
        // A connection lost under the user: reconnect at once elsewhere (a failed attempt: shortly).
        u.state = 'down';
        u.due = welcomed ? 0 : Date.now() + 200;
      },
    });
    u.conn = conn;
    conn.welcome.then(() => {
      rec.welcomedAt = Date.now();
      if (u.conn !== conn || u.state !== 'connecting') return;
      u.state = 'online';
      if (u.flaky) u.due = Date.now() + between(this.o.onlineMs);
    }, () => undefined);
    conn.synced.then((f) => {
      if (u.conn !== conn) return;
      if (f.type === 'synced') {
        rec.syncedAt = Date.now();
        rec.syncedCount = f['count'] as number;
        this.c.syncedTotal += f['count'] as number;
        u.synced = true;
      } else {
        // No replica answered: reconnect to retry (the contract's advice).
        this.c.syncErrors++;
        conn.terminate();
      }
    }, () => undefined);
  }

  private onMessage(u: LoadUser, f: Frame, when: MessageWhen, resume: boolean): void {
    if (f.type !== 'message') return;
    const msg = f['msg'] as string;
    if (f['from'] === u.name) {
      if (when === 'replay') this.c.ownReplayed++;
      return;
    }
    if (f['to'] !== u.name) {
      this.c.misrouted++;
      return;
    }
    const n = u.received.get(msg) ?? 0;
    u.received.set(msg, n + 1);
    if (u.maxReceived === undefined || msg > u.maxReceived) u.maxReceived = msg;
    if (n > 0) {
      this.c.duplicates++;
      return;
    }
    if (when === 'live') this.c.firstLive++;
    else if (when === 'before-welcome') this.c.firstBeforeWelcome++;
    else if (resume) this.c.firstResume++;
    else this.c.firstMailbox++;
  }

  private tick(): void {
    if (this.closed) return;
    const now = Date.now();
    for (const u of this.users) {
      switch (u.state) {
        case 'down':
          if (now >= u.due) this.open(u, 'moved');
          break;
        case 'offline':
          if (this.settling || now >= u.due) this.open(u, 'back');
          break;
        case 'online':
          if (u.flaky && this.sending && !this.settling && now >= u.due) u.state = 'leaving';
          break;
        case 'leaving':
          // Every send answered first: a close would leave its ack unwritten.
          if (u.conn && u.conn.pendingCount === 0) {
            u.state = 'closing';
            void u.conn.close();
          }
          break;
        default:
          break;
      }
    }
    if (this.sending) this.sendSome(now);
  }

  private sendDue = 0;
  private lastSend = 0;
  private sendSome(now: number): void {
    const dt = this.lastSend === 0 ? 0.02 : Math.min(now - this.lastSend, 200) / 1000;
    this.lastSend = now;
    this.sendDue += dt * this.o.sendsPerSec;
    const senders = this.users.filter((u) => u.state === 'online' && u.conn?.open);
    for (; this.sendDue >= 1; this.sendDue--) {
      const from = pick(senders);
      if (!from) continue;
      let to: LoadUser;
      if (Math.random() < this.o.friendShare) {
        const k = this.users.indexOf(from);
        to = this.users[(k + 1 + Math.floor(Math.random() * this.o.friends)) % this.users.length]!;
      } else {
        do to = pick(this.users)!; while (to === from);
      }
      if (to === from) continue;
      const rec: SendRecord = { seq: this.sends.length + 1, from: from.name, to: to.name, fromNode: from.node, sentAt: now, phase: this.phase };
      this.sends.push(rec);
      void from.conn!.request({ type: 'send', to: to.name, body: `m${rec.seq} ${from.name}>${to.name}` }).then((f) => {
        rec.answeredIn = this.phase;
        if (!f) {
          rec.status = 'no-answer';
          return;
        }
        if (f.type === 'ack') {
          rec.status = String(f['status']);
          rec.msg = f['msg'] as string;
        } else {
          rec.status = f.type === 'error' ? `error:${String(f['code'])}` : f.type;
        }
      });
    }
  }
}

/** What {@link checkHistories} found over every conversation it read. */
export interface HistoriesResult {
  conversations: number;
  pages: number;
  /** Conversations that took more than one page. */
  multiPage: number;
  expected: number;
  missing: number;
  duplicates: number;
  outOfOrder: number;
  extra: number;
  failed: number;
  /** Up to 10 examples of a conversation with a problem. */
  samples: Array<Record<string, unknown>>;
  /** Conversations (user, peer) that had a problem (re-read by a poll). */
  bad: Array<[string, string]>;
}

/**
 * Reads `user`'s whole history with each `peer` of `which` through `conn(user)` and checks it
 * against the expected acked ids: every one present exactly once, ids ascending. Users in
 * parallel, each user's conversations one after the other.
 */
export async function checkHistories(
  which: ReadonlyArray<readonly [string, string]>,
  expected: (user: string, peer: string) => ReadonlySet<string>,
  conn: (user: string) => StreamConn | undefined,
  pageLimit = 100,
): Promise<HistoriesResult> {
  const r: HistoriesResult = { conversations: 0, pages: 0, multiPage: 0, expected: 0, missing: 0, duplicates: 0, outOfOrder: 0, extra: 0, failed: 0, samples: [], bad: [] };
  const byUser = new Map<string, string[]>();
  for (const [u, p] of which) {
    let l = byUser.get(u);
    if (!l) byUser.set(u, l = []);
    l.push(p);
  }
  await Promise.all([...byUser].map(async ([user, peers]) => {
    for (const peer of peers) {
      const exp = expected(user, peer);
      r.conversations++;
      r.expected += exp.size;
      const c = conn(user);
      const h = c ? await readWholeHistory(c, { with: peer }, pageLimit) : { ids: [], frames: [], pages: 0, failed: 'closed' as const };
      r.pages += h.pages;
      if (h.pages > 1) r.multiPage++;
      const k = checkHistory(h.ids, exp);
      r.missing += k.missing.length;
      r.duplicates += k.duplicates;
      r.outOfOrder += k.outOfOrder;
      r.extra += k.extra;
      if (h.failed) r.failed++;
      if (h.failed || k.missing.length > 0 || k.duplicates > 0 || k.outOfOrder > 0) {
        r.bad.push([user, peer]);
        if (r.samples.length < 10) {
          r.samples.push({ user, peer, expected: exp.size, got: h.ids.length, missing: k.missing.slice(0, 5), duplicates: k.duplicates, outOfOrder: k.outOfOrder, failed: h.failed });
        }
      }
    }
  }));
  return r;
}

/**
 * `checkHistories` polled until clean or the deadline: the first pass reads every conversation,
 * later ones only those that had a problem. Resolves with the last pass over the problem ones
 * merged into the first full pass's totals, and the ms it took.
 */
export async function pollHistories(
  which: ReadonlyArray<readonly [string, string]>,
  expected: (user: string, peer: string) => ReadonlySet<string>,
  conn: (user: string) => StreamConn | undefined,
  timeoutMs: number,
  pageLimit = 100,
): Promise<{ result: HistoriesResult; first: HistoriesResult; passes: number; ms: number }> {
  const t0 = Date.now();
  const first = await checkHistories(which, expected, conn, pageLimit);
  let last = first;
  let passes = 1;
  while (last.bad.length > 0 && Date.now() - t0 < timeoutMs) {
    await sleep(250);
    last = await checkHistories(last.bad, expected, conn, pageLimit);
    passes++;
  }
  // Totals over every conversation: the clean ones of the first pass plus the last reading of the others.
  const result: HistoriesResult = {
    ...last, conversations: first.conversations, pages: first.pages, multiPage: first.multiPage, expected: first.expected, extra: first.extra,
  };
  return { result, first, passes, ms: Date.now() - t0 };
}

/**
 * Runs `chatmesh node` on fresh ports with `args` (e.g. a `--data-dir` another node holds) and
 * resolves once it exits, with its exit code and output; a node still running after `timeoutMs` is
 * SIGKILLed and reported with `code: 'timeout'`.
 */
export async function runNodeUntilExit(args: readonly string[], timeoutMs = 20_000): Promise<{ code: number | null | 'timeout'; out: string; listened: boolean }> {
  const [http, mesh, admin] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(process.execPath, [faultCli(), 'node', '--id', 'intruder', '--host', '127.0.0.1', '--http-port', String(http),
    '--mesh-port', String(mesh), '--admin-port', String(admin), '--log-level', 'info', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const r = await Promise.race([exited, sleep(timeoutMs).then(() => 'timeout' as const)]);
  if (r === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
  // Whether it got as far as listening (the log line with its ports).
  const listened = /"httpPort":\d+/.test(out);
  return { code: r, out: out.trim(), listened };
}
