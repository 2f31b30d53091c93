import { request } from 'undici';
/**
 * Notifications in the socket's own protocol, through real sockets: a strict STOMP server behind
 * the proxy, @stomp/stompjs (over `ws`, sub-protocol v12.stomp) and sockjs-client in front of it.
 */
import t, { type Test } from 'tap';
import { MINUTE_MS } from '../src/properties/settings.js';
import { startFramingStack, type FramingStack } from './helpers/framing-stack.js';
import { openStrictClient, type StrictStompClient } from './helpers/stomp-client.js';
import { eventually } from './helpers/stack.js';

const WARNING = '{"TimeoutNotification":{"minutesUntilTimeout":1}}';
const LOGOUT = '{"LogoutNotification":{"reason":"Logged out due to session timeout"}}';
const NOTIFY = '/user/queue/notifications';
const PRICES = '/topic/prices';
const STOMP_PATH = '/panopticon/stomp';
const SOCKJS_PREFIX = '/panopticon/sockjs';

function bodies(c: StrictStompClient, destination: string): string[] {
  return (c.delivered.get(destination) ?? []).map((m) => m.body);
}

async function openPlain(s: FramingStack, user: string): Promise<StrictStompClient> {
  return openStrictClient({ url: s.wsUrl + STOMP_PATH, sockjs: false, headers: { 'x-user': user } });
}

/** the user did something, then the clock runs to the warning */
async function idleUntilWarning(t: Test, s: FramingStack, user: string): Promise<void> {
  t.equal(await s.get(user, '/panopticon/dashboards/sales'), 200, 'a counted request');
  s.clock.advance(9 * MINUTE_MS);
}

t.test('plain STOMP socket: one warning and one logout MESSAGE on the notification subscription, none on data', async (t) => {
  const s = await startFramingStack(t);
  t.equal(await s.get('alice', '/panopticon/'), 200);
  const c = await openPlain(s, 'alice');
  const notify = c.subscribe(NOTIFY);
  c.subscribe(PRICES);
  const broker = await s.upstream.session(/\/stomp$/);
  await eventually('both subscriptions reached the server', () => broker.subscriptions.size === 2);
  broker.push(PRICES, 'p1');
  await eventually('first price', () => bodies(c, PRICES).length === 1);

  await idleUntilWarning(t, s, 'alice');
  await eventually('warning delivered', () => bodies(c, NOTIFY).length === 1);
  broker.push(PRICES, 'p2');
  await eventually('second price', () => bodies(c, PRICES).length === 2);
  s.clock.advance(MINUTE_MS);
  await c.closed;

  t.same(bodies(c, NOTIFY), [WARNING, LOGOUT], 'exactly one warning and one logout, with the documented JSON');
  t.same(bodies(c, PRICES), ['p1', 'p2'], 'the data subscription got only its own messages');
  const [warn, logout] = c.delivered.get(NOTIFY)!;
  t.equal(warn!.headers.subscription, notify.id, 'subscription is the client id');
  t.equal(warn!.headers.destination, NOTIFY);
  t.equal(warn!.headers['content-type'], 'application/json');
  t.equal(warn!.headers['content-length'], String(Buffer.byteLength(WARNING)));
  t.not(warn!.headers['message-id'], logout!.headers['message-id'], 'each injected message has its own id');
  t.notOk('ack' in warn!.headers, 'no ack header on an auto-ack subscription');
  t.same(c.problems, [], 'the strict client saw no malformed, unhandled or ERROR frame');
  t.same(broker.errors, [], 'the server saw nothing it would refuse');
  t.same(broker.received.map((f) => f.command), ['CONNECT', 'SUBSCRIBE', 'SUBSCRIBE'], 'nothing of the injection reached the server');

  const report = s.proxy.framingReport.snapshot().find((p) => p.path === STOMP_PATH);
  t.match(report, { framing: { stomp: 1 }, notificationsInjected: 2, unwarnableSockets: 0 });
  t.same(new Set(report?.destinations), new Set([{ destination: NOTIFY, subscriptions: 1 }, { destination: PRICES, subscriptions: 1 }]));
  const upstreamView = (await (await request(`${s.proxy.adminUrl}/admin/upstream`)).body.json()) as { websocket: Array<{ path: string }> };
  t.same(upstreamView.websocket.find((p) => p.path === STOMP_PATH), JSON.parse(JSON.stringify(report)), 'GET /admin/upstream shows the same framing row');
});

t.test('client-individual acknowledgements: injected messages carry ack, their ACKs never reach the server', async (t) => {
  const s = await startFramingStack(t);
  const c = await openPlain(s, 'bob');
  c.subscribe(NOTIFY, { ack: 'client-individual', ackEach: true });
  const broker = await s.upstream.session(/\/stomp$/);
  await eventually('subscribed', () => broker.subscriptions.size === 1);
  broker.push(NOTIFY, 'server news');
  await eventually('server message acknowledged', () => broker.received.some((f) => f.command === 'ACK'));

  await idleUntilWarning(t, s, 'bob');
  await eventually('warning delivered', () => bodies(c, NOTIFY).length === 2);
  const warn = c.delivered.get(NOTIFY)![1]!;
  t.equal(warn.body, WARNING);
  t.equal(warn.headers.ack, warn.headers['message-id'], 'STOMP 1.2 MESSAGE on a client-ack subscription carries ack');
  // the client acknowledged the warning; the server hears only what it sent itself
  c.client.publish({ destination: '/app/echo', body: 'after the ack' });
  await eventually('a later frame passed', () => broker.received.some((f) => f.command === 'SEND'));
  t.same(broker.received.filter((f) => f.command === 'ACK').length, 1, 'only the ACK of the server\'s own message was forwarded');
  t.same(broker.errors, [], 'no ACK for an unknown message reached the server');
  t.same(c.problems, []);
  s.clock.advance(MINUTE_MS);
  await c.closed;
  t.same(bodies(c, NOTIFY), ['server news', WARNING, LOGOUT]);
  t.same(broker.errors, []);
});

t.test('a STOMP socket without a notification subscription gets nothing, and the admin view says so', async (t) => {
  const s = await startFramingStack(t);
  const c = await openPlain(s, 'carol');
  c.subscribe(PRICES);
  const broker = await s.upstream.session(/\/stomp$/);
  await eventually('subscribed', () => broker.subscriptions.size === 1);
  await idleUntilWarning(t, s, 'carol');
  broker.push(PRICES, 'after the warning time');
  await eventually('price', () => bodies(c, PRICES).length === 1);

  const view = await s.adminSession('carol');
  t.match(view.reachability, {
    warnableSockets: 0,
    unwarnableSockets: [{ path: STOMP_PATH, framing: 'stomp', warnable: false, reason: 'no-notification-subscription' }],
    httpTransport: null,
  });
  t.same(bodies(c, PRICES), ['after the warning time'], 'nothing was injected into the data subscription');
  t.equal(c.raw.filter((m) => m.includes('TimeoutNotification')).length, 0, 'no warning anywhere on the socket');
  t.match(s.proxy.framingReport.snapshot().find((p) => p.path === STOMP_PATH), { notificationsInjected: 0, unwarnableSockets: 1 });
  s.clock.advance(MINUTE_MS);
  await c.closed;
  t.same(c.problems, []);
});

t.test('a notification is never written inside a fragmented message', async (t) => {
  const s = await startFramingStack(t);
  const c = await openPlain(s, 'dave');
  c.subscribe(NOTIFY);
  c.subscribe(PRICES);
  const broker = await s.upstream.session(/\/stomp$/);
  await eventually('subscribed', () => broker.subscriptions.size === 2);
  const big = 'x'.repeat(64 * 1024);
  const pending = broker.pushFragmented(PRICES, big);
  await new Promise((r) => setTimeout(r, 50)); // the first fragment is on its way
  await idleUntilWarning(t, s, 'dave');
  // the warning is due now, while the upstream's message is half sent: it must go before the
  // message (a relay of whole messages) or after it (a relay of frames), never inside
  await new Promise((r) => setTimeout(r, 100));
  pending.finish();
  await eventually('fragmented message delivered', () => bodies(c, PRICES).length === 1);
  await eventually('warning delivered', () => bodies(c, NOTIFY).length === 1);
  t.equal(bodies(c, PRICES)[0], big, 'the fragmented message arrived whole');
  t.same(bodies(c, NOTIFY), [WARNING]);
  t.same(c.problems, [], 'every message the client got is whole STOMP frames');
  await c.close();
});

t.test('SockJS + STOMP (sockjs-client): the MESSAGE goes inside a["…"], o/h/a pass untouched', async (t) => {
  const s = await startFramingStack(t);
  const c = await openStrictClient({ url: s.proxy.url + SOCKJS_PREFIX, sockjs: true, headers: { 'x-user': 'erin' } });
  const notify = c.subscribe('/topic/notification/erin', { ack: 'client', ackEach: true });
  c.subscribe(PRICES);
  const broker = await s.upstream.session(/\/websocket$/);
  await eventually('subscribed', () => broker.subscriptions.size === 2);
  broker.push(PRICES, 'p1');
  await eventually('price', () => bodies(c, PRICES).length === 1);

  await idleUntilWarning(t, s, 'erin');
  await eventually('warning delivered', () => bodies(c, '/topic/notification/erin').length === 1);
  broker.push(PRICES, 'p2');
  await eventually('price 2', () => bodies(c, PRICES).length === 2);
  s.clock.advance(MINUTE_MS);
  await c.closed;

  t.same(bodies(c, '/topic/notification/erin'), [WARNING, LOGOUT]);
  t.same(bodies(c, PRICES), ['p1', 'p2']);
  t.equal(c.delivered.get('/topic/notification/erin')![0]!.headers.subscription, notify.id);
  t.ok(c.raw.some((m) => m.startsWith('a[') && m.includes('TimeoutNotification')), 'the warning travelled as a SockJS a[…] frame');
  t.equal(c.raw[0], 'o', 'the open frame passed first');
  t.same(c.problems, []);
  t.same(broker.errors, [], 'the client ACKs of injected messages did not reach the server');
  t.notOk(broker.received.some((f) => f.command === 'ACK'), 'no ACK forwarded (the server sent nothing to ack)');
  const report = s.proxy.framingReport.snapshot().find((p) => p.path === `${SOCKJS_PREFIX}/{server}/{session}/websocket`);
  t.match(report, { framing: { 'sockjs-stomp': 1 }, notificationsInjected: 2 }, 'reported without the session ids');
});

t.test('requests of HTTP socket transports never count as activity; the admin view names the transport', async (t) => {
  const s = await startFramingStack(t);
  t.equal(await s.get('frank', '/panopticon/dashboards/sales'), 200);
  const counted = (await s.adminSession('frank')).lastActivity as { atMs: number; path: string };
  s.clock.advance(MINUTE_MS);
  for (const [method, path] of [
    ['POST', `${SOCKJS_PREFIX}/123/abcdefgh/xhr_streaming`],
    ['POST', `${SOCKJS_PREFIX}/123/abcdefgh/xhr`],
    ['POST', `${SOCKJS_PREFIX}/123/abcdefgh/xhr_send`],
    ['GET', `${SOCKJS_PREFIX}/123/abcdefgh/eventsource`],
    ['POST', '/panopticon/cometd/connect'],
  ] as const) {
    t.equal(await s.get('frank', path, method), 200, `${method} ${path} forwarded`);
  }
  await eventually('all five noted', async () => ((await s.adminSession('frank')).recent as unknown[]).length >= 6);
  const view = await s.adminSession('frank');
  t.same(view.lastActivity && (view.lastActivity as { atMs: number }).atMs, counted.atMs, 'the timer was not reset');
  const rules = (view.recent as Array<{ rule: string; counted: boolean }>).filter((n) => n.rule.startsWith('transport:'));
  t.same(rules.map((n) => n.rule), ['transport:sockjs-xhr_streaming', 'transport:sockjs-xhr', 'transport:sockjs-xhr_send', 'transport:sockjs-eventsource', 'transport:cometd-connect']);
  t.ok(rules.every((n) => !n.counted));
  t.match(view.reachability, { warnableSockets: 0, httpTransport: { transport: 'cometd-connect' } }, 'the user is on an HTTP transport and cannot be warned there');
});
