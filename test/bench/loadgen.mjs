// Load generator of the end-to-end benchmark (`npm run bench`, see run.mjs). Runs in its own
// process, forked by run.mjs with an IPC channel; it never starts on its own.
//
// It holds WebSocket connections of sender/receiver pairs and drives direct messages between them.
// Latency is end to end: the body starts with the sender's `performance.now()` (same process as the
// receiver, so the clocks agree) and the receiver takes `performance.now() - sent` when the
// `message` frame arrives.
//
// Each connection speaks chatmesh's protocol (WebSocket, JSON frames) or, with `protocol: 'socketio'`
// in its entry, Socket.IO (socketio-client.mjs, to socketio-node.mjs): the same closed loop, pacing and
// latency code measures both servers. The window of a sender counts its sends not yet acked: a
// chatmesh `delivered` ack comes once the recipient's node wrote the frame. A Socket.IO ack comes
// before the broadcast reached anyone (Socket.IO cannot tell), so a window of acks would not hold
// the load back at all: senders would pile up an unbounded backlog in the server. For Socket.IO a
// send leaves the window when its message reaches the receiver (same process: the loadgen sees both).
//
// Commands from the parent (process.send):
//   { cmd: 'setup', receivers: [{user, url, protocol?}], senders: [{user, url, to, protocol?}], bodyBytes }
//   { cmd: 'saturate', warmupMs, measureMs, window }   closed loop: `window` un-acked sends per sender
//   { cmd: 'paced', rate, warmupMs, measureMs, window, label? } open loop at `rate` msgs/s over all senders
//                                                       (run.mjs: at half of saturation, then at BENCH_FIXED_RATE)
//   { cmd: 'close' }
// Events to the parent: { ev: 'ready' | 'mark' | 'result' | 'closed' | 'error', ... }.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { openSocketIo, requestSocketIo } from './socketio-client.mjs';

if (!process.send) {
  process.stderr.write('loadgen.mjs is started by test/bench/run.mjs, not directly\n');
  process.exit(2);
}

const send = (m) => process.send(m);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** @type {Array<Conn>} */
let senders = [];
/** @type {Array<Conn>} */
let receivers = [];
/** user → sender Conn (Socket.IO: a received message releases its sender's window). */
let sendersByUser = new Map();
let padding = '';

/** Per-phase counters, reset by each phase. */
let phase = newPhase('idle');

function newPhase(name) {
  return {
    name,
    running: false, // senders may send
    measuring: false,
    mStart: Infinity,
    mEnd: Infinity,
    sent: 0,
    sentInWindow: 0,
    acks: 0,
    acksInWindow: 0,
    ackStatus: {}, // status -> count
    errors: {}, // error code -> count
    delivered: 0, // acks with status delivered (whole phase)
    received: 0, // message frames at receivers (whole phase)
    receivedInWindow: 0,
    latencies: [], // ms, for messages sent inside the measurement window
    skippedWindowFull: 0, // paced: a due send skipped because the sender had `window` un-acked
    lagCapped: 0, // paced: due sends dropped because the timer fell far behind
  };
}

class Conn {
  constructor(user, url, to, protocol = 'chatmesh') {
    this.user = user;
    this.url = url;
    this.to = to;
    this.protocol = protocol;
    this.ws = undefined;
    this.sio = undefined; // the socket.io-client socket, protocol 'socketio'
    this.inflight = 0;
    this.seq = 0;
    this.window = 0;
    this.pending = new Map(); // request id -> resolve, for setup-time requests
  }

  open(timeoutMs) {
    if (this.protocol === 'socketio') {
      return openSocketIo(this.url, this.user, timeoutMs, {
        onMessage: (f) => {
          this.onMessage(f.body);
          // The window is end to end (see the top): the message reached its receiver.
          sendersByUser.get(f.from)?.release();
        },
        onClose: (reason) => {
          if (!closing) send({ ev: 'error', message: `${this.user}: connection closed (${reason})` });
        },
      }).then((socket) => {
        this.sio = socket;
      });
    }
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
      this.ws = ws;
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`${this.user}: no welcome within ${timeoutMs} ms`));
      }, timeoutMs);
      ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', user: this.user })));
      ws.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      ws.on('close', (code) => {
        clearTimeout(timer);
        if (!closing) send({ ev: 'error', message: `${this.user}: connection closed (${code})` });
      });
      let welcomed = false;
      ws.on('message', (data) => {
        const text = data.toString();
        if (!welcomed) {
          const f = JSON.parse(text);
          if (f.type === 'welcome') {
            welcomed = true;
            clearTimeout(timer);
            resolve();
          } else {
            clearTimeout(timer);
            reject(new Error(`${this.user}: expected welcome, got ${text.slice(0, 200)}`));
          }
          return;
        }
        this.onFrame(text);
      });
    });
  }

  /** A chatmesh frame. */
  onFrame(text) {
    const f = JSON.parse(text);
    switch (f.type) {
      case 'message':
        this.onMessage(f.body);
        return;
      case 'ack':
      case 'error':
      case 'presence': {
        const waiter = this.pending.get(f.id);
        if (waiter) {
          this.pending.delete(f.id);
          waiter(f);
          return;
        }
        if (f.type === 'presence') return;
        this.onAck(f);
        return;
      }
      default:
        return; // presence_change etc.: not expected here
    }
  }

  /** A message arrived at this receiver: its body starts with the sender's performance.now(). */
  onMessage(body) {
    const now = performance.now();
    phase.received++;
    if (now >= phase.mStart && now < phase.mEnd) phase.receivedInWindow++;
    const sentAt = parseFloat(body);
    if (sentAt >= phase.mStart && sentAt < phase.mEnd) phase.latencies.push(now - sentAt);
  }

  /** The answer to one of this sender's sends: {type:'ack', status} or {type:'error', code}. */
  onAck(f) {
    const now = performance.now();
    if (!this.sio) this.release();
    phase.acks++;
    if (now >= phase.mStart && now < phase.mEnd) phase.acksInWindow++;
    if (f.type === 'ack') {
      phase.ackStatus[f.status] = (phase.ackStatus[f.status] ?? 0) + 1;
      if (f.status === 'delivered') phase.delivered++;
    } else {
      phase.errors[f.code] = (phase.errors[f.code] ?? 0) + 1;
      if (this.sio) this.release(); // never arrives
    }
  }

  /** One send leaves the window (chatmesh: acked; Socket.IO: received); closed loop: refill it. */
  release() {
    this.inflight--;
    if (phase.name === 'saturate' && phase.running) this.sendOne();
  }

  sendOne() {
    const now = performance.now();
    this.inflight++;
    phase.sent++;
    if (now >= phase.mStart && now < phase.mEnd) phase.sentInWindow++;
    if (this.sio) this.sio.emit('send', { to: this.to, body: `${now.toFixed(4)}|${padding}` }, (a) => this.onAck(a));
    else this.ws.send(`{"type":"send","id":"${++this.seq}","to":"${this.to}","body":"${now.toFixed(4)}|${padding}"}`);
  }

  request(frame, timeoutMs) {
    if (this.sio) {
      const { type, ...payload } = frame;
      return requestSocketIo(this.sio, type, payload, timeoutMs).catch((err) => {
        throw new Error(`${this.user}: no answer to ${type} within ${timeoutMs} ms (${err.message})`);
      });
    }
    const id = `setup-${++this.seq}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.user}: no answer to ${frame.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, (f) => {
        clearTimeout(timer);
        resolve(f);
      });
      this.ws.send(JSON.stringify({ ...frame, id }));
    });
  }
}

let closing = false;

async function setup(m) {
  const t0 = performance.now();
  padding = 'x'.repeat(Math.max(0, m.bodyBytes - 16));
  receivers = m.receivers.map((r) => new Conn(r.user, r.url, undefined, r.protocol));
  senders = m.senders.map((s) => new Conn(s.user, s.url, s.to, s.protocol));
  sendersByUser = new Map(senders.map((s) => [s.user, s]));
  // Receivers first, so every recipient is online before anything is sent. Connect in small
  // batches: a burst of hundreds of upgrades at once is not what is being measured.
  const all = [...receivers, ...senders];
  for (let i = 0; i < all.length; i += 20) {
    await Promise.all(all.slice(i, i + 20).map((c) => c.open(10_000)));
  }
  // Wait (bounded) until the sender's node sees every receiver online: routes may still be
  // propagating through the mesh right after the connects.
  const users = receivers.map((r) => r.user);
  let online = 0;
  for (let attempt = 0; attempt < 100; attempt++) {
    online = 0;
    for (let i = 0; i < users.length; i += 100) {
      const chunk = users.slice(i, i + 100);
      const f = await senders[0].request({ type: 'presence', users: chunk }, 5000);
      if (f.type !== 'presence') throw new Error(`presence answered ${JSON.stringify(f)}`);
      online += chunk.filter((u) => f.users[u] === 'online').length;
    }
    if (online === users.length) break;
    await sleep(100);
  }
  if (online !== users.length) throw new Error(`only ${online}/${users.length} receivers online after 10 s`);
  send({ ev: 'ready', connections: all.length, setupMs: Math.round(performance.now() - t0) });
}

/** Waits until every sender's window is empty and every delivered message arrived (bounded). */
async function drain(maxMs) {
  const t0 = performance.now();
  while (performance.now() - t0 < maxMs) {
    const inflight = senders.reduce((n, s) => n + s.inflight, 0);
    if (inflight === 0 && phase.received >= phase.delivered) return true;
    await sleep(20);
  }
  return false;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return +sorted[i].toFixed(3);
}

// The load generator's own event-loop delay (1 ms resolution): it sends and receives in one
// process, so a receive it handles late counts as latency. Reported per phase beside the nodes'.
const ELD_RESOLUTION_MS = 1;
const loopDelay = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
loopDelay.enable();
const delayMs = (ns) => +Math.max(0, ns / 1e6 - ELD_RESOLUTION_MS).toFixed(2);

/** Marks the measurement window and samples the loadgen's own CPU and event-loop use. */
async function measureWindow(warmupMs, measureMs) {
  await sleep(warmupMs);
  loopDelay.reset();
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  phase.mStart = performance.now();
  phase.measuring = true;
  send({ ev: 'mark', mark: 'start' });
  await sleep(measureMs);
  phase.mEnd = performance.now();
  phase.measuring = false;
  send({ ev: 'mark', mark: 'end' });
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  const wallMs = phase.mEnd - phase.mStart;
  return {
    wallMs,
    loadgenCpu: {
      userMs: Math.round(cpu.user / 1000),
      systemMs: Math.round(cpu.system / 1000),
      // Percent of ONE core over the measurement window.
      percentOfOneCore: +(((cpu.user + cpu.system) / 1000 / wallMs) * 100).toFixed(1),
      eventLoopUtilization: +elu.utilization.toFixed(3),
      eventLoopDelayMs: { p50: delayMs(loopDelay.percentile(50)), p99: delayMs(loopDelay.percentile(99)), max: delayMs(loopDelay.max) },
    },
  };
}

function summarize(win, extra) {
  const lat = phase.latencies.sort((a, b) => a - b);
  const seconds = win.wallMs / 1000;
  return {
    phase: phase.name,
    measuredMs: Math.round(win.wallMs),
    deliveredPerSec: Math.round(phase.receivedInWindow / seconds),
    sentPerSec: Math.round(phase.sentInWindow / seconds),
    acksPerSec: Math.round(phase.acksInWindow / seconds),
    totals: {
      sent: phase.sent,
      acks: phase.acks,
      delivered: phase.delivered,
      received: phase.received,
      ackStatus: phase.ackStatus,
      errors: phase.errors,
      missing: phase.delivered - phase.received,
      skippedWindowFull: phase.skippedWindowFull,
      lagCapped: phase.lagCapped,
    },
    latencyMs: {
      samples: lat.length,
      p50: percentile(lat, 50),
      p90: percentile(lat, 90),
      p99: percentile(lat, 99),
      max: lat.length ? +lat[lat.length - 1].toFixed(3) : null,
      mean: lat.length ? +(lat.reduce((a, b) => a + b, 0) / lat.length).toFixed(3) : null,
    },
    loadgenCpu: win.loadgenCpu,
    ...extra,
  };
}

async function saturate(m) {
  phase = newPhase('saturate');
  for (const s of senders) s.window = m.window;
  phase.running = true;
  for (const s of senders) for (let i = 0; i < m.window; i++) s.sendOne();
  const win = await measureWindow(m.warmupMs, m.measureMs);
  phase.running = false;
  const drained = await drain(10_000);
  send({ ev: 'result', result: summarize(win, { window: m.window, drained }) });
}

async function paced(m) {
  phase = newPhase('paced');
  phase.running = true;
  const rate = m.rate; // msgs/s over all senders
  const t0 = performance.now();
  let due = 0; // sends scheduled so far (sent or skipped)
  let rr = 0;
  const maxPerTick = Math.max(1, Math.ceil(rate * 0.05)); // never more than 50 ms of backlog at once
  const timer = setInterval(() => {
    const target = Math.floor((rate * (performance.now() - t0)) / 1000);
    let n = target - due;
    if (n > maxPerTick) {
      phase.lagCapped += n - maxPerTick;
      due += n - maxPerTick;
      n = maxPerTick;
    }
    for (let i = 0; i < n; i++) {
      const s = senders[rr];
      rr = (rr + 1) % senders.length;
      due++;
      if (s.inflight >= m.window) phase.skippedWindowFull++;
      else s.sendOne();
    }
  }, 1);
  let win;
  try {
    win = await measureWindow(m.warmupMs, m.measureMs);
  } finally {
    clearInterval(timer);
    phase.running = false;
  }
  const drained = await drain(10_000);
  send({ ev: 'result', result: summarize(win, { label: m.label ?? 'paced', targetRate: rate, window: m.window, drained }) });
}

async function close() {
  closing = true;
  for (const c of [...senders, ...receivers]) {
    c.ws?.close(1000);
    c.sio?.disconnect();
  }
  await sleep(200);
  for (const c of [...senders, ...receivers]) c.ws?.terminate();
  send({ ev: 'closed' });
  process.disconnect();
  setTimeout(() => process.exit(0), 100).unref();
}

process.on('message', (m) => {
  const run = { setup, saturate, paced, close }[m.cmd];
  if (!run) {
    send({ ev: 'error', message: `unknown command ${m.cmd}` });
    return;
  }
  run(m).catch((err) => {
    send({ ev: 'error', message: String(err?.stack ?? err) });
  });
});
// Parent gone (killed, crashed): do not linger.
process.on('disconnect', () => {
  if (!closing) process.exit(1);
});
