/**
 * The `chatmesh ctl` command line: its subcommands and flags, each numeric flag checked against its
 * documented range at parse time (a usage error, exit 2).
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import { adminAddress, CTL_RANGES, intIn, requireSubcommand } from './cli-args.js';

type CtlFlags = { admin?: string; token?: string; json?: boolean; timeoutMs?: number; after?: string; limit?: number; room?: string };

const { limit, timeoutMs } = CTL_RANGES;

/** Adds `ctl` and its subcommands to `program`; each prints its answer on stdout. */
export function addCtlCommand(program: Command): Command {
  const ctl = program.command('ctl')
    .description('admin client of a node\'s admin API')
    .usage('[options] <command> [command options]')
    .enablePositionalOptions()
    .addOption(new Option('--admin <host:port>', 'admin API address (default: 127.0.0.1:9090)').env('CHATMESH_ADMIN').argParser(adminAddress))
    .addOption(new Option('--token <token>', 'admin bearer token (the node\'s --admin-token)').env('CHATMESH_ADMIN_TOKEN'))
    .option('--json', 'print JSON for scripts')
    .option('--timeout-ms <ms>', `deadline of each call (${timeoutMs.min}-${timeoutMs.max}, default: 5000)`, intIn(timeoutMs.min, timeoutMs.max));
  requireSubcommand(ctl, 'chatmesh ctl');
  // Shared flags are accepted before the subcommand (as the contract writes them) and after it.
  const shared = (c: Command): Command => c
    .addOption(new Option('--admin <host:port>', 'admin API address (default: 127.0.0.1:9090)').argParser(adminAddress))
    .addOption(new Option('--token <token>', 'admin bearer token'))
    .option('--json', 'print JSON for scripts')
    .option('--timeout-ms <ms>', `deadline of each call (${timeoutMs.min}-${timeoutMs.max}, default: 5000)`, intIn(timeoutMs.min, timeoutMs.max));
  const ctlRun = (cmd: string) => async (...a: unknown[]): Promise<void> => {
    const command = a[a.length - 1] as Command;
    const own = command.opts<CtlFlags>();
    const parent = ctl.opts<CtlFlags>();
    const args = a.slice(0, -2).filter((x): x is string => typeof x === 'string');
    // Loaded here, so that a usage error (or another command) does not load gRPC.
    const { runCtl } = await import('./ctl.js');
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
    .option('--limit <n>', `max routes (${limit.min}-${limit.max})`, intIn(limit.min, limit.max), 1000)
    .action(ctlRun('routes'));
  shared(ctl.command('peers').description('peers and link state')).action(ctlRun('peers'));
  shared(ctl.command('stats').description('the node\'s counters')).action(ctlRun('stats'));
  shared(ctl.command('drain').description('move this node\'s clients away (close 1012) and deregister; the node keeps serving peers')).action(ctlRun('drain'));
  shared(ctl.command('stream').description('where a user\'s (or with --room, a room\'s) message stream is kept: its replicas and what each holds')
    .argument('[user]', 'the user whose stream to show'))
    .option('--room <room>', 'show this room\'s stream instead of a user\'s')
    .action(ctlRun('stream'));
  return ctl;
}
