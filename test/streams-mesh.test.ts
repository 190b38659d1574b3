/**
 * Kept messages across a mesh (protocol.md "Mailbox, resume and history"), through real WebSocket
 * gateways on nodes linked by the in-memory transport: stored acks and the mailbox, resume with
 * `since`, history paging, every bad_request, replicas that fail, node loss and re-replication.
 */
import t from 'tap';
import type { Test } from 'tap';
import { MemoryMesh } from './helpers/mesh.js';
import { TestClient, connectAs, eventually } from './helpers/client.js';
import type { Frame } from './helpers/client.js';
import type { ChatNode } from '../src/node.js';
import type { StreamStore } from '../src/streams/index.js';
import { createStreamStore } from '../src/streams/store/index.js';

const url = (n: ChatNode): string => `ws://127.0.0.1:${n.httpPort}/ws`;
let seq = 0;
const rid = (): string => `r${++seq}`;

async function send(c: TestClient, to: string, body: string): Promise<Frame> {
  return c.request({ type: 'send', id: rid(), to, body });
}

/** Connects with a hello (optionally resuming); resolves with the frames up to and including `synced`. */
async function connectSynced(n: ChatNode, user: string, since?: string): Promise<{ c: TestClient; replayed: Frame[]; synced: Frame }> {
  const c = new TestClient(url(n));
  await c.opened;
  c.send({ type: 'hello', user, ...(since && { since }) });
  await c.next('welcome');
  const synced = await c.next('synced');
  const replayed = c.unread().filter((f) => f.type === 'message');
  for (const f of replayed) await c.next((x) => x === f);
  return { c, replayed, synced };
}

async function threeNodes(t: Test, input = {}): Promise<MemoryMesh> {
  const mesh = new MemoryMesh(t, { nodes: 3, input });
  await mesh.startAll();
  await eventually(() => mesh.connected(), 5000, 'mesh connected');
  return mesh;
}

t.test('a message to a user with no connection is acked stored and replayed to the first device, oldest first, then synced', async (t) => {
  const mesh = await threeNodes(t);
  const { c: alice } = await connectAs(url(mesh.node(0)), 'alice');
  t.teardown(() => alice.close());
  const acks = [];
  for (let i = 0; i < 5; i++) acks.push(await send(alice, 'bob', `m${i}`));
  t.same(acks.map((a) => a['status']), ['stored', 'stored', 'stored', 'stored', 'stored']);
  const ids = acks.map((a) => a['msg'] as string);
  t.same([...ids].sort(), ids, 'one sender\'s ids sort in send order');

  const first = await connectSynced(mesh.node(1), 'bob');
  t.teardown(() => first.c.close());
  t.same(first.replayed.map((f) => f['body']), ['m0', 'm1', 'm2', 'm3', 'm4'], 'the mailbox, oldest first');
  t.same(first.replayed.map((f) => f['msg']), ids);
  t.same(first.synced, { type: 'synced', count: 5 });

  // Not again to a later device: it reads them through history.
  await eventually(async () => {
    const second = await connectSynced(mesh.node(2), 'bob');
    await second.c.close();
    return second.synced['count'] === 0;
  }, 5000, 'the mailbox cleared on every replica');
  const { c: third, synced } = await connectSynced(mesh.node(2), 'bob');
  t.teardown(() => third.close());
  t.equal(synced['count'], 0);
  const page = await third.request({ type: 'history', id: 'h', with: 'alice' });
  t.same((page['messages'] as Frame[]).map((m) => m['body']), ['m0', 'm1', 'm2', 'm3', 'm4']);
  t.equal(page['more'], false);

  // Now that bob is online, a send is delivered (and not put in the mailbox).
  const live = await send(alice, 'bob', 'live');
  t.equal(live['status'], 'delivered');
  await first.c.next((f) => f['body'] === 'live');
  await third.next((f) => f['body'] === 'live');
});

const UNLIMITED = { gateway: { rateLimitPerSec: 100_000, rateLimitBurst: 100_000 } };

t.test('a welcome is routable: a send from another node right after it is delivered, never stored (200 trials)', async (t) => {
  const mesh = await threeNodes(t, UNLIMITED);
  const { c: sender } = await connectAs(url(mesh.node(0)), 'sender');
  t.teardown(() => sender.close());
  let misses = 0;
  let twice = 0;
  for (let i = 0; i < 200; i++) {
    const user = `fresh${i}`;
    // Sent the moment the welcome arrives, while the device's mailbox is being read.
    const c = new TestClient(url(mesh.node(1 + (i % 2))));
    await c.opened;
    c.send({ type: 'hello', user });
    await c.next('welcome');
    const ack = await send(sender, user, `hi ${i}`);
    if (ack['status'] !== 'delivered') misses++;
    const p = await sender.request({ type: 'presence', id: rid(), users: [user] });
    if ((p['users'] as Record<string, string>)[user] !== 'online') misses++;
    // Delivered (acked) and synced (replay done): every copy that will come has come.
    await c.next('synced');
    if (c.unread().filter((f) => f['body'] === `hi ${i}`).length !== 1) twice++;
    await c.close();
  }
  t.equal(misses, 0, 'every send after a welcome was delivered and every presence said online');
  t.equal(twice, 0, 'each arrived exactly once (live or from the mailbox, not both)');
});

t.test('the welcome is a connection\'s first frame, even while messages to its user stream in', async (t) => {
  const mesh = await threeNodes(t, UNLIMITED);
  const { c: sender } = await connectAs(url(mesh.node(0)), 'sender');
  // Devices of the target that stay: messages flow to its nodes all the time, so a new connection
  // there sits in the hub while its welcome waits for the home.
  const { c: stay1 } = await connectAs(url(mesh.node(1)), 'target');
  const { c: stay2 } = await connectAs(url(mesh.node(2)), 'target');
  t.teardown(() => Promise.all([sender.close(), stay1.close(), stay2.close()]));
  let flooding = true;
  let n = 0;
  const flood = (async () => {
    while (flooding) {
      sender.send({ type: 'send', id: `f${n++}`, to: 'target', body: 'x' });
      if (n % 20 === 0) await new Promise((r) => setTimeout(r, 5));
    }
  })();
  let bad = 0;
  for (let i = 0; i < 40; i++) {
    const c = new TestClient(url(mesh.node(1 + (i % 2))));
    await c.opened;
    c.send({ type: 'hello', user: 'target' });
    await eventually(() => c.frames.length > 0, 5000, 'a first frame');
    if (c.frames[0]!.type !== 'welcome') bad++;
    await c.close();
  }
  flooding = false;
  await flood;
  t.equal(bad, 0, 'no message ever came before the welcome');
});

t.test('resume with since replays what came after it, then synced; an unknown since replays the whole stream', async (t) => {
  const mesh = await threeNodes(t);
  const { c: alice } = await connectAs(url(mesh.node(0)), 'alice');
  t.teardown(() => alice.close());
  const bob1 = await connectSynced(mesh.node(1), 'bob');
  const a1 = await send(alice, 'bob', 'one');
  t.equal(a1['status'], 'delivered');
  const got = await bob1.c.next('message');
  await bob1.c.close();
  // While bob is away (no device): stored.
  const a2 = await send(alice, 'bob', 'two');
  const a3 = await send(alice, 'bob', 'three');
  t.same([a2['status'], a3['status']], ['stored', 'stored']);
  // bob replies from his phone (the reply sorts after what it answers).
  const back = await connectSynced(mesh.node(2), 'bob', got['msg'] as string);
  t.teardown(() => back.c.close());
  t.same(back.replayed.map((f) => f['body']), ['two', 'three'], 'everything after since, oldest first');
  t.equal(back.synced['count'], 2);
  const reply = await send(back.c, 'alice', 'reply');
  t.ok((reply['msg'] as string) > (a3['msg'] as string), 'a reply sorts after what it answers');

  // No gap: since = the newest one gives nothing more.
  const none = await connectSynced(mesh.node(0), 'bob', a3['msg'] as string);
  t.same(none.replayed.filter((f) => f['from'] === 'alice').map((f) => f['body']), []);
  await none.c.close();
  // A since that names no kept message (well-formed, older than everything): the whole kept stream.
  const all = await connectSynced(mesh.node(1), 'bob', '00000000000000000000000000');
  t.same(all.replayed.map((f) => f['body']), ['one', 'two', 'three', 'reply']);
  await all.c.close();
  // A well-formed since that the stream does not hold (here: one just above the first message,
  // so "after it" would skip nothing but be a guess): the whole kept stream too.
  const unknown = (got['msg'] as string).slice(0, 25) + ((got['msg'] as string).endsWith('Z') ? 'Y' : 'Z');
  const whole = await connectSynced(mesh.node(1), 'bob', unknown);
  t.same(whole.replayed.map((f) => f['body']), ['one', 'two', 'three', 'reply'], 'an unknown since replays the whole kept stream');
  await whole.c.close();
});

t.test('history pages a conversation back with before/limit/more, and a room only for members', async (t) => {
  const mesh = await threeNodes(t);
  const { c: alice } = await connectAs(url(mesh.node(0)), 'alice');
  const { c: bob } = await connectAs(url(mesh.node(1)), 'bob');
  const { c: carol } = await connectAs(url(mesh.node(2)), 'carol');
  t.teardown(() => Promise.all([alice.close(), bob.close(), carol.close()]));
  for (let i = 0; i < 12; i++) await send(i % 2 ? bob : alice, i % 2 ? 'alice' : 'bob', `c${i}`);
  await send(alice, 'carol', 'not in this conversation');

  const p1 = await bob.request({ type: 'history', id: 'p1', with: 'alice', limit: 5 });
  t.same((p1['messages'] as Frame[]).map((m) => m['body']), ['c7', 'c8', 'c9', 'c10', 'c11']);
  t.equal(p1['more'], true);
  t.equal((p1['messages'] as Frame[])[0]!['type'], 'message');
  const p2 = await bob.request({ type: 'history', id: 'p2', with: 'alice', limit: 5, before: (p1['messages'] as Frame[])[0]!['msg'] });
  t.same((p2['messages'] as Frame[]).map((m) => m['body']), ['c2', 'c3', 'c4', 'c5', 'c6']);
  const p3 = await bob.request({ type: 'history', id: 'p3', with: 'alice', limit: 5, before: (p2['messages'] as Frame[])[0]!['msg'] });
  t.same((p3['messages'] as Frame[]).map((m) => m['body']), ['c0', 'c1']);
  t.equal(p3['more'], false);
  const fromAlice = await alice.request({ type: 'history', id: 'p4', with: 'bob' });
  t.equal((fromAlice['messages'] as Frame[]).length, 12, 'both parties see the whole conversation');

  // Rooms.
  await alice.request({ type: 'join', id: rid(), room: 'lobby' });
  for (let i = 0; i < 3; i++) t.equal((await alice.request({ type: 'publish', id: rid(), room: 'lobby', body: `r${i}` }))['status'], 'no_subscribers');
  const notMember = await carol.request({ type: 'history', id: 'nm', room: 'lobby' });
  t.same([notMember['type'], notMember['code']], ['error', 'not_member']);
  await carol.request({ type: 'join', id: rid(), room: 'lobby' });
  const room = await carol.request({ type: 'history', id: 'rh', room: 'lobby', limit: 2 });
  t.same((room['messages'] as Frame[]).map((m) => [m['type'], m['body']]), [['room_message', 'r1'], ['room_message', 'r2']]);
  t.equal(room['more'], true);
});

t.test('bad history requests and a malformed since get bad_request', async (t) => {
  const mesh = await threeNodes(t);
  const { c } = await connectAs(url(mesh.node(0)), 'alice');
  t.teardown(() => c.close());
  const bad: Array<Record<string, unknown>> = [
    { with: 'bob', room: 'lobby' }, {}, { with: 'bob', limit: 0 }, { with: 'bob', limit: 101 }, { with: 'bob', limit: 2.5 },
    { with: 'bob', limit: '5' }, { with: 'bob', before: 'nope' }, { with: 'bob', before: 42 }, { with: 'not valid!' },
  ];
  for (const [i, fields] of bad.entries()) {
    const a = await c.request({ type: 'history', id: `b${i}`, ...fields });
    t.same([a['type'], a['code']], ['error', 'bad_request'], JSON.stringify(fields));
  }
  // A hello whose since is malformed is answered, and the connection may still say hello.
  const d = new TestClient(url(mesh.node(1)));
  t.teardown(() => d.close());
  await d.opened;
  d.send({ type: 'hello', id: 'h1', user: 'bob', since: 'yesterday' });
  const e = await d.answer('h1');
  t.same([e['type'], e['code']], ['error', 'bad_request']);
  d.send({ type: 'hello', id: 'h2', user: 'bob' });
  t.equal((await d.answer('h2'))['type'], 'welcome');
  t.equal((await d.next('synced'))['count'], 0);
});

t.test('storage off (--history-size 0): offline again, history empty, synced 0', async (t) => {
  const mesh = await threeNodes(t, { historySize: 0 });
  const { c, synced } = await connectAs(url(mesh.node(0)), 'alice');
  t.teardown(() => c.close());
  t.equal(synced['count'], 0);
  t.equal((await send(c, 'bob', 'hi'))['status'], 'offline');
  const h = await c.request({ type: 'history', id: 'h', with: 'bob' });
  t.same(h['messages'], []);
  t.equal(h['more'], false);
});

t.test('a note to oneself is acked delivered and kept', async (t) => {
  const mesh = await threeNodes(t);
  const { c } = await connectAs(url(mesh.node(0)), 'alice');
  t.teardown(() => c.close());
  t.equal((await send(c, 'alice', 'remember the milk'))['status'], 'delivered');
  const h = await c.request({ type: 'history', id: 'h', with: 'alice' });
  t.same((h['messages'] as Frame[]).map((m) => m['body']), ['remember the milk']);
});

t.test('a replica that does not answer in time: the sender gets unavailable, never stored, and it is not in the mailbox', async (t) => {
  // Every node's store hangs on append after `hang` is set: whichever replicas u:bob has, one of them does not answer.
  let hang = false;
  const wrap = async (): Promise<StreamStore> => {
    const inner = await createStreamStore({ limits: { maxPerStream: 1000, ttlMs: 86_400_000, maxMessages: 100_000 }, now: () => Date.now() });
    return new Proxy(inner, {
      get(target, prop, recv) {
        if (prop === 'append') return (items: unknown) => (hang ? new Promise(() => undefined) : target.append(items as never));
        const v = Reflect.get(target, prop, recv) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  };
  // Two nodes, two replicas: every stream is on both.
  const mesh = new MemoryMesh(t, { nodes: 2, deps: { mesh: { streamCallTimeoutMs: 300 } } });
  await mesh.start(0);
  const n1 = await mesh.start(1, { store: await wrap() });
  await eventually(() => mesh.connected(), 5000, 'linked');
  const { c: alice } = await connectAs(url(mesh.node(0)), 'alice');
  t.teardown(() => alice.close());
  t.equal((await send(alice, 'bob', 'kept'))['status'], 'stored');
  hang = true;
  const a = await send(alice, 'bob', 'lost');
  t.same([a['type'], a['code']], ['error', 'unavailable']);
  hang = false;
  const bob = await connectSynced(n1, 'bob');
  t.teardown(() => bob.c.close());
  t.same(bob.replayed.map((f) => f['body']), ['kept'], 'the message answered unavailable does not come out of the mailbox');
});

t.test('losing a node loses no acked message, and re-replication makes a second loss safe too', async (t) => {
  const mesh = new MemoryMesh(t, { nodes: 4 });
  await Promise.all([0, 1, 2].map((i) => mesh.start(i)));
  await eventually(() => mesh.connected(), 5000, 'mesh connected');
  const { c: alice } = await connectAs(url(mesh.node(0)), 'alice');
  t.teardown(() => alice.close());
  const sent: string[] = [];
  for (let i = 0; i < 30; i++) {
    const ack = await send(alice, `u${i % 6}`, `x${i}`);
    t.equal(ack['status'], 'stored');
    sent.push(ack['msg'] as string);
  }
  // Kill a node that is not alice's (so the test's sender survives); its copies are gone.
  await mesh.crash(1);
  await eventually(() => mesh.node(0).peers.upLinks().size === 1 && mesh.node(2).peers.upLinks().size === 1, 5000, 'n1 gone');
  // A fresh node joins: streams move to their new replica sets in the background.
  await mesh.start(3);
  await eventually(() => mesh.connected(), 5000, 'n3 linked');
  const settled = async (): Promise<boolean> => {
    for (const n of mesh.nodes.values()) if (n.streams!.handoff.busy) return false;
    return true;
  };
  await eventually(settled, 10_000, 'hand-off settled');
  // Second loss: the other original holder.
  await mesh.crash(2);
  await eventually(() => mesh.node(0).peers.upLinks().size === 1, 5000, 'n2 gone');
  const got = new Set<string>();
  for (let u = 0; u < 6; u++) {
    const { c, replayed } = await connectSynced(mesh.node(u % 2 ? 3 : 0), `u${u}`);
    for (const f of replayed) got.add(f['msg'] as string);
    await c.close();
  }
  t.same([...got].sort(), [...sent].sort(), 'every acked message survived two node losses');
});
