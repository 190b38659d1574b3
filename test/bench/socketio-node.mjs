// One Socket.IO chat node of the bench's `socketio` scenario (run.mjs starts 3 of them and one
// redis-server): the peer that chatmesh's direct messages are compared with (issue 11). Not part of
// chatmesh; started only by run.mjs:
//   node socketio-node.mjs --id s0 --port 4000 --redis redis://127.0.0.1:6379
// Prints `SOCKETIO_READY {"id":...,"port":...}` on stdout once it listens and both Redis clients are up.
//
// The chat semantics are the fair equivalent of a chatmesh DM:
//   - a client names its user in the handshake (`auth: { user }`, or `?user=` in the query) and the
//     node joins it to the room `u:<user>` (chatmesh: the topic `u:<user>` subscribed at `welcome`);
//   - `send` {to, body} with an ack callback: the node emits `message` {type, msg, from, to, body, ts}
//     (the fields of chatmesh's message frame) to the room `u:<to>` through @socket.io/redis-adapter,
//     i.e. to every node over Redis pub/sub, then acks {type:'ack', msg, status:'delivered'}.
//     Socket.IO cannot know whether anyone received the message: the room may be empty, on any node,
//     and the broadcast is fire-and-forget. The ack says `delivered` anyway, so the load generator
//     treats both servers alike; chatmesh's `delivered` means the recipient's node wrote the frame.
//     Socket.IO also keeps nothing (chatmesh's `cross` keeps every DM; compare with `cross-nostore`
//     for the same work minus storage).
//   - `presence` {users} with an ack: {users: {name: 'online' | 'offline'}} across all nodes
//     (fetchSockets over the adapter); the load generator's set-up uses it, never the measured phases.
// GET /healthz answers 200; GET /metrics is prom-client's default metrics (event-loop delay, GC
// pauses by kind: the same collectors as a chatmesh node) plus bench_gc_*: every GC pause that
// perf_hooks reported (prom-client's collector records only the first entry of each observer
// callback, so under load it sees fewer pauses than there are).
import { createServer } from 'node:http';
import { PerformanceObserver } from 'node:perf_hooks';
import { createAdapter } from '@socket.io/redis-adapter';
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import { createClient } from 'redis';
import { Server } from 'socket.io';

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}
const id = arg('id', 's0');
const port = Number(arg('port', '0'));
const host = arg('host', '127.0.0.1');
const redisUrl = arg('redis', 'redis://127.0.0.1:6379');
const MAX_FRAME_BYTES = 64 * 1024; // chatmesh's limit of one client frame

// ------------------------------------------------------------------ metrics

const registry = new Registry();
collectDefaultMetrics({ register: registry });
const gcPauses = new Counter({ name: 'bench_gc_pauses_total', help: 'Every GC pause perf_hooks reported', labelNames: ['kind'], registers: [registry] });
const gcSeconds = new Counter({ name: 'bench_gc_seconds_total', help: 'Total GC pause time, every pause', labelNames: ['kind'], registers: [registry] });
const GC_KINDS = { 1: 'major', 2: 'minor', 4: 'incremental', 8: 'weakcb' };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = GC_KINDS[e.detail?.kind] ?? 'other';
    gcPauses.inc({ kind });
    gcSeconds.inc({ kind }, e.duration / 1000);
  }
}).observe({ entryTypes: ['gc'] });

// ------------------------------------------------------------------ HTTP + Socket.IO

const http = createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id, ok: true }));
  } else if (req.url === '/metrics') {
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (err) => res.writeHead(500).end(String(err)),
    );
  } else {
    res.writeHead(404).end();
  }
});

const io = new Server(http, {
  transports: ['websocket'],
  perMessageDeflate: false,
  maxHttpBufferSize: MAX_FRAME_BYTES,
  serveClient: false,
});

const pub = createClient({ url: redisUrl });
const sub = pub.duplicate();
for (const [name, c] of [['pub', pub], ['sub', sub]]) {
  c.on('error', (err) => process.stderr.write(`socketio ${id}: redis ${name}: ${err.message}\n`));
}
await Promise.all([pub.connect(), sub.connect()]);
io.adapter(createAdapter(pub, sub));

// Message ids: unique per node and cheap (chatmesh: ULIDs from pooled randomness).
const idPrefix = `${id}-${Date.now().toString(36)}-`;
let seq = 0;

io.use((socket, next) => {
  const user = socket.handshake.auth?.user ?? socket.handshake.query?.user;
  if (typeof user !== 'string' || !/^[A-Za-z0-9_.:@-]{1,64}$/.test(user)) return next(new Error('bad user'));
  socket.data.user = user;
  next();
});

io.on('connection', (socket) => {
  const from = socket.data.user;
  socket.join(`u:${from}`);
  socket.on('send', (m, ack) => {
    if (typeof ack !== 'function') return;
    if (!m || typeof m.to !== 'string' || typeof m.body !== 'string') {
      ack({ type: 'error', code: 'bad_request' });
      return;
    }
    const msg = idPrefix + (++seq).toString(36);
    io.to(`u:${m.to}`).emit('message', { type: 'message', msg, from, to: m.to, body: m.body, ts: Date.now() });
    // Not a delivery report: Socket.IO's broadcast does not tell whether any socket got it (see the top).
    ack({ type: 'ack', msg, status: 'delivered' });
  });
  socket.on('presence', async (m, ack) => {
    if (typeof ack !== 'function') return;
    try {
      const users = Array.isArray(m?.users) ? m.users.filter((u) => typeof u === 'string') : [];
      const sockets = users.length ? await io.in(users.map((u) => `u:${u}`)).fetchSockets() : [];
      const online = new Set(sockets.map((s) => s.data.user));
      ack({ type: 'presence', users: Object.fromEntries(users.map((u) => [u, online.has(u) ? 'online' : 'offline'])) });
    } catch (err) {
      ack({ type: 'error', code: 'internal', message: String(err?.message ?? err) });
    }
  });
});

http.listen(port, host, () => {
  process.stdout.write(`SOCKETIO_READY ${JSON.stringify({ id, port: http.address().port, pid: process.pid })}\n`);
});

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 2000).unref();
  io.close();
  await Promise.allSettled([pub.quit(), sub.quit()]);
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
