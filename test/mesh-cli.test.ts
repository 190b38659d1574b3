/**
 * Three `chatmesh node` processes through the real CLI: one is SIGKILLed (its users go offline for
 * watchers, sends to them are `stored`, nothing hangs), then restarts and rejoins; the stored message
 * reaches the user's next device from its mailbox.
 */
import t from 'tap';
import { connectAs } from './helpers/client.js';
import { freePort, startCliNode } from './helpers/procs.js';

t.test('SIGKILL a node: watchers see its users go offline, sends answer stored; it rejoins', async (t) => {
  const mesh = [await freePort(), await freePort(), await freePort()];
  const http = [await freePort(), await freePort(), await freePort()];
  const peers = mesh.map((p) => `127.0.0.1:${p}`).join(',');
  const args = (i: number): string[] => ['--id', `p${i}`, '--http-port', String(http[i]), '--mesh-port', String(mesh[i]), '--admin-port', '0', '--peers', peers];
  const nodes = [await startCliNode(t, args(0)), await startCliNode(t, args(1)), await startCliNode(t, args(2))];
  const url = (i: number): string => `ws://127.0.0.1:${http[i]}/ws`;
  const healthy = async (i: number): Promise<{ peers: number }> => (await fetch(`http://127.0.0.1:${http[i]}/healthz`)).json() as Promise<{ peers: number }>;
  for (let i = 0; i < 3; i++) {
    for (let tries = 0; (await healthy(i)).peers !== 2; tries++) {
      if (tries > 200) throw new Error('mesh did not form');
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  const bob = (await connectAs(url(2), 'bob')).c;
  const watcher = (await connectAs(url(0), 'watcher')).c;
  const alice = (await connectAs(url(1), 'alice')).c;
  t.teardown(() => Promise.all([watcher.close(), alice.close()]));
  let status = '';
  for (let tries = 0; status !== 'online'; tries++) {
    if (tries > 100) throw new Error('bob never seen online');
    const ack = await watcher.request({ type: 'watch', id: `w${tries}`, users: ['bob'] });
    status = (ack['users'] as Record<string, string>)['bob']!;
    if (status !== 'online') await new Promise((r) => setTimeout(r, 20));
  }
  t.equal((await alice.request({ type: 'send', id: 'before', to: 'bob', body: 'hi' }))['status'], 'delivered');

  nodes[2]!.child.kill('SIGKILL');
  await bob.closed;
  const change = await watcher.next('presence_change', 5000);
  t.same(change, { type: 'presence_change', user: 'bob', status: 'offline' }, 'bob offline for the watcher');
  t.equal((await alice.request({ type: 'send', id: 'after', to: 'bob', body: 'hi?' }, 5000))['status'], 'stored');
  t.same((await alice.request({ type: 'presence', id: 'p', users: ['bob', 'watcher'] }))['users'], { bob: 'offline', watcher: 'online' });

  // Restart with the same flags: a new incarnation rejoins; bob comes back there.
  nodes[2] = await startCliNode(t, args(2));
  for (let tries = 0; (await healthy(2)).peers !== 2; tries++) {
    if (tries > 200) throw new Error('restarted node did not rejoin');
    await new Promise((r) => setTimeout(r, 25));
  }
  const bob2 = (await connectAs(url(2), 'bob')).c;
  t.teardown(() => bob2.close());
  t.same(bob2.unread().filter((f) => f.type === 'message').map((f) => f['body']), ['hi?'], 'the message stored while bob was away comes from his mailbox');
  t.same(await watcher.next('presence_change', 5000), { type: 'presence_change', user: 'bob', status: 'online' });
  // The watcher sits on bob's home or hears it first; alice's node learns a moment later.
  for (let tries = 0; ; tries++) {
    const p = await alice.request({ type: 'presence', id: `q${tries}`, users: ['bob'] });
    if ((p['users'] as Record<string, string>)['bob'] === 'online') break;
    if (tries > 100) throw new Error('alice\'s node never learned bob is back');
    await new Promise((r) => setTimeout(r, 20));
  }
  t.equal((await alice.request({ type: 'send', id: 'again', to: 'bob', body: 'welcome back' }))['status'], 'delivered');
  t.equal((await bob2.next((f) => f.type === 'message' && f['body'] === 'welcome back'))['body'], 'welcome back');

  for (const n of nodes) n.child.kill('SIGTERM');
  t.same(await Promise.all(nodes.map((n) => n.exited)), [0, 0, 0], 'every node exits 0 on SIGTERM');
});
