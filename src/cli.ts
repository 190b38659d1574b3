#!/usr/bin/env node
/**
 * The `chatmesh` command. The only module that reads argv and the environment.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { signToken } from './auth/index.js';
import { ConfigError } from './config/index.js';
import type { NodeConfigInput } from './config/index.js';
import { LOG_LEVELS } from './log.js';
import type { LogLevel } from './log.js';
import { runCluster } from './cluster.js';
import { CtlError, runCtl } from './ctl.js';
import { startNode } from './node.js';
import type { ChatNode } from './node.js';

function int(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('must be a whole number');
  return n;
}

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
}

/** A `node` flag that can also come from `CHATMESH_<FLAG>`; the flag wins. */
function flag(flags: string, description: string, parse?: (v: string) => unknown): Option {
  const long = flags.split(' ')[0]!.replace(/^--/, '');
  const o = new Option(flags, description).env(`CHATMESH_${long.toUpperCase().replace(/-/g, '_')}`);
  return parse ? o.argParser(parse) : o;
}

/** Builds the CLI program (exported for tests of the flag set). */
export function buildProgram(): Command {
  const program = new Command('chatmesh')
    .description('chatmesh: a distributed chat server of equal nodes')
    .showHelpAfterError()
    .enablePositionalOptions();

  program.command('node')
    .description('run one chatmesh node')
    .addOption(flag('--id <id>', 'node id, unique in the mesh (default: <hostname>-<mesh-port>)'))
    .addOption(flag('--host <addr>', 'address every listener binds to (default: 127.0.0.1)'))
    .addOption(flag('--advertise <addr>', 'address peers and Consul use to reach this node (default: --host)'))
    .addOption(flag('--http-port <port>', 'HTTP: /ws, web client, /healthz, /metrics (default: 8080)', int))
    .addOption(flag('--mesh-port <port>', 'node-to-node gRPC (default: 7070)', int))
    .addOption(flag('--admin-port <port>', 'admin gRPC (default: 9090)', int))
    .addOption(flag('--discovery <kind>', 'static or consul (default: static)').choices(['static', 'consul']))
    .addOption(flag('--peers <list>', 'static discovery: comma-separated host:meshPort of other nodes'))
    .addOption(flag('--consul-url <url>', 'consul discovery: the local Consul agent (default: http://127.0.0.1:8500)'))
    .addOption(flag('--service-name <name>', 'consul discovery: service name to register and watch (default: chatmesh)'))
    .addOption(flag('--auth <mode>', 'dev (hello names its user, no token) or jwt (default: dev)').choices(['dev', 'jwt']))
    .addOption(flag('--jwt-secret <secret>', 'HS256 secret for client tokens; required with --auth jwt'))
    .addOption(flag('--mesh-secret <secret>', 'shared secret every peer must present'))
    .addOption(flag('--admin-token <token>', 'bearer token of the admin API; without one the admin API listens on loopback only'))
    .addOption(flag('--insecure-mesh', 'allow the mesh on a non-loopback address with neither --mesh-secret nor mesh TLS'))
    .addOption(flag('--mesh-tls-cert <file>', 'mesh mutual TLS: this node\'s certificate (PEM)'))
    .addOption(flag('--mesh-tls-key <file>', 'mesh mutual TLS: this node\'s private key (PEM)'))
    .addOption(flag('--mesh-tls-ca <file>', 'mesh mutual TLS: the CA that signs every peer\'s certificate (PEM)'))
    .addOption(flag('--consul-token <token>', 'consul discovery: ACL token sent with every Consul call (default: CONSUL_HTTP_TOKEN)'))
    .addOption(flag('--route-cache-size <n>', 'max entries of the LRU routing table (default: 1000000)', int))
    .addOption(flag('--replicas <n>', 'copies of every stored stream, on distinct nodes (default: 2)', int))
    .addOption(flag('--history-size <n>', 'messages kept per user and per room stream; 0 turns storage off (default: 1000)', int))
    .addOption(flag('--history-ttl <span>', 'age after which a kept message is dropped, e.g. 12h, 7d, 2w (default: 7d)'))
    .addOption(flag('--data-dir <dir>', 'keep this node\'s streams on disk in DIR (default: in memory)'))
    .addOption(flag('--max-stored-messages <n>', 'cap on the messages this node keeps over all streams, oldest dropped first (default: 1000000; 20000000 with --data-dir)', int))
    .addOption(flag('--log-level <level>', 'log level (default: info)').choices([...LOG_LEVELS]))
    .addOption(flag('--rate-limit <perSec>', 'frames per second one connection may send (default: 100)', positive))
    .addOption(flag('--rate-burst <n>', 'burst of frames one connection may send at once (default: 200)', positive))
    .addOption(flag('--max-buffered-bytes <n>', 'drop a client whose unsent data passes this, close code 4008 (default: 4194304)', int))
    .addOption(flag('--heartbeat-ms <ms>', 'ping interval; a client silent for two intervals is dropped (default: 30000)', int))
    .addOption(flag('--max-connections <n>', 'max client connections on this node (default: 100000)', int))
    .action(async (o: Record<string, unknown>) => {
      await runNode({
        id: o['id'] as string | undefined,
        host: o['host'] as string | undefined,
        advertise: o['advertise'] as string | undefined,
        httpPort: o['httpPort'] as number | undefined,
        meshPort: o['meshPort'] as number | undefined,
        adminPort: o['adminPort'] as number | undefined,
        discovery: o['discovery'] as 'static' | 'consul' | undefined,
        peers: typeof o['peers'] === 'string' ? o['peers'].split(',') : undefined,
        consulUrl: o['consulUrl'] as string | undefined,
        serviceName: o['serviceName'] as string | undefined,
        auth: o['auth'] as 'dev' | 'jwt' | undefined,
        jwtSecret: o['jwtSecret'] as string | undefined,
        meshSecret: o['meshSecret'] as string | undefined,
        adminToken: o['adminToken'] as string | undefined,
        routeCacheSize: o['routeCacheSize'] as number | undefined,
        replicas: o['replicas'] as number | undefined,
        historySize: o['historySize'] as number | undefined,
        historyTtlMs: o['historyTtl'] as string | undefined,
        dataDir: o['dataDir'] as string | undefined,
        maxStoredMessages: o['maxStoredMessages'] as number | undefined,
        insecureMesh: o['insecureMesh'] === true ? true : undefined,
        meshTlsCert: o['meshTlsCert'] as string | undefined,
        meshTlsKey: o['meshTlsKey'] as string | undefined,
        meshTlsCa: o['meshTlsCa'] as string | undefined,
        consulToken: (o['consulToken'] as string | undefined) ?? (process.env['CONSUL_HTTP_TOKEN'] || undefined),
        logLevel: o['logLevel'] as LogLevel | undefined,
        gateway: {
          rateLimitPerSec: o['rateLimit'] as number | undefined,
          rateLimitBurst: o['rateBurst'] as number | undefined,
          maxBufferedBytes: o['maxBufferedBytes'] as number | undefined,
          heartbeatMs: o['heartbeatMs'] as number | undefined,
          maxConnections: o['maxConnections'] as number | undefined,
        } as NodeConfigInput['gateway'],
      });
    });

  program.command('cluster')
    .description('run N nodes on this machine as child processes (static discovery); Ctrl-C stops all.\n' +
      'Node i gets HTTP port P+i, mesh port P+100+i, admin port P+200+i. Flags after -- go to every node.')
    .requiredOption('--nodes <n>', 'number of nodes (1-100)', int)
    .option('--base-port <port>', 'base port P', int, 8080)
    .option('--host <addr>', 'address the nodes bind to', '127.0.0.1')
    .argument('[nodeFlags...]', 'extra `chatmesh node` flags, after --')
    .action(async (nodeArgs: string[], o: { nodes: number; basePort: number; host: string }) => {
      process.exitCode = await runCluster({ nodes: o.nodes, basePort: o.basePort, host: o.host, nodeArgs });
    });

  const ctl = program.command('ctl')
    .description('admin client of a node\'s admin API')
    .enablePositionalOptions()
    .addOption(new Option('--admin <host:port>', 'admin API address (default: 127.0.0.1:9090)').env('CHATMESH_ADMIN'))
    .addOption(new Option('--token <token>', 'admin bearer token (the node\'s --admin-token)').env('CHATMESH_ADMIN_TOKEN'))
    .option('--json', 'print JSON for scripts')
    .option('--timeout-ms <ms>', 'deadline of each call (default: 5000)', int);
  // Shared flags are accepted before the subcommand (as the contract writes them) and after it.
  const shared = (c: Command): Command => c
    .addOption(new Option('--admin <host:port>', 'admin API address (default: 127.0.0.1:9090)'))
    .addOption(new Option('--token <token>', 'admin bearer token'))
    .option('--json', 'print JSON for scripts')
    .option('--timeout-ms <ms>', 'deadline of each call (default: 5000)', int);
  type CtlFlags = { admin?: string; token?: string; json?: boolean; timeoutMs?: number; after?: string; limit?: number; room?: string };
  const ctlRun = (cmd: string) => async (...a: unknown[]): Promise<void> => {
    const command = a[a.length - 1] as Command;
    const own = command.opts<CtlFlags>();
    const parent = ctl.opts<CtlFlags>();
    const args = a.slice(0, -2).filter((x): x is string => typeof x === 'string');
    const text = await runCtl(cmd, args, {
      admin: own.admin ?? parent.admin ?? '127.0.0.1:9090',
      token: own.token ?? parent.token,
      json: own.json ?? parent.json ?? false,
      timeoutMs: own.timeoutMs ?? parent.timeoutMs ?? 5000,
    }, {
      ...(own.after !== undefined && { after: own.after }), ...(own.limit !== undefined && { limit: own.limit }),
      ...(own.room !== undefined && { room: own.room }),
    });
    process.stdout.write(`${text}\n`);
  };
  shared(ctl.command('route').description('where a user\'s connections are').argument('<user>')).action(ctlRun('route'));
  shared(ctl.command('room').description('where a room\'s members are').argument('<room>')).action(ctlRun('room'));
  shared(ctl.command('routes').description('the routing table, paged'))
    .option('--after <topic>', 'start after this topic')
    .option('--limit <n>', 'max routes (1-10000)', int, 1000)
    .action(ctlRun('routes'));
  shared(ctl.command('peers').description('peers and link state')).action(ctlRun('peers'));
  shared(ctl.command('stats').description('the node\'s counters')).action(ctlRun('stats'));
  shared(ctl.command('drain').description('move this node\'s clients away (close 1012) and deregister; the node keeps serving peers')).action(ctlRun('drain'));
  shared(ctl.command('stream').description('where a user\'s (or with --room, a room\'s) message stream is kept: its replicas and what each holds')
    .argument('[user]', 'the user whose stream to show'))
    .option('--room <room>', 'show this room\'s stream instead of a user\'s')
    .action(ctlRun('stream'));

  program.command('token')
    .description('print a signed client token (HS256 JWT) for a user')
    .requiredOption('--user <user>', 'user id (the token\'s sub claim)')
    .addOption(new Option('--secret <secret>', 'HS256 secret, the node\'s --jwt-secret').env('CHATMESH_JWT_SECRET').makeOptionMandatory())
    .option('--ttl <span>', 'lifetime, e.g. 30m, 1h, 7d', '1h')
    .action(async (o: { user: string; secret: string; ttl: string }) => {
      if (!/^\d+[smhdwy]$|^\d+ ?(sec|secs|second|seconds|min|mins|minute|minutes|hour|hours|day|days|week|weeks|year|years)$/.test(o.ttl)) {
        throw new CliError(`--ttl "${o.ttl}" is not a time span like 30m, 1h, 7d`);
      }
      process.stdout.write(`${await signToken({ user: o.user, secret: o.secret, ttl: o.ttl })}\n`);
    });

  return program;
}

/** An error the CLI reports as one line and exit code 2. */
class CliError extends Error {}

async function runNode(input: NodeConfigInput): Promise<void> {
  // Handlers go in before the node starts, so a signal during startup still shuts down cleanly.
  let signals = 0;
  let stopping: Promise<void> | undefined;
  let node: ChatNode | undefined;
  const shutdown = (): void => {
    if (!node) return;
    stopping ??= node.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`chatmesh: shutdown failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`chatmesh: second ${sig}, exiting now\n`);
      process.exit(1);
    }
    shutdown();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  node = await startNode(input);
  if (signals > 0) shutdown();
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof CliError || err instanceof RangeError) {
      process.stderr.write(`chatmesh: ${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof CtlError) {
      process.stderr.write(`chatmesh ctl: ${err.message}\n`);
      process.exit(err.code === 'USAGE' ? 2 : 1);
    }
    const e = err as NodeJS.ErrnoException;
    if ((err as { code?: unknown }).code === 'STORE_OPEN_FAILED') {
      // Never a silent fall-back to memory: the node does not start.
      process.stderr.write(`chatmesh: ${e.message}\n`);
      process.exit(1);
    }
    if (e.code === 'EADDRINUSE') {
      process.stderr.write(`chatmesh: ${e.message} (is another node running on that port?)\n`);
      process.exit(1);
    }
    throw err;
  }
}

await main();
