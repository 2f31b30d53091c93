/**
 * What inspecting a notification socket costs per relayed frame, measured on the relay's own code
 * path: a real byte relay (RawPair, dist/proxy/ws/ws-relay.js) between two stand-in TCP sockets
 * whose write() does nothing, fed 1 KiB live-data frames. "Not inspected" is a socket outside
 * PROXY_NOTIFY_PATHS; "inspected" carries a FramingTracker that has settled (STOMP CONNECTED and a
 * notification SUBSCRIBE seen), as on a live dashboard. Also: client→server frames (a 1 KiB SEND,
 * a small ACK) and encoding one notification.
 *
 *   node bench/lib/ws-inspection.js      (after npm run build) prints the table on its own
 */
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { median } from './stats.js';

const dist = new URL('../../dist/', import.meta.url);
/** the compiled modules measured (loaded on first use: dist/ exists only after a build) */
let m;
async function load() {
  const [relay, frames, tracker, policy, messages] = await Promise.all(['proxy/ws/ws-relay.js', 'proxy/ws/frames.js', 'notifications/framing/tracker.js', 'notifications/framing/policy.js', 'notifications/messages.js'].map((f) => import(new URL(f, dist).href)));
  m = { RawPair: relay.RawPair, encodeFrame: frames.encodeFrame, FramingTracker: tracker.FramingTracker, notificationDestinationRule: policy.notificationDestinationRule, timeoutNotification: messages.timeoutNotification };
}

const quiet = { detected() {}, subscribed() {}, injected() {}, unwarnable() {} };

/** stands in for a TCP socket: open, never backed up, write() drops the data */
class StandIn extends EventEmitter {
  destroyed = false;
  writableLength = 0;
  write(_data, cb) { if (cb) cb(); return true; }
  setNoDelay() {}
  cork() {}
  uncork() {}
  pause() {}
  resume() {}
  end() {}
  destroy() {}
}

function settledTracker(sockjs) {
  const path = sockjs ? '/p/sockjs/1/abc/websocket' : '/p/stomp';
  const tracker = new m.FramingTracker({ setting: 'auto', path, protocol: sockjs ? '' : 'v12.stomp', isNotificationDestination: m.notificationDestinationRule([]), observer: quiet });
  const wrap = (s) => Buffer.from(sockjs ? JSON.stringify([s]) : s);
  if (sockjs) tracker.serverMessage(Buffer.from('o'), false);
  tracker.clientMessage(wrap('CONNECT\naccept-version:1.2\n\n\0'), false);
  const connected = 'CONNECTED\nversion:1.2\n\n\0';
  tracker.serverMessage(Buffer.from(sockjs ? 'a' + JSON.stringify([connected]) : connected), false);
  tracker.clientMessage(wrap('SUBSCRIBE\nid:n\ndestination:/user/queue/notifications\nack:client\n\n\0'), false);
  tracker.clientMessage(wrap('SUBSCRIBE\nid:d\ndestination:/topic/prices\n\n\0'), false);
  if (tracker.watchesServer) throw new Error('tracker did not settle');
  return { tracker, wrap };
}

function pairWith(inspector) {
  const down = new StandIn();
  const up = new StandIn();
  new m.RawPair(down, up, { maxMessageBytes: 16 * 1024 * 1024, maxBufferedBytes: 4 * 1024 * 1024, deflate: false, inspector }, { onClosed() {}, onError() {}, onUnresponsive() {} });
  return { down, up };
}

/** ns per call of `fn`, one run of `n` calls */
function nsPerCall(fn, n) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  return Number(process.hrtime.bigint() - t0) / n;
}

/**
 * ns per call of each variant: `reps` rounds, every round runs every variant once (so a busy
 * moment on a shared machine hits them alike); the median round per variant.
 */
function compare(variants, n, reps) {
  const runs = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let r = 0; r < reps; r++) for (const [k, fn] of Object.entries(variants)) runs[k].push(nsPerCall(fn, n));
  return Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)]));
}

export async function measureInspection({ frames = 200_000, reps = 7 } = {}) {
  await load();
  const serverFrame = (b) => m.encodeFrame(1, b, false);
  const clientFrame = (b) => m.encodeFrame(1, b, true);
  const liveData = Buffer.from('MESSAGE\nsubscription:d\ndestination:/topic/prices\nmessage-id:1\n\n' + '{"p":' + '1'.repeat(950) + '}\0');
  const liveDataSockJs = Buffer.from('a' + JSON.stringify([liveData.toString()]));
  const send = (wrap) => wrap('SEND\ndestination:/app/x\n\n' + 'x'.repeat(1000) + '\0');
  const ack = (wrap) => wrap('ACK\nid:srv-7\n\n\0');

  const plain = pairWith(undefined);
  const stomp = settledTracker(false);
  const sockjs = settledTracker(true);
  const viaStomp = pairWith(stomp.tracker);
  const viaSockJs = pairWith(sockjs.tracker);
  const emitUp = (p, data) => { const frame = serverFrame(data); return () => p.up.emit('data', frame); };
  const emitDown = (p, data) => { const frame = clientFrame(data); return () => p.down.emit('data', frame); };

  const serverToClient = {
    notInspected: emitUp(plain, liveData),
    stomp: emitUp(viaStomp, liveData),
    sockjsStomp: emitUp(viaSockJs, liveDataSockJs),
  };
  const clientToServer = {
    notInspected: emitDown(plain, send((s) => Buffer.from(s))),
    stompSend: emitDown(viaStomp, send(stomp.wrap)),
    sockjsSend: emitDown(viaSockJs, send(sockjs.wrap)),
    stompAck: emitDown(viaStomp, ack(stomp.wrap)),
  };
  const encode = {
    stomp: () => stomp.tracker.encode(m.timeoutNotification(1)),
    sockjsStomp: () => sockjs.tracker.encode(m.timeoutNotification(1)),
  };
  // warm-up: JIT every path before timing
  for (const variants of [serverToClient, clientToServer, encode]) compare(variants, frames / 4, 1);
  return {
    serverToClient: compare(serverToClient, frames, reps),
    clientToServer: compare(clientToServer, frames, reps),
    encodeNs: compare(encode, frames / 10, reps),
  };
}

export function inspectionLines(r, fmt) {
  const s = r.serverToClient;
  const c = r.clientToServer;
  const delta = (v) => `${v >= 0 ? '+' : '−'}${fmt(Math.abs(v))} ns`;
  return [
    `server→client 1 KiB live data, relay per frame: not inspected ${fmt(s.notInspected)} ns, STOMP socket under inspection ${fmt(s.stomp)} ns (${delta(s.stomp - s.notInspected)}), SockJS+STOMP ${fmt(s.sockjsStomp)} ns (${delta(s.sockjsStomp - s.notInspected)})`,
    `client→server, relay per frame: 1 KiB SEND not inspected ${fmt(c.notInspected)} ns, inspected ${fmt(c.stompSend)} ns (SockJS ${fmt(c.sockjsSend)} ns); a small ACK (parsed, checked against injected ids) ${fmt(c.stompAck)} ns`,
    `encoding one notification: STOMP MESSAGE ${fmt(r.encodeNs.stomp)} ns, SockJS-wrapped ${fmt(r.encodeNs.sockjsStomp)} ns`,
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const fmt = (v) => (Math.round(v * 10) / 10).toLocaleString('en-US');
  for (const line of inspectionLines(await measureInspection(), fmt)) console.log(line);
}
