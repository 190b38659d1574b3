/**
 * The fault suite's cluster: three `chatmesh node` CLI processes (ids node-0..node-2, static
 * discovery through `--peers`, fixed ports so a restarted node comes back on the same ones), and
 * the faults a user's cluster sees: SIGKILL, SIGTERM, SIGSTOP/SIGCONT, restart, `ctl drain`.
 *
 * The CLI is `dist/cli.js` of this checkout, or `$CHATMESH_CLI` (e.g. a baseline worktree's build,
 * to measure the behaviour before a change). Each node's stdout and stderr go to a file in a
 * temporary directory (kept when a test fails, so its logs can be read; removed otherwise).
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { Test } from 'tap';
import { CLI, freePort } from './procs.js';

/** The CLI the fault suite runs: `$CHATMESH_CLI` or this checkout's `dist/cli.js`. */
export function faultCli(): string {
  const env = process.env['CHATMESH_CLI'];
  return env ? resolve(env) : CLI;
}

/** True when `chatmesh node --help` lists `flag` (e.g. `--mesh-tls-cert`). */
export function cliHasFlag(flag: string): boolean {
  const r = spawnSync(process.execPath, [faultCli(), 'node', '--help'], { encoding: 'utf8', timeout: 15_000 });
  return `${r.stdout}${r.stderr}`.includes(flag);
}

/** A number from the environment, else the default. */
export function envNumber(name: string, dflt: number): number {
  const v = process.env[name];
  const n = v === undefined || v === '' ? NaN : Number(v);
  return Number.isFinite(n) ? n : dflt;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `/healthz` of one node, or undefined when it does not answer within `timeoutMs`. */
export async function healthz(httpPort: number, timeoutMs = 1000): Promise<{ status: number; body: Record<string, unknown> } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${httpPort}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = await res.json().catch(() => ({})) as Record<string, unknown>;
    return { status: res.status, body };
  } catch {
    return undefined;
  }
}

/** One node of the cluster: its fixed ports and its current process (replaced on restart). */
export class FaultNode {
  child: ChildProcess | undefined;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> = Promise.resolve({ code: null, signal: null });
  /** Times this node was started (1 after the first start). */
  starts = 0;
  stopped = false;

  constructor(
    readonly index: number,
    readonly id: string,
    readonly httpPort: number,
    readonly meshPort: number,
    readonly adminPort: number,
    private readonly args: readonly string[],
    private readonly logDir: string,
  ) {}

  get url(): string {
    return `ws://127.0.0.1:${this.httpPort}/ws`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Spawns the process (same id, ports and flags every time). Does not wait for readiness. */
  start(): void {
    if (this.running) throw new Error(`${this.id} is already running`);
    this.starts++;
    this.stopped = false;
    const log = join(this.logDir, `${this.id}.${this.starts}.log`);
    const fd = openSync(log, 'a');
    const child = spawn(process.execPath, [faultCli(), 'node', ...this.args], { stdio: ['ignore', fd, fd], env: { ...process.env } });
    closeSync(fd);
    this.child = child;
    this.exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  }

  /** Sends `signal` to the current process (no-op when it is not running). */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child!.kill(signal);
    if (signal === 'SIGSTOP') this.stopped = true;
    if (signal === 'SIGCONT') this.stopped = false;
  }
}

/** What `FaultMesh.tlsProbe` saw. */
export interface TlsProbe {
  readonly handshake: boolean;
  readonly authorized: boolean;
  readonly refused: boolean;
  readonly error?: string;
}

/** Options of `startFaultMesh`. */
export interface FaultMeshOptions {
  /** Extra `chatmesh node` flags for node `i` (e.g. `--mesh-secret`, the mTLS flags). */
  readonly extraArgs?: (i: number, id: string) => string[];
  /** How long to wait for the first formation, ms. Default 30000. */
  readonly formTimeoutMs?: number;
}

/** Three CLI nodes; every process is SIGKILLed in the test's teardown. */
export class FaultMesh {
  constructor(readonly nodes: readonly FaultNode[], readonly logDir: string) {}

  node(i: number): FaultNode {
    return this.nodes[i]!;
  }

  /**
   * Resolves once every running, non-stopped node answers `/healthz` 200 with a link up to every
   * other such node (`peers` = count − 1). Resolves with the time it took, ms.
   */
  async waitFormed(timeoutMs = 30_000): Promise<number> {
    const t0 = Date.now();
    for (;;) {
      const live = this.nodes.filter((n) => n.running && !n.stopped);
      const hs = await Promise.all(live.map((n) => healthz(n.httpPort)));
      if (hs.every((h) => h?.status === 200 && h.body['peers'] === live.length - 1)) return Date.now() - t0;
      for (const n of live) {
        if (!n.running) throw new Error(`${n.id} exited while waiting for the mesh; see ${this.logDir}`);
      }
      if (Date.now() - t0 > timeoutMs) throw new Error(`mesh did not form within ${timeoutMs} ms: ${JSON.stringify(hs.map((h) => h?.body))}; logs in ${this.logDir}`);
      await sleep(50);
    }
  }

  /** SIGKILL of node `i`; resolves once it is gone. */
  async sigkill(i: number): Promise<void> {
    const n = this.node(i);
    n.signal('SIGKILL');
    await n.exited;
  }

  /** SIGTERM of node `i`; resolves with its exit code once it exited (the CLI exits 0). */
  async sigterm(i: number, timeoutMs = 15_000): Promise<number | null> {
    const n = this.node(i);
    n.signal('SIGTERM');
    const r = await Promise.race([n.exited, sleep(timeoutMs).then(() => undefined)]);
    if (!r) {
      n.signal('SIGKILL');
      throw new Error(`${n.id} did not exit within ${timeoutMs} ms of SIGTERM`);
    }
    return r.code;
  }

  sigstop(i: number): void {
    this.node(i).signal('SIGSTOP');
  }

  sigcont(i: number): void {
    this.node(i).signal('SIGCONT');
  }

  /** Starts node `i` again (same id, ports, flags) and waits until the mesh has formed; resolves with ms taken. */
  async restart(i: number, timeoutMs = 30_000): Promise<number> {
    this.node(i).start();
    return this.waitFormed(timeoutMs);
  }

  /** `chatmesh ctl --admin 127.0.0.1:<adminPort> drain` against node `i`: its exit code and output. */
  ctlDrain(i: number): Promise<{ code: number | null; out: string }> {
    const n = this.node(i);
    return new Promise((res) => {
      const child = spawn(process.execPath, [faultCli(), 'ctl', '--admin', `127.0.0.1:${n.adminPort}`, 'drain'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => { out += d; });
      child.stderr.on('data', (d) => { out += d; });
      child.once('exit', (code) => res({ code, out: out.trim() }));
    });
  }

  /**
   * Connects to node `i`'s mesh port with TLS (offering HTTP/2, as gRPC does), presenting `cert`
   * and `key` (none if omitted), trusting `ca`. `handshake`: the TLS handshake completed;
   * `authorized`: the server's certificate verified against `ca`; `refused`: the server closed the
   * connection within `holdMs` after the handshake (how a TLS 1.3 server rejects a client
   * certificate) or the handshake failed; `error`: why.
   */
  tlsProbe(i: number, pem: { ca: string; cert?: string; key?: string }, holdMs = 1000): Promise<TlsProbe> {
    const n = this.node(i);
    return new Promise((res) => {
      const s = tlsConnect({
        host: '127.0.0.1', port: n.meshPort, servername: 'localhost', ALPNProtocols: ['h2'], rejectUnauthorized: false,
        ca: readFileSync(pem.ca), ...(pem.cert && { cert: readFileSync(pem.cert) }), ...(pem.key && { key: readFileSync(pem.key) }),
      });
      let handshake = false;
      let authorized = false;
      let error: string | undefined;
      let done = false;
      const finish = (refused: boolean): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        s.destroy();
        res({ handshake, authorized, refused, ...(error !== undefined && { error }) });
      };
      const timer = setTimeout(() => finish(!handshake), 5000);
      s.once('secureConnect', () => {
        handshake = true;
        authorized = s.authorized;
        if (s.authorizationError) error = String(s.authorizationError);
        setTimeout(() => finish(false), holdMs);
      });
      s.on('data', () => undefined);
      s.once('error', (err) => { error ??= err.message; finish(true); });
      s.once('close', () => finish(true));
    });
  }
}

/**
 * Starts node-0..node-2 as CLI processes on fresh ports, each with `--peers` listing all three mesh
 * addresses, and waits until the mesh has formed. Registers a teardown that SIGKILLs every process
 * (also a stopped one) and removes the log directory unless the test failed.
 */
export async function startFaultMesh(t: Test, opts: FaultMeshOptions = {}): Promise<FaultMesh> {
  const logDir = mkdtempSync(join(tmpdir(), 'chatmesh-fault-'));
  const ports = [];
  for (let i = 0; i < 3; i++) ports.push({ http: await freePort(), mesh: await freePort(), admin: await freePort() });
  const peers = ports.map((p) => `127.0.0.1:${p.mesh}`).join(',');
  const nodes = ports.map((p, i) => {
    const id = `node-${i}`;
    const args = ['--id', id, '--host', '127.0.0.1', '--http-port', String(p.http), '--mesh-port', String(p.mesh),
      '--admin-port', String(p.admin), '--peers', peers, '--log-level', 'info', ...(opts.extraArgs?.(i, id) ?? [])];
    return new FaultNode(i, id, p.http, p.mesh, p.admin, args, logDir);
  });
  const mesh = new FaultMesh(nodes, logDir);
  t.teardown(async () => {
    for (const n of nodes) n.signal('SIGKILL');
    await Promise.all(nodes.map((n) => n.exited));
    if (t.passing()) rmSync(logDir, { recursive: true, force: true });
    else t.comment(`node logs kept in ${logDir}`);
  });
  for (const n of nodes) n.start();
  await mesh.waitFormed(opts.formTimeoutMs ?? 30_000);
  return mesh;
}
