/**
 * Many nodes in one process over the in-memory transport: routing, presence and rooms with a
 * tiny routing cache, devices spread over nodes, random churn of connections and of nodes.
 */
import t from 'tap';
import { roomTopic, userTopic } from '../src/core/index.js';
import { eventually } from './helpers/client.js';
import { FakeSub, MemoryMesh } from './helpers/mesh.js';
import { frameFor } from './helpers/frames.js';

/** A deterministic PRNG so a failure can be replayed (seed printed in the test name). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env['MESH_SEED'] ?? 424242);

/** Who is connected where, as the test knows it: the truth the mesh must agree with. */
class World {
  readonly devices = new Map<string, FakeSub[]>();
  constructor(readonly mesh: MemoryMesh) {}

  connect(user: string, nodeIndex: number): FakeSub {
    const node = this.mesh.node(nodeIndex);
    const sub = new FakeSub(user, node.id);
    node.router.subscribe(userTopic(user), sub);
    const list = this.devices.get(user) ?? [];
    list.push(sub);
    this.devices.set(user, list);
    return sub;
  }

  disconnect(sub: FakeSub): void {
    const node = this.mesh.nodes.get(sub.node);
    node?.router.unsubscribe(userTopic(sub.user), sub);
    const list = this.devices.get(sub.user)!.filter((s) => s !== sub);
    if (list.length) this.devices.set(sub.user, list);
    else this.devices.delete(sub.user);
  }

  /** Forgets the devices of a crashed node. */
  dropNode(nodeId: string): void {
    for (const [user, list] of this.devices) {
      const left = list.filter((s) => s.node !== nodeId);
      if (left.length) this.devices.set(user, left);
      else this.devices.delete(user);
    }
  }

  online(user: string): boolean {
    return (this.devices.get(user)?.length ?? 0) > 0;
  }

  /** True when every running node answers presence of every user exactly as the truth says. */
  async agrees(users: readonly string[]): Promise<boolean> {
    for (const node of this.mesh.nodes.values()) {
      const map = await node.router.online(users.map(userTopic)).catch(() => undefined);
      if (!map) return false;
      for (const u of users) if (map.get(userTopic(u)) !== this.online(u)) return false;
    }
    return true;
  }
}

t.test(`5 nodes, route cache of 4, hundreds of users with devices on several nodes (seed ${SEED})`, async (t) => {
  const mesh = new MemoryMesh(t, { nodes: 5, input: { routeCacheSize: 4 } });
  await mesh.startAll();
  await eventually(() => mesh.connected(), 10_000, 'full mesh');
  const rand = rng(SEED);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const world = new World(mesh);
  const users = Array.from({ length: 300 }, (_, i) => `user${i}`);
  const alive = () => [...Array(5).keys()].filter((i) => mesh.nodes.has(mesh.id(i)));

  // Watchers on every node, watching a sample of users; they record presence events.
  const events = new Map<string, Array<{ user: string; online: boolean }>>();
  const watched = users.slice(0, 60);
  for (let i = 0; i < 5; i++) {
    const log: Array<{ user: string; online: boolean }> = [];
    events.set(mesh.id(i), log);
    for (const u of watched) {
      await mesh.node(i).router.watch(userTopic(u), (topic, online) => log.push({ user: topic.slice(2), online }));
    }
  }

  for (const u of users) {
    const n = 1 + Math.floor(rand() * 3);
    for (let d = 0; d < n; d++) world.connect(u, pick(alive()));
  }
  await eventually(() => world.agrees(users), 10_000, 'presence agrees after connecting');

  /** Every user gets one message from a random node; every device must get it exactly once. */
  async function checkDelivery(round: string): Promise<void> {
    const sent = new Map<string, string>();
    const results = await Promise.all(users.map(async (u, i) => {
      const from = mesh.node(pick(alive()));
      const data = frameFor(userTopic(u), `${round}:${i}`);
      sent.set(u, data);
      return [u, await from.router.publish(userTopic(u), data)] as const;
    }));
    let wrongCounts = 0;
    for (const [u, count] of results) if (count !== (world.devices.get(u)?.length ?? 0)) wrongCounts++;
    t.equal(wrongCounts, 0, `${round}: every publish counted exactly the recipient's devices`);
    let missing = 0;
    let dup = 0;
    for (const [u, data] of sent) {
      for (const dev of world.devices.get(u) ?? []) {
        const n = dev.received.filter((x) => x === data).length;
        if (n === 0) missing++;
        if (n > 1) dup++;
      }
    }
    t.equal(missing, 0, `${round}: no device missed its message`);
    t.equal(dup, 0, `${round}: no device got a message twice`);
  }

  await checkDelivery('initial');

  // Churn: devices come and go everywhere.
  for (let step = 0; step < 400; step++) {
    const u = pick(users);
    const list = world.devices.get(u);
    if (list && rand() < 0.5) world.disconnect(pick(list));
    else world.connect(u, pick(alive()));
  }
  await eventually(() => world.agrees(users), 10_000, 'presence agrees after device churn');
  await checkDelivery('after device churn');

  // A node crashes: its devices are gone; the others must notice, re-home, and stay exact.
  await mesh.crash(3);
  world.dropNode('n3');
  await eventually(() => world.agrees(users), 10_000, 'presence agrees after a crash');
  await checkDelivery('after a crash');

  // It comes back with a new incarnation; new devices connect to it.
  await mesh.start(3);
  await eventually(() => mesh.connected(), 10_000, 'mesh whole again');
  for (let k = 0; k < 100; k++) world.connect(pick(users), 3);
  await eventually(() => world.agrees(users), 10_000, 'presence agrees after the restart');
  await checkDelivery('after restart');

  // Presence events: for every watcher node that lived through it all, the last event of each
  // watched user matches the truth, and events alternate (never online twice in a row).
  const lastEvents = (i: number): { last: Map<string, boolean>; repeats: number } => {
    const last = new Map<string, boolean>();
    let repeats = 0;
    for (const e of events.get(mesh.id(i))!) {
      if (last.get(e.user) === e.online) repeats++;
      last.set(e.user, e.online);
    }
    return { last, repeats };
  };
  const wrongWatched = (i: number): string[] => {
    const { last } = lastEvents(i);
    return watched.filter((u) => (last.get(u) ?? false) !== world.online(u));
  };
  for (const i of [0, 1, 2, 4]) {
    await eventually(() => wrongWatched(i).length === 0, 10_000, `node ${i} presence events: wrong for ${wrongWatched(i).join(',')}`).catch(() => undefined);
    if (process.env['MESH_DEBUG']) {
      for (const u of wrongWatched(i)) {
        const topic = userTopic(u);
        const info = [...mesh.nodes.values()].map((n) => ({ node: n.id, home: n.router.homeOf(topic), dir: n.router.directory.get(topic) && [...n.router.directory.get(topic)!.owners], table: n.router.table.peek(topic) && [...n.router.table.peek(topic)!.owners], tseq: n.router.table.peek(topic)?.seq, thome: n.router.table.peek(topic)?.home }));
        console.error(JSON.stringify({ u, truth: world.online(u), devices: world.devices.get(u)?.map((d) => d.node), events: events.get(mesh.id(i))!.filter((e) => e.user === u), info }, null, 1));
      }
    }
    t.same(wrongWatched(i), [], `node ${i}: last presence event of every watched user is the truth`);
    t.equal(lastEvents(i).repeats, 0, `node ${i}: no repeated presence event`);
  }

  // The table stayed bounded: pinned watched topics aside, at most 4 cached routes per node.
  for (const node of mesh.nodes.values()) {
    t.ok(node.router.table.size - node.router.table.pinnedSize <= 4, `${node.id}: LRU bounded`);
  }
});

t.test('rooms span nodes: one delivery per destination node, every member once', async (t) => {
  const mesh = new MemoryMesh(t, { nodes: 4 });
  await mesh.startAll();
  await eventually(() => mesh.connected(), 10_000, 'full mesh');
  const members: FakeSub[] = [];
  for (let i = 0; i < 12; i++) {
    const node = mesh.node(i % 4);
    const sub = new FakeSub(`m${i}`, node.id);
    node.router.subscribe(roomTopic('lobby'), sub);
    members.push(sub);
  }
  const publisher = members[0]!;
  await eventually(async () => (await mesh.node(1).router.online([roomTopic('lobby')])).get(roomTopic('lobby')) === true, 5000, 'room known');
  const before = [...mesh.nodes.values()].reduce((a, n) => a + n.router.stats.deliveriesOut, 0);
  await eventually(async () => (await mesh.node(0).router.publish(roomTopic('lobby'), frameFor('r:lobby', 'probe'), publisher.session)) === 11, 5000, 'all members routed');
  for (const m of members) m.received.length = 0;
  const sentBefore = mesh.node(0).router.stats.deliveriesOut;
  const hello = frameFor('r:lobby', 'hello room');
  const count = await mesh.node(0).router.publish(roomTopic('lobby'), hello, publisher.session);
  t.equal(count, 11, 'every other member');
  t.equal(mesh.node(0).router.stats.deliveriesOut - sentBefore, 3, 'one delivery per other node');
  t.same(publisher.received, [], 'not to the publishing connection');
  for (const m of members.slice(1)) t.same(m.received, [hello], `${m.user} once`);
  t.ok(before >= 0);
});
