/**
 * Fault suite: routable at welcome (protocol.md §2). A user connects to node-2 and, the moment its
 * `welcome` arrives, a sender on node-0 sends to it and another user on node-0 asks its presence:
 * the send must be acked `delivered` and arrive, the presence must say `online`. 60 times, with the
 * usual workload running between node-0 and node-2 (it must stay clean too).
 */
import t from 'tap';
import { envNumber, sleep, startFaultMesh } from '../helpers/fault-mesh.js';
import { assertClean, report, startWorkload } from '../helpers/fault-scenarios.js';
import { FaultConn } from '../helpers/fault-workload.js';
import type { Frame } from '../helpers/fault-workload.js';

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T | undefined> =>
  Promise.race([p, sleep(ms).then(() => undefined)]);

t.test('(d) routable at welcome: a send and a presence from another node right after the welcome', async (t) => {
  const t0 = Date.now();
  const mesh = await startFaultMesh(t);
  const w = await startWorkload(t, mesh);
  const sender = new FaultConn(mesh.node(0).url, 'probe-sender');
  const asker = new FaultConn(mesh.node(0).url, 'probe-asker');
  t.teardown(() => { sender.terminate(); asker.terminate(); });
  await Promise.all([sender.welcome, asker.welcome]);

  const probes = envNumber('CHATMESH_FAULT_WELCOME_PROBES', 60);
  const c = { probes, delivered: 0, offlineAcks: 0, storedAcks: 0, unavailable: 0, otherAnswers: 0, noAck: 0,
    presenceOffline: 0, presenceOther: 0, notReceived: 0, receivedTwice: 0 };
  for (let k = 0; k < probes; k++) {
    const user = `fresh${k}`;
    let ackP: Promise<Frame> | undefined;
    let presP: Promise<Frame> | undefined;
    let gotMessage: () => void = () => undefined;
    const received = new Promise<void>((res) => { gotMessage = res; });
    let messages = 0;
    const conn = new FaultConn(mesh.node(2).url, user, {
      onWelcome: () => {
        ackP = sender.request({ type: 'send', to: user, body: `welcome probe ${k}` });
        presP = asker.request({ type: 'presence', users: [user] });
      },
      onEvent: (f) => {
        if (f.type === 'message' && f['body'] === `welcome probe ${k}`) {
          messages++;
          gotMessage();
        }
      },
    });
    await conn.welcome;
    const [ack, pres] = await Promise.all([withTimeout(ackP!, 10_000), withTimeout(presP!, 10_000)]);
    if (!ack) c.noAck++;
    else if (ack.type === 'ack' && ack['status'] === 'delivered') c.delivered++;
    else if (ack.type === 'ack' && ack['status'] === 'offline') c.offlineAcks++;
    else if (ack.type === 'ack' && ack['status'] === 'stored') c.storedAcks++;
    else if (ack.type === 'error' && ack['code'] === 'unavailable') c.unavailable++;
    else c.otherAnswers++;
    const status = pres?.type === 'presence' ? (pres['users'] as Record<string, string>)[user] : undefined;
    if (status === 'offline') c.presenceOffline++;
    else if (status !== 'online') c.presenceOther++;
    if (ack?.type === 'ack' && ack['status'] === 'delivered' && (await withTimeout(received.then(() => true), 3000)) !== true) c.notReceived++;
    conn.terminate();
    await conn.closed;
    if (messages > 1) c.receivedTwice++;
  }
  const counts = await w.stop();
  w.close();
  report(t, '(d) routable-at-welcome', { welcome: c, ms: Date.now() - t0, workload: counts });
  t.equal(c.offlineAcks, 0, 'no send right after the welcome acked offline');
  t.equal(c.storedAcks, 0, 'no send right after the welcome acked stored');
  t.equal(c.presenceOffline, 0, 'no presence right after the welcome says offline');
  t.equal(c.notReceived, 0, 'every send acked delivered arrived');
  t.equal(c.receivedTwice, 0, 'no probe message arrived twice');
  t.equal(c.noAck + c.otherAnswers + c.presenceOther, 0, 'every probe answered with an ack and a presence');
  assertClean(t, counts);
});
