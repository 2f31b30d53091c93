/**
 * The framing modules on their own: the STOMP reader and writer, SockJS helpers, the per-socket
 * tracker's decisions and ACK filtering, the report's path shapes, the HTTP-transport rule.
 * (Real sockets: notify-stomp.test.ts.)
 */
import t from 'tap';
import { httpTransportOf } from '../src/activity/transports.js';
import { loadDeploymentConfig } from '../src/config/deployment.js';
import { timeoutNotification } from '../src/notifications/messages.js';
import type { FramingObserver, FramingSetting } from '../src/notifications/framing/inspector.js';
import { notificationDestinationRule } from '../src/notifications/framing/policy.js';
import { FramingReport, pathShape } from '../src/notifications/framing/report.js';
import { clientMessages, encodeServerMessages, isSessionPath } from '../src/notifications/framing/sockjs.js';
import { encodeMessage, parseFrames } from '../src/notifications/framing/stomp.js';
import { FramingTracker } from '../src/notifications/framing/tracker.js';
import { parseStrict } from './helpers/stomp-upstream.js';

const WARNING_JSON = '{"TimeoutNotification":{"minutesUntilTimeout":1}}';
const quiet: FramingObserver = { detected() {}, subscribed() {}, injected() {}, unwarnable() {} };

function tracker(path: string, protocol = '', setting: FramingSetting = 'auto', observer = quiet): FramingTracker {
  return new FramingTracker({ setting, path, protocol, isNotificationDestination: notificationDestinationRule([]), observer });
}
const text = (s: string) => Buffer.from(s);

t.test('STOMP reader: several frames, heart-beats, CR LF, escapes, content-length with NULs and UTF-8', async (t) => {
  const msg = '\n\r\nSUBSCRIBE\r\nid:a\\cb\ndestination:/x\\n\\\\y\ndestination:/ignored\n\n\0'
    + 'SEND\ndestination:/app\ncontent-length:4\n\nä\0b\0\n'
    + 'ACK\nid:7\n\n\0';
  const frames = parseFrames(msg, '1.2');
  t.same(frames.map((f) => f.command), ['SUBSCRIBE', 'SEND', 'ACK']);
  t.equal(frames[0]!.headers.get('id'), 'a:b', '\\c unescaped');
  t.equal(frames[0]!.headers.get('destination'), '/x\n\\y', 'first repeated header wins, \\n and \\\\ unescaped');
  t.equal(msg.slice(frames[2]!.start, frames[2]!.end), 'ACK\nid:7\n\n\0', 'a body with a NUL inside content-length is skipped exactly');
  t.same(parseFrames('SUBSCRIBE\nid:1\n\n', '1.2'), [], 'a frame without its NUL is not returned');
  t.same(parseFrames('{"json":true}', '1.2'), [], 'garbage yields nothing');
  t.equal(parseFrames('CONNECT\nlogin:a\\cb\n\n\0', '1.2')[0]!.headers.get('login'), 'a\\cb', 'CONNECT headers are not unescaped');
});

t.test('STOMP writer: a MESSAGE a strict parser accepts, escaped per version', async (t) => {
  const frame = encodeMessage({ subscription: 'sub:1', destination: '/user/queue/notifications', messageId: 'm-1', ack: 'm-1', body: 'ä' + WARNING_JSON }, '1.2');
  const [parsed] = parseStrict(frame);
  t.equal(parsed!.command, 'MESSAGE');
  t.same(parsed!.headers, { subscription: 'sub\\c1', destination: '/user/queue/notifications', 'message-id': 'm-1', ack: 'm-1', 'content-type': 'application/json', 'content-length': String(Buffer.byteLength('ä' + WARNING_JSON)) });
  t.equal(parsed!.body, 'ä' + WARNING_JSON);
  t.ok(frame.endsWith('\0'));
  t.match(encodeMessage({ subscription: 'sub:1', destination: '/d', messageId: 'm', ack: undefined, body: '{}' }, '1.0'), /^MESSAGE\nsubscription:sub:1\n/, '1.0 has no escaping');
});

t.test('SockJS helpers', async (t) => {
  t.ok(isSessionPath('/panopticon/server/sockjs/123/abcdefgh/websocket'));
  t.notOk(isSessionPath('/panopticon/websocket'));
  t.notOk(isSessionPath('/a/b.c/d/websocket'));
  t.same(clientMessages('["CONNECT\\n\\n\\u0000","x"]'), ['CONNECT\n\n\0', 'x']);
  t.same(clientMessages('"one"'), ['one']);
  t.equal(clientMessages('[1]'), undefined);
  t.equal(encodeServerMessages(['a"b\0']), 'a["a\\"b\\u0000"]');
});

t.test('tracker decisions (auto)', async (t) => {
  const plain = tracker('/ws/notifications');
  t.same(plain.encode(timeoutNotification(1)), [WARNING_JSON], 'plain JSON before the client said anything');
  t.equal(plain.clientMessage(text('ping'), false)?.toString(), 'ping');
  t.equal(plain.framing, 'json');

  const sub = tracker('/ws', 'v12.stomp');
  t.same(sub.encode(timeoutNotification(1)), [], 'STOMP by sub-protocol, no notification subscription yet');
  t.match(sub.reachability(), { warnable: false, reason: 'no-notification-subscription' });
  sub.clientMessage(text('SUBSCRIBE\nid:s1\ndestination:/topic/Notifications\n\n\0SUBSCRIBE\nid:s2\ndestination:/topic/data\n\n\0'), false);
  const out = sub.encode(timeoutNotification(1));
  t.equal(out.length, 1, 'one message: only the notification subscription');
  t.match(parseStrict(out[0]!)[0], { headers: { subscription: 's1', destination: '/topic/Notifications' }, body: WARNING_JSON });
  sub.clientMessage(text('UNSUBSCRIBE\nid:s1\n\n\0'), false);
  t.same(sub.encode(timeoutNotification(1)), [], 'unsubscribed');

  const byConnect = tracker('/ws');
  byConnect.clientMessage(text('CONNECT\naccept-version:1.1\n\n\0'), false);
  t.equal(byConnect.framing, 'stomp', 'STOMP by the first client frame');

  const notOpened = tracker('/x/sockjs/1/abc/websocket');
  t.match(notOpened.reachability(), { framing: 'pending', warnable: false, reason: 'handshake-pending' });
  t.ok(notOpened.watchesServer);
  notOpened.serverMessage(text('CONNECTED\nversion:1.2\n\n\0'), false);
  t.equal(notOpened.framing, 'json', 'a SockJS-shaped path whose server does not open with "o" is not SockJS');

  const sj = tracker('/x/sockjs/1/abc/websocket');
  sj.serverMessage(text('o'), false);
  t.same(sj.encode(timeoutNotification(1)), ['a' + JSON.stringify([WARNING_JSON])], 'SockJS without STOMP: the bare JSON inside a[…]');
  t.equal(sj.framing, 'sockjs-json');
  t.notOk(sj.watchesServer, 'nothing more is read from the server');
});

t.test('tracker: ACK/NACK of injected messages are cut out, everything else passes', async (t) => {
  const st = tracker('/x/sockjs/1/abc/websocket');
  st.serverMessage(text('o'), false);
  t.equal(st.clientMessage(text('["CONNECT\\naccept-version:1.1\\n\\n\\u0000"]'), false)?.toString(), '["CONNECT\\naccept-version:1.1\\n\\n\\u0000"]');
  st.serverMessage(text('a["CONNECTED\\nversion:1.1\\n\\n\\u0000"]'), false);
  t.notOk(st.watchesServer, 'version known: server messages no longer read');
  st.clientMessage(text('["SUBSCRIBE\\nid:n\\ndestination:/user/queue/notifications\\nack:client\\n\\n\\u0000"]'), false);
  const [wrapped] = st.encode(timeoutNotification(1));
  const [frame] = parseStrict((JSON.parse(wrapped!.slice(1)) as string[])[0]!);
  t.notOk('ack' in frame!.headers, 'STOMP 1.1 has no ack header');
  const id = frame!.headers['message-id']!;
  const ack = `ACK\nsubscription:n\nmessage-id:${id}\n\n\0`;
  t.equal(st.clientMessage(text(JSON.stringify([ack])), false), undefined, 'a message holding only that ACK is dropped');
  const send = 'SEND\ndestination:/app/x\n\nhi\0';
  t.equal(st.clientMessage(text(JSON.stringify([ack + send, 'NACK\nmessage-id:srv-1\n\n\0'])), false)?.toString(), JSON.stringify([send, 'NACK\nmessage-id:srv-1\n\n\0']), 'other frames of the message are kept');
  const big = Buffer.from(JSON.stringify([ack + 'x'.repeat(5000)]));
  t.equal(st.clientMessage(big, false), big, 'a message above the control-frame size passes unread');
});

t.test('explicit framing settings skip detection', async (t) => {
  const forced = tracker('/anything', '', 'sockjs-stomp');
  forced.clientMessage(text('["SUBSCRIBE\\nid:1\\ndestination:/q/notification\\n\\n\\u0000"]'), false);
  t.match(forced.encode(timeoutNotification(1))[0], /^a\["MESSAGE\\nsubscription:1\\n/);
  t.same(tracker('/ws', 'v12.stomp', 'json').encode(timeoutNotification(1)), [WARNING_JSON]);
  t.throws(() => loadDeploymentConfig({ PROXY_UPSTREAM: 'http://u:1', PROXY_NOTIFY_FRAMING: 'mqtt' }), /PROXY_NOTIFY_FRAMING="mqtt" is not valid: expected one of auto, json, stomp, sockjs-json, sockjs-stomp/);
  t.same(loadDeploymentConfig({ PROXY_UPSTREAM: 'http://u:1', PROXY_NOTIFY_DESTINATIONS: '/user/queue/alerts, /topic/warn/**' }).notifyDestinations, ['/user/queue/alerts', '/topic/warn/**']);
});

t.test('notification destinations: default rule and globs', async (t) => {
  const byDefault = notificationDestinationRule([]);
  t.ok(byDefault('/user/queue/notifications'));
  t.ok(byDefault('/topic/NOTIFICATION/alice'));
  t.notOk(byDefault('/topic/prices'));
  const globs = notificationDestinationRule(['/user/queue/alerts', '/topic/warn/**']);
  t.ok(globs('/topic/warn/a/b'));
  t.notOk(globs('/user/queue/notifications'));
});

t.test('report: path shapes without ids, counts per framing and destination', async (t) => {
  t.equal(pathShape('/p/sockjs/123/abcdefgh/websocket'), '/p/sockjs/{server}/{session}/websocket');
  t.equal(pathShape('/p/ws/42/notifications'), '/p/ws/{id}/notifications');
  t.equal(pathShape('/p/ws/7f3c9a2e-1b2c-4d5e-8f90-123456789abc'), '/p/ws/{id}');
  const report = new FramingReport();
  const a = tracker('/p/sockjs/1/aaa/websocket', '', 'auto', report.forPath('/p/sockjs/1/aaa/websocket'));
  a.serverMessage(text('o'), false);
  a.clientMessage(text('["CONNECT\\n\\n\\u0000","SUBSCRIBE\\nid:1\\ndestination:/q/notification\\n\\n\\u0000"]'), false);
  a.encode(timeoutNotification(1));
  const b = tracker('/p/sockjs/2/bbb/websocket', '', 'auto', report.forPath('/p/sockjs/2/bbb/websocket'));
  b.serverMessage(text('o'), false);
  b.clientMessage(text('["CONNECT\\n\\n\\u0000"]'), false);
  b.encode(timeoutNotification(1));
  b.encode(timeoutNotification(1));
  t.same(report.snapshot(), [{
    path: '/p/sockjs/{server}/{session}/websocket',
    framing: { 'sockjs-stomp': 2 },
    destinations: [{ destination: '/q/notification', subscriptions: 1 }],
    notificationsInjected: 1,
    unwarnableSockets: 1,
  }]);
});

t.test('HTTP transports are recognised by their URL shape', async (t) => {
  t.equal(httpTransportOf('/panopticon/server/sockjs/123/abcd/xhr_streaming'), 'sockjs-xhr_streaming');
  t.equal(httpTransportOf('/sockjs/1/a/jsonp_send'), 'sockjs-jsonp_send');
  t.equal(httpTransportOf('/sockjs/xhr'), undefined, 'no session ids');
  t.equal(httpTransportOf('/a/b.c/d/xhr'), undefined);
  t.equal(httpTransportOf('/x/CometD/connect'), 'cometd-connect');
  t.equal(httpTransportOf('/api/meta/connect'), 'cometd-connect');
  t.equal(httpTransportOf('/api/connect'), undefined);
  t.equal(httpTransportOf('/panopticon/server/rest/dashboards'), undefined);
  t.equal(httpTransportOf('/a/b/c/websocket'), undefined, 'the WebSocket transport is not an HTTP request');
});

t.test('tracker: client messages are read until a socket is known to be plain JSON, and all along on STOMP', async (t) => {
  const json = tracker('/ws');
  t.ok(json.watchesClient, 'undecided: the first client message decides');
  json.clientMessage(text('{"hello":1}'), false);
  t.equal(json.framing, 'json');
  t.notOk(json.watchesClient, 'plain JSON: client messages pass unread from now on');
  const stomp = tracker('/ws');
  stomp.clientMessage(text('CONNECT\naccept-version:1.2\n\n\0'), false);
  t.ok(stomp.watchesClient, 'STOMP: SUBSCRIBE and ACK frames still matter');
  t.ok(tracker('/ws', 'v12.stomp').watchesClient, 'STOMP by sub-protocol');
  t.notOk(tracker('/ws', '', 'json').watchesClient, 'PROXY_NOTIFY_FRAMING=json: nothing to read from the client');
  const sj = tracker('/x/sockjs/1/abc/websocket');
  sj.serverMessage(text('o'), false);
  t.ok(sj.watchesClient, 'SockJS: the inner framing is still undecided');
  sj.clientMessage(text('["{\\"x\\":1}"]'), false);
  t.notOk(sj.watchesClient, 'SockJS + JSON decided');
});

t.test('tracker: a client message is judged by its first bytes — a STOMP SEND passes unread, control frames do not', async (t) => {
  const stomp = tracker('/ws', 'v12.stomp');
  const head = (s: string) => text(s).subarray(0, stomp.clientPeekBytes);
  t.ok(stomp.passesUnread(head('SEND\ndestination:/app/x\n\n' + 'x'.repeat(100) + '\0')), 'SEND: data');
  for (const command of ['SUBSCRIBE', 'UNSUBSCRIBE', 'ACK', 'NACK', 'CONNECT']) t.notOk(stomp.passesUnread(head(`${command}\nid:1\n\n\0`)), `${command}: read`);
  t.notOk(stomp.passesUnread(text('SEND')), 'too short to tell: read');
  const sj = tracker('/x/sockjs/1/abc/websocket', '', 'sockjs-stomp');
  t.ok(sj.passesUnread(head('["SEND\\ndestination:/app/x\\n\\nhi\\u0000"]')), 'SockJS: SEND inside ["…"]');
  t.notOk(sj.passesUnread(head('["ACK\\nid:1\\n\\n\\u0000"]')), 'SockJS: ACK is read');
  const undecided = tracker('/ws');
  t.notOk(undecided.passesUnread(head('SEND\n\n\0')), 'undecided framing: the first message is read');
  undecided.clientMessage(text('{"hello":1}'), false);
  t.ok(undecided.passesUnread(head('{"x":1}')), 'decided plain JSON: nothing is read');
});
