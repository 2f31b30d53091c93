/**
 * Hardening, group 4a: an upstream that is down, dies mid-request, resets connections, never
 * answers, or answers with something that is not HTTP. The whole proxy runs (startProxy from
 * app.ts); each fault gets a clear 502/504 for HTTP and for WebSocket upgrades, readiness says so
 * while the upstream is gone, and the proxy recovers as soon as the upstream behaves again.
 */
import t, { type Test } from 'tap';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startProxy, type RunningProxy } from '../src/app.js';
import { loadDeploymentConfig } from '../src/config/deployment.js';
import { createLogger } from '../src/log.js';
import { startSimulator } from '../src/simulator/server.js';
import { freePort } from './helpers/process.js';
import { eventually, props, upgradeStatus } from './helpers/stack.js';

async function startAgainst(t: Test, upstreamUrl: string, env: Record<string, string> = {}): Promise<{ proxy: RunningProxy; lines: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'stp-faults-'));
  await writeFile(join(dir, 'Panopticon.properties'), props({ enabled: true, minutes: 30 }));
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(s) } });
  const config = loadDeploymentConfig({
    PROXY_UPSTREAM: upstreamUrl, PROXY_HOST: '127.0.0.1', PROXY_PORT: '0', PROXY_ADMIN_PORT: '0',
    PROXY_PROPERTIES: join(dir, 'Panopticon.properties'), PROXY_UPSTREAM_CONNECT_TIMEOUT_MS: '1000', ...env,
  });
  const proxy = await startProxy(config, { logger, defaultMetrics: false });
  t.teardown(() => proxy.close());
  return { proxy, lines };
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await request(url);
  return { status: res.statusCode, body: await res.body.text() };
}

const errorOf = (body: string) => (JSON.parse(body) as { error?: string }).error;

t.test('upstream down at start: the proxy starts, answers 502, is not ready; then recovers', async (t) => {
  const port = await freePort();
  const { proxy } = await startAgainst(t, `http://127.0.0.1:${port}`);
  const page = await get(`${proxy.url}/panopticon/login`);
  t.equal(page.status, 502, 'a page: 502');
  t.equal(errorOf(page.body), 'upstream_unreachable');
  t.equal(await upgradeStatus(`${proxy.url.replace('http', 'ws')}/panopticon/server/ws/notifications`, ''), 502, 'an upgrade: 502');
  const ready = await get(`${proxy.adminUrl}/readyz`);
  t.equal(ready.status, 503, 'admin /readyz: 503');
  t.same(JSON.parse(ready.body), { status: 'not-ready', checks: { settings: true, upstream: false } }, 'the upstream check is the one failing');
  t.equal((await get(`${proxy.adminUrl}/healthz`)).status, 200, 'but alive');

  const sim = await startSimulator({ port, logger: false });
  t.teardown(() => sim.close());
  await eventually('ready once the upstream is up', async () => (await get(`${proxy.adminUrl}/readyz`)).status === 200, 10_000);
  t.equal((await get(`${proxy.url}/panopticon/login`)).status, 200, 'pages are served');
  const login = await request(`${proxy.url}/panopticon/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=alice&password=alice' });
  await login.body.dump();
  t.equal(login.statusCode, 302, 'and logins work');
});

/** A TCP upstream whose behaviour for the next request can be switched; 'http' answers properly. */
type Mode = 'http' | 'reset-on-connect' | 'reset-after-request' | 'silent' | 'die-mid-request' | 'garbage-text' | 'garbage-binary' | 'bad-status-line' | 'bad-header' | 'half-response';

async function switchableUpstream() {
  let mode: Mode = 'http';
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    if (mode === 'reset-on-connect') {
      socket.resetAndDestroy();
      return;
    }
    socket.on('data', (chunk: Buffer) => {
      const isUpgrade = /\r\nupgrade: websocket/i.test(chunk.toString('latin1'));
      switch (mode) {
        case 'http':
          if (isUpgrade) socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
          else socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok');
          return;
        case 'reset-after-request': socket.resetAndDestroy(); return;
        case 'silent': return;
        case 'die-mid-request': setTimeout(() => socket.destroy(), 100); return;
        case 'garbage-text': socket.end('hello, this is not HTTP at all\r\n\r\n'); return;
        case 'garbage-binary': socket.end(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0xff, 0x00])); return;
        case 'bad-status-line': socket.end('HTTP/1.1 abc Weird\r\nContent-Length: 0\r\n\r\n'); return;
        case 'bad-header': socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad Header Line\r\n\r\nok'); return;
        case 'half-response': socket.end('HTTP/1.1 200 OK\r\nContent-Le'); return;
        default: socket.destroy();
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    set mode(m: Mode) {
      mode = m;
      for (const s of sockets) s.destroy(); // no kept-alive connection carries the old behaviour
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

t.test('each fault: a clear 502/504 for requests and upgrades, then the proxy serves again', async (t) => {
  const upstream = await switchableUpstream();
  t.teardown(() => upstream.close());
  const { proxy, lines } = await startAgainst(t, upstream.url, { PROXY_UPSTREAM_TIMEOUT_MS: '400' });
  const ws = proxy.url.replace('http', 'ws');
  const faults: Array<[Mode, number, string]> = [
    ['reset-on-connect', 502, 'upstream_error'],
    ['reset-after-request', 502, 'upstream_error'],
    ['die-mid-request', 502, 'upstream_error'],
    ['silent', 504, 'upstream_timeout'],
    ['garbage-text', 502, 'upstream_error'],
    ['garbage-binary', 502, 'upstream_error'],
    ['bad-status-line', 502, 'upstream_error'],
    ['bad-header', 502, 'upstream_error'],
    ['half-response', 502, 'upstream_error'],
  ];
  let inputs = 0;
  for (const [mode, status, problem] of faults) {
    upstream.mode = mode;
    for (const method of ['GET', 'POST']) {
      inputs++;
      const res = await request(`${proxy.url}/panopticon/x?fault=${mode}`, { method: method as 'GET', body: method === 'POST' ? 'payload' : undefined });
      const body = await res.body.text();
      t.equal(res.statusCode, status, `${mode}, ${method}: ${status}`);
      t.equal(errorOf(body), problem, `${mode}, ${method}: ${problem}`);
    }
    inputs++;
    t.equal(await upgradeStatus(`${ws}/panopticon/server/ws/notifications`, ''), status, `${mode}, upgrade: ${status}`);
    upstream.mode = 'http';
    const ok = await get(`${proxy.url}/panopticon/x`);
    t.equal(ok.status, 200, `after ${mode}: served again`);
  }
  const errors = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => Number(l.level) >= 50);
  t.same(errors, [], 'no upstream fault is logged as an error of the proxy');
  t.comment(`group 4a: ${inputs} requests and upgrades against ${faults.length} kinds of broken upstream`);
});
