/**
 * The churn scenario shared by the fault suite's files: three CLI nodes, the workload on node-0 and
 * node-2, one fault of node-1, and the counts asserted to be clean. Sizes come from the
 * environment so CI can run a smaller cluster: `CHATMESH_FAULT_USERS` (default 300),
 * `CHATMESH_FAULT_SENDS_PER_SEC` (200), `CHATMESH_FAULT_PRESENCE_PER_SEC` (20),
 * `CHATMESH_FAULT_DOWN_MS` (5000; a SIGSTOP lasts at least 8000), `CHATMESH_FAULT_AFTER_MS` (5000).
 */
import { appendFileSync } from 'node:fs';
import type { Test } from 'tap';
import { envNumber, sleep, startFaultMesh } from './fault-mesh.js';
import type { FaultMesh, FaultMeshOptions } from './fault-mesh.js';
import { Workload } from './fault-workload.js';
import type { Counts, WorkloadOptions } from './fault-workload.js';

/**
 * Records a scenario's measurements: as a tap comment (`-R tap` shows it) and, when
 * `$CHATMESH_FAULT_REPORT` names a file, as one JSON line appended to it (test/fault/run.mjs
 * prints those after the run; tap's terse reporter shows neither comments nor stderr).
 */
export function report(t: Test, scenario: string, data: Record<string, unknown>): void {
  t.comment(JSON.stringify(data));
  const file = process.env['CHATMESH_FAULT_REPORT'];
  if (file) appendFileSync(file, `${JSON.stringify({ scenario, ...data })}\n`);
}

/** Workload sizes from the environment. */
export function workloadSizes(): Pick<Required<WorkloadOptions>, 'users' | 'sendsPerSec' | 'presencePerSec'> {
  return {
    users: envNumber('CHATMESH_FAULT_USERS', 300),
    sendsPerSec: envNumber('CHATMESH_FAULT_SENDS_PER_SEC', 200),
    presencePerSec: envNumber('CHATMESH_FAULT_PRESENCE_PER_SEC', 20),
  };
}

/**
 * Asserts what the issue "Trust under churn and attack" demands of every scenario: no false
 * `offline`/`stored` ack, no false presence answer (queries and the watch ack), no flap, no
 * duplicate, nothing acked delivered and lost; and what the contract says besides: every request
 * answered, no error but `unavailable`, no connection of the workload dropped, nothing misrouted,
 * per-sender order kept.
 */
export function assertClean(t: Test, c: Counts): void {
  t.equal(c.falseOfflineAcks, 0, 'no send to an online user acked offline');
  t.equal(c.falseStoredAcks, 0, 'no send to an online user acked stored');
  t.equal(c.falsePresence, 0, 'no presence answer says an online user is offline');
  t.equal(c.watchAckOffline, 0, 'the watch sent after every welcome lists every user online');
  t.equal(c.presenceChanges, 0, `no presence_change about users who stayed online (${c.flappedUsers} users flapped)`);
  t.equal(c.duplicates, 0, 'no message id twice on one connection');
  t.equal(c.missing, 0, 'every message acked delivered arrived');
  t.equal(c.misrouted, 0, 'no message at a connection of neither party');
  t.equal(c.reordered, 0, 'one sender\'s messages to one recipient arrive in send order');
  t.equal(c.otherErrors, 0, `no error but unavailable (${JSON.stringify(c.errorCodes)})`);
  t.equal(c.unanswered, 0, 'every request answered');
  t.equal(c.disconnects, 0, 'no workload connection dropped');
}

/** The fault done to node-1 in a churn scenario. */
/**
 * The standard workload on a formed mesh (users on node-0 and node-2, watchers of each other's),
 * connected, watching and running (phase `steady`); closed at the end of the test.
 */
export async function startWorkload(t: Test, mesh: FaultMesh): Promise<Workload> {
  const w = new Workload({ urlA: mesh.node(0).url, urlB: mesh.node(2).url, ...workloadSizes() });
  t.teardown(() => w.close());
  await w.connect();
  await w.watch();
  w.phase = 'steady';
  w.run();
  return w;
}

export type Fault = 'sigkill' | 'sigterm' | 'sigstop';

/** Options of `runChurn`. */
export interface ChurnOptions extends FaultMeshOptions {
  readonly fault: Fault;
  /** Name in the printed report, e.g. `(a) sigkill`. */
  readonly name: string;
  /** Runs once the mesh has formed, before the workload connects (e.g. a TLS probe); what it
   *  returns is added to the report. */
  readonly onFormed?: (mesh: FaultMesh) => Promise<Record<string, unknown> | undefined>;
}

/** Timings of one churn run, ms. */
export interface ChurnTimings {
  total: number;
  /** Time from the restart (or SIGCONT) until the mesh formed again. */
  rejoin: number;
  /** Exit code after SIGTERM (sigterm only). */
  exitCode?: number | null;
}

/**
 * One churn scenario: the workload runs 2 s steady, node-1 is SIGKILLed / SIGTERMed / SIGSTOPped,
 * stays down `CHATMESH_FAULT_DOWN_MS` (a SIGSTOP at least 8 s, longer than the 5 s dead-peer
 * timeout), is restarted (SIGCONTed), and the workload runs `CHATMESH_FAULT_AFTER_MS` after the
 * mesh formed again. Prints the counts as a tap comment and asserts them clean.
 */
export async function runChurn(t: Test, o: ChurnOptions): Promise<{ counts: Counts; timings: ChurnTimings }> {
  const t0 = Date.now();
  const mesh = await startFaultMesh(t, o);
  const formed = await o.onFormed?.(mesh);
  const w = await startWorkload(t, mesh);
  await sleep(2000);

  const downMs = envNumber('CHATMESH_FAULT_DOWN_MS', 5000);
  const timings: ChurnTimings = { total: 0, rejoin: 0 };
  w.phase = 'down';
  if (o.fault === 'sigkill') await mesh.sigkill(1);
  else if (o.fault === 'sigterm') timings.exitCode = await mesh.sigterm(1);
  else mesh.sigstop(1);
  await sleep(o.fault === 'sigstop' ? Math.max(downMs, 8000) : downMs);

  w.phase = 'rejoin';
  const r0 = Date.now();
  if (o.fault === 'sigstop') {
    // Right after SIGCONT node-1's /healthz may still count its stale links as up; the `after`
    // phase covers its recovery either way.
    mesh.sigcont(1);
    await mesh.waitFormed();
  } else {
    await mesh.restart(1);
  }
  timings.rejoin = Date.now() - r0;
  w.phase = 'after';
  await sleep(envNumber('CHATMESH_FAULT_AFTER_MS', 5000));
  const counts = await w.stop();
  w.close();
  timings.total = Date.now() - t0;
  report(t, o.name, { fault: o.fault, ...formed, timings, counts });
  if (o.fault === 'sigterm') t.equal(timings.exitCode, 0, 'node-1 exits 0 on SIGTERM');
  assertClean(t, counts);
  return { counts, timings };
}
