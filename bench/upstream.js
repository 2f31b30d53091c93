/**
 * The benchmark upstream (its own process): plain node:http with keep-alive.
 *
 *   GET …/big                                   1 MiB JSON
 *   GET <whoami path>                            {"username": <sub of the ptoken cookie>}
 *   anything else                                a 1 KiB JSON document
 *   WebSocket /ws/echo                           echoes every message
 *   WebSocket /ws/live?ms=N                      pushes 1 KiB JSON text frames (live data) for N ms as fast as
 *                                                the client reads them (own back-pressure), then closes 1000
 *   WebSocket /ws/push?ms=N                      pushes 64 KiB binary frames for N ms (own back-pressure:
 *                                                waits while more than 1 MiB is queued), then closes
 */
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { serve, failed } from './lib/ipc.js';

export const SMALL_BYTES = 1024;
export const BIG_BYTES = 1024 * 1024;
const PUSH_FRAME_BYTES = 64 * 1024;
const PUSH_MAX_QUEUED = 1024 * 1024;
const PUSH_MAX_MS = 15_000;

function jsonOfSize(size) {
  const head = '{"status":"ok","rows":[],"padding":"';
  const tail = '"}';
  return Buffer.from(head + 'x'.repeat(size - head.length - tail.length) + tail);
}

const small = jsonOfSize(SMALL_BYTES);
const big = jsonOfSize(BIG_BYTES);
const whoamiPath = process.env.BENCH_WHOAMI_PATH ?? '/panopticon/server/rest/server/myself';

function subOfCookie(cookie) {
  const m = /(?:^|;\s*)ptoken=([^;]+)/.exec(cookie ?? '');
  if (!m) return undefined;
  try {
    return JSON.parse(Buffer.from(m[1].split('.')[1], 'base64url').toString('utf8')).sub;
  } catch {
    return undefined;
  }
}

const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  // drain any request body before answering (keeps keep-alive connections reusable)
  req.resume();
  if (path === whoamiPath) {
    const user = subOfCookie(req.headers.cookie);
    if (!user) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
      return;
    }
    const body = JSON.stringify({ username: user });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    return;
  }
  const body = path.endsWith('/big') ? big : small;
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.headersTimeout = 65_000;
let connections = 0;
server.on('connection', () => { connections++; });

/** the live-data pusher keeps at most this much queued (it pushes as fast as the reader reads) */
const LIVE_MAX_QUEUED = 256 * 1024;
const pushStats = { sessions: 0, framesSent: 0, bytesSent: 0, maxQueuedBytes: 0, lastDurationMs: 0 };

const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
wss.on('connection', (ws, req) => {
  ws.on('error', () => {});
  const url = new URL(req.url ?? '/', 'http://upstream');
  if (url.pathname === '/ws/echo') {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    return;
  }
  if (url.pathname === '/ws/live') {
    const ms = Math.min(Number(url.searchParams.get('ms') ?? 5000) || 5000, PUSH_MAX_MS);
    const frame = Buffer.from(JSON.stringify({ type: 'tick', rows: 'x'.repeat(1000) }).slice(0, 1024));
    const end = Date.now() + ms;
    const pump = () => {
      if (ws.readyState !== ws.OPEN) return;
      if (Date.now() >= end) {
        ws.close(1000, 'live done');
        return;
      }
      for (let i = 0; i < 256 && ws.bufferedAmount < LIVE_MAX_QUEUED; i++) ws.send(frame, { binary: false });
      setImmediate(pump);
    };
    pump();
    return;
  }
  if (url.pathname === '/ws/push') {
    const ms = Math.min(Number(url.searchParams.get('ms') ?? 5000) || 5000, PUSH_MAX_MS);
    const frame = Buffer.alloc(PUSH_FRAME_BYTES, 7);
    const started = Date.now();
    const end = started + ms;
    pushStats.sessions++;
    pushStats.framesSent = 0;
    pushStats.bytesSent = 0;
    pushStats.maxQueuedBytes = 0;
    const pump = () => {
      if (ws.readyState !== ws.OPEN) return;
      if (Date.now() >= end) {
        pushStats.lastDurationMs = Date.now() - started;
        ws.close(1000, 'push done');
        return;
      }
      // bounded: at most PUSH_MAX_QUEUED / frame size frames per turn
      for (let i = 0; i < PUSH_MAX_QUEUED / PUSH_FRAME_BYTES && ws.bufferedAmount < PUSH_MAX_QUEUED; i++) {
        ws.send(frame, { binary: true });
        pushStats.framesSent++;
        pushStats.bytesSent += PUSH_FRAME_BYTES;
      }
      pushStats.maxQueuedBytes = Math.max(pushStats.maxQueuedBytes, ws.bufferedAmount);
      setTimeout(pump, 2);
    };
    pump();
    return;
  }
  ws.close(1008, 'unknown path');
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  serve(async (msg) => {
    if (msg.cmd === 'pushStats') return { ...pushStats };
    if (msg.cmd === 'connections') return connections;
    if (msg.cmd === 'mem') return process.memoryUsage();
    throw new Error(`unknown command ${msg.cmd}`);
  }, { url: `http://127.0.0.1:${port}`, port }, async () => {
    for (const c of wss.clients) c.terminate();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
}).on('error', failed);
