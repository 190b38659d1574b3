// The baseline of the connections bench (conns-bench.mjs): a bare `ws` server set up like
// chatmesh's gateway (node:http server, `noServer`, no per-message deflate, 64 KiB max payload, no
// client tracking, autoPong off and pings answered by hand, one shared heartbeat sweep), which
// answers a hello with a welcome and a `synced`, and keeps nothing else per connection. What
// chatmesh's node costs per connection above this is chatmesh's own state.
//
//   node test/bench/conns-bare-server.mjs <port> <heartbeatMs>
// Prints `BARE_LISTENING <port>` once it listens. Not used outside test/bench/.
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2] ?? 0);
const heartbeatMs = Number(process.argv[3] ?? 30_000);
const conns = new Set();
const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false, autoPong: false, clientTracking: false });
let nextId = 0;

const server = createServer((_req, res) => res.writeHead(404).end());
server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => socket.destroy());
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.alive = true;
    const session = `s${++nextId}`;
    ws.once('message', (data) => {
      const user = /"user":"([^"]+)"/.exec(data.toString())?.[1] ?? 'x';
      ws.send(`{"type":"welcome","user":"${user}","node":"bare","session":"${session}"}`);
      ws.send('{"type":"synced","count":0}');
    });
    ws.on('pong', () => { ws.alive = true; });
    ws.on('ping', (d) => ws.pong(d));
    ws.on('close', () => conns.delete(ws));
    ws.on('error', () => {});
    conns.add(ws);
  });
});
server.on('error', (err) => process.stderr.write(`bare server: ${err.message}\n`));
setInterval(() => {
  for (const ws of conns) {
    if (!ws.alive) ws.terminate();
    else {
      ws.alive = false;
      ws.ping();
    }
  }
}, heartbeatMs).unref();
server.listen(port, '127.0.0.1', 4096, () => process.stdout.write(`BARE_LISTENING ${server.address().port}\n`));
for (const sig of ['SIGTERM', 'SIGINT']) process.once(sig, () => process.exit(0));
