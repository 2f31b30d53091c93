/**
 * The direct forwarder's choice: which requests it forwards itself and which it leaves to
 * Fastify (own routes, paths that need validation or normalising, GET/HEAD with a body).
 * A real node:http server with the forwarder in front of a stand-in "Fastify" handler that
 * answers 299, and a real upstream behind it.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { loadDeploymentConfig } from '../src/config/deployment.js';
import { createLogger } from '../src/log.js';
import { createAccessLog } from '../src/proxy/access-log.js';
import { createDirectForwarding } from '../src/proxy/direct-forwarding.js';
import { OwnRoutes } from '../src/proxy/own-routes.js';
import { send } from './helpers/proxy-under-test.js';
import { startUpstream, type TestUpstream } from './helpers/upstream.js';

const FALLBACK = 299;

/** a request whose target goes out exactly as written (a URL string would be normalised first) */
function sendRaw(base: string, path: string, body?: string): Promise<number> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) };
    const req = http.request({ hostname, port, path, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

t.test('own routes: exact paths and the static part of parameterised ones; the catch-alls are not own', async (t) => {
  const own = new OwnRoutes();
  for (const url of ['/', '/*', '/rest/user/timeout/reset', '/_stp/health', '/_stp/users/:name']) own.onRoute({ url });
  t.ok(own.has('/rest/user/timeout/reset'));
  t.ok(own.has('/_stp/health'));
  t.ok(own.has('/_stp/users/alice'));
  t.notOk(own.has('/rest/user/timeout/reset/'), 'no trailing-slash match (Fastify does not ignore it either)');
  t.notOk(own.has('/'), "'/' is the proxy's catch-all");
  t.notOk(own.has('/anything'));
});

interface Rig { url: string; fallbacks: string[]; upstream: TestUpstream; close(): Promise<void> }

async function startRig(): Promise<Rig> {
  const upstream = await startUpstream();
  const config = loadDeploymentConfig({ PROXY_UPSTREAM: upstream.url });
  const logger = createLogger({ level: 'silent' });
  const own = new OwnRoutes();
  own.onRoute({ url: '/rest/user/timeout/reset' });
  const direct = createDirectForwarding({ config, logger, hooks: undefined, accessLog: createAccessLog(logger), isOwnPath: (p) => own.has(p) });
  const fallbacks: string[] = [];
  const server = http.createServer((req, res) => {
    if (direct.take(req, res)) return;
    fallbacks.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => res.writeHead(FALLBACK).end());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    fallbacks,
    upstream,
    async close() {
      server.closeAllConnections();
      server.close();
      await direct.close();
      await upstream.close();
    },
  };
}

t.test('ordinary requests are forwarded directly; unusual ones are left to Fastify', async (t) => {
  const rig = await startRig();
  t.teardown(() => rig.close());

  const plain = await send(`${rig.url}/echo/dash-board_1.json;v=2?q=a%20b&x=%ZZ`);
  t.equal(plain.status, 200, 'forwarded');
  const echo = JSON.parse(plain.body.toString()) as { path: string; query: string; headers: Record<string, string> };
  t.equal(echo.path, '/echo/dash-board_1.json;v=2');
  t.equal(echo.query, '?q=a%20b&x=%ZZ', 'the query string byte for byte, even malformed');
  t.equal(echo.headers.host, new URL(rig.upstream.url).host, "Host is the upstream's");
  t.equal(echo.headers['x-forwarded-for'], '127.0.0.1');

  const post = await send(`${rig.url}/echo/upload`, { method: 'POST', body: 'x'.repeat(100_000) });
  t.equal(post.status, 200, 'a POST body is forwarded directly');
  t.equal((JSON.parse(post.body.toString()) as { bodyLength: number }).bodyLength, 100_000);
  t.same(rig.fallbacks, [], 'none of those reached Fastify');

  const unusual: Array<[string, string, string | undefined]> = [
    ['percent-encoded path', '/echo/dash%20board', undefined],
    ['dot segment', '/echo/a/../b', undefined],
    ['single dot segment', '/echo/./b', undefined],
    ['backslash', '/echo/a\\b', undefined],
    ['leading double slash', '//evil.example/x', undefined],
    ['absolute-form target', 'http://evil.example/x', undefined],
    ['own route', '/rest/user/timeout/reset', undefined],
    ['GET with a body', '/echo/x', 'hello'],
  ];
  for (const [what, path, body] of unusual) {
    const before = rig.fallbacks.length;
    const status = await sendRaw(rig.url, path, body);
    t.equal(status, FALLBACK, `${what}: left to Fastify`);
    t.equal(rig.fallbacks.length, before + 1, `${what}: exactly once`);
  }
});

t.test('a client that leaves before the upstream answered aborts the upstream request', async (t) => {
  // an upstream that never answers and reports when its request's connection goes away
  const seen = new (await import('node:events')).EventEmitter();
  const silent = http.createServer((req) => {
    seen.emit('arrived', req.url);
    req.socket.on('close', () => seen.emit('gone', req.url));
  });
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  t.teardown(() => { silent.closeAllConnections(); silent.close(); });
  const config = loadDeploymentConfig({ PROXY_UPSTREAM: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` });
  const logger = createLogger({ level: 'silent' });
  const direct = createDirectForwarding({ config, logger, hooks: undefined, accessLog: createAccessLog(logger), isOwnPath: () => false });
  const server = http.createServer((req, res) => {
    if (!direct.take(req, res)) res.writeHead(FALLBACK).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(async () => { server.closeAllConnections(); server.close(); await direct.close(); });

  const client = http.request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/waiting`, { agent: false });
  client.on('error', () => undefined);
  client.end();
  const [arrived] = (await once(seen, 'arrived')) as [string];
  t.equal(arrived, '/waiting');
  const gone = once(seen, 'gone');
  client.destroy();
  const [path] = (await gone) as [string];
  t.equal(path, '/waiting', 'the upstream connection of that request was closed');
});
