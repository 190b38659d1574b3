/**
 * One node of `chatmesh cluster`: a `chatmesh node` child process, its output prefixed with its id,
 * and what happens when it exits on its own — reported, and with `restart` started again (same
 * flags, so same id and ports) after a back-off. An exit with code 2 (its flags are wrong) is never
 * restarted: the same flags would fail the same way.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { DEFAULT_BACKOFF, RestartBackoff } from './cluster-backoff.js';
import type { BackoffOptions } from './cluster-backoff.js';

/** Options of one supervised node. */
export interface ClusterNodeOptions {
  /** Node id, used as the prefix of its output lines. */
  readonly id: string;
  /** Arguments of `node <cli.js>`, e.g. `[cli, 'node', '--id', id, ...]`. */
  readonly args: readonly string[];
  /** Restart the node when it exits on its own. */
  readonly restart: boolean;
  /** Back-off of restarts; default {@link DEFAULT_BACKOFF}. */
  readonly backoff?: BackoffOptions;
  /** Writes one line of normal output (default: stdout). */
  readonly print?: (line: string) => void;
  /** Writes one line about an exit (default: stderr). */
  readonly warn?: (line: string) => void;
  /** Clock for uptimes, in ms; default `Date.now`. */
  readonly now?: () => number;
}

/** How a child process ended: its exit code, or the signal that ended it. */
export type ExitStatus = { readonly code: number; readonly signal?: undefined } | { readonly code: null; readonly signal: NodeJS.Signals };

/** Words an exit for a log line: `code 1` or `signal SIGKILL`. */
export function describeExit(status: ExitStatus): string {
  return status.code !== null ? `code ${status.code}` : `signal ${status.signal}`;
}

/** A supervised `chatmesh node` child. Methods are not for concurrent use from several callers. */
export class ClusterNode {
  private child: ChildProcess | undefined;
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private last: ExitStatus | undefined;
  private readonly backoff: RestartBackoff;
  private readonly print: (line: string) => void;
  private readonly warn: (line: string) => void;
  private readonly now: () => number;
  private finish!: () => void;
  /** Resolves once the node is down for good: stopped, or exited with no restart to follow. */
  readonly done: Promise<void>;

  constructor(private readonly options: ClusterNodeOptions) {
    this.backoff = new RestartBackoff(options.backoff ?? DEFAULT_BACKOFF);
    this.print = options.print ?? ((line) => process.stdout.write(`${line}\n`));
    this.warn = options.warn ?? ((line) => process.stderr.write(`${line}\n`));
    this.now = options.now ?? Date.now;
    this.done = new Promise((resolve) => { this.finish = resolve; });
  }

  /** Pid of the running child, if one runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** How the last child ended; undefined while the first still runs. */
  get lastExit(): ExitStatus | undefined {
    return this.last;
  }

  /** Starts the child; `describe` is the rest of its startup line (its URLs). */
  start(describe = ''): void {
    const { id } = this.options;
    const child = spawn(process.execPath, [...this.options.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Own process group: a terminal's Ctrl-C reaches only the cluster, which stops each node once.
      detached: true,
    });
    this.child = child;
    this.startedAt = this.now();
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => this.print(`[${id}] ${line}`));
    }
    let ended = false;
    const onEnd = (status: ExitStatus): void => {
      if (ended) return;
      ended = true;
      this.exited(child, status);
    };
    child.once('exit', (code, signal) => onEnd(code !== null ? { code } : { code: null, signal: signal ?? 'SIGKILL' }));
    child.once('error', (err) => {
      this.warn(`[cluster] ${id}: cannot start: ${err.message}`);
      onEnd({ code: 1 });
    });
    if (child.pid !== undefined) this.print(`[cluster] ${id} (pid ${child.pid})${describe ? `: ${describe}` : ''}`);
  }

  /** Stops the node for good: cancels a pending restart, sends `signal` to a running child. */
  stop(signal: NodeJS.Signals = 'SIGTERM'): void {
    this.stopping = true;
    clearTimeout(this.timer);
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) child.kill(signal);
    else this.finish();
  }

  private exited(child: ChildProcess, status: ExitStatus): void {
    const { id } = this.options;
    this.last = status;
    if (this.child === child) this.child = undefined;
    if (this.stopping) {
      this.finish();
      return;
    }
    const what = `[cluster] ${id} (pid ${child.pid ?? '?'}) exited (${describeExit(status)})`;
    if (!this.options.restart) {
      this.warn(`${what}; the other nodes keep running`);
      this.finish();
    } else if (status.code === 2) {
      this.warn(`${what}: its flags are wrong, not restarting it`);
      this.finish();
    } else {
      const delay = this.backoff.delayAfter(this.now() - this.startedAt);
      this.warn(`${what}; restarting it in ${delay} ms`);
      this.timer = setTimeout(() => {
        if (!this.stopping) this.start('restarted');
      }, delay);
    }
  }
}
