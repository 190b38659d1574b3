// Client process of the connections bench (conns-bench.mjs): holds thousands of idle WebSocket
// connections to one node, each a distinct user signed in (dev auth: hello -> welcome), and answers
// the server's pings (ws answers them itself). Forked by conns-bench.mjs with an IPC channel; it
// never starts on its own. Every process has its own open-files limit, so the bench spreads the
// connections over several of them; each binds its own loopback source address (127.0.0.<n>), so
// that its ephemeral ports do not run out whatever the others hold.
//
// Commands from the parent (process.send):
//   { cmd: 'open', url, users: [name], concurrency, timeoutMs }  opens one connection per user
//   { cmd: 'stats' }                                               counters (pings, drops, frames)
//   { cmd: 'close' }                                               closes every connection, exits
// Events to the parent: { ev: 'opened' | 'stats' | 'closed' | 'error', ... }.
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

if (!process.send) {
  process.stderr.write('conns-client.mjs is forked by test/bench/conns-bench.mjs, not run directly\n');
  process.exit(2);
}

const send = (m) => process.send(m);
const localAddress = process.env.CONNS_CLIENT_ADDRESS || undefined;

/** Open sockets (welcomed). */
const open = [];
let closing = false;
const counters = { pings: 0, dropped: 0, dropCodes: {}, frames: {}, failures: 0, failureReasons: {} };

function countFrame(data) {
  // Only the type is needed: the frames after the welcome are `synced` (and nothing else while idle).
  const m = /"type":"([a-z_]+)"/.exec(data.toString());
  const type = m ? m[1] : 'unparsed';
  counters.frames[type] = (counters.frames[type] ?? 0) + 1;
}

function onPing() {
  counters.pings++;
}

/** Opens one connection of `user`; resolves true once welcomed, false on a failure (counted). */
function openOne(url, user, timeoutMs) {
  return new Promise((resolve) => {
    let settled = false;
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs, ...(localAddress && { localAddress }) });
    const fail = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      counters.failures++;
      counters.failureReasons[why] = (counters.failureReasons[why] ?? 0) + 1;
      ws.terminate();
      resolve(false);
    };
    const timer = setTimeout(() => fail('no welcome in time'), timeoutMs);
    ws.on('open', () => ws.send(`{"type":"hello","user":"${user}"}`));
    ws.on('error', (err) => fail(err.code ?? err.message.slice(0, 80)));
    ws.on('unexpected-response', (_req, res) => fail(`HTTP ${res.statusCode}`));
    ws.on('close', (code) => {
      if (!settled) return fail(`closed ${code} before welcome`);
      if (closing) return;
      counters.dropped++;
      counters.dropCodes[code] = (counters.dropCodes[code] ?? 0) + 1;
    });
    ws.on('ping', onPing);
    ws.once('message', (data) => {
      if (settled) return;
      if (!data.toString().startsWith('{"type":"welcome"')) return fail('first frame not a welcome');
      settled = true;
      clearTimeout(timer);
      ws.on('message', countFrame);
      open.push(ws);
      resolve(true);
    });
  });
}

const handlers = {
  async open(m) {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const failuresBefore = counters.failures;
    let next = 0;
    const worker = async () => {
      while (next < m.users.length) {
        const user = m.users[next++];
        await openOne(m.url, user, m.timeoutMs);
      }
    };
    await Promise.all(Array.from({ length: Math.min(m.concurrency, m.users.length) }, worker));
    const cpu = process.cpuUsage(cpu0);
    send({ ev: 'opened', open: open.length, ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000, failures: counters.failures - failuresBefore, failureReasons: counters.failureReasons });
  },

  async stats() {
    send({ ev: 'stats', open: open.length, ...counters, cpu: process.cpuUsage(), rssMiB: Math.round(process.memoryUsage().rss / 1048576) });
  },

  async close() {
    closing = true;
    for (const ws of open) ws.terminate();
    send({ ev: 'closed' });
    process.disconnect();
    setTimeout(() => process.exit(0), 100).unref();
  },
};

process.on('message', (m) => {
  const h = handlers[m.cmd];
  if (!h) return send({ ev: 'error', message: `unknown command ${m.cmd}` });
  h(m).catch((err) => send({ ev: 'error', message: String(err?.stack ?? err) }));
});
// The bench is gone (killed outright): nothing of this process outlives it.
process.on('disconnect', () => {
  if (!closing) process.exit(1);
});
