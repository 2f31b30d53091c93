/**
 * Hardening, group 3b: WebSocket peers that do not keep up. The proxy runs as its own process
 * (`node dist/main.js`, as in production) so its memory can be read on its own, from the
 * process_resident_memory_bytes metric of its admin listener; the upstream and the clients run
 * here. Figures are printed; the assertions only say "bounded", with a generous margin.
 *
 *   - a client that never reads while the upstream pushes 64 KiB frames as fast as it may;
 *   - a client that sends thousands of small frames per second (all relayed, in order);
 *   - a client that floods an upstream that never reads (back-pressured, memory bounded).
 */
import t, { type Test } from 'tap';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { freePort, sleep, startProxyProcess, type ProxyProcess } from './helpers/process.js';
import { rawUpgrade } from './helpers/raw-ws.js';

const MIB = 1024 * 1024;
const FRAME_BYTES = 64 * 1024;
const MAX_BUFFERED_BYTES = 1 * MIB;
/** "not unbounded": far above what the proxy should hold (about 2 x MAX_BUFFERED_BYTES per pair) */
const GROWTH_LIMIT_BYTES = 64 * MIB;
const PRESSURE_MS = 3000;

interface PressureUpstream {
  url: string;
  pushedBytes: number;
  sinkFrames: number;
  sinkInOrder: boolean;
  close(): Promise<void>;
}

/** /push: 64 KiB frames as fast as its own socket takes them; /sink: counts; /deaf: never reads; /echo */
async function startPressureUpstream(): Promise<PressureUpstream> {
  const server = http.createServer((_req, res) => res.end('pressure upstream'));
  const wss = new WebSocketServer({ noServer: true, maxPayload: 0 });
  const state: PressureUpstream = { url: '', pushedBytes: 0, sinkFrames: 0, sinkInOrder: true, close: async () => undefined };
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => undefined);
      const path = req.url ?? '/';
      if (path === '/push') {
        const chunk = Buffer.alloc(FRAME_BYTES, 7);
        const pump = () => {
          // never queue more than 4 MiB here: the pressure must be on the proxy, not on us
          while (ws.readyState === WebSocket.OPEN && ws.bufferedAmount < 4 * MIB) {
            ws.send(chunk, { binary: true });
            state.pushedBytes += FRAME_BYTES;
          }
          if (ws.readyState === WebSocket.OPEN) setTimeout(pump, 5);
        };
        pump();
      } else if (path === '/sink') {
        let expected = 0;
        ws.on('message', (data) => {
          if (Number(String(data).split(':', 1)[0]) !== expected++) state.sinkInOrder = false;
          state.sinkFrames++;
        });
      } else if (path === '/deaf') {
        ws.pause();
      } else {
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = async () => {
    for (const ws of wss.clients) ws.terminate();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return state;
}

async function residentBytes(proxy: ProxyProcess): Promise<number> {
  const res = await request(`${proxy.adminUrl}/metrics`);
  const text = await res.body.text();
  const value = /^process_resident_memory_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)/m.exec(text)?.[1];
  if (value === undefined) throw new Error('process_resident_memory_bytes not in /metrics');
  return Number(value);
}

/** Samples the proxy's RSS every 100 ms while `during` runs; returns the peak. */
async function peakResident(proxy: ProxyProcess, during: Promise<unknown>): Promise<number> {
  let peak = 0;
  let done = false;
  void during.finally(() => { done = true; });
  while (!done) {
    peak = Math.max(peak, await residentBytes(proxy));
    await sleep(100);
  }
  return Math.max(peak, await residentBytes(proxy));
}

async function echoWorks(t: Test, proxy: ProxyProcess, label: string): Promise<void> {
  const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/echo`);
  await once(ws, 'open');
  const reply = once(ws, 'message');
  ws.send('alive?');
  t.equal(String((await reply)[0]), 'alive?', `${label}: the proxy still relays`);
  ws.close();
}

const mib = (bytes: number) => `${(bytes / MIB).toFixed(1)} MiB`;

t.test('peers that do not keep up: back-pressure keeps the proxy\'s memory bounded', async (t) => {
  const upstream = await startPressureUpstream();
  t.teardown(() => upstream.close());
  const dir = await mkdtemp(join(tmpdir(), 'stp-pressure-'));
  await writeFile(join(dir, 'Panopticon.properties'), 'timeout.session.enabled=false\n');
  const proxy = await startProxyProcess(t, {
    PROXY_UPSTREAM: upstream.url,
    PROXY_HOST: '127.0.0.1',
    PROXY_PORT: String(await freePort()),
    PROXY_ADMIN_PORT: String(await freePort()),
    PROXY_PROPERTIES: join(dir, 'Panopticon.properties'),
    PROXY_WS_MAX_BUFFERED_BYTES: String(MAX_BUFFERED_BYTES),
    PROXY_LOG_LEVEL: 'info',
    PROXY_SHUTDOWN_GRACE_MS: '1000',
  });
  const port = Number(new URL(proxy.url).port);

  // warm up (JIT, buffer pools) with a client that does read, then take the baseline
  {
    const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/push`);
    let got = 0;
    ws.on('message', (d: Buffer) => { got += d.length; });
    await once(ws, 'open');
    while (got < 64 * MIB) await sleep(20);
    ws.terminate();
    await sleep(300);
  }
  const baseline = await residentBytes(proxy);
  t.comment(`proxy process RSS at rest after warm-up: ${mib(baseline)}`);

  await t.test('a client that never reads while the upstream pushes', async (t) => {
    const pushedBefore = upstream.pushedBytes;
    const client = await rawUpgrade(port, '/push');
    client.socket.pause(); // never read again
    const peak = await peakResident(proxy, sleep(PRESSURE_MS));
    const pushed = upstream.pushedBytes - pushedBefore;
    const growth = peak - baseline;
    t.comment(`non-reading client: the upstream got ${mib(pushed)} off its hands, then stalled; proxy RSS peak ${mib(peak)}, growth ${mib(growth)} (PROXY_WS_MAX_BUFFERED_BYTES ${mib(MAX_BUFFERED_BYTES)})`);
    t.ok(growth < GROWTH_LIMIT_BYTES, `growth ${mib(growth)} stays under ${mib(GROWTH_LIMIT_BYTES)}`);
    const later = upstream.pushedBytes;
    await sleep(300);
    t.ok(upstream.pushedBytes - later <= 8 * MIB, 'the upstream is held back (nothing much moves any more)');
    client.socket.destroy();
    await echoWorks(t, proxy, 'after the non-reading client');
  });

  await t.test('a client sending thousands of small frames per second: every one relayed, in order', async (t) => {
    const frames = 20_000;
    const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/sink`);
    await once(ws, 'open');
    const started = Date.now();
    for (let i = 0; i < frames; i++) {
      ws.send(`${i}:${'x'.repeat(90)}`);
      while (ws.bufferedAmount > MIB) await sleep(1);
    }
    const deadline = Date.now() + 20_000;
    while (upstream.sinkFrames < frames && Date.now() < deadline) await sleep(20);
    const tookMs = Date.now() - started;
    t.equal(upstream.sinkFrames, frames, `all ${frames} frames reached the upstream`);
    t.ok(upstream.sinkInOrder, 'in order');
    t.comment(`burst: ${frames} frames relayed in ${tookMs} ms (${Math.round(frames / (tookMs / 1000))} frames/s)`);
    ws.close();
  });

  await t.test('a client that floods an upstream that never reads', async (t) => {
    const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/deaf`);
    ws.on('error', () => undefined);
    await once(ws, 'open');
    const chunk = Buffer.alloc(FRAME_BYTES, 3);
    let handedOver = 0;
    let stop = false;
    const flood = (async () => {
      while (!stop && ws.readyState === WebSocket.OPEN) {
        // our own queue stays small; what piles up must pile up in the proxy (if anywhere)
        if (ws.bufferedAmount > 4 * MIB) { await sleep(5); continue; }
        ws.send(chunk);
        handedOver += FRAME_BYTES;
        if (handedOver % MIB === 0) await sleep(0);
      }
    })();
    const peak = await peakResident(proxy, sleep(PRESSURE_MS));
    stop = true;
    await flood;
    const growth = peak - baseline;
    t.comment(`flooding client: ${mib(handedOver)} handed to the kernel before the proxy stopped reading; proxy RSS peak ${mib(peak)}, growth ${mib(growth)}`);
    t.ok(growth < GROWTH_LIMIT_BYTES, `growth ${mib(growth)} stays under ${mib(GROWTH_LIMIT_BYTES)}`);
    ws.terminate();
    await echoWorks(t, proxy, 'after the flood');
  });

  await t.test('shutdown is not held up by a pair stuck in back-pressure', async (t) => {
    // the flooding client above is gone, but its half of the pair is paused and never saw it go
    const askedMs = Date.now();
    const exit = await proxy.stop(10_000);
    t.equal(exit.code, 0, 'exit code 0 after SIGTERM');
    // the forced cut at the grace period also exits with 0; it is told apart by its log line
    t.notOk(proxy.logs.some((l) => l['event'] === 'shutdown-grace-expired'), 'a clean exit, not the forced one after the grace period');
    t.ok(proxy.logs.some((l) => l['event'] === 'shutdown'), 'the shutdown was logged (the log is being read)');
    t.comment(`stopped ${exit.atMs - askedMs} ms after SIGTERM (PROXY_SHUTDOWN_GRACE_MS=1000)`);
  });
});
