import type { Authenticator } from '../auth/index.js';
import type { Router } from '../core/index.js';
import type { Logger } from '../log.js';
import type { Accounts } from '../accounts/index.js';
import type { MessageClock, StreamService, StreamStats } from '../streams/index.js';
import type { Clock, UlidGenerator } from '../util/index.js';
import type { GatewayOptions } from './options.js';
import type { GatewayStats } from './stats.js';

/** What every connection of a gateway shares. */
export interface GatewayContext {
  readonly nodeId: string;
  readonly router: Router;
  readonly auth: Authenticator;
  /** Generates session ids. */
  readonly ids: UlidGenerator;
  /** Generates message ids (the node's hybrid logical clock). */
  readonly messageIds: MessageClock;
  /** Kept messages; undefined with storage off (`--history-size 0`). */
  readonly streams?: StreamService;
  /** What users have: memberships, read markers, summaries (kept also with `--history-size 0`). */
  readonly accounts: Accounts;
  readonly streamStats?: StreamStats;
  readonly clock: Clock;
  readonly log: Logger;
  readonly opts: GatewayOptions;
  readonly stats: GatewayStats;
}
