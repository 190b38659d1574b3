/**
 * `--public-url` (protocol.md §1) and the pure parts of `GET /nodes`: the URL check shared by the
 * config and the mesh, the default, a peer's URL from its hello (hostile input), the list order.
 */
import t from 'tap';
import { ConfigError, resolveNodeConfig } from '../src/config/index.js';
import { listNodeUrls, peerPublicUrl } from '../src/mesh/index.js';
import type { NodeIdentity } from '../src/mesh/index.js';
import { MAX_PUBLIC_URL_LENGTH, checkWsUrl, defaultPublicUrl } from '../src/util/index.js';

const JUNK: ReadonlyArray<readonly [string, unknown, RegExp]> = [
  ['http scheme', 'http://chat.example.com/ws', /must start with ws:\/\/ or wss:\/\//],
  ['javascript', 'javascript:alert(1)', /must start with ws:\/\/ or wss:\/\//],
  ['not a URL', 'chat.example.com/ws', /is not a URL/],
  ['empty', '', /is empty/],
  ['credentials', 'wss://user:pw@chat.example.com/ws', /user name or password/],
  ['fragment', 'wss://chat.example.com/ws#x', /fragment/],
  ['newline', 'wss://chat.example.com/ws\nX-Evil: 1', /whitespace or control/],
  ['space', 'wss://chat.example.com/a b', /whitespace or control/],
  ['NUL', 'wss://chat.example.com/\0', /whitespace or control/],
  ['too long', `wss://chat.example.com/${'a'.repeat(MAX_PUBLIC_URL_LENGTH)}`, /longer than 512/],
  ['too long once normalized', `wss://chat.example.com/${'é'.repeat(200)}`, /once normalized/],
  ['not a string', 42, /not a string/],
  ['no host', 'ws://:80/ws', /is not a URL/],
];

t.test('checkWsUrl takes ws:// and wss:// URLs, normalized', async (t) => {
  t.same(checkWsUrl('ws://127.0.0.1:8080/ws'), { url: 'ws://127.0.0.1:8080/ws' });
  t.same(checkWsUrl('wss://chat.example.com/ws'), { url: 'wss://chat.example.com/ws' });
  t.same(checkWsUrl('WSS://Chat.Example.COM:443/ws?x=1'), { url: 'wss://chat.example.com/ws?x=1' }, 'lower-case, default port dropped');
  t.same(checkWsUrl('ws://[::1]:8080/ws'), { url: 'ws://[::1]:8080/ws' });
  t.same(checkWsUrl('wss://chät.example/ws'), { url: 'wss://xn--cht-rla.example/ws' }, 'punycode host');
  t.same(checkWsUrl(`wss://h/${'a'.repeat(MAX_PUBLIC_URL_LENGTH - 'wss://h/'.length)}`).url?.length, MAX_PUBLIC_URL_LENGTH, 'exactly the limit');
});

t.test('checkWsUrl refuses everything else with a reason, never throwing', async (t) => {
  for (const [what, input, reason] of JUNK) {
    const c = checkWsUrl(input);
    t.equal(c.url, undefined, what);
    t.match(c.problem, reason, what);
  }
});

t.test('defaultPublicUrl: ws://<advertise>:<port>/ws, IPv6 in brackets', async (t) => {
  t.equal(defaultPublicUrl('127.0.0.1', 8080), 'ws://127.0.0.1:8080/ws');
  t.equal(defaultPublicUrl('chat-1.internal', 31337), 'ws://chat-1.internal:31337/ws');
  t.equal(defaultPublicUrl('::1', 8080), 'ws://[::1]:8080/ws');
  t.equal(defaultPublicUrl('[fd00::5]', 80), 'ws://[fd00::5]/ws', 'brackets kept, default port dropped');
});

t.test('config: --public-url is optional, normalized, and a bad one is a one-line ConfigError', async (t) => {
  t.equal(resolveNodeConfig({}).publicUrl, undefined, 'default: filled in by the node once it listens');
  t.equal(resolveNodeConfig({ publicUrl: '' }).publicUrl, undefined, 'empty (an unset env var) is the default');
  t.equal(resolveNodeConfig({ publicUrl: 'wss://chat.example.com/n1/ws' }).publicUrl, 'wss://chat.example.com/n1/ws');
  t.equal(resolveNodeConfig({ publicUrl: 'WS://Node1.Example:80/ws' }).publicUrl, 'ws://node1.example/ws');
  for (const [what, input, reason] of JUNK) {
    if (typeof input !== 'string' || input === '') continue;
    let err: unknown;
    try {
      resolveNodeConfig({ publicUrl: input });
    } catch (e) {
      err = e;
    }
    t.type(err, ConfigError, what);
    const message = (err as ConfigError).message;
    t.match(message, /^--public-url must be a ws:\/\/ or wss:\/\/ URL/, what);
    t.match(message, reason, what);
    t.notMatch(message, /\n/, `${what}: one line`);
    t.ok(message.length < 400, `${what}: short`);
  }
});

t.test('peerPublicUrl: the hello\'s URL when valid, else the advertise fallback, else none', async (t) => {
  const hello = { advertise: '10.0.0.7:7070', httpPort: 8081, publicUrl: '' };
  t.same(peerPublicUrl(hello), { publicUrl: 'ws://10.0.0.7:8081/ws' }, 'an older peer sends none: fallback, nothing refused');
  t.same(peerPublicUrl({ ...hello, publicUrl: 'wss://chat.example.com/ws' }), { publicUrl: 'wss://chat.example.com/ws' });
  t.same(peerPublicUrl({ ...hello, advertise: '[fd00::7]:7070' }), { publicUrl: 'ws://[fd00::7]:8081/ws' });
  for (const [what, input] of JUNK) {
    if (typeof input !== 'string' || input === '') continue;
    const got = peerPublicUrl({ ...hello, publicUrl: input });
    t.equal(got.publicUrl, 'ws://10.0.0.7:8081/ws', `${what}: fallback`);
    t.type(got.publicUrlRefused, 'string', `${what}: refusal noted`);
  }
  t.same(peerPublicUrl({ ...hello, publicUrl: 'junk', httpPort: 0 }), { publicUrlRefused: 'is not a URL' }, 'no port: no URL at all');
  t.same(peerPublicUrl({ ...hello, advertise: 'not an address' }), {}, 'no usable advertise: no URL');
  t.same(peerPublicUrl({ ...hello, httpPort: 70_000 }), {}, 'port out of range: no URL');
});

t.test('listNodeUrls: self first, then up peers with a URL, by id', async (t) => {
  const peer = (id: string, publicUrl?: string): NodeIdentity => ({
    id, incarnation: 'i', advertise: '127.0.0.1:1', httpPort: 1, adminPort: 0, ...(publicUrl !== undefined && { publicUrl }),
  });
  const links = [
    { state: 'up', peer: peer('n3', 'ws://h3/ws') },
    { state: 'up', peer: peer('n10', 'ws://h10/ws') },
    { state: 'closed', peer: peer('n4', 'ws://h4/ws') },
    { state: 'handshake', peer: undefined },
    { state: 'up', peer: peer('n5') },
    { state: 'up', peer: peer('n2', 'ws://h2/ws') },
  ];
  t.same(listNodeUrls({ id: 'n9', url: 'ws://h9/ws' }, links), [
    { id: 'n9', url: 'ws://h9/ws' }, { id: 'n10', url: 'ws://h10/ws' }, { id: 'n2', url: 'ws://h2/ws' }, { id: 'n3', url: 'ws://h3/ws' },
  ]);
  t.same(listNodeUrls(undefined, links).map((n) => n.id), ['n10', 'n2', 'n3'], 'draining: self left out');
  t.same(listNodeUrls(undefined, []), []);
});
