/**
 * `chatmesh ctl`: the admin client. Human-readable tables by default, `--json` for scripts;
 * one line on stderr and exit code 1 on failure (2 on a usage error).
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from './generated/admin.js';
import type { AdminClient } from './generated/chatmesh/admin/v1/Admin.js';
import type { Route__Output } from './generated/chatmesh/admin/v1/Route.js';
import type { GetStreamRequest } from './generated/chatmesh/admin/v1/GetStreamRequest.js';
import type { StreamInfo__Output } from './generated/chatmesh/admin/v1/StreamInfo.js';
import { PROTO_LOADER_OPTIONS, protoPath } from './mesh/index.js';
import { CTL_RANGES, CtlError } from './cli-args.js';
import { explain } from './ctl-explain.js';

export { CTL_RANGES, CtlError } from './cli-args.js';

/** Options shared by every `ctl` subcommand. */
export interface CtlOptions {
  /** `host:port` of the admin API. */
  readonly admin: string;
  readonly token: string | undefined;
  readonly json: boolean;
  /** Deadline of each call, in ms. */
  readonly timeoutMs: number;
}

function client(opts: CtlOptions): AdminClient & grpc.Client {
  const proto = (grpc.loadPackageDefinition(protoLoader.loadSync(protoPath('admin.proto'), PROTO_LOADER_OPTIONS)) as unknown as ProtoGrpcType).chatmesh.admin.v1;
  return new proto.Admin(opts.admin, grpc.credentials.createInsecure()) as unknown as AdminClient & grpc.Client;
}

function callOptions(opts: CtlOptions): { metadata: grpc.Metadata; options: grpc.CallOptions } {
  const metadata = new grpc.Metadata();
  if (opts.token) metadata.set('authorization', `Bearer ${opts.token}`);
  return { metadata, options: { deadline: Date.now() + opts.timeoutMs } };
}

function inRange(name: string, value: number, range: { min: number; max: number }): void {
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    throw new CtlError(`${name} must be ${range.min}-${range.max} (got ${value})`, 'USAGE');
  }
}

type Unary<Req, Res> = (req: Req, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Res) => void) => unknown;

function unary<Req, Res>(opts: CtlOptions, call: (c: AdminClient) => Unary<Req, Res>, req: Req): Promise<Res> {
  const c = client(opts);
  const { metadata, options } = callOptions(opts);
  return new Promise<Res>((resolve, reject) => {
    call(c).call(c, req, metadata, options, (err, res) => {
      c.close();
      if (err) explain(err, opts.admin, opts.timeoutMs).then(reject, reject);
      else resolve(res!);
    });
  });
}

/** Renders rows as an aligned text table. */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly unknown[]>): string {
  const cells = [headers, ...rows.map((r) => r.map((v) => String(v ?? '')))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

function owners(r: Route__Output): string {
  return r.owners.length ? r.owners.map((o) => `${o.nodeId}(${o.connections})`).join(' ') : '-';
}

function routeText(r: Route__Output): string {
  const online = r.owners.length > 0;
  return [
    `${r.topic}  ${r.topic.startsWith('u:') ? (online ? 'online' : 'offline') : `${r.owners.reduce((a, o) => a + o.connections, 0)} connection(s)`}`,
    table(['home', 'owners (connections)', 'answered from', 'seq', 'pinned'], [[r.home, owners(r), r.source + (r.tentative ? ' (tentative)' : ''), r.seq, r.pinned ? 'yes' : 'no']]),
  ].join('\n');
}

const STREAM_USAGE = 'usage: chatmesh ctl stream <user> | chatmesh ctl stream --room <room>';

function streamText(s: StreamInfo__Output): string {
  const head = `${s.stream}  replicas: ${s.replicas}`;
  if (s.nodes.length === 0) return `${head}\n(no live replica)`;
  const dash = (v: string): string => v || '-';
  // The last, unnamed column says why a replica did not answer; it is empty for the others.
  return `${head}\n${table(['rank', 'node', 'messages', 'oldest', 'newest', 'pending', 'handoff', ''], s.nodes.map((n) => {
    const handoff = n.handoff ? 'in progress' : 'no';
    return n.reachable
      ? [n.rank, n.node, n.messages, dash(n.oldest), dash(n.newest), n.pending, handoff, '']
      : [n.rank, n.node, '?', '?', '?', '?', handoff, `unreachable: ${n.error || 'no answer'}`];
  }))}`;
}

/** Runs one subcommand; resolves with the text to print. */
export async function runCtl(cmd: string, args: readonly string[], opts: CtlOptions, extra: { after?: string; limit?: number; room?: string } = {}): Promise<string> {
  const out = (value: unknown, text: () => string): string => (opts.json ? JSON.stringify(value, null, 2) : text());
  inRange('--timeout-ms', opts.timeoutMs, CTL_RANGES.timeoutMs);
  if (extra.limit !== undefined) inRange('--limit', extra.limit, CTL_RANGES.limit);
  switch (cmd) {
    case 'route':
    case 'room': {
      const name = args[0];
      if (!name) throw new CtlError(`usage: chatmesh ctl ${cmd} <${cmd === 'route' ? 'user' : 'room'}>`, 'USAGE');
      const r = await unary(opts, (c) => (cmd === 'route' ? c.LookupUser : c.LookupRoom) as Unary<{ name: string }, Route__Output>, { name });
      return out(r, () => routeText(r));
    }
    case 'routes': {
      const c = client(opts);
      const { metadata, options } = callOptions(opts);
      const rows: Route__Output[] = [];
      await new Promise<void>((resolve, reject) => {
        const call = c.ListRoutes({ after: extra.after ?? '', limit: extra.limit ?? 1000 }, metadata, options);
        call.on('data', (r: Route__Output) => rows.push(r));
        call.on('error', (e: grpc.ServiceError) => { explain(e, opts.admin, opts.timeoutMs).then(reject, reject); });
        call.on('end', () => resolve());
      }).finally(() => c.close());
      return out(rows, () => rows.length === 0 ? '(no routes)' : table(['topic', 'home', 'owners (connections)', 'source', 'seq', 'pinned'],
        rows.map((r) => [r.topic, r.home, owners(r), r.source, r.seq, r.pinned ? 'yes' : ''])) +
        (rows.length === (extra.limit ?? 1000) ? `\n(more: --after ${rows[rows.length - 1]!.topic})` : ''));
    }
    case 'peers': {
      const r = await unary(opts, (c) => c.ListPeers as Unary<object, { selfId: string; members: string[]; peers: Array<Record<string, unknown>> }>, {});
      return out(r, () => `node ${r.selfId}; live members: ${r.members.join(', ')}\n` + (r.peers.length === 0 ? '(no peers)' : table(
        ['id', 'address', 'state', 'role', 'incarnation', 'queue', 'batches in/out', 'last error'],
        r.peers.map((p) => [p['id'] || '?', p['address'], p['state'], p['role'], p['incarnation'], p['queueDepth'], `${String(p['batchesIn'])}/${String(p['batchesOut'])}`, p['lastError']]),
      )));
    }
    case 'stats': {
      const r = await unary(opts, (c) => c.GetStats as Unary<object, Record<string, unknown>>, {});
      return out(r, () => table(['counter', 'value'], Object.entries(r).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : v])));
    }
    case 'drain': {
      const r = await unary(opts, (c) => c.Drain as Unary<object, { connectionsClosed: number; deregistered: boolean }>, {});
      return out(r, () => `drained: ${r.connectionsClosed} client(s) asked to reconnect elsewhere; ${r.deregistered ? 'deregistered from discovery' : 'deregistration FAILED (see the node log)'}`);
    }
    case 'stream': {
      const user = args[0];
      if ((user === undefined) === (extra.room === undefined)) throw new CtlError(STREAM_USAGE, 'USAGE');
      const r = await unary(opts, (c) => c.GetStream as Unary<GetStreamRequest, StreamInfo__Output>, user !== undefined ? { user } : { room: extra.room! });
      return out(r, () => streamText(r));
    }
    default:
      throw new CtlError(`unknown ctl command "${cmd}"; one of: route, room, routes, peers, stats, drain, stream`, 'USAGE');
  }
}
