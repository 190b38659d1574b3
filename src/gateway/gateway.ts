import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { MAX_FRAME_BYTES } from '../protocol/index.js';
import { ClientConnection } from './connection.js';
import type { GatewayContext } from './context.js';

/**
 * The WebSocket endpoint: accepts upgrades (from the HTTP server's `upgrade` event), runs the
 * heartbeat, and closes every client on shutdown or drain.
 */
export class Gateway {
  private readonly wss: WebSocketServer;
  private readonly conns = new Set<ClientConnection>();
  private readonly heartbeat: NodeJS.Timeout;
  private accepting = true;
  /** Every connection's close hook: one function for all of them. */
  private readonly forget = (c: ClientConnection): void => {
    if (this.conns.delete(c)) this.ctx.stats.connections--;
  };

  constructor(private readonly ctx: GatewayContext) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_FRAME_BYTES,
      perMessageDeflate: false,
      // Each connection answers pings itself, within its rate limit.
      autoPong: false,
      clientTracking: false,
    });
    this.heartbeat = setInterval(() => this.tick(), ctx.opts.heartbeatMs);
    this.heartbeat.unref();
  }

  /** Open connections. */
  get size(): number {
    return this.conns.size;
  }

  /** Handles an HTTP upgrade request for the WebSocket endpoint. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!this.accepting) return refuse(socket, 503, 'Service Unavailable', 'node is draining');
    if (this.conns.size >= this.ctx.opts.maxConnections) return refuse(socket, 503, 'Service Unavailable', 'node is at its connection limit');
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = new ClientConnection(ws, this.ctx, this.ctx.ids.next(), this.forget);
      this.conns.add(conn);
      this.ctx.stats.connections++;
    });
  }

  /** Stops accepting new connections (upgrades get 503). */
  stopAccepting(): void {
    this.accepting = false;
  }

  /**
   * Closes every client with `code` (1012 on shutdown and drain) and resolves when all are gone, or
   * after `graceMs`, terminating the stragglers.
   */
  async closeAll(code: number, reason: string, graceMs = 2000): Promise<void> {
    const conns = [...this.conns];
    for (const c of conns) c.close(code, reason, graceMs);
    // Each close() terminates its socket after graceMs at the latest, so this always settles.
    await Promise.all(conns.map((c) => c.socketClosed()));
  }

  /** Stops the heartbeat and closes every client. */
  async close(code: number, reason: string): Promise<void> {
    this.stopAccepting();
    clearInterval(this.heartbeat);
    await this.closeAll(code, reason);
    this.wss.close();
  }

  private tick(): void {
    for (const c of this.conns) {
      if (!c.alive) {
        this.ctx.stats.heartbeatTimeouts++;
        c.terminate();
      } else {
        c.ping();
      }
    }
  }
}

function refuse(socket: Duplex, status: number, text: string, why: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(why)}\r\n\r\n${why}`);
}
