/**
 * Hardening, group 7: secrets never leak. One full scenario with recognisable secrets — cookie
 * values (token and session), a Bearer token, a Basic password, the admin token, the token secret —
 * going through login, activity, sockets, a warning, a logout with retries, stale refusals, admin
 * calls and a metrics scrape. Every proxy log line and every answer the proxy produced (its own
 * refusals, admin answers, reset answers, errors, relayed pages and socket frames) is searched.
 * The only place a secret may appear is where the upstream set it: the login's Set-Cookie.
 */
import t from 'tap';
import { request } from 'undici';
import WebSocket from 'ws';
import { MINUTE_MS } from '../src/properties/settings.js';
import { ManualClock } from '../src/sessions/clock.js';
import { eventually, props, startStack } from './helpers/stack.js';

const TOKEN_SECRET = 'SECRET-tokensecret-5b1e9c0d7a';
const ADMIN_TOKEN = 'SECRET-admintoken-c4d8e2f1';
const CAROL_PASSWORD = 'SECRET-carolpass-91ab3e';
const NOTIFY = '/panopticon/server/ws/notifications';

interface Seen { what: string; text: string }

t.test('no log line and no answer of the proxy contains a secret', async (t) => {
  const clock = new ManualClock(Date.now());
  const s = await startStack(t, {
    clock,
    properties: props({ enabled: true, minutes: 10, 'notification.minutes': 1 }),
    env: { PROXY_TOKEN_SECRET: TOKEN_SECRET, PROXY_ADMIN_TOKEN: ADMIN_TOKEN, PROXY_NOTIFY_PATHS: NOTIFY },
    simulator: {
      tokenSecret: TOKEN_SECRET,
      issueSessionCookie: true,
      users: [
        { username: 'alice', password: 'alice', role: 'designer' },
        { username: 'bob', password: 'bob', role: 'viewer' },
        { username: 'carol', password: CAROL_PASSWORD, role: 'viewer' },
      ],
    },
  });
  const seen: Seen[] = [];
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

  async function http(what: string, url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; relayedSetCookie?: boolean } = {}) {
    const res = await request(url, { method: (opts.method ?? 'GET') as 'GET', headers: opts.headers, body: opts.body });
    const body = await res.body.text();
    const headers = { ...res.headers };
    if (opts.relayedSetCookie) delete headers['set-cookie']; // set by the upstream, passed on as it must be
    seen.push({ what: `${what}: status, headers and body`, text: `${res.statusCode} ${JSON.stringify(headers)} ${body}` });
    return { status: res.statusCode, headers: res.headers, body };
  }

  function socket(what: string, headers: Record<string, string>) {
    const ws = new WebSocket(`${s.proxy.url.replace('http', 'ws')}${NOTIFY}`, { headers });
    const messages: string[] = [];
    ws.on('message', (d) => { messages.push(String(d)); seen.push({ what: `${what}: frame`, text: String(d) }); });
    ws.on('close', (code, reason) => seen.push({ what: `${what}: close`, text: `${code} ${String(reason)}` }));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => seen.push({ what: `${what}: refused upgrade`, text: `${res.statusCode} ${JSON.stringify(res.headers)} ${body}` }));
    });
    ws.on('error', () => undefined);
    const opened = new Promise<boolean>((resolve) => { ws.once('open', () => resolve(true)); ws.once('unexpected-response', () => resolve(false)); });
    return { ws, messages, opened };
  }

  // ---- sign in three ways
  const login = await http('login form', `${s.proxy.url}/panopticon/login`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=alice&password=alice', relayedSetCookie: true,
  });
  t.equal(login.status, 302);
  const aliceCookie = ([] as string[]).concat(login.headers['set-cookie'] ?? []).map((c) => c.split(';', 1)[0]).join('; ');
  const aliceToken = /ptoken=([^;]+)/.exec(aliceCookie)![1]!;
  const aliceSession = /SESSION=([^;]+)/.exec(aliceCookie)![1]!;
  const bobToken = await s.sim.issueToken('bob');
  const carolBasic = `Basic ${Buffer.from(`carol:${CAROL_PASSWORD}`).toString('base64')}`;
  const users = { alice: { cookie: aliceCookie }, bob: { authorization: `Bearer ${bobToken}` }, carol: { authorization: carolBasic } };

  // ---- activity, sockets, the reset service, background and passive requests
  const sockets: Record<string, ReturnType<typeof socket>> = {};
  for (const [user, headers] of Object.entries(users)) {
    await http(`${user} page`, `${s.proxy.url}/panopticon/`, { headers: { ...headers, accept: 'text/html' } });
    await http(`${user} whoami`, `${s.proxy.url}/panopticon/server/rest/server/myself`, { headers });
    await http(`${user} refresh`, `${s.proxy.url}/panopticon/server/rest/dashboards/refresh?token=${TOKEN_SECRET}`, { method: 'POST', headers });
    await http(`${user} poll`, `${s.proxy.url}/panopticon/server/rest/data/poll`, { headers });
    await http(`${user} background`, `${s.proxy.url}/panopticon/server/rest/dashboards/refresh`, { headers: { ...headers, 'x-background-request': 'true' } });
    await http(`${user} reset`, `${s.proxy.url}/rest/user/timeout/reset`, { headers });
    await http(`${user} reset POST`, `${s.proxy.url}/rest/user/timeout/reset`, { method: 'POST', headers });
  }
  await eventually('everyone counted', () => ['alice', 'bob', 'carol'].every((u) => s.proxy.engine.describe(u)?.lastActivity !== undefined));

  // ---- an upstream hiccup while credentials are presented (requests and upgrades)
  s.sim.failures.setDown(true);
  for (const [user, headers] of Object.entries(users)) {
    await http(`${user} while the upstream is down`, `${s.proxy.url}/panopticon/server/rest/server/myself`, { headers });
    await socket(`${user} socket while the upstream is down`, headers).opened;
  }
  s.sim.failures.setDown(false);

  for (const [user, headers] of Object.entries(users)) {
    sockets[user] = socket(`${user} socket`, headers);
    t.ok(await sockets[user]!.opened, `${user}'s socket is open`);
  }

  // ---- admin calls, right and wrong
  for (const path of ['/admin/sessions', '/admin/sessions/alice', '/admin/sessions/bob', '/admin/sessions/carol', '/admin', '/metrics', '/readyz', '/healthz']) {
    await http(`admin ${path}`, `${s.proxy.adminUrl}${path}`, { headers: admin });
  }
  await http('admin extend', `${s.proxy.adminUrl}/admin/sessions/bob/extend`, { method: 'POST', headers: admin });
  await http('admin wrong token', `${s.proxy.adminUrl}/admin/sessions`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}x` } });
  await http('admin token as a user credential on the main port', `${s.proxy.url}/panopticon/server/rest/server/myself`, { headers: admin });
  await http('main-port readiness', `${s.proxy.url}/_session-timeout-proxy/readyz`);

  // ---- warning, then logout with two failed upstream attempts first
  clock.advance(9 * MINUTE_MS);
  await eventually('everyone warned', () => Object.values(sockets).every((x) => x.messages.some((m) => m.includes('TimeoutNotification'))));
  s.sim.failures.failLogout(2, 500);
  clock.advance(MINUTE_MS);
  for (let i = 0; i < 500 && s.proxy.queue.size > 0; i++) {
    await new Promise((r) => setTimeout(r, 20));
    clock.advance(2000); // retries wait on the proxy's clock
  }
  t.equal(s.proxy.queue.size, 0, 'every logout done');
  t.ok(s.logs.some((l) => l.event === 'logout-retry'), 'some logouts were retried');
  t.same(s.sim.licensesInUse(), {}, 'every license came back');

  // ---- stale credentials refused, in every form
  for (const [user, headers] of Object.entries(users)) {
    // Basic is not a session: only background traffic and sockets are refused, so check those first
    const stale = socket(`${user} stale socket`, headers);
    t.equal(await stale.opened, false, `${user}'s old credential cannot open a socket`);
    const poll = await http(`${user} stale poll`, `${s.proxy.url}/panopticon/server/rest/data/poll`, { headers });
    t.equal(poll.status, 401, `${user}'s old credential is refused for background traffic`);
    const isBasic = 'authorization' in headers && /^basic/i.test(headers.authorization);
    const api = await http(`${user} stale API call`, `${s.proxy.url}/panopticon/server/rest/server/myself`, { headers });
    if (!isBasic) t.equal(api.status, 401, `${user}'s old credential is refused`);
    await http(`${user} stale page`, `${s.proxy.url}/panopticon/`, { headers: { ...headers, accept: 'text/html' } });
    await http(`${user} stale reset`, `${s.proxy.url}/rest/user/timeout/reset`, { headers });
  }
  await http('admin after the logouts', `${s.proxy.adminUrl}/admin/sessions/alice`, { headers: admin });
  await http('metrics scrape', `${s.proxy.adminUrl}/metrics`, { headers: admin });
  for (const x of Object.values(sockets)) x.ws.terminate();
  await new Promise((r) => setTimeout(r, 50));

  // ---- search
  const secrets: Record<string, string> = {
    'alice token cookie': aliceToken,
    'alice token signature': aliceToken.split('.')[2]!,
    'alice SESSION cookie': aliceSession,
    'bob Bearer token': bobToken,
    'bob token signature': bobToken.split('.')[2]!,
    'carol Basic password': CAROL_PASSWORD,
    'carol Basic header value': carolBasic.slice('Basic '.length),
    'admin token': ADMIN_TOKEN,
    'token secret': TOKEN_SECRET,
  };
  const logText = s.logText();
  t.ok(s.logs.length > 50, `${s.logs.length} log lines searched`);
  t.ok(seen.length > 60, `${seen.length} answers, frames and closes searched`);
  for (const [name, value] of Object.entries(secrets)) {
    t.notOk(logText.includes(value), `${name}: not in the log`);
    const where = seen.filter((x) => x.text.includes(value)).map((x) => x.what);
    t.same(where, [], `${name}: not in any answer`);
  }
  t.comment(`group 7: ${Object.keys(secrets).length} secrets searched for in ${s.logs.length} log lines and ${seen.length} answers`);
});
