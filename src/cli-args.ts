/**
 * Flag parsing and the one exit-code convention of every `chatmesh` command (node, cluster, token,
 * ctl): a usage error (unknown flag or command, missing, invalid or out-of-range value) prints one
 * line and a hint on stderr and exits {@link EXIT_USAGE}; a failure at run time (cannot connect,
 * node failed to start) exits {@link EXIT_FAILURE}. Also what `ctl` checks before any call (its
 * ranges, the `--admin` address) and its error type. Light on purpose: the CLI loads it for every
 * command, before (and often instead of) gRPC or the node's modules.
 */
import { CommanderError, InvalidArgumentError } from 'commander';
import type { Command } from 'commander';

/** Exit code of a usage error: the command line is wrong, running it again unchanged cannot work. */
export const EXIT_USAGE = 2;
/** Exit code of a failure at run time. */
export const EXIT_FAILURE = 1;

/** A usage error found after commander parsed the command line (a combination, a dependent range). */
export class UsageError extends Error {
  /**
   * @param message what is wrong, without a `chatmesh:` prefix
   * @param command the command path the hint names, e.g. `chatmesh ctl`
   */
  constructor(message: string, readonly command = 'chatmesh') {
    super(message);
    this.name = 'UsageError';
  }
}

/** Parses a whole number (digits only); throws commander's `InvalidArgumentError` otherwise. */
export function int(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('must be a whole number');
  return n;
}

/** A parser of whole numbers in `min..max` (inclusive), e.g. for `--limit <n>` of 1-10000. */
export function intIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`must be a whole number ${min}-${max}`);
    if (n < min || n > max) throw new InvalidArgumentError(`must be ${min}-${max}`);
    return n;
  };
}

/** Parses a number greater than 0 (fractions allowed). */
export function positive(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
}

/**
 * Rewords a commander error message as one line: `option '--limit <n>' must be 1-10000 (got '0')`.
 * Messages it does not know pass through with only the `error: ` prefix dropped.
 */
export function rewordCommanderError(message: string): string {
  const lower = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1);
  let m = /^error: option '(.+?)' argument '(.*)' is invalid\.\s*(.*)$/s.exec(message);
  if (m) return `option '${m[1]!}' ${lower(m[3]!.replace(/\.$/, ''))} (got '${m[2]!}')`;
  m = /^error: option '(.+?)' value '(.*)' from env '(.+?)' is invalid\.\s*(.*)$/s.exec(message);
  if (m) return `option '${m[1]!}' ${lower(m[4]!.replace(/\.$/, ''))} (got '${m[2]!}' from ${m[3]!})`;
  return message.replace(/^error: /, '').replace(/\n\(Did you mean (.+)\?\)/, ' (did you mean $1?)').replace(/\n/g, ' ');
}

/**
 * Makes `cmd` and every subcommand under it throw instead of printing and exiting: a usage error
 * becomes a {@link UsageError} naming its command; `--help` throws commander's own error with exit
 * code 0. Call once every command is added; not concurrently with a parse.
 */
export function throwUsageErrors(cmd: Command, path = cmd.name()): void {
  cmd.configureOutput({ outputError: () => undefined });
  cmd.exitOverride((err: CommanderError) => {
    if (err.exitCode === 0) throw err;
    throw new UsageError(rewordCommanderError(err.message), path);
  });
  for (const sub of cmd.commands) throwUsageErrors(sub, `${path} ${sub.name()}`);
}

/**
 * Gives a command with subcommands an action that reports a missing or unknown subcommand as a
 * {@link UsageError} (commander would print the whole help). Keeps the `help <command>` command.
 */
export function requireSubcommand(cmd: Command, path: string): Command {
  const names = (): string => cmd.commands.map((c) => c.name()).filter((n) => n !== 'help').join(', ');
  return cmd.helpCommand(true).allowExcessArguments().action((_options: unknown, self: Command) => {
    const name = self.args[0];
    throw new UsageError(name === undefined ? `missing command (one of: ${names()})` : `unknown command '${name}' (one of: ${names()})`, path);
  });
}

/** Whether `err` is commander's report that it printed help or the version (exit code 0). */
export function isHelpShown(err: unknown): boolean {
  return err instanceof CommanderError && err.exitCode === 0;
}

/** The two lines a usage error prints on stderr. */
export function usageText(message: string, command: string): string {
  return `chatmesh: error: ${message}\nrun '${command} --help' for usage\n`;
}

/** A failed admin call, already worded for a human. `code` is a gRPC status name, or `USAGE`. */
export class CtlError extends Error {
  constructor(message: string, readonly code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CtlError';
  }
}

/** Documented ranges of the numeric `ctl` options (inclusive); the CLI refuses values outside them. */
export const CTL_RANGES = {
  /** `routes --limit <n>`: routes per call. */
  limit: { min: 1, max: 10_000 },
  /** `--timeout-ms <ms>`: deadline of each call. */
  timeoutMs: { min: 1, max: 600_000 },
} as const;

/** Splits `host:port` or `[v6]:port`; undefined for any other gRPC target form. */
export function splitHostPort(address: string): { host: string; port: number } | undefined {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(address) ?? /^([^:/\s]+):(\d{1,5})$/.exec(address);
  return m ? { host: m[1]!, port: Number(m[2]) } : undefined;
}

/**
 * Parser of `--admin <host:port>`: a usage error for a bare port or a port out of range. Other
 * gRPC target forms (`unix:/path`, `dns:///host:port`) pass unchecked.
 */
export function adminAddress(value: string): string {
  if (/^\d+$/.test(value)) throw new InvalidArgumentError(`must be host:port, e.g. 127.0.0.1:${value}`);
  const hp = /:(\d+)$/.exec(value);
  if (hp && (Number(hp[1]) < 1 || Number(hp[1]) > 65535)) throw new InvalidArgumentError('must name a port 1-65535');
  if (!hp && !/^[a-z][a-z0-9+.-]*:/.test(value)) throw new InvalidArgumentError('must be host:port, e.g. 127.0.0.1:9090');
  return value;
}
