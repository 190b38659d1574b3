/**
 * Fault suite: `chatmesh ctl drain` of node-1 while users are connected to it. They are closed
 * with 1012 and reconnect at once to node-0, as a client does; watchers on node-0 and node-2 must
 * see no presence flap for them (they were never without a device for longer than a reconnect),
 * and the workload between node-0 and node-2 must stay clean.
 */
import t from 'tap';
import { envNumber, sleep, startFaultMesh } from '../helpers/fault-mesh.js';
import { assertClean, report, workloadSizes } from '../helpers/fault-scenarios.js';
import { FaultConn, Workload } from '../helpers/fault-workload.js';

t.test('(e) drain node-1: its users reconnect to node-0 with no presence flap', async (t) => {
  const t0 = Date.now();
  const mesh = await startFaultMesh(t);
  const sizes = workloadSizes();
  const w = new Workload({ urlA: mesh.node(0).url, urlB: mesh.node(2).url, ...sizes });
  t.teardown(() => w.close());
  await w.connect();

  const n = envNumber('CHATMESH_FAULT_DRAIN_USERS', Math.max(10, Math.round(sizes.users / 10)));
  const drainUsers = Array.from({ length: n }, (_, i) => `c${i}`);
  const closeCodes: Record<string, number> = {};
  const moved: FaultConn[] = [];
  let moving = true;
  const onNode1 = drainUsers.map((u) => new FaultConn(mesh.node(1).url, u, {
    onClose: (code) => {
      closeCodes[code] = (closeCodes[code] ?? 0) + 1;
      // A client told "service restart" reconnects at once, elsewhere.
      if (moving && code === 1012) moved.push(new FaultConn(mesh.node(0).url, u));
    },
  }));
  t.teardown(() => { moving = false; for (const c of [...onNode1, ...moved]) c.terminate(); });
  await Promise.all(onNode1.map((c) => c.welcome));
  await w.watch(drainUsers);
  w.phase = 'steady';
  w.run();
  await sleep(2000);

  w.phase = 'drain';
  const d0 = Date.now();
  const ctl = await mesh.ctlDrain(1);
  await Promise.race([Promise.all(onNode1.map((c) => c.closed)), sleep(10_000)]);
  const rewelcomed = await Promise.race([
    Promise.all(moved.map((c) => c.welcome.then(() => true, () => false))).then((r) => r.filter(Boolean).length),
    sleep(10_000).then(() => -1),
  ]);
  const drainMs = Date.now() - d0;
  w.phase = 'after';
  await sleep(envNumber('CHATMESH_FAULT_AFTER_MS', 5000));
  moving = false;
  const counts = await w.stop();
  w.close();
  const changes = [...w.extraChanges].filter(([, ev]) => ev.length > 0);
  const drain = {
    users: n, ctl, closeCodes, reconnected: moved.length, rewelcomed, drainMs,
    flapEvents: changes.reduce((s, [, ev]) => s + ev.length, 0), flappedUsers: changes.length,
    examples: Object.fromEntries(changes.slice(0, 3)),
  };
  report(t, '(e) drain', { drain, ms: Date.now() - t0, workload: counts });
  t.equal(ctl.code, 0, `ctl drain exits 0 (${ctl.out})`);
  t.same(closeCodes, { 1012: n }, 'every client of node-1 closed with 1012');
  t.equal(rewelcomed, n, 'every drained user reconnected to node-0');
  t.equal(drain.flapEvents, 0, `watchers saw no presence_change for drained users (${drain.flappedUsers} flapped)`);
  assertClean(t, counts);
});
