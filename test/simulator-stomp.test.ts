/**
 * The simulator's STOMP personalities on real sockets: a strict STOMP 1.2 server directly over
 * WebSocket (SIM_WS_PROTOCOL=stomp) and inside SockJS framing (sockjs-stomp), checked with the
 * real stompjs client and with hand-made frames it must refuse.
 */
import t, { type Test } from 'tap';
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { startSimulator, type Simulator, type WsProtocol } from '../src/simulator/server.js';
import { optionsFromEnv } from '../src/simulator/env-options.js';
import { StompReader } from '../src/simulator/stomp-frames.js';
import { decodeClientMessage } from '../src/simulator/sockjs.js';
import { NOTIFICATION_DESTINATION, SALES_DESTINATION } from '../src/simulator/stomp-routes.js';
import { openStrictClient, type StrictStompClient } from './helpers/stomp-client.js';
import { eventually } from './helpers/stack.js';

const CTX = '/panopticon';
const STOMP_PATH = `${CTX}/server/ws/stomp`;
const SOCKJS = `${CTX}/server/sockjs`;
const CONNECT = 'CONNECT\naccept-version:1.2\nhost:sim\nheart-beat:0,0\n\n\0';

async function sim(t: Test, wsProtocol: WsProtocol): Promise<Simulator> {
  const s = await startSimulator({ logger: false, wsProtocol, dataIntervalMs: 50, stompHeartBeatMs: 100 });
  t.teardown(() => s.close());
  return s;
}

async function bearer(s: Simulator, user = 'alice'): Promise<Record<string, string>> {
  return { authorization: `Bearer ${await s.issueToken(user)}` };
}

const wsUrl = (s: Simulator, path: string) => s.url.replace('http:', 'ws:') + path;

async function strictClient(t: Test, url: string, sockjs: boolean, headers: Record<string, string>): Promise<StrictStompClient> {
  const client = await openStrictClient({ url, sockjs, headers });
  t.teardown(() => client.close());
  return client;
}

const delivered = (c: StrictStompClient, destination: string) => c.delivered.get(destination) ?? [];

/** The status of a refused upgrade. */
function refusedStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => { ws.close(); reject(new Error(`${url} was accepted`)); });
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
    ws.once('error', () => undefined);
  });
}

/** A raw WebSocket that collects every text frame. */
async function rawSocket(s: Simulator, path: string, headers: Record<string, string>, protocols: string[] = []) {
  const ws = new WebSocket(wsUrl(s, path), protocols, { headers });
  const frames: string[] = [];
  ws.on('message', (data) => frames.push(data.toString()));
  const closed = once(ws, 'close').then(([code, reason]) => ({ code: code as number, reason: String(reason) }));
  await once(ws, 'open');
  return { ws, frames, closed };
}

t.test('SIM_WS_PROTOCOL is read and checked', async (t) => {
  t.equal(optionsFromEnv({ SIM_WS_PROTOCOL: 'sockjs-stomp' }).wsProtocol, 'sockjs-stomp');
  t.equal(optionsFromEnv({ SIM_WS_PROTOCOL: 'STOMP' }).wsProtocol, 'stomp');
  t.equal(optionsFromEnv({}).wsProtocol, undefined, 'unset: the simulator default (json)');
  t.throws(() => optionsFromEnv({ SIM_WS_PROTOCOL: 'mqtt' }), /SIM_WS_PROTOCOL="mqtt": expected one of json, stomp, sockjs-stomp/);
  await t.rejects(startSimulator({ logger: false, wsProtocol: 'amqp' as WsProtocol }), /wsProtocol must be one of/);
});

t.test('the frame reader: heart-beats, frames split across messages, several per message, content-length', async (t) => {
  const reader = new StompReader();
  t.same(reader.push(Buffer.from('\n\r\n')), [], 'heart-beats only');
  t.same(reader.push(Buffer.from('SUBSCRIBE\nid:0\ndesti')), [], 'half a frame waits');
  const frames = reader.push(Buffer.from('nation:/topic/a\\cb\n\n\0\nSEND\ndestination:/app/x\ncontent-length:3\n\na\0b\0'));
  t.same(frames.map((f) => [f.command, f.headers, f.body.toString()]), [
    ['SUBSCRIBE', { id: '0', destination: '/topic/a:b' }, ''],
    ['SEND', { destination: '/app/x', 'content-length': '3' }, 'a\0b'],
  ], 'escaped header decoded, NUL inside a counted body kept');
  t.same(new StompReader().push(Buffer.from('CONNECT\r\nhost:a\\c\r\n\r\n\0')).map((f) => f.headers), [{ host: 'a\\c' }], 'CR LF lines; CONNECT headers are not unescaped');
  t.throws(() => new StompReader().push(Buffer.from('HELLO\n\n\0')), /unknown command/);
  t.throws(() => new StompReader().push(Buffer.from('SEND\nno-colon\n\n\0')), /malformed header/);
  t.throws(() => new StompReader().push(Buffer.from('SEND\nx:a\\t\n\n\0')), /undefined escape/);
  t.throws(() => new StompReader().push(Buffer.from('SEND\ncontent-length:1\n\nab\0')), /no NUL after content-length/);
  t.throws(() => new StompReader().push(Buffer.from('SEND\0')), /before its blank line/);
});

t.test('stomp: stompjs connects, data MESSAGE frames on the data subscription only, nothing unhandled', async (t) => {
  const s = await sim(t, 'stomp');
  const c = await strictClient(t, wsUrl(s, STOMP_PATH), false, await bearer(s));
  t.match(c.raw[0], /^CONNECTED\nversion:1\.2\nheart-beat:\d+,\d+\n/, 'CONNECTED with version and heart-beat');
  t.match(c.raw[0], /\nuser-name:alice\n/, 'CONNECTED names the user');
  c.subscribe(NOTIFICATION_DESTINATION);
  const data = c.subscribe(SALES_DESTINATION);
  await eventually('three live-data messages', () => delivered(c, SALES_DESTINATION).length >= 3, 5000);
  const first = delivered(c, SALES_DESTINATION)[0]!;
  t.equal(first.headers['destination'], SALES_DESTINATION);
  t.equal(first.headers['subscription'], data.id);
  t.equal(first.headers['content-type'], 'application/json');
  t.match(JSON.parse(first.body), { tile: 'sales', value: Number });
  t.same(delivered(c, NOTIFICATION_DESTINATION), [], 'the server itself sends nothing on the notification subscription');
  t.same(c.problems, []);
  t.same(s.protocolErrors, []);
  t.same((await (await fetch(`${s.url}/__simulator/state`)).json()).sockets, { notifications: 0, data: 0, stomp: 1 }, 'the socket is tracked');
});

t.test('stomp: client acknowledgements are checked against the messages really sent', async (t) => {
  const s = await sim(t, 'stomp');
  const c = await strictClient(t, wsUrl(s, STOMP_PATH), false, await bearer(s));
  c.subscribe(SALES_DESTINATION, { ack: 'client-individual', ackEach: true });
  await eventually('two acknowledged messages', () => delivered(c, SALES_DESTINATION).length >= 2, 5000);
  t.ok(delivered(c, SALES_DESTINATION)[0]!.headers['ack'], 'the MESSAGE carries an ack header');
  const receipt = new Promise((resolve) => c.client.watchForReceipt('r-1', resolve));
  c.client.publish({ destination: '/app/noop', headers: { receipt: 'r-1' } });
  await receipt;
  t.same(c.problems, [], 'real ACKs are accepted');
  t.same(s.protocolErrors, []);
});

t.test('stomp: a strict server answers malformed or unknown input with ERROR and closes', async (t) => {
  const s = await sim(t, 'stomp');
  const headers = await bearer(s);
  const cases: Array<[what: string, frames: string[], reason: RegExp]> = [
    ['garbage', ['HELLO\n\n\0'], /unknown command "HELLO"/],
    ['a frame before CONNECT', ['SUBSCRIBE\nid:0\ndestination:/topic/data/sales\n\n\0'], /SUBSCRIBE before CONNECT/],
    ['a client that speaks only 1.0', ['CONNECT\naccept-version:1.0\n\n\0'], /speaks STOMP 1\.2/],
    ['SUBSCRIBE without id', [CONNECT, 'SUBSCRIBE\ndestination:/topic/data/sales\n\n\0'], /without a "id" header/],
    ['a duplicate subscription id', [CONNECT, 'SUBSCRIBE\nid:0\ndestination:/a\n\n\0SUBSCRIBE\nid:0\ndestination:/b\n\n\0'], /already in use/],
    ['UNSUBSCRIBE of an unknown id', [CONNECT, 'UNSUBSCRIBE\nid:9\n\n\0'], /unknown subscription id/],
    ['an ACK for a message never sent', [CONNECT, 'ACK\nid:injected-1\n\n\0'], /ACK for unknown message id "injected-1"/],
    ['a NACK for a message never sent', [CONNECT, 'NACK\nid:x\n\n\0'], /NACK for unknown message id/],
    ['a header line without a colon', [CONNECT, 'SEND\ndestination\n\n\0'], /malformed header/],
    ['a bad content-length', [CONNECT, 'SEND\ndestination:/a\ncontent-length:2\n\nabc\0'], /no NUL after content-length/],
  ];
  for (const [what, frames, reason] of cases) {
    const before = s.protocolErrors.length;
    const sock = await rawSocket(s, STOMP_PATH, headers, ['v12.stomp']);
    t.equal(sock.ws.protocol, 'v12.stomp', `${what}: sub-protocol negotiated`);
    for (const frame of frames) sock.ws.send(frame);
    const closed = await sock.closed;
    const error = sock.frames.find((f) => f.startsWith('ERROR\n'));
    t.ok(error, `${what}: an ERROR frame`);
    t.match(error, reason, `${what}: the ERROR says why`);
    t.ok(error?.endsWith('\0'), `${what}: the ERROR frame is NUL-terminated`);
    t.equal(closed.code, 1002, `${what}: the socket closes after the ERROR`);
    t.equal(s.protocolErrors.length, before + 1, `${what}: recorded`);
    t.match(s.protocolErrors.at(-1), { user: 'alice', reason });
  }
});

t.test('stomp: DISCONNECT with a receipt, and heart-beats in both directions', async (t) => {
  const s = await sim(t, 'stomp');
  const sock = await rawSocket(s, STOMP_PATH, await bearer(s));
  sock.ws.send('\n');
  sock.ws.send('CONNECT\naccept-version:1.1,1.2\nheart-beat:0,50\n\n\0');
  await eventually('a server heart-beat', () => sock.frames.includes('\n'), 5000);
  t.match(sock.frames[0], /^CONNECTED\nversion:1\.2\nheart-beat:100,100\n/, 'the server offers its heart-beat');
  sock.ws.send('DISCONNECT\nreceipt:bye\n\n\0');
  const closed = await sock.closed;
  t.ok(sock.frames.includes('RECEIPT\nreceipt-id:bye\n\n\0'), 'RECEIPT before the close');
  t.equal(closed.code, 1000);
  t.same(s.protocolErrors, []);
});

t.test('stomp and sockjs-stomp refuse sockets without a credential; the JSON sockets are gone', async (t) => {
  for (const protocol of ['stomp', 'sockjs-stomp'] as const) {
    const s = await sim(t, protocol);
    const path = protocol === 'stomp' ? STOMP_PATH : `${SOCKJS}/000/abc/websocket`;
    t.equal(await refusedStatus(wsUrl(s, path)), 401, `${protocol}: no credential, no socket`);
    t.equal(await refusedStatus(wsUrl(s, `${CTX}/server/ws/notifications`), await bearer(s)), 404, `${protocol}: no JSON notification socket`);
  }
  const json = await sim(t, 'json');
  t.equal(await refusedStatus(wsUrl(json, STOMP_PATH), await bearer(json)), 404, 'json: no STOMP endpoint');
});

t.test('sockjs-stomp: /info, the websocket transport framing, and stompjs through it', async (t) => {
  const s = await sim(t, 'sockjs-stomp');
  const headers = await bearer(s);
  const info = await fetch(`${s.url}${SOCKJS}/info`, { headers });
  t.equal(info.status, 200);
  t.match(info.headers.get('cache-control'), /no-store/);
  t.match(await info.json(), { websocket: true, cookie_needed: false, origins: ['*:*'], entropy: Number });

  const c = await strictClient(t, `${s.url}${SOCKJS}`, true, headers);
  t.equal(c.raw[0], 'o', 'the first frame is o');
  c.subscribe(NOTIFICATION_DESTINATION);
  c.subscribe(SALES_DESTINATION);
  await eventually('live data through SockJS', () => delivered(c, SALES_DESTINATION).length >= 3, 5000);
  t.match(c.raw[1], /^a\["CONNECTED\\nversion:1\.2\\n/, 'STOMP travels inside a[...]');
  t.ok(c.raw.slice(1).every((f) => f === 'h' || f.startsWith('a[')), 'only a[...] and h frames while open');
  t.same(delivered(c, NOTIFICATION_DESTINATION), [], 'nothing on the notification subscription');
  t.same(c.problems, [], 'sockjs-client and stompjs saw nothing malformed or unhandled');

  s.logOutUser('alice');
  await c.closed;
  t.equal(c.raw.at(-1), 'c[4001,"logged out"]', 'logout closes with c[4001,"logged out"]');
  t.same(s.protocolErrors, []);
});

t.test('sockjs-stomp: broken SockJS framing closes the session; bad session ids are refused', async (t) => {
  const s = await sim(t, 'sockjs-stomp');
  const headers = await bearer(s);
  t.same(decodeClientMessage('["a","b"]'), ['a', 'b']);
  t.same(decodeClientMessage('"a"'), ['a']);
  t.same(decodeClientMessage(''), []);
  t.equal(decodeClientMessage('[1]'), undefined);
  t.equal(decodeClientMessage('CONNECT'), undefined);

  const sock = await rawSocket(s, `${SOCKJS}/1/abc/websocket`, headers);
  await eventually('o', () => sock.frames[0] === 'o', 5000);
  sock.ws.send(CONNECT);
  const closed = await sock.closed;
  t.equal(closed.code, 1002, 'bare STOMP without SockJS framing is refused');
  t.match(s.protocolErrors.at(-1), { user: 'alice', reason: /not a JSON array of strings/ });

  const inside = await rawSocket(s, `${SOCKJS}/1/abd/websocket`, headers);
  inside.ws.send(JSON.stringify(['ACK\nid:nope\n\n\0']));
  await inside.closed;
  t.match(inside.frames.find((f) => f.startsWith('a["ERROR')), /ACK before CONNECT/, 'STOMP errors come back inside a[...]');
  t.equal(inside.frames.at(-1), 'c[1002,"STOMP protocol error"]', 'then the SockJS close frame');

  const dotted = await rawSocket(s, `${SOCKJS}/1/a.b/websocket`, headers);
  t.equal((await dotted.closed).code, 1002, 'a session id with a dot is refused');

  const raw = await rawSocket(s, `${SOCKJS}/websocket`, headers, ['v12.stomp']);
  raw.ws.send(CONNECT);
  await eventually('CONNECTED on the raw endpoint', () => raw.frames.some((f) => f.startsWith('CONNECTED\n')), 5000);
  raw.ws.close();
});

t.test('dashboard page: the STOMP personalities load the real client bundles from the simulator', async (t) => {
  for (const [protocol, bundles] of [['json', []], ['stomp', ['stomp.umd.js']], ['sockjs-stomp', ['stomp.umd.js', 'sockjs.min.js']]] as const) {
    const s = await sim(t, protocol);
    const html = await (await fetch(`${s.url}${CTX}/`, { headers: await bearer(s) })).text();
    const srcs = [...html.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]!);
    t.same(srcs, bundles.map((b) => `${CTX}/sim-assets/${b}`), `${protocol}: script tags`);
    for (const src of srcs) {
      const res = await fetch(s.url + src);
      t.equal(res.status, 200, `${src} served`);
      t.match(res.headers.get('content-type'), /javascript/);
      t.match(await res.text(), src.includes('sockjs') ? /sockjs-client/ : /StompJs/, `${src} is the library bundle`);
    }
    t.equal(html.includes('simStompTransport = function'), protocol !== 'json', `${protocol}: STOMP transport script only when needed`);
  }
});
