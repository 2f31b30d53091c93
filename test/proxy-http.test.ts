import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { Agent, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { gunzipSync, gzipSync } from 'node:zlib';
import t from 'tap';
import { createLogger } from '../src/log.js';
import type { HttpDecision, ProxyHooks } from '../src/proxy/hooks.js';
import { rewriteUpstreamUrl } from '../src/proxy/location.js';
import { classifyUpstreamError } from '../src/proxy/upstream-errors.js';
import { runToEnd } from './helpers/process.js';
import { CHUNK_BYTES, GZIP_TEXT, startUpstream, type TestUpstream } from './helpers/upstream.js';
import { send, startProxy as startProxyWith, waitFor, type ProxyUnderTest } from './helpers/proxy-under-test.js';

interface Echo {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string | string[] | undefined>;
  bodyLength: number;
  bodySha256: string;
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const echoOf = (r: { body: Buffer }) => JSON.parse(r.body.toString()) as Echo;

/**
 * Both ways of forwarding plain HTTP pass the same tests: this file runs with the default
 * (`direct`), and proxy-http-library-path.test.ts runs it again with `http-proxy`.
 */
const FORWARDER = process.env.STP_TEST_HTTP_FORWARDER ?? 'direct';
const startProxy = (url: string, opts: Parameters<typeof startProxyWith>[1] = {}) =>
  startProxyWith(url, { ...opts, env: { PROXY_HTTP_FORWARDER: FORWARDER, ...opts.env } });

let upstream: TestUpstream;
let proxy: ProxyUnderTest;

t.before(async () => {
  upstream = await startUpstream();
  proxy = await startProxy(upstream.url, {
    addRoutes(app) {
      app.get('/_session-timeout-proxy/health', async () => ({ ok: true }));
      app.post('/rest/user/timeout/reset', async (req) => ({ reset: true, body: req.body }));
    },
  });
});
t.teardown(async () => {
  await proxy.close();
  await upstream.close();
});

t.test('every method reaches the upstream with its body', async (t) => {
  const withBody = ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'LOCK', 'UNLOCK', 'REPORT', 'SEARCH', 'QUERY', 'PURGE', 'COPY', 'MOVE'];
  for (const method of withBody) {
    const body = `body of ${method}`;
    const r = await send(`${proxy.url}/echo/m`, { method, headers: { 'content-type': 'text/plain' }, body });
    t.equal(r.status, 200, method);
    const echo = echoOf(r);
    t.equal(echo.method, method);
    t.equal(echo.bodySha256, sha256(body), `${method} body intact`);
  }
  for (const method of ['GET', 'TRACE']) {
    const r = await send(`${proxy.url}/echo/m`, { method });
    t.equal(r.status, 200, method);
    t.equal(echoOf(r).method, method);
  }
  const head = await send(`${proxy.url}/echo/m`, { method: 'HEAD' });
  t.equal(head.status, 200, 'HEAD');
  t.equal(head.body.length, 0);
});

t.test('query strings reach the upstream byte for byte', async (t) => {
  const query = '?b=2&a=1&a=3&sp=%20+x&enc=%2F%3F%26%3D&empty&uni=%C3%A9&raw=a:b@c,d;e';
  const r = await send(`${proxy.url}/echo/q${query}`);
  t.equal(echoOf(r).query, query);
  t.equal(echoOf(r).path, '/echo/q');
  const encodedPath = await send(`${proxy.url}/echo/a%20b/c%2Fd;jsessionid=XYZ?x=1`);
  t.equal(echoOf(encodedPath).path, '/echo/a%20b/c%2Fd;jsessionid=XYZ');
  const longPath = `/echo/${'segment/'.repeat(250)}end`;
  t.equal(echoOf(await send(`${proxy.url}${longPath}`)).path, longPath, 'long paths too');
});

t.test('JSON, form and untyped bodies pass as they are, whatever their size', async (t) => {
  const big = JSON.stringify({ blob: 'x'.repeat(3 * 1024 * 1024) }); // above Fastify's 1 MiB body limit
  const cases: Array<[string | undefined, string]> = [
    ['application/json', big],
    ['application/json', '{"not": valid json'],
    ['application/x-www-form-urlencoded', 'a=1&b=%20two'],
    ['multipart/form-data; boundary=XyZ', '--XyZ\r\nContent-Disposition: form-data; name="f"\r\n\r\nv\r\n--XyZ--\r\n'],
    [undefined, 'no content type at all'],
  ];
  for (const [type, body] of cases) {
    const headers: Record<string, string> = type ? { 'content-type': type } : {};
    const r = await send(`${proxy.url}/echo/body`, { method: 'POST', headers, body });
    t.equal(r.status, 200, `${type} status`);
    const echo = echoOf(r);
    t.equal(echo.bodyLength, Buffer.byteLength(body), `${type} length`);
    t.equal(echo.bodySha256, sha256(body), `${type} bytes`);
    t.equal(echo.headers['content-type'], type, `${type} content-type kept`);
  }
});

t.test('a download streams: the first chunk arrives while the upstream still holds the rest', async (t) => {
  const holdId = 'dl1';
  const megabytes = 8;
  const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
    httpRequest(`${proxy.url}/download?mb=${megabytes}&hold=${holdId}`, { agent: false }, resolve).on('error', reject).end();
  });
  t.equal(res.statusCode, 200);
  t.equal(res.headers['content-length'], String(megabytes * 1024 * 1024));
  const first = (await once(res, 'data'))[0] as Buffer;
  t.ok(first.length > 0, 'got data while the upstream is holding');
  let received = first.length;
  t.ok(received <= CHUNK_BYTES, 'only the first chunk so far');
  const hash = createHash('sha256').update(first);
  res.on('data', (c: Buffer) => { received += c.length; hash.update(c); });
  upstream.release(holdId);
  await once(res, 'end');
  t.equal(received, megabytes * 1024 * 1024);
  const expected = createHash('sha256');
  for (let i = 0; i < megabytes * 16; i++) expected.update(Buffer.alloc(CHUNK_BYTES, i % 251));
  t.equal(hash.digest('hex'), expected.digest('hex'), 'bytes intact');
});

for (const expectContinue of [false, true]) {
  t.test(`an upload streams${expectContinue ? ' (Expect: 100-continue)' : ''}: the upstream sees the first chunk before the client sent the rest`, async (t) => {
    const id = `up-${expectContinue}`;
    const chunk = Buffer.alloc(CHUNK_BYTES, 7);
    const chunks = 8 * 16; // 8 MiB
    const headers: Record<string, string> = { 'content-type': 'application/json', 'transfer-encoding': 'chunked' };
    if (expectContinue) headers.expect = '100-continue';
    const req = httpRequest(`${proxy.url}/upload?id=${id}`, { method: 'PUT', headers, agent: false });
    const responded = new Promise<import('node:http').IncomingMessage>((resolve, reject) => { req.on('response', resolve); req.on('error', reject); });
    if (expectContinue) await once(req, 'continue');
    const seenFirst = new Promise<void>((resolve) => upstream.events.on('upload-first-chunk', (got: string) => { if (got === id) resolve(); }));
    req.write(chunk);
    await seenFirst; // nothing else has been written yet
    t.pass('upstream received the first chunk while the upload was still open');
    for (let i = 1; i < chunks; i++) {
      if (!req.write(chunk)) await once(req, 'drain');
    }
    req.end();
    const res = await responded;
    const body: Buffer[] = [];
    for await (const c of res) body.push(c as Buffer);
    const answer = JSON.parse(Buffer.concat(body).toString()) as { bytes: number; sha256: string };
    t.equal(answer.bytes, chunks * CHUNK_BYTES);
    const expected = createHash('sha256');
    for (let i = 0; i < chunks; i++) expected.update(chunk);
    t.equal(answer.sha256, expected.digest('hex'));
  });
}

t.test('a client that leaves mid-download ends the upstream request too', async (t) => {
  const holdId = 'dl-abandoned';
  const upstreamClosed = once(upstream.events, 'download-closed');
  const req = httpRequest(`${proxy.url}/download?mb=4&hold=${holdId}`, { agent: false });
  req.on('error', () => { /* destroyed on purpose */ });
  req.end();
  const res = (await once(req, 'response'))[0] as import('node:http').IncomingMessage;
  await once(res, 'data');
  req.destroy();
  const [id, finished] = await upstreamClosed;
  t.equal(id, holdId);
  t.equal(finished, false, 'the upstream response was cut off, not completed');
  await waitFor(() => proxy.requestLines().some((l) => l.path === '/download' && l.aborted === true), 2000, 'aborted line');
  t.pass('logged as aborted');
});

t.test('cookies go up, every Set-Cookie comes back', async (t) => {
  const echo = echoOf(await send(`${proxy.url}/echo/c`, { headers: { cookie: 'SESSION=abc; ptoken=xyz' } }));
  t.equal(echo.headers.cookie, 'SESSION=abc; ptoken=xyz');
  const r = await send(`${proxy.url}/cookies`);
  t.same(r.headers['set-cookie'], ['a=1; Path=/', 'b=2; HttpOnly', 'c=3; Secure; SameSite=Lax']);
});

t.test('redirects are passed on, not followed; upstream-absolute Locations point at the proxy', async (t) => {
  const abs = await send(`${proxy.url}/redirect/absolute`);
  t.equal(abs.status, 302);
  t.equal(abs.headers.location, `${proxy.url}/target?x=1%202#frag`);
  const viaName = await send(`${proxy.url}/redirect/absolute`, { headers: { host: `localhost:${proxy.port}` } });
  t.equal(viaName.headers.location, `http://localhost:${proxy.port}/target?x=1%202#frag`, 'uses the Host the client used');
  const spoofed = await send(`${proxy.url}/redirect/absolute`, { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example' } });
  t.equal(spoofed.headers.location, `${proxy.url}/target?x=1%202#frag`, 'X-Forwarded-* ignored unless trusted');
  const afterPost = await send(`${proxy.url}/redirect/absolute`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=a&password=b' });
  t.equal(afterPost.status, 302, 'a POST answered with a redirect (login form)');
  t.equal(afterPost.headers.location, `${proxy.url}/target?x=1%202#frag`);
  const rel = await send(`${proxy.url}/redirect/relative`);
  t.equal(rel.headers.location, '/target');
  const foreign = await send(`${proxy.url}/redirect/foreign`);
  t.equal(foreign.headers.location, 'https://elsewhere.example/x');
});

t.test('a chunked upstream answer stays chunked', async (t) => {
  const r = await send(`${proxy.url}/chunked`);
  t.equal(r.headers['transfer-encoding'], 'chunked');
  t.equal(r.headers['content-length'], undefined);
  t.equal(r.body.toString(), 'one,two,three');
});

t.test('gzip bodies pass through still compressed', async (t) => {
  const r = await send(`${proxy.url}/gzip`, { headers: { 'accept-encoding': 'gzip' } });
  t.equal(r.headers['content-encoding'], 'gzip');
  t.same(r.body, gzipSync(GZIP_TEXT), 'the very bytes the upstream sent');
  t.equal(gunzipSync(r.body).toString(), GZIP_TEXT);
});

t.test('caching headers and 304 pass unchanged', async (t) => {
  const first = await send(`${proxy.url}/etag`);
  t.equal(first.status, 200);
  t.equal(first.headers.etag, '"v1"');
  t.equal(first.headers['cache-control'], 'max-age=60');
  t.equal(first.headers['last-modified'], 'Wed, 01 Jan 2025 00:00:00 GMT');
  const again = await send(`${proxy.url}/etag`, { headers: { 'if-none-match': '"v1"' } });
  t.equal(again.status, 304);
  t.equal(again.headers.etag, '"v1"');
  t.equal(again.body.length, 0);
});

t.test('upstream status codes pass unchanged; unknown paths go upstream, not to a Fastify 404', async (t) => {
  for (const code of [200, 201, 204, 400, 401, 403, 404, 409, 418, 500, 503]) {
    t.equal((await send(`${proxy.url}/status/${code}`)).status, code);
  }
  let hits503 = 0;
  const count = (code: number) => { if (code === 503) hits503++; };
  upstream.events.on('status-hit', count);
  t.teardown(() => { upstream.events.off('status-hit', count); });
  t.equal((await send(`${proxy.url}/status/503`)).status, 503);
  t.equal(hits503, 1, 'a 503 is passed on, not retried');
  const unknown = await send(`${proxy.url}/some/where/nobody/routes`);
  t.equal(unknown.status, 404);
  t.equal(unknown.body.toString(), 'no such test endpoint', 'answered by the upstream');
});

t.test('routes added by the caller after buildProxyServer win over the catch-all', async (t) => {
  const health = await send(`${proxy.url}/_session-timeout-proxy/health`);
  t.equal(health.status, 200);
  t.same(JSON.parse(health.body.toString()), { ok: true });
  const reset = await send(`${proxy.url}/rest/user/timeout/reset`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
  t.same(JSON.parse(reset.body.toString()), { reset: true, body: { a: 1 } }, 'caller routes keep normal JSON parsing');
  const other = echoOf(await send(`${proxy.url}/echo/rest/user/timeout/reset`, { method: 'POST', body: 'x' }));
  t.equal(other.path, '/echo/rest/user/timeout/reset');
});

t.test('X-Forwarded-* replace what an untrusted client sent', async (t) => {
  const echo = echoOf(await send(`${proxy.url}/echo/xf`, {
    headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', forwarded: 'for=6.6.6.6', 'x-real-ip': '6.6.6.6' },
  }));
  t.match(echo.headers['x-forwarded-for'], /^(::ffff:)?127\.0\.0\.1$/);
  t.equal(echo.headers['x-forwarded-proto'], 'http');
  t.equal(echo.headers['x-forwarded-host'], `127.0.0.1:${proxy.port}`);
  t.equal(echo.headers.forwarded, undefined);
  t.equal(echo.headers['x-real-ip'], undefined);
  t.equal(echo.headers.host, `127.0.0.1:${upstream.port}`, 'the upstream is addressed by its own name');
});

t.test('with trustForwarded, X-Forwarded-For is appended and -Proto/-Host are kept', async (t) => {
  const trusting = await startProxy(upstream.url, { env: { PROXY_TRUST_FORWARDED: 'true' } });
  t.teardown(() => trusting.close());
  const headers = { 'x-forwarded-for': '10.0.0.1', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'dash.example.com' };
  const echo = echoOf(await send(`${trusting.url}/echo/xf`, { headers }));
  t.match(echo.headers['x-forwarded-for'], /^10\.0\.0\.1, (::ffff:)?127\.0\.0\.1$/);
  t.equal(echo.headers['x-forwarded-proto'], 'https');
  t.equal(echo.headers['x-forwarded-host'], 'dash.example.com');
  const plain = echoOf(await send(`${trusting.url}/echo/xf`));
  t.equal(plain.headers['x-forwarded-proto'], 'http', 'filled in when absent');
  const moved = await send(`${trusting.url}/redirect/absolute`, { headers });
  t.equal(moved.headers.location, 'https://dash.example.com/target?x=1%202#frag');
});

t.test('an unreachable upstream answers 502 and the proxy keeps serving', async (t) => {
  const closed = createServer();
  closed.listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const deadPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const orphan = await startProxy(`http://127.0.0.1:${deadPort}`, {
    addRoutes: (app) => app.get('/_session-timeout-proxy/health', async () => ({ ok: true })),
  });
  t.teardown(() => orphan.close());
  for (let i = 0; i < 3; i++) {
    const r = await send(`${orphan.url}/anything?i=${i}`, { method: i === 1 ? 'POST' : 'GET', body: i === 1 ? 'x' : undefined });
    t.equal(r.status, 502);
    t.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    t.match(JSON.parse(r.body.toString()), { error: 'upstream_unreachable', message: String });
  }
  t.equal((await send(`${orphan.url}/_session-timeout-proxy/health`)).status, 200, 'still serving');
  const noise = orphan.logLines().filter((l) => l.msg !== 'request' && !String(l.msg).startsWith('Server listening'));
  t.same(noise, [], 'failures add no log lines beyond the request line');
  t.match(orphan.requestLines().at(-2), { status: 502, reason: 'upstream_unreachable', path: '/anything' });
});

t.test('an upstream slower than upstreamTimeoutMs answers 504', async (t) => {
  const impatient = await startProxy(upstream.url, { env: { PROXY_UPSTREAM_TIMEOUT_MS: '300' } });
  t.teardown(() => impatient.close());
  const started = Date.now();
  const r = await send(`${impatient.url}/slow?ms=3000`);
  const tookMs = Date.now() - started;
  t.equal(r.status, 504);
  t.match(JSON.parse(r.body.toString()), { error: 'upstream_timeout' });
  t.ok(tookMs >= 250 && tookMs < 2500, `answered after ${tookMs} ms`);
  t.equal((await send(`${impatient.url}/slow?ms=10`)).status, 200, 'a quick answer still passes');
});

t.test('a body that breaks mid-stream aborts the client connection', async (t) => {
  const outcome = await new Promise<{ status: number | undefined; bytes: number; aborted: boolean }>((resolve) => {
    httpRequest(`${proxy.url}/break`, { agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => { bytes += c.length; });
      res.on('error', () => resolve({ status: res.statusCode, bytes, aborted: true }));
      res.on('aborted', () => resolve({ status: res.statusCode, bytes, aborted: true }));
      res.on('end', () => resolve({ status: res.statusCode, bytes, aborted: false }));
    }).on('error', () => resolve({ status: undefined, bytes: 0, aborted: true })).end();
  });
  t.equal(outcome.status, 200, 'the status was already sent');
  t.ok(outcome.aborted, 'the client sees the connection break');
  t.ok(outcome.bytes < 10 * CHUNK_BYTES, 'the body is incomplete');
  t.equal((await send(`${proxy.url}/status/200`)).status, 200, 'the proxy is fine');
});

t.test('hooks decide, learn the status, and edit headers', async (t) => {
  const responses: Array<{ path: string; status: number; context: unknown }> = [];
  const hooks: ProxyHooks = {
    onHttpRequest(req, path): HttpDecision | Promise<HttpDecision> {
      delete req.headers['x-user']; // e.g. an untrusted identity header
      if (path === '/echo/refuse-json') return { user: 'mallory', refuse: { statusCode: 401, headers: { 'x-why': 'idle' }, body: { error: 'logged_out' }, reason: 'timed_out' } };
      if (path === '/echo/refuse-redirect') return { refuse: { statusCode: 302, headers: { location: '/panopticon/login' }, reason: 'logged_out_redirect' } };
      if (path.startsWith('/echo/async')) return Promise.resolve({ user: 'async-user', context: { n: 2 } });
      if (path === '/echo/async-refuse') return Promise.resolve({ refuse: { statusCode: 403, reason: 'nope', body: { x: 1 } } });
      if (path === '/echo/throws') throw new Error('hook bug');
      return { user: 'alice', context: { n: 1 } };
    },
    onHttpResponse(_req, path, status, context) {
      responses.push({ path, status, context });
    },
  };
  const hooked = await startProxy(upstream.url, { hooks });
  t.teardown(() => hooked.close());

  const ok = await send(`${hooked.url}/echo/plain?q=1`, { headers: { 'x-user': 'forged' } });
  t.equal(ok.status, 200);
  t.equal(echoOf(ok).headers['x-user'], undefined, 'header removed by the hook never reaches the upstream');
  t.same(responses.at(-1), { path: '/echo/plain', status: 200, context: { n: 1 } });

  const refused = await send(`${hooked.url}/echo/refuse-json`);
  t.equal(refused.status, 401);
  t.equal(refused.headers['x-why'], 'idle');
  t.same(JSON.parse(refused.body.toString()), { error: 'logged_out' });

  const kept = await new Promise<string | undefined>((resolve, reject) => {
    const agent = new Agent({ keepAlive: true });
    httpRequest(`${hooked.url}/echo/refuse-json`, { agent }, (res) => {
      res.resume();
      res.on('end', () => { agent.destroy(); resolve(res.headers.connection); });
    }).on('error', reject).end();
  });
  t.equal(kept, 'keep-alive', 'refusing a bodiless request keeps the connection');

  const redirect = await send(`${hooked.url}/echo/refuse-redirect`);
  t.equal(redirect.status, 302);
  t.equal(redirect.headers.location, '/panopticon/login');
  t.equal(redirect.body.length, 0, 'no body');

  const viaPromise = await send(`${hooked.url}/echo/async/x`);
  t.equal(echoOf(viaPromise).path, '/echo/async/x');
  t.same(responses.at(-1), { path: '/echo/async/x', status: 200, context: { n: 2 } });

  const status404 = await send(`${hooked.url}/status/404`);
  t.equal(status404.status, 404);
  t.same(responses.at(-1), { path: '/status/404', status: 404, context: { n: 1 } });

  const broken = await send(`${hooked.url}/echo/throws`);
  t.equal(broken.status, 500);
  t.match(JSON.parse(broken.body.toString()), { error: 'proxy_error' });

  t.equal(responses.length, 3, 'onHttpResponse only for forwarded requests');

  const lines = hooked.requestLines();
  t.match(lines.find((l) => l.path === '/echo/plain'), { user: 'alice', status: 200 });
  t.match(lines.find((l) => l.path === '/echo/refuse-json'), { user: 'mallory', status: 401, reason: 'timed_out' });
  t.match(lines.find((l) => l.path === '/echo/refuse-redirect'), { status: 302, reason: 'logged_out_redirect' });
  t.match(lines.find((l) => l.path === '/echo/async/x'), { user: 'async-user' });
});

t.test('onHttpResponse is not called for the proxy\'s own 502/504', async (t) => {
  let calls = 0;
  const impatient = await startProxy(upstream.url, {
    env: { PROXY_UPSTREAM_TIMEOUT_MS: '200' },
    hooks: { onHttpResponse: () => { calls++; } },
  });
  t.teardown(() => impatient.close());
  t.equal((await send(`${impatient.url}/slow?ms=2000`)).status, 504);
  t.equal(calls, 0);
  t.equal((await send(`${impatient.url}/status/201`)).status, 201);
  t.equal(calls, 1);
});

t.test('one log line per request, without query strings or credentials', async (t) => {
  const quiet = await startProxy(upstream.url, {
    addRoutes: (app) => app.get('/_session-timeout-proxy/health', async () => ({ ok: true })),
  });
  t.teardown(() => quiet.close());
  const secrets = ['SESSION=s3cr3t-session', 'Bearer t0ken-value', 'Basic cHJveHk6cGFzcw==', 'cookie-from-upstream'];
  await send(`${quiet.url}/echo/log?token=query-secret`, { headers: { cookie: secrets[0]!, authorization: secrets[1]!, 'proxy-authorization': secrets[2]! } });
  await send(`${quiet.url}/cookies`);
  await send(`${quiet.url}/_session-timeout-proxy/health?x=1`);
  await send(`${quiet.url}/echo/post`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"password":"pw"}' });
  await waitFor(() => quiet.requestLines().length >= 4, 2000, 'log lines');
  const lines = quiet.logLines().filter((l) => !String(l.msg).startsWith('Server listening'));
  t.equal(lines.length, 4, 'exactly one line per request, nothing else');
  const requestLines = quiet.requestLines();
  t.same(requestLines.map((l) => [l.method, l.path, l.status]), [
    ['GET', '/echo/log', 200],
    ['GET', '/cookies', 200],
    ['GET', '/_session-timeout-proxy/health', 200],
    ['POST', '/echo/post', 200],
  ]);
  for (const l of requestLines) {
    t.type(l.durationMs, 'number');
    t.equal(l.level, 30, 'info');
  }
  const text = quiet.logText();
  for (const s of [...secrets, 'query-secret', 'a=1', 'pw']) t.notOk(text.includes(s), `log does not contain ${s}`);
});

t.test('Location rules: only URLs on the upstream origin are re-pointed', async (t) => {
  const up = new URL('http://panopticon:8080');
  const to = 'https://dash.example.com';
  const cases: Array<[string, string | undefined]> = [
    ['http://panopticon:8080/panopticon/login?next=%2Fx#top', 'https://dash.example.com/panopticon/login?next=%2Fx#top'],
    ['HTTP://PANOPTICON:8080/a', 'https://dash.example.com/a'],
    ['http://panopticon:8080', 'https://dash.example.com'],
    ['//panopticon:8080/a', 'https://dash.example.com/a'],
    ['http://panopticon:8081/a', undefined],
    ['https://panopticon:8080/a', undefined],
    ['http://user:pw@panopticon:8080/a', undefined],
    ['http://elsewhere/a', undefined],
    ['/relative/path', undefined],
    ['relative', undefined],
    ['mailto:x@panopticon', undefined],
  ];
  for (const [location, expected] of cases) t.equal(rewriteUpstreamUrl(location, up, to), expected, location);
  t.equal(rewriteUpstreamUrl('http://panopticon/a', new URL('http://panopticon:80'), to), 'https://dash.example.com/a', 'default port');
});

t.test('upstream errors map to 502/504 with a named problem', async (t) => {
  const wrapped = (code: string) => Object.assign(new Error('wrapped'), { code: 'FST_REPLY_FROM_INTERNAL_SERVER_ERROR', cause: Object.assign(new Error('x'), { code }) });
  t.match(classifyUpstreamError(wrapped('ECONNREFUSED')), { statusCode: 502, problem: 'upstream_unreachable' });
  t.match(classifyUpstreamError(wrapped('ENOTFOUND')), { statusCode: 502, problem: 'upstream_unreachable' });
  t.match(classifyUpstreamError(Object.assign(new Error('c'), { code: 'UND_ERR_CONNECT_TIMEOUT' })), { statusCode: 502, problem: 'upstream_connect_timeout' });
  t.match(classifyUpstreamError(wrapped('UND_ERR_HEADERS_TIMEOUT')), { statusCode: 504, problem: 'upstream_timeout' });
  t.match(classifyUpstreamError(wrapped('UND_ERR_SOCKET')), { statusCode: 502, problem: 'upstream_error' });
  t.match(classifyUpstreamError(new AggregateError([Object.assign(new Error('a'), { code: 'ECONNREFUSED' })])), { problem: 'upstream_unreachable' });
  for (const f of [classifyUpstreamError(wrapped('ECONNREFUSED')), classifyUpstreamError(wrapped('UND_ERR_HEADERS_TIMEOUT'))]) {
    const body = JSON.parse(f.body) as { error: string; message: string };
    t.equal(body.error, f.problem);
    t.type(body.message, 'string');
  }
});

t.test('the logger blanks credentials anywhere in plain objects and errors, without touching the input', async (t) => {
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (s: string) => { lines.push(s); } }, redactHeaders: ['X-User'] });
  const input = {
    headers: { cookie: 'c1=v1', host: 'h', 'x-user': 'bob' },
    upstream: { response: { headers: { 'set-cookie': ['s=1'], Authorization: 'Basic x' } } },
    token: 'tkn-1', nested: { deeper: { password: 'pw-2', secret: 'sec-3' } }, keep: 'visible',
  };
  const snapshot = JSON.stringify(input);
  logger.info(input, 'plain');
  logger.error(Object.assign(new Error('boom'), { token: 'err-token', headers: { authorization: 'err-auth' } }), 'error');
  logger.info({ req: { method: 'GET', url: '/a?password=q', headers: { cookie: 'z=1' } } }, 'request object');
  const text = lines.join('');
  for (const secret of ['c1=v1', 'bob', 's=1', 'Basic x', 'tkn-1', 'pw-2', 'sec-3', 'err-token', 'err-auth', 'z=1', 'password=q']) {
    t.notOk(text.includes(secret), `no ${secret}`);
  }
  t.ok(text.includes('visible'), 'other fields stay');
  t.match(JSON.parse(lines[2]!), { req: { method: 'GET', path: '/a' } });
  t.equal(JSON.stringify(input), snapshot, 'the logged object itself is not modified');
});

t.test("an https upstream's certificate is checked: a self-signed one is refused with 502", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'stp-https-'));
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  const made = await runToEnd('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1'], { timeoutMs: 20_000 });
  t.equal(made.code, 0, 'openssl made a certificate');
  const server = https.createServer({ key: await readFile(key), cert: await readFile(cert) }, (_req, res) => res.end('secret dashboard'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // the upstream itself works for a client that trusts its certificate
  const trusted = await new Promise<string>((resolve, reject) => {
    https.get(`${origin}/`, { ca: readFileSync(cert) }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => { text += c.toString(); });
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
  t.equal(trusted, 'secret dashboard');
  const untrusting = await startProxy(origin);
  t.teardown(() => untrusting.close());
  const res = await send(`${untrusting.url}/dashboards`);
  t.equal(res.status, 502, `${FORWARDER}: not forwarded to an upstream whose certificate is not trusted`);
  t.equal((JSON.parse(res.body.toString()) as { error: string }).error, 'upstream_error');
});

t.test('more requests in flight than reply-from\'s 128-connection pool: the next one does not wait behind them', async (t) => {
  const HELD = 140;
  const held: http.ServerResponse[] = [];
  const local = http.createServer((req, res) => {
    if (req.url === '/hold') held.push(res);
    else res.end('quick');
  });
  local.listen(0, '127.0.0.1');
  await once(local, 'listening');
  t.teardown(() => { local.closeAllConnections(); local.close(); });
  const holding = await startProxy(`http://127.0.0.1:${(local.address() as AddressInfo).port}`);
  t.teardown(() => holding.close());

  const slow = Array.from({ length: HELD }, () => send(`${holding.url}/hold`));
  await waitFor(() => held.length === HELD, 20_000, `${HELD} requests held at the upstream`);
  const quick = await send(`${holding.url}/quick`);
  t.equal(quick.body.toString(), 'quick', `${FORWARDER}: answered while ${HELD} others are held upstream`);
  t.equal(held.length, HELD, 'and all of those are still held');
  for (const res of held) res.end('late');
  const answers = await Promise.all(slow);
  t.ok(answers.every((a) => a.status === 200 && a.body.toString() === 'late'), 'the held ones are answered in the end');
});
