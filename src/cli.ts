#!/usr/bin/env node
/**
 * The `chatmesh` command. The only module that reads argv and the environment.
 */
import { Command, Option } from 'commander';
import type { NodeConfigInput } from './config/index.js';
import { LOG_LEVELS } from './log.js';
import type { LogLevel } from './log.js';
import { clusterOptionsProblem, clusterPorts, maxBasePort, MAX_CLUSTER_NODES, runCluster } from './cluster.js';
import { CtlError, EXIT_FAILURE, EXIT_USAGE, int, intIn, isHelpShown, positive, requireSubcommand, throwUsageErrors, UsageError, usageText } from './cli-args.js';
import { addCtlCommand } from './ctl-command.js';
import type { ChatNode } from './node.js';

/** A `node` flag that can also come from `CHATMESH_<FLAG>`; the flag wins. */
function flag(flags: string, description: string, parse?: (v: string) => unknown): Option {
  const long = flags.split(' ')[0]!.replace(/^--/, '');
  const o = new Option(flags, description).env(`CHATMESH_${long.toUpperCase().replace(/-/g, '_')}`);
  return parse ? o.argParser(parse) : o;
}

/** Builds the CLI program (exported for tests of the flag set). */
export function buildProgram(): Command {
  const program = new Command('chatmesh')
    .description('chatmesh: a distributed chat server of equal nodes.\n' +
      'Exit codes: 0 done, 1 failed at run time (cannot connect, node failed to start), 2 usage error (bad flag or value).')
    .usage('<command> [options]')
    .enablePositionalOptions();

  program.command('node')
    .description('run one chatmesh node')
    .addOption(flag('--id <id>', 'node id, unique in the mesh (default: <hostname>-<mesh-port>)'))
    .addOption(flag('--host <addr>', 'address every listener binds to (default: 127.0.0.1)'))
    .addOption(flag('--advertise <addr>', 'address peers and Consul use to reach this node (default: --host)'))
    .addOption(flag('--http-port <port>', 'HTTP: /ws, web client, /healthz, /metrics (default: 8080)', int))
    .addOption(flag('--public-url <url>', 'WebSocket URL clients use to reach this node, as GET /nodes lists it (default: ws://<advertise>:<http-port>/ws)'))
    .addOption(flag('--mesh-port <port>', 'node-to-node gRPC (default: 7070)', int))
    .addOption(flag('--admin-port <port>', 'admin gRPC (default: 9090)', int))
    .addOption(flag('--base-port <port>', `move all three ports: HTTP P, mesh P+100, admin P+200 (as node 0 of \`chatmesh cluster --base-port P\`); 1-${maxBasePort(1)}; --http-port, --mesh-port, --admin-port win over it`, intIn(1, maxBasePort(1))))
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
    .addOption(flag('--mesh-linger-ms <ms>', 'a peer-link batch due sooner than this after the previous one waits for company: fewer, fuller gRPC messages at moderate rates, at most this much added latency per hop; 0 never waits (default: 0)', int))
    .addOption(flag('--replicas <n>', 'copies of every stored stream, on distinct nodes (default: 2)', int))
    .addOption(flag('--history-size <n>', 'messages kept per user and per room stream; 0 keeps no message, accounts only (default: 1000)', int))
    .addOption(flag('--history-ttl <span>', 'age after which a kept message is dropped, e.g. 12h, 7d, 2w (default: 7d)'))
    .addOption(flag('--data-dir <dir>', 'keep this node\'s streams on disk in DIR (default: in memory)'))
    .addOption(flag('--max-stored-messages <n>', 'cap on the messages this node keeps over all streams, oldest dropped first (default: 1000000; 20000000 with --data-dir)', int))
    .addOption(flag('--log-level <level>', 'log level (default: info)').choices([...LOG_LEVELS]))
    .addOption(flag('--rate-limit <perSec>', 'frames per second one connection may send (default: 100)', positive))
    .addOption(flag('--rate-burst <n>', 'burst of frames one connection may send at once (default: 200)', positive))
    .addOption(flag('--max-buffered-bytes <n>', 'drop a client whose unsent data passes this, close code 4008 (default: 4194304)', int))
    .addOption(flag('--heartbeat-ms <ms>', 'ping interval; a client silent for two intervals is dropped (default: 30000)', int))
    .addOption(flag('--max-connections <n>', 'max client connections on this node (default: 100000)', int))
    .action(async (o: Record<string, unknown>, command: Command) => {
      await runNode({
        id: o['id'] as string | undefined,
        host: o['host'] as string | undefined,
        advertise: o['advertise'] as string | undefined,
        publicUrl: o['publicUrl'] as string | undefined,
        ...nodePorts(o, command),
        discovery: o['discovery'] as 'static' | 'consul' | undefined,
        peers: typeof o['peers'] === 'string' ? o['peers'].split(',') : undefined,
        consulUrl: o['consulUrl'] as string | undefined,
        serviceName: o['serviceName'] as string | undefined,
        auth: o['auth'] as 'dev' | 'jwt' | undefined,
        jwtSecret: o['jwtSecret'] as string | undefined,
        meshSecret: o['meshSecret'] as string | undefined,
        adminToken: o['adminToken'] as string | undefined,
        routeCacheSize: o['routeCacheSize'] as number | undefined,
        meshLingerMs: o['meshLingerMs'] as number | undefined,
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
    .summary('run N nodes on this machine as child processes; Ctrl-C stops all')
    .description('Run N nodes on this machine as child processes (static discovery). Node i gets HTTP port P+i, ' +
      'mesh port P+100+i, admin port P+200+i. Flags after -- go to every node.\n\n' +
      'A node that exits on its own is reported (id, pid, exit code or signal) and the others keep running. ' +
      'With --restart it is started again (same id and ports) after 500 ms, doubling up to 10 s, back to 500 ms ' +
      'once it stayed up 30 s; a node that exits with code 2 (bad flags) is not restarted. ' +
      'Ctrl-C or SIGTERM stops every node, with no restarts; a second one makes them exit at once.')
    .requiredOption('--nodes <n>', `number of nodes (1-${MAX_CLUSTER_NODES})`, intIn(1, MAX_CLUSTER_NODES))
    .option('--base-port <port>', 'base port P', int, 8080)
    .option('--host <addr>', 'address the nodes bind to', '127.0.0.1')
    .option('--restart', 'restart a node that exits on its own, with a back-off')
    .argument('[nodeFlags...]', 'extra `chatmesh node` flags, after --')
    .action(async (nodeArgs: string[], o: { nodes: number; basePort: number; host: string; restart?: boolean }) => {
      const problem = clusterOptionsProblem(o.nodes, o.basePort);
      if (problem) throw new UsageError(problem, 'chatmesh cluster');
      process.exitCode = await runCluster({ nodes: o.nodes, basePort: o.basePort, host: o.host, nodeArgs, restart: o.restart === true });
    });

  addCtlCommand(program);

  program.command('token')
    .description('print a signed client token (HS256 JWT) for a user')
    .requiredOption('--user <user>', 'user id (the token\'s sub claim)')
    .addOption(new Option('--secret <secret>', 'HS256 secret, the node\'s --jwt-secret').env('CHATMESH_JWT_SECRET').makeOptionMandatory())
    .option('--ttl <span>', 'lifetime, e.g. 30m, 1h, 7d', '1h')
    .action(async (o: { user: string; secret: string; ttl: string }) => {
      if (!/^\d+[smhdwy]$|^\d+ ?(sec|secs|second|seconds|min|mins|minute|minutes|hour|hours|day|days|week|weeks|year|years)$/.test(o.ttl)) {
        throw new UsageError(`option '--ttl <span>' must be a time span like 30m, 1h, 7d (got '${o.ttl}')`, 'chatmesh token');
      }
      const { signToken } = await import('./auth/index.js');
      const token = await signToken({ user: o.user, secret: o.secret, ttl: o.ttl }).catch((err: unknown) => {
        throw err instanceof RangeError ? new UsageError(err.message, 'chatmesh token') : err;
      });
      process.stdout.write(`${token}\n`);
    });

  requireSubcommand(program, 'chatmesh');
  throwUsageErrors(program);
  return program;
}

type NodePorts = Pick<NodeConfigInput, 'httpPort' | 'meshPort' | 'adminPort'>;

/**
 * The node's ports: `--base-port` P gives HTTP P, mesh P+100, admin P+200 (node 0 of a cluster
 * with base port P). A port flag wins over it, unless the port came from the environment and the
 * base port from the command line (a flag wins over an env var).
 */
function nodePorts(o: Record<string, unknown>, command: Command): NodePorts {
  const base = o['basePort'] as number | undefined;
  const strength = (key: string): number => ({ cli: 2, env: 1 } as Record<string, number>)[command.getOptionValueSource(key) ?? ''] ?? 0;
  const derived = base === undefined ? undefined : clusterPorts(base, 0);
  const pick = (key: keyof NodePorts, fromBase: number | undefined): number | undefined => {
    const own = o[key] as number | undefined;
    return fromBase === undefined || (own !== undefined && strength(key) >= strength('basePort')) ? own : fromBase;
  };
  return { httpPort: pick('httpPort', derived?.http), meshPort: pick('meshPort', derived?.mesh), adminPort: pick('adminPort', derived?.admin) };
}

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
  // Loaded here: the node's modules are most of the CLI's start-up time, and only `node` needs them.
  const { startNode } = await import('./node.js');
  // A component refusing a value the config checks let through is a usage error too.
  node = await startNode(input).catch((err: unknown) => {
    throw err instanceof RangeError ? new UsageError(err.message, 'chatmesh node') : err;
  });
  if (signals > 0) shutdown();
}

/** Prints what went wrong (one line; a stack only for an unexpected error) and returns the exit code. */
function report(err: unknown): number {
  const say = (text: string): void => { process.stderr.write(text); };
  if (isHelpShown(err)) return 0;
  if (err instanceof UsageError) {
    say(usageText(err.message, err.command));
    return EXIT_USAGE;
  }
  // By name: the config module is loaded only by `node`.
  if (err instanceof Error && err.name === 'ConfigError') {
    say(usageText(err.message, 'chatmesh node'));
    return EXIT_USAGE;
  }
  if (err instanceof CtlError) {
    say(`chatmesh ctl: ${err.message}\n`);
    return err.code === 'USAGE' ? EXIT_USAGE : EXIT_FAILURE;
  }
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'STORE_OPEN_FAILED') {
    // Never a silent fall-back to memory: the node does not start.
    say(`chatmesh: ${e.message}\n`);
  } else if (e.code === 'EADDRINUSE') {
    say(`chatmesh: ${e.message} (is another node running on that port?)\n`);
  } else {
    say(`chatmesh: failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  }
  return EXIT_FAILURE;
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    // Exit now: a node that failed half-way through starting may hold handles open.
    process.exit(report(err));
  }
}

await main();
