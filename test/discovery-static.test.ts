import t from 'tap';
import { createStaticDiscovery, parsePeerAddress, StaticDiscoveryError } from '../src/discovery/index.js';
import type { PeerTarget } from '../src/discovery/index.js';

t.test('parsePeerAddress: host names, IPv4 and bracketed IPv6, normalised', async (t) => {
  t.same(parsePeerAddress('node-1.mesh.local:7000'), { host: 'node-1.mesh.local', port: 7000, address: 'node-1.mesh.local:7000' });
  t.same(parsePeerAddress(' 10.0.0.1:1 '), { host: '10.0.0.1', port: 1, address: '10.0.0.1:1' }, 'whitespace ignored');
  t.same(parsePeerAddress('LocalHost:65535'), { host: 'localhost', port: 65535, address: 'localhost:65535' }, 'host lower-cased');
  t.same(parsePeerAddress('[::1]:7000'), { host: '::1', port: 7000, address: '[::1]:7000' });
  t.same(parsePeerAddress('[FE80::1]:80').address, '[fe80::1]:80');
});

t.test('parsePeerAddress: bad entries throw DISCOVERY_INVALID_PEER with a clear reason', async (t) => {
  const bad: [string, RegExp][] = [
    ['node1', /missing port/],
    [':7000', /missing host/],
    ['node1:', /port must be a number/],
    ['node1:abc', /port must be a number/],
    ['node1:0', /1\.\.65535/],
    ['node1:65536', /1\.\.65535/],
    ['node1:123456', /port must be a number/],
    ['::1:7000', /bracket IPv6/],
    ['[nope]:7000', /IPv6/],
    ['[::1]7000', /bracket IPv6|missing port/],
    ['999.1.1.1:80', /IPv4/],
    ['1.2.3:80', /IPv4/],
    ['under_score:80', /host name/],
    ['-lead.example:80', /host name/],
    ['a..b:80', /host name/],
    ['http://x:80', /too many colons/],
  ];
  for (const [entry, reason] of bad) {
    t.throws(() => parsePeerAddress(entry), { code: 'DISCOVERY_INVALID_PEER', entry, message: reason, name: 'StaticDiscoveryError' }, entry);
  }
  t.throws(() => createStaticDiscovery({ peers: ['ok:1', 'bad'] }), StaticDiscoveryError, 'the factory validates every entry');
  t.throws(() => createStaticDiscovery({ peers: [], selfAddress: 'bad' }), { code: 'DISCOVERY_INVALID_PEER' }, 'and the self address');
});

t.test('createStaticDiscovery: drops empties, duplicates and self; publishes once at start', async (t) => {
  const d = createStaticDiscovery({
    peers: ['b.mesh:7000', '', '  ', 'a.mesh:7000', 'B.MESH:7000', ' a.mesh:7000', 'self.mesh:7000', '[::1]:7001'],
    selfAddress: 'SELF.mesh:7000',
  });
  t.teardown(() => d.stop());
  const seen: (readonly PeerTarget[])[] = [];
  const off = d.onChange((ts) => seen.push(ts));
  const seen2: (readonly PeerTarget[])[] = [];
  d.onChange((ts) => seen2.push(ts));
  t.same(d.targets(), [], 'nothing before start');

  await d.start();
  const expected = [{ address: 'b.mesh:7000' }, { address: 'a.mesh:7000' }, { address: '[::1]:7001' }];
  t.same(d.targets(), expected, 'in list order, normalised, no duplicates, no self; no id or incarnation');
  t.same(seen, [expected], 'listeners got the complete list once');
  t.ok(Object.isFrozen(d.targets()));

  await d.start();
  t.equal(seen.length, 1, 'start is idempotent');
  off();
  await d.deregister();
  await d.deregister();
  t.same(d.targets(), expected, 'deregister changes nothing for a static list');
  await d.stop();
  await d.stop();
  t.equal(seen2.length, 1);
});

t.test('createStaticDiscovery: an empty list never calls listeners', async (t) => {
  const d = createStaticDiscovery({ peers: ['', ' '] });
  let calls = 0;
  d.onChange(() => calls++);
  await d.start();
  t.same(d.targets(), []);
  t.equal(calls, 0);
  await d.stop();
});

t.test('createStaticDiscovery: always healthy; the status never changes', async (t) => {
  const d = createStaticDiscovery({ peers: ['a.mesh:7000'] });
  let changes = 0;
  const off = d.onStatusChange(() => changes++);
  t.match(d.status(), { healthy: true, since: Number });
  t.equal(d.status().code, undefined);
  await d.start();
  await d.deregister();
  t.same(d.status(), { healthy: true, since: d.status().since }, 'healthy before, during and after');
  await d.stop();
  off();
  t.equal(changes, 0);
});
