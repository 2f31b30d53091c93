import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import vm from 'node:vm';
import pino from 'pino';
import Fastify from 'fastify';
import type { WebSocket } from 'ws';
import { loadDeploymentConfig, type DeploymentConfig } from '../src/config/deployment.js';
import { SocketRegistry } from '../src/notifications/registry.js';
import { createMetrics } from '../src/admin/metrics.js';
import { buildAdminServer, clockText, durationText } from '../src/admin/server.js';
import type { UpstreamProviders } from '../src/admin/upstream.js';
import { CandidateBook } from '../src/logout/candidates.js';
import { WhoamiHealth } from '../src/identity/whoami-health.js';
import { assertAdminBindingSafe, createBearerCheck, isLoopbackHost } from '../src/admin/auth.js';
import { createUpstreamProbe, registerHealthRoutes } from '../src/admin/health.js';
import { MINUTE_MS } from '../src/properties/settings.js';
import { makeEngine, settings } from './helpers/engine.js';

const SECRET = 'S3CRET-replay-value-7f3a9c';
const TOKEN = 'admin-token-0123456789';
/** the part of a tap test these helpers need */
interface Tap { teardown(fn: () => unknown): void }

const PASSIVE_RULE = 'passive:GET /panopticon/server/rest/data/**';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json(): any;
}

/** Every body any admin listener answered in this file, searched for the secret at the end. */
const allBodies: string[] = [];
const allLogLines: string[] = [];

function send(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        allBodies.push(body);
        resolve({ status: res.statusCode!, headers: res.headers, body, json: () => JSON.parse(body) });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function collectingLogger(lines: string[]): pino.Logger {
  return pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
}

function config(env: Record<string, string> = {}): DeploymentConfig {
  return loadDeploymentConfig({ PROXY_UPSTREAM: 'http://127.0.0.1:9', ...env });
}

async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function liveUpstream(t: Tap) {
  let hits = 0;
  const s = http.createServer((_req, res) => {
    hits++;
    res.statusCode = 404; // any status means "reachable"
    res.end();
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => s.close(() => r())));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, hits: () => hits };
}

interface SetupOptions {
  env?: Record<string, string>;
  settingsLoaded?: () => boolean;
  upstreamReachable?: (() => Promise<boolean>) | null;
  exempt?: string[];
  upstream?: UpstreamProviders;
}

async function setup(t: Tap, opts: SetupOptions = {}) {
  const made = makeEngine(settings({ minutes: 10, notify: 1, exempt: opts.exempt ?? ['carol'] }));
  const registry = new SocketRegistry();
  const metrics = createMetrics(
    { usersTracked: () => made.store.size, openSockets: () => registry.size, pendingLogouts: () => 0 },
    { defaultMetrics: false },
  );
  const auditLines: string[] = [];
  const logLines: string[] = [];
  const cfg = config(opts.env ?? { PROXY_ADMIN_TOKEN: TOKEN });
  const app = await buildAdminServer({
    config: cfg,
    engine: made.engine,
    registry,
    metrics,
    logger: collectingLogger(logLines),
    audit: collectingLogger(auditLines),
    settingsLoaded: opts.settingsLoaded ?? (() => true),
    ...(opts.upstreamReachable === null ? {} : { upstreamReachable: opts.upstreamReachable ?? (async () => true) }),
    clock: made.clock,
    ...(opts.upstream ? { upstream: opts.upstream } : {}),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  t.teardown(async () => {
    made.engine.close();
    await app.close();
    allLogLines.push(...logLines, ...auditLines);
  });
  const auth = { authorization: `Bearer ${TOKEN}` };
  return {
    ...made,
    registry,
    metrics,
    auditLines,
    port,
    get: (path: string, headers: Record<string, string> = auth) => send(port, 'GET', path, headers),
    post: (path: string, headers: Record<string, string> = auth) => send(port, 'POST', path, headers),
  };
}

/** alice (counted, then 4 passive requests), bob (counted a minute later), carol (exempt). */
function script(s: Awaited<ReturnType<typeof setup>>) {
  const { engine, clock, registry } = s;
  engine.recordActivity('alice', 'GET', '/panopticon/x', { fingerprint: 'fp-alice', kind: 'token-cookie', replay: { cookie: `ptoken=${SECRET}` } });
  engine.recordActivity('carol', 'GET', '/panopticon/c', { fingerprint: 'fp-carol', kind: 'authorization', replay: { authorization: `Bearer ${SECRET}` } });
  clock.advance(MINUTE_MS);
  engine.recordActivity('bob', 'GET', '/panopticon/y');
  clock.advance(MINUTE_MS);
  for (let i = 0; i < 4; i++) engine.recordIgnored('alice', 'GET', `/panopticon/server/rest/data/q${i}`, PASSIVE_RULE);
  registry.add({ socket: {} as WebSocket, path: '/panopticon/ws', headers: { cookie: `ptoken=${SECRET}` }, user: 'alice', openedAtMs: clock.now() });
  registry.add({ socket: {} as WebSocket, path: '/panopticon/ws', headers: {}, user: 'alice', openedAtMs: clock.now() });
}

t.test('authentication with a token configured', async (t) => {
  const s = await setup(t);
  const missing = await s.get('/admin/sessions', {});
  t.equal(missing.status, 401);
  t.match(missing.headers['www-authenticate'], /^Bearer/);
  const sameLength = await s.get('/admin/sessions', { authorization: `Bearer ${TOKEN.replace(/.$/, 'X')}` });
  t.equal(sameLength.status, 401, 'wrong token of the same length');
  const otherLength = await s.get('/admin/sessions', { authorization: 'Bearer short' });
  t.equal(otherLength.status, 401, 'wrong token of another length');
  const basic = await s.get('/admin/sessions', { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` });
  t.equal(basic.status, 401, 'other schemes are not accepted');
  t.equal(sameLength.body, missing.body, 'missing and wrong answer the same body');
  t.equal(otherLength.body, missing.body);
  t.equal((await s.get('/admin/sessions')).status, 200, 'right token');
  t.equal((await s.get('/admin/sessions', { authorization: `bearer ${TOKEN}` })).status, 200, 'scheme is case-insensitive');

  t.equal((await s.get('/metrics', {})).status, 401, '/metrics needs the token');
  t.equal((await s.get('/admin/sessions/alice', {})).status, 401);
  t.equal((await s.post('/admin/sessions/alice/logout', {})).status, 401);
  t.equal((await s.post('/admin/sessions/alice/extend', {})).status, 401);
  t.equal((await s.get('/nope', {})).status, 401, 'unknown paths do not reveal themselves without the token');

  t.same((await s.get('/healthz', {})).json(), { status: 'ok' }, 'healthz without auth');
  t.equal((await s.get('/readyz', {})).status, 200, 'readyz without auth');
  t.equal((await s.get('/admin', {})).status, 200, 'the page (no data) without auth');
});

t.test('bearer check compares digests', async (t) => {
  const check = createBearerCheck(TOKEN);
  t.equal(check(undefined), 'missing');
  t.equal(check('Bearer'), 'missing');
  t.equal(check(`Bearer ${TOKEN}`), 'ok');
  t.equal(check(`Bearer  ${TOKEN} `), 'ok');
  t.equal(check(`Bearer ${TOKEN}x`), 'wrong');
  t.equal(check('Bearer ' + 'a'.repeat(10_000)), 'wrong');
});

t.test('without a token: loopback Host only, no cross-site writes', async (t) => {
  const s = await setup(t, { env: {} });
  script(s);
  t.equal((await s.get('/admin/sessions', {})).status, 200, 'no token needed on loopback');
  t.equal((await s.get('/admin/sessions', { host: `localhost:${s.port}` })).status, 200);
  t.equal((await s.get('/admin/sessions', { host: `[::1]:${s.port}` })).status, 200);
  const rebound = await s.get('/admin/sessions', { host: `evil.example:${s.port}` });
  t.equal(rebound.status, 403, 'a DNS-rebound Host is refused');
  t.notMatch(rebound.body, /alice/);
  t.equal((await s.get('/healthz', { host: 'evil.example' })).status, 200, 'health stays public');

  const crossOrigin = await s.post('/admin/sessions/bob/logout', { origin: 'http://evil.example' });
  t.equal(crossOrigin.status, 403, 'a cross-origin POST is refused');
  const crossSite = await s.post('/admin/sessions/bob/logout', { 'sec-fetch-site': 'same-site' });
  t.equal(crossSite.status, 403, 'another port of the same host is refused too');
  t.equal(s.events.length, 0, 'nobody was logged out');
  const sameOrigin = await s.post('/admin/sessions/bob/logout', { origin: `http://127.0.0.1:${s.port}`, 'sec-fetch-site': 'same-origin' });
  t.equal(sameOrigin.status, 202, 'the page itself (same origin) may');
});

t.test('readiness', async (t) => {
  await t.test('settings not loaded', async (t) => {
    const s = await setup(t, { settingsLoaded: () => false });
    const r = await s.get('/readyz', {});
    t.equal(r.status, 503);
    t.same(r.json(), { status: 'not-ready', checks: { settings: false, upstream: true } });
  });
  await t.test('injected check says unreachable', async (t) => {
    const s = await setup(t, { upstreamReachable: async () => false });
    const r = await s.get('/readyz', {});
    t.equal(r.status, 503);
    t.same(r.json().checks, { settings: true, upstream: false });
  });
  await t.test('default probe: closed port', async (t) => {
    const port = await closedPort();
    const s = await setup(t, { env: { PROXY_ADMIN_TOKEN: TOKEN, PROXY_UPSTREAM: `http://127.0.0.1:${port}` }, upstreamReachable: null });
    const r = await s.get('/readyz', {});
    t.equal(r.status, 503);
    t.same(r.json().checks, { settings: true, upstream: false });
  });
  await t.test('default probe: live server (any status counts)', async (t) => {
    const up = await liveUpstream(t);
    const s = await setup(t, { env: { PROXY_ADMIN_TOKEN: TOKEN, PROXY_UPSTREAM: up.url }, upstreamReachable: null });
    const r = await s.get('/readyz', {});
    t.equal(r.status, 200);
    t.same(r.json(), { status: 'ready', checks: { settings: true, upstream: true } });
    await s.get('/readyz', {});
    t.equal(up.hits(), 1, 'the probe result is cached');
  });
  await t.test('probe: concurrent callers share one request; cache expires', async (t) => {
    const up = await liveUpstream(t);
    let nowMs = 0;
    const probe = createUpstreamProbe(new URL(up.url), { cacheMs: 2000, nowMs: () => nowMs });
    t.same(await Promise.all([probe(), probe(), probe()]), [true, true, true]);
    t.equal(up.hits(), 1);
    nowMs += 2001;
    t.equal(await probe(), true);
    t.equal(up.hits(), 2);
  });
  await t.test('same routes under a prefix on another app', async (t) => {
    const app = Fastify();
    const cfg = config();
    registerHealthRoutes(app, cfg.internalPrefix, { config: cfg, settingsLoaded: () => true, upstreamReachable: async () => false });
    t.teardown(() => app.close());
    const alive = await app.inject({ url: '/_session-timeout-proxy/healthz' });
    t.equal(alive.statusCode, 200);
    const ready = await app.inject({ url: '/_session-timeout-proxy/readyz' });
    t.equal(ready.statusCode, 503);
    t.same(ready.json().checks, { settings: true, upstream: false });
  });
});

t.test('metrics', async (t) => {
  const s = await setup(t);
  script(s);
  s.metrics.requests.inc({ counted: 'false', rule: PASSIVE_RULE });
  const r = await s.get('/metrics');
  t.equal(r.status, 200);
  t.match(r.headers['content-type'], /^text\/plain/);
  for (const name of [
    'users_tracked', 'requests_total', 'warnings_total', 'logouts_total', 'logout_attempts_total', 'license_release_seconds',
    'refused_stale_credentials_total', 'open_sockets', 'settings_reloads_total', 'settings_reload_errors_total', 'pending_logouts',
  ]) {
    t.match(r.body, `# TYPE session_timeout_proxy_${name} `, name);
  }
  t.match(r.body, /session_timeout_proxy_users_tracked 3/);
  t.match(r.body, /session_timeout_proxy_open_sockets 2/);
});

t.test('sessions list, one session, explanation', async (t) => {
  const s = await setup(t);
  script(s);
  const t0 = s.t0;
  const list = await s.get('/admin/sessions');
  t.equal(list.status, 200);
  const body = list.json();
  t.equal(body.now, t0 + 2 * MINUTE_MS);
  t.same(body.settings, { enabled: true, timeoutMinutes: 10, notifyBeforeMinutes: 1, exemptUsers: ['carol'] });
  t.equal(body.mode, 'enforce');
  t.same(body.sessions.map((v: any) => v.user), ['alice', 'bob', 'carol'], 'sorted by deadline, no deadline last');
  const [alice, bob, carol] = body.sessions;
  t.same(alice, {
    user: 'alice',
    state: 'active',
    exempt: false,
    lastActivity: { atMs: t0, iso: new Date(t0).toISOString(), method: 'GET', path: '/panopticon/x' },
    idleSinceMs: t0,
    deadlineMs: t0 + 10 * MINUTE_MS,
    deadlineIso: new Date(t0 + 10 * MINUTE_MS).toISOString(),
    msUntilTimeout: 8 * MINUTE_MS,
    warned: false,
    warnAtMs: t0 + 9 * MINUTE_MS,
    loggedOutAtMs: null,
    openSockets: 2,
    // registered without a framing tracker: not notification sockets as the proxy wires them
    reachability: { warnableSockets: 0, unwarnableSockets: [], httpTransport: null },
    credentials: 1,
  });
  t.equal(bob.deadlineMs, t0 + 11 * MINUTE_MS);
  t.equal(bob.openSockets, 0);
  t.equal(bob.credentials, 0);
  t.match(carol, { state: 'exempt', exempt: true, deadlineMs: null, msUntilTimeout: null, deadlineIso: null });

  const one = (await s.get('/admin/sessions/alice')).json();
  t.same({ ...one, recent: undefined, explanation: undefined, patterns: undefined }, { ...alice, recent: undefined, explanation: undefined }, 'same view as in the list');
  t.same(one.patterns, [], 'no request patterns known (requests went straight to the engine)');
  t.equal(one.recent.length, 5);
  t.same(one.recent[0], { atMs: t0, iso: new Date(t0).toISOString(), method: 'GET', path: '/panopticon/x', counted: true, rule: 'counted' });
  t.same(one.recent[4], { atMs: t0 + 2 * MINUTE_MS, iso: new Date(t0 + 2 * MINUTE_MS).toISOString(), method: 'GET', path: '/panopticon/server/rest/data/q3', counted: false, rule: PASSIVE_RULE });
  const deadline = new Date(t0 + 10 * MINUTE_MS).toISOString().slice(11, 19) + 'Z';
  const last = new Date(t0).toISOString().slice(11, 19) + 'Z';
  t.equal(
    one.explanation,
    `alice will be logged out at ${deadline} (in 8m 0s) because the last counted request was GET /panopticon/x at ${last}; ` +
      `4 requests since then did not count (${PASSIVE_RULE}); the warning is due at ${new Date(t0 + 9 * MINUTE_MS).toISOString().slice(11, 19)}Z.`,
  );

  s.clock.advance(7 * MINUTE_MS + 30_000); // t0 + 9m30s: alice was warned at t0 + 9m
  const warned = (await s.get('/admin/sessions/alice')).json();
  t.equal(warned.state, 'warned');
  t.equal(warned.msUntilTimeout, 30_000);
  t.match(warned.explanation, /\(in 30s\).*the timeout warning was sent\.$/);

  const carolOne = (await s.get('/admin/sessions/carol')).json();
  t.match(carolOne.explanation, /^carol is exempt .* never logged out/);

  s.clock.advance(MINUTE_MS); // alice times out
  const gone = (await s.get('/admin/sessions/alice')).json();
  t.equal(gone.state, 'logged-out');
  t.equal(gone.loggedOutAtMs, t0 + 10 * MINUTE_MS);
  t.equal(gone.deadlineMs, null);
  t.match(gone.explanation, /^alice was logged out at .* \(30s ago\)/);
});

t.test('user names are URL-decoded path parameters', async (t) => {
  const s = await setup(t);
  const names = ['dave.smith@example.com', 'eve jones', 'ünïcode', 'a/b', 'x'.repeat(300)];
  for (const name of names) s.engine.recordActivity(name, 'GET', '/panopticon/');
  for (const name of names) {
    const r = await s.get(`/admin/sessions/${encodeURIComponent(name)}`);
    t.equal(r.status, 200, name.slice(0, 30));
    t.equal(r.json().user, name);
  }
  const r = await s.post(`/admin/sessions/${encodeURIComponent('eve jones')}/extend`);
  t.equal(r.status, 200);
});

t.test('force logout', async (t) => {
  const s = await setup(t);
  script(s);
  const first = await s.post('/admin/sessions/alice/logout');
  t.equal(first.status, 202);
  t.same(first.json(), { loggedOut: true });
  t.match(s.events, [{ kind: 'logout', user: 'alice', reason: 'forced', credentials: ['fp-alice'] }], 'the engine action ran');
  const second = await s.post('/admin/sessions/alice/logout');
  t.equal(second.status, 409);
  t.match(second.json(), { error: 'conflict' });
  t.equal(s.events.length, 1, 'not logged out twice');
  const unknown = await s.post('/admin/sessions/nobody/logout');
  t.equal(unknown.status, 404);
  t.match(unknown.json(), { error: 'not found' });
  const audit = s.auditLines.map((l) => JSON.parse(l));
  t.match(audit, [{ event: 'admin-force-logout', user: 'alice' }], 'one audit line');
  t.equal((await s.get('/admin/sessions/alice')).json().state, 'logged-out');
});

t.test('extend', async (t) => {
  const s = await setup(t);
  script(s);
  const before = (await s.get('/admin/sessions/bob')).json();
  s.clock.advance(3 * MINUTE_MS);
  const r = await s.post('/admin/sessions/bob/extend');
  t.equal(r.status, 200);
  const after = r.json();
  t.equal(after.user, 'bob');
  t.equal(after.deadlineMs, s.clock.now() + 10 * MINUTE_MS);
  t.ok(after.deadlineMs > before.deadlineMs, 'deadline moved');
  t.equal(after.msUntilTimeout, 10 * MINUTE_MS);
  t.equal((await s.post('/admin/sessions/nobody/extend')).status, 404);
  await s.post('/admin/sessions/alice/logout');
  t.equal((await s.post('/admin/sessions/alice/extend')).status, 409, 'a logged-out user is not revived');
  const audit = s.auditLines.map((l) => JSON.parse(l));
  t.match(audit[0], { event: 'admin-extend', user: 'bob', previousDeadlineMs: before.deadlineMs, deadlineMs: after.deadlineMs });
});

t.test('404s and errors are JSON', async (t) => {
  const s = await setup(t);
  const unknownUser = await s.get('/admin/sessions/nobody');
  t.equal(unknownUser.status, 404);
  t.match(unknownUser.headers['content-type'], /application\/json/);
  t.match(unknownUser.json(), { error: 'not found' });
  for (const path of ['/nope', '/admin/sessions/a/b/c', '/admin/nothing']) {
    const r = await s.get(path);
    t.equal(r.status, 404, path);
    t.match(r.json(), { error: 'not found' });
  }
  const wrongMethod = await s.get('/admin/sessions/alice/logout');
  t.equal(wrongMethod.status, 404);
  t.match(wrongMethod.headers['content-type'], /application\/json/);
  const badEncoding = await s.get('/admin/sessions/%E0%A4%A');
  t.equal(badEncoding.status, 400, 'a malformed user name');
  t.match(badEncoding.json(), { error: 'bad request' });
  s.engine.recordActivity('bob', 'GET', '/x');
  const badBody = await send(s.port, 'POST', '/admin/sessions/bob/extend', { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, '{');
  t.equal(badBody.status, 400, 'an unparsable body');
  t.match(badBody.json(), { error: 'bad request' });
});

t.test('the admin page', async (t) => {
  const s = await setup(t);
  script(s);
  const r = await s.get('/admin', {});
  t.equal(r.status, 200);
  t.match(r.headers['content-type'], /^text\/html/);
  t.match(r.body, /<table id="sessions"/);
  for (const user of ['alice', 'bob', 'carol', '/panopticon/x']) t.notMatch(r.body, user, `no session data (${user})`);
  t.notMatch(r.body, /innerHTML/, 'builds the DOM with textContent only');
  const csp = String(r.headers['content-security-policy']);
  const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
  t.ok(nonce, 'CSP with a nonce');
  t.match(r.body, `<script nonce="${nonce}">`);
  t.equal(r.headers['cache-control'], 'no-store');
  const inline = /<script nonce="[^"]+">([\s\S]*)<\/script>/.exec(r.body)![1]!;
  t.doesNotThrow(() => new vm.Script(inline), 'the inline script parses');
  const other = await s.get('/admin', {});
  t.not(/nonce-([^']+)/.exec(String(other.headers['content-security-policy']))?.[1], nonce, 'a fresh nonce per response');
  const root = await s.get('/', {});
  t.equal(root.status, 302);
  t.equal(root.headers.location, '/admin');
});

t.test('GET /admin/upstream: logout candidates, "who am I" health, WebSocket rows when plugged in', async (t) => {
  const book = new CandidateBook([{ method: 'POST', path: '/p/server/rest/auth/logout' }, { method: 'POST', path: '/p/logout' }], () => 1_000);
  book.record({ method: 'POST', path: '/x' }, 'released', 200); // unknown candidate: ignored
  const [rest, spring] = book.order();
  book.record(rest!, 'not-found', 404);
  book.record(spring!, 'released', 302);
  const health = new WhoamiHealth(() => 2_000);
  health.answered(401, 3.21);
  health.failed('who-am-I request failed: ECONNREFUSED', 5);
  health.answered(503, 1);
  let rows: unknown = [{ path: '/p/ws', framing: 'stomp', subscriptions: 2 }];
  const upstream: UpstreamProviders = {
    logout: () => ({ verify: true, csrf: { cookie: 'XSRF-TOKEN', header: 'X-XSRF-TOKEN' }, candidates: book.report(), verified: 'POST /p/logout' }),
    whoami: () => health.report(),
    websocket: () => rows,
  };
  const s = await setup(t, { upstream });
  t.equal((await s.get('/admin/upstream', {})).status, 401, 'needs the admin token like the other API routes');
  const r = await s.get('/admin/upstream');
  t.equal(r.status, 200);
  const body = r.json() as { logout: { candidates: Array<Record<string, unknown>> }; whoami: Record<string, unknown>; websocket: unknown };
  t.same(body.logout.candidates.map((c) => [c['path'], c['verified'], c['lastResult'], c['lastStatus']]), [
    ['/p/logout', true, 'released', 302],
    ['/p/server/rest/auth/logout', false, 'not-found', 404],
  ], 'the verified candidate first, each with its last result');
  t.match(body.whoami, { calls: 3, failures: 1, serverErrors: 1, lastStatus: 503, lastError: 'answered 503', lastErrorAtMs: 2_000 });
  t.same(body.websocket, rows, 'the framing rows as the provider returns them');
  rows = undefined;
  t.equal((await s.get('/admin/upstream')).json().websocket, null, 'a provider with nothing to say: null');

  const without = await setup(t);
  t.equal((await without.get('/admin/upstream')).status, 404, 'not wired: no route');
  const page = await s.get('/admin', {});
  t.match(page.body, /<section id="upstream" hidden>/, 'the page has the upstream section (shown once data arrives)');
});

t.test('assertAdminBindingSafe', async (t) => {
  t.throws(() => assertAdminBindingSafe({ adminHost: '0.0.0.0', adminToken: undefined }), /refusing to start the admin API on 0\.0\.0\.0 without PROXY_ADMIN_TOKEN/);
  t.throws(() => assertAdminBindingSafe({ adminHost: '::', adminToken: undefined }));
  t.throws(() => assertAdminBindingSafe({ adminHost: '10.1.2.3', adminToken: '' }));
  t.throws(() => assertAdminBindingSafe({ adminHost: 'admin.example', adminToken: undefined }));
  for (const host of ['127.0.0.1', '127.8.9.10', '::1', '[::1]', 'localhost', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) {
    t.doesNotThrow(() => assertAdminBindingSafe({ adminHost: host, adminToken: undefined }), host);
  }
  t.doesNotThrow(() => assertAdminBindingSafe({ adminHost: '0.0.0.0', adminToken: TOKEN }), 'any host with a token');
  t.notOk(isLoopbackHost('128.0.0.1'));
  t.notOk(isLoopbackHost('::2'));
  t.notOk(isLoopbackHost(''));

  const made = makeEngine();
  t.teardown(() => made.engine.close());
  await t.rejects(
    buildAdminServer({
      config: config({ PROXY_ADMIN_HOST: '0.0.0.0' }),
      engine: made.engine,
      registry: new SocketRegistry(),
      metrics: createMetrics({ usersTracked: () => 0, openSockets: () => 0, pendingLogouts: () => 0 }, { defaultMetrics: false }),
      logger: pino({ level: 'silent' }),
      audit: pino({ level: 'silent' }),
      settingsLoaded: () => true,
    }),
    /refusing to start the admin API/,
    'buildAdminServer checks it too',
  );
});

t.test('text helpers', async (t) => {
  t.equal(durationText(192_000), '3m 12s');
  t.equal(durationText(45_000), '45s');
  t.equal(durationText(2 * 3600_000 + 5 * 60_000), '2h 5m 0s');
  t.equal(durationText(-5), '0s');
  const now = Date.UTC(2024, 0, 2, 13, 57, 0);
  t.equal(clockText(Date.UTC(2024, 0, 2, 14, 5, 0), now), '14:05:00Z');
  t.equal(clockText(Date.UTC(2024, 0, 3, 0, 5, 0), now), '2024-01-03 00:05:00Z');
});

t.test('no response or log line ever contains a credential value', async (t) => {
  t.ok(allBodies.length > 50, `searched ${allBodies.length} bodies`);
  t.ok(allLogLines.length > 0, `and ${allLogLines.length} log lines`);
  t.notOk(allBodies.some((b) => b.includes(SECRET)), 'no body');
  t.notOk(allLogLines.some((l) => l.includes(SECRET)), 'no log line');
  t.notOk(allBodies.some((b) => b.includes(TOKEN)), 'nor the admin token');
  t.notOk(allLogLines.some((l) => l.includes(TOKEN)));
});
