import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import t from 'tap';
import WebSocket from 'ws';
import { notificationDestinationRule } from '../src/notifications/framing/policy.js';
import { FramingTracker } from '../src/notifications/framing/tracker.js';
import { timeoutNotification } from '../src/notifications/messages.js';
import { Notifier } from '../src/notifications/notifier.js';
import { SocketRegistry, type RegisteredSocket } from '../src/notifications/registry.js';
import type { ProxyHooks } from '../src/proxy/hooks.js';
import { startUpstream, type TestUpstream, type WsCloseSeen } from './helpers/upstream.js';
import { send, startProxy, waitFor, type ProxyUnderTest } from './helpers/proxy-under-test.js';
import { frame, OPCODE, rawUpgrade } from './helpers/raw-ws.js';

interface Received { text: string; isBinary: boolean }

let upstream: TestUpstream;

t.before(async () => { upstream = await startUpstream(); });
t.teardown(() => upstream.close());

function wsUrl(proxy: ProxyUnderTest, path: string): string {
  return `ws://127.0.0.1:${proxy.port}${path}`;
}

/** opens a client and collects what it receives */
async function connect(url: string, protocols: string[] = [], headers: Record<string, string> = {}) {
  const ws = new WebSocket(url, protocols, { headers });
  const received: Received[] = [];
  ws.on('message', (data: Buffer, isBinary) => received.push({ text: data.toString(), isBinary }));
  const closed = once(ws, 'close') as Promise<[number, Buffer]>;
  await once(ws, 'open');
  return { ws, received, closed };
}

/** the HTTP status a refused upgrade answered with */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    ws.on('open', () => reject(new Error('upgrade was accepted')));
    ws.on('error', () => { /* follows unexpected-response */ });
  });
}

function nextUpstreamClose(path: string): Promise<WsCloseSeen> {
  return new Promise((resolve) => {
    const listener = (seen: WsCloseSeen) => {
      if (seen.path !== path) return;
      upstream.events.off('ws-close', listener);
      resolve(seen);
    };
    upstream.events.on('ws-close', listener);
  });
}

t.test('messages travel both ways; text stays text, binary stays binary', async (t) => {
  const proxy = await startProxy(upstream.url);
  t.teardown(() => proxy.close());
  const { ws, received } = await connect(wsUrl(proxy, '/ws/echo?room=1'));
  ws.send('hello text');
  ws.send(Buffer.from([0, 1, 2, 255]), { binary: true });
  ws.send('ünïcödé ✓');
  ws.send(Buffer.from('binary that looks like text'), { binary: true });
  await waitFor(() => received.length === 4, 3000, 'echoes');
  t.same(received, [
    { text: 'hello text', isBinary: false },
    { text: Buffer.from([0, 1, 2, 255]).toString(), isBinary: true },
    { text: 'ünïcödé ✓', isBinary: false },
    { text: 'binary that looks like text', isBinary: true },
  ]);
  ws.close();
});

t.test('the sub-protocol the upstream picks is the one the client gets', async (t) => {
  const proxy = await startProxy(upstream.url);
  t.teardown(() => proxy.close());
  const both = await connect(wsUrl(proxy, '/ws/echo'), ['chat.v1', 'chat.v2']);
  t.equal(both.ws.protocol, 'chat.v2');
  const one = await connect(wsUrl(proxy, '/ws/echo'), ['x.other', 'chat.v1']);
  t.equal(one.ws.protocol, 'chat.v1');
  const unoffered = await connect(wsUrl(proxy, '/ws/echo'));
  t.equal(unoffered.ws.protocol, '');
  // a browser fails a 101 that picks none of its offers; so does the proxy's ws client, and the
  // client's handshake is answered 502 instead
  const none = await upgradeStatus(wsUrl(proxy, '/ws/echo'), { 'sec-websocket-protocol': 'x.unknown' });
  t.equal(none.status, 502);
  t.match(JSON.parse(none.body), { error: 'upstream_bad_handshake' });
  for (const c of [both, one, unoffered]) c.ws.close();
});

t.test('close codes and reasons travel both ways', async (t) => {
  const proxy = await startProxy(upstream.url);
  t.teardown(() => proxy.close());

  const fromUpstream = await connect(wsUrl(proxy, '/ws/close?code=4001&reason=idle%20timeout'));
  const [code, reason] = await fromUpstream.closed;
  t.equal(code, 4001);
  t.equal(reason.toString(), 'idle timeout');

  const client = await connect(wsUrl(proxy, '/ws/echo'));
  const seen = nextUpstreamClose('/ws/echo');
  client.ws.close(4002, 'user left');
  t.same(await seen, { path: '/ws/echo', code: 4002, reason: 'user left' });

  const normal = await connect(wsUrl(proxy, '/ws/echo'));
  const seenNormal = nextUpstreamClose('/ws/echo');
  normal.ws.close();
  t.equal((await seenNormal).code, 1000, 'a close without code (1005) arrives as 1000');

  const dropped = await connect(wsUrl(proxy, '/ws/echo'));
  const seenDropped = nextUpstreamClose('/ws/echo');
  dropped.ws.terminate();
  t.same(await seenDropped, { path: '/ws/echo', code: 1001, reason: 'client connection lost' }, 'a vanished client is 1001');

  const upstreamDrops = await connect(wsUrl(proxy, '/ws/echo'));
  await waitFor(() => upstream.wsSockets.has('/ws/echo'), 2000, 'upstream socket');
  upstream.wsSockets.get('/ws/echo')!.terminate();
  const [lostCode, lostReason] = await upstreamDrops.closed;
  t.equal(lostCode, 1011, 'a vanished upstream is 1011');
  t.equal(lostReason.toString(), 'upstream connection lost');
  await waitFor(() => proxy.registry.size === 0, 2000, 'registry empty');
});

t.test('cookies, authorization, forwarding headers and Origin reach the upstream', async (t) => {
  const proxy = await startProxy(upstream.url);
  t.teardown(() => proxy.close());
  const headers = {
    cookie: 'SESSION=abc; ptoken=jwt',
    authorization: 'Bearer zzz',
    origin: `http://127.0.0.1:${proxy.port}`,
    'x-forwarded-for': '6.6.6.6',
    'user-agent': 'tap-test',
  };
  const same = await connect(wsUrl(proxy, '/ws/headers?a=%20b&c'), [], headers);
  await waitFor(() => same.received.length === 1, 2000, 'headers message');
  const got = JSON.parse(same.received[0]!.text) as { headers: Record<string, string>; url: string };
  t.equal(got.url, '/ws/headers?a=%20b&c', 'same path and query upstream');
  t.equal(got.headers.cookie, headers.cookie);
  t.equal(got.headers.authorization, headers.authorization);
  t.equal(got.headers['user-agent'], 'tap-test');
  t.equal(got.headers.origin, upstream.url, "the proxy's own origin becomes the upstream's");
  t.equal(got.headers.host, `127.0.0.1:${upstream.port}`);
  t.match(got.headers['x-forwarded-for'], /^(::ffff:)?127\.0\.0\.1$/, 'client claim replaced');
  t.equal(got.headers['x-forwarded-host'], `127.0.0.1:${proxy.port}`);
  t.equal(got.headers['x-forwarded-proto'], 'http');
  same.ws.close();

  const foreign = await connect(wsUrl(proxy, '/ws/headers'), [], { origin: 'https://attacker.example' });
  await waitFor(() => foreign.received.length === 1, 2000, 'headers message');
  t.equal((JSON.parse(foreign.received[0]!.text) as { headers: Record<string, string> }).headers.origin, 'https://attacker.example', 'foreign Origin unchanged');
  foreign.ws.close();
  await foreign.closed;
  const log = proxy.logText();
  for (const secret of ['SESSION=abc', 'ptoken=jwt', 'Bearer zzz']) t.notOk(log.includes(secret), `log has no ${secret}`);
});

t.test('an upstream refusal is passed on with its status; no upstream means 502', async (t) => {
  const proxy = await startProxy(upstream.url);
  t.teardown(() => proxy.close());
  const refused = await upgradeStatus(wsUrl(proxy, '/ws/refuse'));
  t.equal(refused.status, 401);
  t.equal(refused.headers['www-authenticate'], 'Bearer');
  t.match(JSON.parse(refused.body), { error: 'upstream_refused_upgrade' });
  t.match(proxy.requestLines().at(-1), { path: '/ws/refuse', status: 401, reason: 'upstream_refused_upgrade' });

  const closed = createServer();
  closed.listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const deadPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const orphan = await startProxy(`http://127.0.0.1:${deadPort}`);
  t.teardown(() => orphan.close());
  const down = await upgradeStatus(wsUrl(orphan, '/ws/echo'));
  t.equal(down.status, 502);
  t.match(JSON.parse(down.body), { error: 'upstream_unreachable' });
  t.equal((await send(`${orphan.url}/x`)).status, 502, 'HTTP still answered');
});

t.test('a hook can refuse an upgrade before the upstream is contacted', async (t) => {
  let upstreamOpened = 0;
  const countOpen = (seen: WsCloseSeen) => { if (seen.path === '/ws/echo') upstreamOpened++; };
  upstream.events.on('ws-close', countOpen);
  t.teardown(() => { upstream.events.off('ws-close', countOpen); });
  const hooks: ProxyHooks = {
    onUpgrade: async (req) => (req.headers.cookie?.includes('expired')
      ? { refuse: { statusCode: 403, body: { error: 'session_expired' }, reason: 'session_expired' } }
      : { user: 'bob' }),
  };
  const proxy = await startProxy(upstream.url, { hooks });
  t.teardown(() => proxy.close());
  const refused = await upgradeStatus(wsUrl(proxy, '/ws/echo'), { cookie: 'SESSION=expired' });
  t.equal(refused.status, 403);
  t.same(JSON.parse(refused.body), { error: 'session_expired' });
  t.equal(upstream.wsSockets.has('/ws/echo'), false, 'no upstream socket');
  t.equal(proxy.registry.size, 0);
  t.match(proxy.requestLines().at(-1), { path: '/ws/echo', status: 403, reason: 'session_expired' });

  const allowed = await connect(wsUrl(proxy, '/ws/echo'), [], { cookie: 'SESSION=fine' });
  t.equal(proxy.registry.byUser('bob').length, 1);
  allowed.ws.close();
  await allowed.closed;
  await waitFor(() => upstreamOpened === 1, 2000, 'upstream close');
});

t.test('the registry tracks client sockets; hooks hear open and close', async (t) => {
  const opened: RegisteredSocket[] = [];
  const closed: RegisteredSocket[] = [];
  const hooks: ProxyHooks = {
    onUpgrade: (req, path) => ({ user: path.endsWith('anon') ? undefined : String(req.headers['x-test-user']) }),
    onSocketOpen: (rec) => { opened.push(rec); },
    onSocketClose: (rec) => { closed.push(rec); },
  };
  const proxy = await startProxy(upstream.url, { hooks });
  t.teardown(() => proxy.close());
  const a1 = await connect(wsUrl(proxy, '/ws/echo?token=secret'), [], { 'x-test-user': 'alice' });
  const a2 = await connect(wsUrl(proxy, '/ws/echo/anon'));
  const b1 = await connect(wsUrl(proxy, '/ws/hello'), [], { 'x-test-user': 'bob' });
  t.equal(proxy.registry.size, 3);
  t.equal(opened.length, 3);
  const alice = proxy.registry.byUser('alice');
  t.equal(alice.length, 1);
  t.equal(alice[0]!.path, '/ws/echo', 'path without query');
  t.equal(alice[0]!.headers['x-test-user'], 'alice');
  t.type(alice[0]!.openedAtMs, 'number');
  t.same(proxy.registry.byUser('alice', (p) => p.startsWith('/ws/hello')), []);
  t.equal(proxy.registry.byUser('bob', (p) => p.startsWith('/ws/hello')).length, 1);

  const anon = [...proxy.registry.all()].find((r) => r.user === undefined)!;
  proxy.registry.setUser(anon, 'alice');
  t.equal(proxy.registry.countByUser('alice'), 2, 'identity learned later');

  a1.ws.close(4000, 'bye');
  await a1.closed;
  await waitFor(() => closed.length === 1, 2000, 'onSocketClose');
  t.equal(closed[0], opened[0]);
  t.equal(proxy.registry.countByUser('alice'), 1);
  a2.ws.close();
  b1.ws.close();
  await Promise.all([a2.closed, b1.closed]);
  await waitFor(() => proxy.registry.size === 0 && closed.length === 3, 2000, 'registry empty');

  const line = proxy.requestLines().find((l) => l.path === '/ws/echo');
  t.match(line, { method: 'GET', status: 101, user: 'alice', closeCode: 4000 });
  t.notOk(proxy.logText().includes('secret'), 'query string not logged');
});

t.test('frames written through the registry reach the client in order with relayed ones', async (t) => {
  const proxy = await startProxy(upstream.url, { hooks: { onUpgrade: () => ({ user: 'carol' }) } });
  t.teardown(() => proxy.close());
  const { ws, received } = await connect(wsUrl(proxy, '/ws/echo'));
  const [rec] = proxy.registry.byUser('carol');
  ws.send('one');
  await waitFor(() => received.length === 1, 2000, 'first echo');
  rec!.socket.send('{"type":"session-timeout-warning"}');
  ws.send('two');
  await waitFor(() => received.length === 3, 2000, 'all frames');
  t.same(received.map((r) => r.text), ['one', '{"type":"session-timeout-warning"}', 'two']);
  t.equal(received[1]!.isBinary, false);
  t.ok(upstream.wsSockets.has('/ws/echo'), 'the upstream side is open before the close');
  const upstreamClosed = nextUpstreamClose('/ws/echo'); // listening before the close, so it cannot be missed
  rec!.socket.close(4408, 'session timed out');
  const [code, reason] = await once(ws, 'close') as [number, Buffer];
  t.equal(code, 4408);
  t.equal(reason.toString(), 'session timed out');
  t.equal((await upstreamClosed).code, 4408, 'upstream closed the same way');
});

t.test('messages the upstream sends at once are not lost', async (t) => {
  const proxy = await startProxy(upstream.url);
  t.teardown(() => proxy.close());
  const { ws, received } = await connect(wsUrl(proxy, '/ws/hello'));
  await waitFor(() => received.length === 1, 2000, 'hello');
  t.same(received, [{ text: 'hello', isBinary: false }]);
  ws.close();
});

t.test('an oversized message closes with 1009', async (t) => {
  const proxy = await startProxy(upstream.url, { env: { PROXY_WS_MAX_MESSAGE_BYTES: String(64 * 1024) } });
  t.teardown(() => proxy.close());
  const fromClient = await connect(wsUrl(proxy, '/ws/echo'));
  const seen = nextUpstreamClose('/ws/echo');
  fromClient.ws.send(Buffer.alloc(100 * 1024));
  const [code] = await fromClient.closed;
  t.equal(code, 1009, 'client told its message was too big');
  t.equal((await seen).code, 1009, 'upstream told why the pair ended');

  const fromUpstream = await connect(wsUrl(proxy, '/ws/flood?mb=1'));
  const [upCode] = await fromUpstream.closed;
  t.equal(upCode, 1009, 'client told the upstream sent too much');
  t.equal(fromUpstream.received.length, 0);
});

t.test('back-pressure: a client that does not read pauses the upstream, memory stays bounded', async (t) => {
  const maxBufferedBytes = 1024 * 1024;
  const messageBytes = 256 * 1024;
  const totalMiB = 48;
  const proxy = await startProxy(upstream.url, {
    env: { PROXY_WS_MAX_BUFFERED_BYTES: String(maxBufferedBytes) },
    hooks: { onUpgrade: () => ({ user: 'slow' }) },
  });
  t.teardown(() => proxy.close());
  const ws = new WebSocket(wsUrl(proxy, `/ws/flood?mb=${totalMiB}`));
  let receivedBytes = 0;
  let inOrder = true;
  let expectedSeq = 0;
  ws.on('message', (data: Buffer) => {
    if (data[0] !== expectedSeq++ % 256) inOrder = false;
    receivedBytes += data.length;
  });
  await once(ws, 'open');
  ws.pause(); // stop reading: the kernel buffers fill, then the proxy's queue

  const [rec] = proxy.registry.byUser('slow');
  let peakQueuedBytes = 0;
  const sampler = setInterval(() => { peakQueuedBytes = Math.max(peakQueuedBytes, rec!.socket.bufferedAmount); }, 5);
  await waitFor(() => (upstream.wsSockets.get('/ws/flood')?.bufferedAmount ?? 0) > 4 * messageBytes, 10000, 'upstream held back');
  await new Promise((r) => setTimeout(r, 300));
  clearInterval(sampler);
  t.ok(peakQueuedBytes > 0, `proxy queued ${peakQueuedBytes} bytes for the client`);
  t.ok(peakQueuedBytes <= maxBufferedBytes + 4 * messageBytes, `proxy queue stayed bounded (${peakQueuedBytes} bytes)`);
  t.ok(receivedBytes < totalMiB * 1024 * 1024, 'the client has not read everything');

  ws.resume();
  await waitFor(() => receivedBytes === totalMiB * 1024 * 1024, 20000, 'every byte');
  t.ok(inOrder, 'messages arrived in order');
  ws.close();
  await once(ws, 'close');
});

t.test('plain GETs on a path with WebSocket traffic are still streamed HTTP', async (t) => {
  const proxy = await startProxy(upstream.url);
  t.teardown(() => proxy.close());
  const r = await send(`${proxy.url}/echo/ws-path`, { headers: { upgrade: 'websocket' } });
  t.equal(r.status, 200, 'Upgrade header without Connection: upgrade is a normal request');
  const bad = await upgradeStatus(wsUrl(proxy, '/ws/echo'), { 'sec-websocket-protocol': 'bad protocol,,' });
  t.equal(bad.status, 400, 'malformed offer refused');
  t.match(JSON.parse(bad.body), { error: 'bad_websocket_handshake' });
});

t.test('an upstream that does not answer the handshake in time gives 504', async (t) => {
  const proxy = await startProxy(upstream.url, { env: { PROXY_UPSTREAM_TIMEOUT_MS: '200' } });
  t.teardown(() => proxy.close());
  const abandoned = once(upstream.events, 'ws-slow-abandoned');
  const r = await upgradeStatus(wsUrl(proxy, '/ws/slow?ms=3000'));
  t.equal(r.status, 504);
  t.match(JSON.parse(r.body), { error: 'upstream_timeout' });
  await abandoned;
  t.pass('the upstream attempt was dropped');
});

t.test('a client that leaves during the upstream handshake leaves nothing behind', async (t) => {
  const proxy = await startProxy(upstream.url);
  t.teardown(() => proxy.close());
  const attempt = once(upstream.events, 'ws-slow-attempt');
  const client = new WebSocket(wsUrl(proxy, '/ws/slow?ms=300'));
  client.on('error', () => { /* terminated on purpose */ });
  await attempt;
  client.terminate();
  const seen = await nextUpstreamClose('/ws/slow');
  t.equal(seen.code, 1006, 'the upstream connection was dropped once it opened');
  t.equal(proxy.registry.size, 0);
});

t.test('pings are answered per hop', async (t) => {
  const proxy = await startProxy(upstream.url);
  t.teardown(() => proxy.close());
  const { ws } = await connect(wsUrl(proxy, '/ws/echo'));
  ws.ping('are you there');
  const [payload] = await once(ws, 'pong') as [Buffer];
  t.equal(payload.toString(), 'are you there');
  ws.close();
});

t.test('keep-alive: a client that stops answering pings is dropped, and its upstream closed with 1001', async (t) => {
  const pingMs = 100;
  const proxy = await startProxy(upstream.url, { env: { PROXY_WS_PING_MS: String(pingMs) }, hooks: { onUpgrade: () => ({ user: 'vanished' }) } });
  t.teardown(() => proxy.close());
  const upstreamCloses: WsCloseSeen[] = [];
  const listener = (seen: WsCloseSeen) => { if (seen.path === '/ws/echo') upstreamCloses.push(seen); };
  upstream.events.on('ws-close', listener);
  t.teardown(() => { upstream.events.off('ws-close', listener); });
  const ws = new WebSocket(wsUrl(proxy, '/ws/echo'), { autoPong: false }); // a peer that is gone but sent no FIN
  const closed = once(ws, 'close') as Promise<[number, Buffer]>;
  await once(ws, 'open');
  const openedAt = Date.now();
  await closed;
  t.ok(Date.now() - openedAt >= pingMs, 'not before a ping went unanswered');
  await waitFor(() => upstreamCloses.some((c) => c.code === 1001 && c.reason === 'client connection lost'), 3000, 'the upstream hears "going away"');
  await waitFor(() => proxy.registry.byUser('vanished').length === 0, 3000, 'the socket left the registry');
  t.match(proxy.logLines().find((l) => l.event === 'websocket-unresponsive'), { side: 'client', path: '/ws/echo', user: 'vanished' });
});

t.test('keep-alive: a client that stopped reading is dropped, and the upstream it held back is released', async (t) => {
  const proxy = await startProxy(upstream.url, {
    env: { PROXY_WS_PING_MS: '200', PROXY_WS_MAX_BUFFERED_BYTES: String(1024 * 1024) },
    hooks: { onUpgrade: () => ({ user: 'stalled' }) },
  });
  t.teardown(() => proxy.close());
  const upstreamCloses: WsCloseSeen[] = [];
  const listener = (seen: WsCloseSeen) => { if (seen.path === '/ws/flood') upstreamCloses.push(seen); };
  upstream.events.on('ws-close', listener);
  t.teardown(() => { upstream.events.off('ws-close', listener); });
  const ws = new WebSocket(wsUrl(proxy, '/ws/flood?mb=256'));
  t.teardown(() => ws.terminate());
  await once(ws, 'open');
  ws.pause(); // reads nothing more, pongs included
  await waitFor(() => upstreamCloses.some((c) => c.code === 1001), 10000, 'the upstream pair is closed');
  await waitFor(() => proxy.registry.byUser('stalled').length === 0, 3000, 'the client socket is gone from the registry');
  t.match(proxy.logLines().find((l) => l.event === 'websocket-unresponsive'), { side: 'client', user: 'stalled' });
});

t.test('keep-alive: a quiet client that answers pings stays connected', async (t) => {
  const proxy = await startProxy(upstream.url, { env: { PROXY_WS_PING_MS: '50' } });
  t.teardown(() => proxy.close());
  const { ws, received } = await connect(wsUrl(proxy, '/ws/echo'));
  let pingsSeen = 0;
  ws.on('ping', () => { pingsSeen++; });
  await waitFor(() => pingsSeen >= 5, 5000, 'five pings answered');
  t.equal(ws.readyState, WebSocket.OPEN, 'still open after five rounds');
  ws.send('still here');
  await waitFor(() => received.length === 1, 3000, 'echo');
  ws.close();
});

t.test('keep-alive: an upstream that stops answering pings is dropped; the client hears 1011', async (t) => {
  const { WebSocketServer } = await import('ws');
  const mute = new WebSocketServer({ host: '127.0.0.1', port: 0, autoPong: false });
  await once(mute, 'listening');
  t.teardown(() => new Promise<void>((r) => { for (const c of mute.clients) c.terminate(); mute.close(() => r()); }));
  const proxy = await startProxy(`http://127.0.0.1:${(mute.address() as AddressInfo).port}`, { env: { PROXY_WS_PING_MS: '100' } });
  t.teardown(() => proxy.close());
  const { closed } = await connect(wsUrl(proxy, '/live'));
  const [code, reason] = await closed;
  t.equal(code, 1011);
  t.equal(reason.toString(), 'upstream connection lost');
  t.match(proxy.logLines().find((l) => l.event === 'websocket-unresponsive'), { side: 'upstream', path: '/live' });
});

t.test('keep-alive off (PROXY_WS_PING_MS=0): no pings are sent', async (t) => {
  const proxy = await startProxy(upstream.url, { env: { PROXY_WS_PING_MS: '0' } });
  t.teardown(() => proxy.close());
  const ws = new WebSocket(wsUrl(proxy, '/ws/echo'), { autoPong: false });
  let pings = 0;
  ws.on('ping', () => { pings++; });
  await once(ws, 'open');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(pings, 0);
  t.equal(ws.readyState, WebSocket.OPEN, 'a silent peer is kept');
  ws.close();
});

t.test('closing the proxy closes open socket pairs', async (t) => {
  const proxy = await startProxy(upstream.url);
  const { ws, closed } = await connect(wsUrl(proxy, '/ws/echo'));
  const seen = nextUpstreamClose('/ws/echo');
  const started = Date.now();
  await proxy.close();
  const [code] = await closed;
  t.ok([1000, 1001, 1005].includes(code), `client closed with ${code}`);
  t.ok([1000, 1001].includes((await seen).code), 'upstream closed cleanly');
  t.ok(Date.now() - started < 5000, 'promptly');
  t.equal(ws.readyState, WebSocket.CLOSED);
});

t.test('back-pressure the other way: an upstream that does not read pauses the client', async (t) => {
  const messageBytes = 256 * 1024;
  const messages = 128; // 32 MiB
  const proxy = await startProxy(upstream.url, {
    env: { PROXY_WS_MAX_BUFFERED_BYTES: String(1024 * 1024) },
    hooks: { onUpgrade: () => ({ user: 'uploader' }) },
  });
  t.teardown(() => proxy.close());
  const { ws } = await connect(wsUrl(proxy, '/ws/headers'));
  await waitFor(() => upstream.wsSockets.has('/ws/headers'), 2000, 'upstream socket');
  const far = upstream.wsSockets.get('/ws/headers')!;
  let upstreamBytes = 0;
  far.on('message', (data: Buffer) => { upstreamBytes += data.length; });
  far.pause();
  for (let i = 0; i < messages; i++) ws.send(Buffer.alloc(messageBytes, i % 256));
  const [rec] = proxy.registry.byUser('uploader');
  await waitFor(() => rec!.socket.isPaused, 10000, 'proxy pausing the client');
  t.pass('the proxy stopped reading from the client');
  await new Promise((r) => setTimeout(r, 200));
  t.ok(ws.bufferedAmount > 0, `the rest waits at the client (${ws.bufferedAmount} bytes)`);
  far.resume();
  await waitFor(() => upstreamBytes === messages * messageBytes, 20000, 'every byte upstream');
  t.notOk(rec!.socket.isPaused, 'reading again');
  ws.close();
});

/** the frames of server-to-client bytes (unmasked): opcode, FIN, payload; stops at an incomplete frame */
function serverFrames(bytes: Buffer): { opcode: number; fin: boolean; payload: string }[] {
  const out: { opcode: number; fin: boolean; payload: string }[] = [];
  let at = 0;
  while (at + 2 <= bytes.length) {
    let length = bytes[at + 1]! & 0x7f;
    let offset = at + 2;
    if (length === 126) {
      length = bytes.readUInt16BE(offset);
      offset += 2;
    }
    if (offset + length > bytes.length) break;
    out.push({ opcode: bytes[at]! & 0x0f, fin: (bytes[at]! & 0x80) !== 0, payload: bytes.subarray(offset, offset + length).toString() });
    at = offset + length;
  }
  return out;
}

t.test('an inspected socket: many small frames in one TCP write (held, fragmented, control) pass whole and in order', async (t) => {
  // every socket is a notification socket (inspected); /ws/echo speaks plain JSON
  const proxy = await startProxy(upstream.url, { inspection: new Notifier({ registry: new SocketRegistry(), notifyPaths: [] }) });
  t.teardown(() => proxy.close());
  const raw = await rawUpgrade(proxy.port, '/ws/echo');
  t.teardown(() => raw.socket.destroy());
  const texts = Array.from({ length: 30 }, (_, i) => `{"seq":${i}}`);
  raw.socket.write(Buffer.concat([
    frame(OPCODE.text, Buffer.from('{"first":true}')), // held and read: it decides the framing (plain JSON) ...
    // ... and what follows in the same chunk passes unread
    ...texts.slice(0, 15).map((s) => frame(OPCODE.text, Buffer.from(s))),
    frame(OPCODE.text, Buffer.from('{"frag":'), { fin: false }),
    frame(OPCODE.ping, Buffer.from('p')), // a control frame inside a fragmented message
    frame(OPCODE.continuation, Buffer.from('"ment"}')),
    ...texts.slice(15).map((s) => frame(OPCODE.text, Buffer.from(s))),
    frame(OPCODE.binary, Buffer.from('bin')),
  ]));
  const expected = ['{"first":true}', ...texts.slice(0, 15), '{"frag":"ment"}', ...texts.slice(15), 'bin'];
  const data = () => serverFrames(raw.received()).filter((f) => f.opcode !== OPCODE.pong);
  await waitFor(() => data().length === expected.length, 2000, 'every echo');
  t.same(data().map((f) => f.payload), expected, 'echoed whole and in order (the upstream reassembled the fragmented message)');
  t.same(data().map((f) => f.opcode), [...expected.slice(0, -1).map(() => OPCODE.text), OPCODE.binary]);
  t.ok(serverFrames(raw.received()).some((f) => f.opcode === OPCODE.pong && f.payload === 'p'), 'the upstream answered the ping in the middle of the message');
});

t.test('an inspected STOMP socket: SEND frames pass unread, SUBSCRIBE is followed, the ACK of an injected message is still cut', async (t) => {
  const shown: string[] = [];
  let tracker: FramingTracker | undefined;
  const inspection = {
    inspects: () => true,
    trackerFor(path: string, protocol: string) {
      const tr = new FramingTracker({ setting: 'stomp', path, protocol, isNotificationDestination: notificationDestinationRule([]), observer: { detected() {}, subscribed() {}, injected() {}, unwarnable() {} } });
      const read = tr.clientMessage.bind(tr);
      tr.clientMessage = (data, isBinary) => {
        shown.push(data.toString());
        return read(data, isBinary);
      };
      tracker = tr;
      return tr;
    },
  };
  const proxy = await startProxy(upstream.url, { inspection });
  t.teardown(() => proxy.close());
  const raw = await rawUpgrade(proxy.port, '/ws/echo');
  t.teardown(() => raw.socket.destroy());
  const echoed = () => serverFrames(raw.received()).map((f) => f.payload);
  const connect = 'CONNECT\naccept-version:1.2\nhost:x\n\n\0';
  const subscribe = 'SUBSCRIBE\nid:n\ndestination:/user/queue/notifications\nack:client-individual\n\n\0';
  const bigSend = `SEND\ndestination:/app/data\ncontent-type:text/plain\n\n${'d'.repeat(3000)}\0`;
  const smallSend = 'SEND\ndestination:/app/data\n\nsmall\0';
  // one TCP write: control frames, a SEND of 3 KiB (under the 4 KiB inspection limit) and a small one
  raw.socket.write(Buffer.concat([connect, subscribe, bigSend, smallSend].map((s) => frame(OPCODE.text, Buffer.from(s)))));
  await waitFor(() => echoed().length === 4, 5000, 'four echoes');
  t.same(echoed(), [connect, subscribe, bigSend, smallSend], 'every frame reached the upstream unchanged and in order');
  t.same(shown, [connect, subscribe], 'only CONNECT and SUBSCRIBE were unmasked and shown to the inspector');
  t.equal(tracker!.reachability().warnable, true, 'the notification subscription was followed');

  const [message] = tracker!.encode(timeoutNotification(1));
  const id = /\nmessage-id:([^\n]+)\n/.exec(message!)![1]!;
  const ack = `ACK\nid:${id}\n\n\0`;
  const after = 'SEND\ndestination:/app/data\n\nafter the ack\0';
  raw.socket.write(Buffer.concat([ack, after].map((s) => frame(OPCODE.text, Buffer.from(s)))));
  await waitFor(() => echoed().length === 5, 5000, 'the SEND after the ACK');
  t.same(echoed().slice(4), [after], 'the ACK of the injected message never reached the upstream');
  t.same(shown.slice(2), [ack], 'the ACK was shown to the inspector, the SEND was not');
});

t.test('upstream bytes arrive intact while the client stalls now and then (reads into a reused buffer, writes left queued)', async (t) => {
  const messageBytes = 256 * 1024;
  const totalMiB = 16;
  const proxy = await startProxy(upstream.url);
  t.teardown(() => proxy.close());
  const ws = new WebSocket(wsUrl(proxy, `/ws/flood?mb=${totalMiB}`));
  const expected = Array.from({ length: 256 }, (_, i) => Buffer.alloc(messageBytes, i));
  let messages = 0;
  let intact = 0;
  ws.on('message', (data: Buffer) => {
    if (data.equals(expected[messages % 256]!)) intact++;
    messages++;
  });
  await once(ws, 'open');
  // stall the client a few times: the proxy's writes to it stop going out at once
  for (let i = 0; i < 4 && messages < (totalMiB * 4); i++) {
    ws.pause();
    await new Promise((r) => setTimeout(r, 50));
    ws.resume();
    await new Promise((r) => setTimeout(r, 20));
  }
  await waitFor(() => messages === totalMiB * 4, 20000, 'every message');
  t.equal(intact, messages, 'every byte of every message as the upstream sent it, in order');
  ws.close();
  await once(ws, 'close');
});
