/**
 * The load generator, in its own process.
 *
 * Commands (IPC):
 *   http     {url, connections, durationS, cookies?}  wrk run when wrk is installed (request i sends
 *            cookies[i % n]), else autocannon (connection i sends cookies[i % n]); BENCH_AUTOCANNON=1 forces autocannon
 *   wsEcho   {url, clients, messages, window, cookie?, timeoutMs}  echo throughput: each client keeps
 *            `window` small text frames in flight until `messages` echoes came back
 *   wsLive   {url, clients, cookie?, timeoutMs}  server push: each client reads 1 KiB frames until the
 *            server closes; messages per second over all clients
 *   wsPause  {url, cookie?}   opens one client and stops reading from its socket (ws._socket.pause())
 *   wsPauseEnd                 reports what the paused client got, then terminates it
 */
import autocannon from 'autocannon';
import WebSocket from 'ws';
import { serve } from './lib/ipc.js';
import { runWrk, wrkBinary } from './lib/wrk.js';

function runAutocannon({ url, connections, durationS, cookies }) {
  return new Promise((resolve, reject) => {
    let next = 0;
    const opts = {
      url,
      connections,
      duration: durationS,
      pipelining: 1,
      timeout: 10,
    };
    if (cookies && cookies.length > 0) {
      opts.setupClient = (client) => {
        client.setHeaders({ cookie: cookies[next++ % cookies.length], accept: 'application/json' });
      };
    }
    const instance = autocannon(opts, (err, result) => {
      if (err) reject(err);
      else resolve(result);
    });
    instance.on('error', () => {});
  });
}

const wrk = process.env.BENCH_AUTOCANNON === '1' ? undefined : wrkBinary();

async function http(msg) {
  if (wrk) return runWrk(msg);
  const r = await runAutocannon(msg);
  return {
    rps: r.requests.total / r.duration,
    requests: r.requests.total,
    durationS: r.duration,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    bytesPerS: r.throughput.total / r.duration,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    tool: 'autocannon',
  };
}

function openSocket(url, cookie, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: cookie ? { cookie } : {}, perMessageDeflate: false });
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`no WebSocket open within ${timeoutMs} ms: ${url}`)); }, timeoutMs);
    ws.once('open', () => { clearTimeout(timer); resolve(ws); });
    ws.once('error', (err) => { clearTimeout(timer); reject(err); });
    ws.once('unexpected-response', (_req, res) => { clearTimeout(timer); res.resume(); reject(new Error(`upgrade refused with ${res.statusCode}: ${url}`)); });
  });
}

async function wsEcho({ url, clients, messages, window, cookie, timeoutMs = 20_000 }) {
  const sockets = await Promise.all(Array.from({ length: clients }, () => openSocket(url, cookie)));
  const payload = JSON.stringify({ type: 'tick', seq: 0, data: 'x'.repeat(40) });
  const started = process.hrtime.bigint();
  let timedOut = false;
  const runs = sockets.map((ws) => new Promise((resolve) => {
    let sent = 0;
    let received = 0;
    const timer = setTimeout(() => { timedOut = true; resolve(received); }, timeoutMs);
    ws.on('message', () => {
      received++;
      if (received >= messages) { clearTimeout(timer); resolve(received); return; }
      if (sent < messages) { ws.send(payload); sent++; }
    });
    ws.on('close', () => { clearTimeout(timer); resolve(received); });
    for (; sent < Math.min(window, messages); sent++) ws.send(payload);
  }));
  const received = (await Promise.all(runs)).reduce((a, b) => a + b, 0);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  for (const ws of sockets) ws.terminate();
  return { messages: received, seconds, msgsPerS: received / seconds, timedOut };
}

async function wsLive({ url, clients, cookie, timeoutMs = 30_000 }) {
  const sockets = await Promise.all(Array.from({ length: clients }, () => openSocket(url, cookie)));
  const started = process.hrtime.bigint();
  let timedOut = false;
  const counts = await Promise.all(sockets.map((ws) => new Promise((resolve) => {
    let received = 0;
    const timer = setTimeout(() => { timedOut = true; ws.terminate(); resolve(received); }, timeoutMs);
    ws.on('message', () => { received++; });
    ws.on('close', () => { clearTimeout(timer); resolve(received); });
  })));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const messages = counts.reduce((a, b) => a + b, 0);
  return { messages, seconds, msgsPerS: messages / seconds, timedOut };
}

let paused;
async function wsPause({ url, cookie }) {
  const ws = await openSocket(url, cookie);
  const state = { ws, bytesBeforePause: 0, closed: undefined };
  ws.on('message', (data) => { state.bytesBeforePause += data.length; });
  ws.on('close', (code) => { state.closed = code; });
  ws.on('error', () => {});
  ws._socket.pause();
  paused = state;
  return { opened: true };
}

async function wsPauseEnd() {
  if (!paused) return undefined;
  const { ws, bytesBeforePause, closed } = paused;
  paused = undefined;
  ws.terminate();
  return { bytesReadByClient: bytesBeforePause, closedCode: closed };
}

serve(async (msg) => {
  switch (msg.cmd) {
    case 'http': return http(msg);
    case 'tool': return { tool: wrk ? 'wrk' : 'autocannon' };
    case 'wsEcho': return wsEcho(msg);
    case 'wsLive': return wsLive(msg);
    case 'wsPause': return wsPause(msg);
    case 'wsPauseEnd': return wsPauseEnd();
    default: throw new Error(`unknown command ${msg.cmd}`);
  }
}, { pid: process.pid });
