import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { readdirSync } from 'node:fs';
import type { Logger } from '../log.js';
import { StaticFiles, findWebRoot } from './static.js';

/** What the HTTP server needs from the node. */
export interface HttpHandlers {
  /** Handles an upgrade on `/ws`. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Readiness: 200 when true, 503 when false (`/healthz`). */
  ready(): boolean;
  /** Health details shown in the `/healthz` body. */
  health(): Record<string, unknown>;
  /** Prometheus text for `/metrics`, or undefined when metrics are off. */
  metrics?(): Promise<{ contentType: string; body: string }>;
  /**
   * The live nodes' client URLs for `GET /nodes` (this node first unless it drains, then its peers
   * by id); `/nodes` answers 404 without it. Called once per request.
   */
  nodes?(): ReadonlyArray<{ readonly id: string; readonly url: string }>;
}

/** Options of the HTTP server. */
export interface HttpServerOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly log: Logger;
  /** Folder of the web client; found automatically by default. */
  readonly webRoot?: string;
}

/**
 * Connections the kernel may hold waiting for an accept. Node's default (511) overflows when
 * thousands of clients connect at once (every client of a node that restarted reconnects within
 * seconds), and each SYN dropped on a full queue costs its client a 1 s retransmit, then 3 s, ...
 * The kernel caps it at net.core.somaxconn (4096 on current Linux).
 */
export const LISTEN_BACKLOG = 4096;

/** A socket's error listener: one function for every socket (`this` is the socket). */
function destroySocket(this: Duplex): void {
  this.destroy();
}

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy': "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'",
};

/** Headers of `GET /nodes`: any page (a web client served by another node) may read it, never cached. */
const NODES_HEADERS = {
  'Content-Type': 'application/json',
  'Access-Control-Allow-Origin': '*',
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
};

/**
 * The node's HTTP server: web client at `/`, WebSocket upgrades at `/ws`, `/healthz`, `/metrics`,
 * `/nodes` (JSON `[{"id":"n1","url":"ws://host:port/ws"}]`, see `HttpHandlers.nodes`). Every path
 * answers only GET and HEAD (405 with `Allow: GET, HEAD` otherwise).
 * Resolves once listening; `port` is the real port.
 */
export async function startHttpServer(opts: HttpServerOptions, h: HttpHandlers): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const root = opts.webRoot ?? findWebRoot();
  let names: string[] = [];
  try {
    names = readdirSync(root);
  } catch (err) {
    opts.log.warn({ err, root }, 'web client folder not found; / will answer 404');
  }
  const files = new StaticFiles(root, new Set(names));

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.log.error({ err, url: req.url }, 'http handler failed');
      if (!res.headersSent) res.writeHead(500).end('internal error');
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      const ok = h.ready();
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(JSON.stringify({ status: ok ? 'ok' : 'unavailable', ...h.health() }));
      return;
    }
    if (path === '/metrics' && h.metrics) {
      const m = await h.metrics();
      res.writeHead(200, { 'Content-Type': m.contentType }).end(m.body);
      return;
    }
    if (path === '/nodes' && h.nodes) {
      const body = JSON.stringify(h.nodes().map(({ id, url }) => ({ id, url })));
      res.writeHead(200, { ...NODES_HEADERS, 'Content-Length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (path === '/ws') {
      res.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket' }).end('WebSocket upgrade required');
      return;
    }
    const file = await files.get(path);
    if (!file) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': file.type, 'Content-Length': file.body.length, 'Cache-Control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  }

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', destroySocket);
    if ((req.url ?? '').split('?')[0] !== '/ws') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    h.upgrade(req, socket, head);
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: opts.port, host: opts.host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
