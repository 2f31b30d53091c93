/**
 * Hardening, group 6: someone trying to pass as another user, to move another user's timer, to
 * use the admin API without the token, or to listen to another user's notifications.
 */
import t from 'tap';
import { SignJWT } from 'jose';
import { request } from 'undici';
import WebSocket from 'ws';
import { MINUTE_MS } from '../src/properties/settings.js';
import { ManualClock } from '../src/sessions/clock.js';
import { rawExchange, head } from './helpers/raw-http.js';
import { eventually, props, startStack, type Stack } from './helpers/stack.js';
import { startUpstream } from './helpers/upstream.js';

const NOTIFY = '/panopticon/server/ws/notifications';
const WARNING = '{"TimeoutNotification":{"minutesUntilTimeout":1}}';
const LOGOUT = '{"LogoutNotification":{"reason":"Logged out due to session timeout"}}';

const forgedToken = (claims: Record<string, unknown>) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode('attacker-secret'));
const unsignedToken = (claims: Record<string, unknown>) =>
  `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;

async function call(url: string, headers: Record<string, string> = {}, method = 'GET') {
  const res = await request(url, { method: method as 'GET', headers });
  return { status: res.statusCode, body: await res.body.text() };
}

interface Listener { status: number; messages: string[]; ws: WebSocket | undefined }

/** Tries to open a socket with these headers: 101 and a message log, or the refusal status. */
function listen(s: Stack, headers: Record<string, string>): Promise<Listener> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${s.proxy.url.replace('http', 'ws')}${NOTIFY}`, { headers });
    const messages: string[] = [];
    ws.on('message', (d) => messages.push(String(d)));
    ws.once('open', () => resolve({ status: 101, messages, ws }));
    ws.once('unexpected-response', (_req, res) => { res.resume(); resolve({ status: res.statusCode ?? 0, messages, ws: undefined }); });
    ws.on('error', () => undefined);
  });
}

t.test('X-User is just another header when PROXY_IDENTITY_HEADER is unset', async (t) => {
  const s = await startStack(t, { properties: props({ enabled: true, minutes: 30 }) });
  const bob = await s.login('bob');
  const before = s.sim.requests.length;
  let inputs = 0;
  const spoofs: Array<Record<string, string>> = [{ 'x-user': 'alice' }, { 'X-USER': 'alice' }, { 'x-user': 'alice', cookie: bob }, { 'x-user': 'alice', 'x-forwarded-user': 'alice', 'remote-user': 'alice' }];
  for (const headers of spoofs) {
    inputs++;
    const r = await call(`${s.proxy.url}/panopticon/server/rest/dashboards/refresh`, headers);
    t.equal(r.status, 'cookie' in headers ? 200 : 401, `${JSON.stringify(Object.keys(headers))}: ${r.status}`);
    inputs++;
    t.equal((await call(`${s.proxy.url}/rest/user/timeout/reset`, headers)).status, 'cookie' in headers ? 200 : 401, 'the reset service does not believe it either');
  }
  inputs++;
  t.equal((await listen(s, { 'x-user': 'alice' })).status, 401, 'nor does a socket upgrade');
  t.equal(s.proxy.engine.describe('alice'), undefined, 'no session for alice appeared');
  t.ok(s.proxy.engine.describe('bob')?.lastActivity, 'bob\'s own requests counted as his');
  const seenUsers = new Set(s.sim.requests.slice(before).map((r) => r.user));
  t.notOk(seenUsers.has('alice'), `the upstream never acted as alice (users it saw: ${[...seenUsers].join(', ')})`);
  t.comment(`group 6: ${inputs} spoofed identity-header requests without PROXY_IDENTITY_HEADER`);
});

t.test('with PROXY_IDENTITY_HEADER, a caller outside PROXY_TRUSTED_SOURCES cannot pass the header upstream', async (t) => {
  const echo = await startUpstream();
  t.teardown(() => echo.close());
  const env = { PROXY_UPSTREAM: echo.url, PROXY_IDENTITY_HEADER: 'X-User', PROXY_TOKEN_SECRET: '' };
  const strict = await startStack(t, { properties: props({ enabled: true, minutes: 30 }), env: { ...env, PROXY_TRUSTED_SOURCES: '10.0.0.0/8, 192.0.2.1' } });
  const port = Number(new URL(strict.proxy.url).port);
  let inputs = 0;

  const echoed = async (lines: string[]) => {
    inputs++;
    const answer = await rawExchange(port, head('GET /echo/who HTTP/1.1', 'Host: x', ...lines, 'Connection: close'));
    return (JSON.parse(answer.body) as { headers: Record<string, string> }).headers;
  };
  const variants = [
    ['X-User: alice'], ['x-user: alice'], ['X-USER: alice'], ['X-User: alice', 'X-User: bob'], ['X-User:   alice  '],
    ['X-User: alice', 'X-Forwarded-For: 10.0.0.1'], ['X-User: alice', 'Forwarded: for=10.0.0.1'], ['X-User: alice', 'X-Real-IP: 192.0.2.1'],
  ];
  for (const lines of variants) {
    const headers = await echoed(lines);
    t.equal(headers['x-user'], undefined, `${lines.join(' + ')}: stripped before the upstream`);
  }
  inputs++;
  const ws = await listen(strict, { 'x-user': 'alice' });
  t.equal(ws.status, 101);
  // /ws/headers would echo the handshake headers; the notification path of the echo upstream is a
  // plain socket, so ask the dedicated path
  const headersSocket = new WebSocket(`${strict.proxy.url.replace('http', 'ws')}/ws/headers`, { headers: { 'x-user': 'alice' } });
  const [first] = (await new Promise<[WebSocket.RawData]>((resolve) => headersSocket.once('message', (d) => resolve([d]))));
  t.equal((JSON.parse(String(first)) as { headers: Record<string, string> }).headers['x-user'], undefined, 'upgrade: stripped before the upstream');
  headersSocket.terminate();
  ws.ws?.terminate();
  inputs++;
  t.equal((await call(`${strict.proxy.url}/rest/user/timeout/reset`, { 'x-user': 'alice' })).status, 401, 'the reset service does not take it either');
  t.equal(strict.proxy.engine.describe('alice'), undefined, 'no session for alice');
  t.equal(strict.proxy.registry.byUser('alice').length, 0, 'no socket registered as alice\'s');

  // control: from a trusted source the same header is believed and passed on
  const trusting = await startStack(t, { properties: props({ enabled: true, minutes: 30 }), env: { ...env, PROXY_TRUSTED_SOURCES: '127.0.0.1' } });
  const passed = await call(`${trusting.proxy.url}/echo/who`, { 'x-user': 'alice' });
  t.equal((JSON.parse(passed.body) as { headers: Record<string, string> }).headers['x-user'], 'alice', 'control: from a trusted source it reaches the upstream');
  t.ok(trusting.proxy.engine.describe('alice'), 'control: and names the user');
  t.comment(`group 6: ${inputs} identity-header requests from an untrusted source`);
});

t.test('the reset service resets only the caller\'s own timer', async (t) => {
  const clock = new ManualClock(Date.now());
  const s = await startStack(t, { clock, properties: props({ enabled: true, minutes: 30, 'notification.minutes': 1 }) });
  const alice = await s.login('alice');
  const bob = await s.login('bob');
  const bobToken = bob.split('=')[1]!;
  await s.get('/panopticon/', { cookie: alice });
  await s.get('/panopticon/', { cookie: bob });
  const aliceDeadline = s.proxy.engine.describe('alice')!.deadlineMs!;
  const forgedAlice = await forgedToken({ sub: 'alice' });
  const attempts: Array<Record<string, string>> = [
    { cookie: bob },
    { cookie: bob, 'x-user': 'alice' },
    { cookie: bob, authorization: `Bearer ${forgedAlice}` },
    { cookie: `ptoken=${bobToken}; ptoken=${forgedAlice}` },
    { cookie: `ptoken=${forgedAlice}`, authorization: `Bearer ${bobToken}` },
    { cookie: `${bob}; SESSION=alice` },
  ];
  for (const headers of attempts) {
    clock.advance(MINUTE_MS);
    const r = await call(`${s.proxy.url}/rest/user/timeout/reset`, headers);
    t.equal(r.status, 200, `${Object.keys(headers).join('+')}: 200`);
    t.same(JSON.parse(r.body), { minutesUntilTimeout: 30 });
    t.equal(s.proxy.engine.describe('bob')?.deadlineMs, clock.now() + 30 * MINUTE_MS, 'bob\'s timer was reset');
    t.equal(s.proxy.engine.describe('alice')?.deadlineMs, aliceDeadline, 'alice\'s was not');
  }
  const aloneAttempts: Array<Record<string, string>> = [{ cookie: `ptoken=${forgedAlice}` }, { authorization: `Bearer ${unsignedToken({ sub: 'alice' })}` }, { 'x-user': 'alice' }];
  for (const headers of aloneAttempts) {
    t.equal((await call(`${s.proxy.url}/panopticon/server/rest/user/timeout/reset`, headers)).status, 401, `${Object.keys(headers).join('+')} alone: 401`);
  }
  t.equal(s.proxy.engine.describe('alice')?.deadlineMs, aliceDeadline, 'alice\'s deadline never moved');
  t.comment(`group 6: ${attempts.length + 3} reset calls trying to move someone else's timer`);
});

t.test('the admin API refuses missing and wrong tokens; on the main port /admin is just proxied', async (t) => {
  const ADMIN_TOKEN = 'adm1n-T0ken-3f9c2b7e';
  const clock = new ManualClock(Date.now());
  const s = await startStack(t, { clock, properties: props({ enabled: true, minutes: 30 }), env: { PROXY_ADMIN_TOKEN: ADMIN_TOKEN } });
  const alice = await s.login('alice');
  await s.get('/panopticon/', { cookie: alice });
  const deadline = s.proxy.engine.describe('alice')!.deadlineMs!;
  clock.advance(MINUTE_MS);

  const endpoints: Array<[string, string]> = [
    ['GET', '/admin/sessions'], ['GET', '/admin/sessions/alice'], ['POST', '/admin/sessions/alice/logout'], ['POST', '/admin/sessions/alice/extend'], ['GET', '/metrics'],
  ];
  const wrong: Array<Record<string, string>> = [
    {}, { authorization: 'Bearer' }, { authorization: 'Bearer wrong' }, { authorization: `Bearer ${ADMIN_TOKEN}x` }, { authorization: `Bearer ${ADMIN_TOKEN.slice(0, -1)}` },
    { authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` }, { authorization: `Token ${ADMIN_TOKEN}` }, { authorization: ADMIN_TOKEN },
    { authorization: `Bearer ${ADMIN_TOKEN} extra` }, { cookie: `token=${ADMIN_TOKEN}` }, { 'x-admin-token': ADMIN_TOKEN }, { authorization: `Bearer ${ADMIN_TOKEN.toUpperCase()}` },
  ];
  let refused = 0;
  for (const [method, path] of endpoints) {
    for (const headers of wrong) {
      const r = await call(`${s.proxy.adminUrl}${path}?token=${ADMIN_TOKEN}`, headers, method);
      if (r.status !== 401) t.fail(`${method} ${path} with ${JSON.stringify(headers)}: ${r.status}`);
      else refused++;
      if (r.body.includes('alice') || r.body.includes(ADMIN_TOKEN)) t.fail(`${method} ${path}: the refusal says too much: ${r.body}`);
    }
  }
  t.equal(refused, endpoints.length * wrong.length, `${refused} requests with a missing or wrong token: all 401`);
  t.equal(s.proxy.engine.describe('alice')?.state, 'active', 'alice was neither logged out');
  t.equal(s.proxy.engine.describe('alice')?.deadlineMs, deadline, 'nor extended');
  t.equal((await call(`${s.proxy.adminUrl}/admin/sessions`, { authorization: `Bearer ${ADMIN_TOKEN}` })).status, 200, 'the right token works');

  const before = s.sim.requests.length;
  for (const [method, path] of endpoints) {
    const r = await call(`${s.proxy.url}${path}`, { authorization: `Bearer ${ADMIN_TOKEN}` }, method);
    t.notOk(r.body.includes('"sessions"') || r.body.includes('session_timeout_proxy_'), `main port ${method} ${path}: not the admin API (${r.status} from the upstream)`);
  }
  // (besides them only the proxy's own "who am I" for the unknown Bearer credential)
  const forwarded = s.sim.requests.slice(before).filter((r) => !r.path.endsWith('/server/myself'));
  t.same(forwarded.map((r) => `${r.method} ${r.path}`), endpoints.map(([m, p]) => `${m} ${p}`), 'every one went to the upstream');
  t.equal(s.proxy.engine.describe('alice')?.state, 'active', 'alice is still signed in');
});

for (const verify of [true, false]) {
  t.test(`a forged alice token cannot listen to alice's notifications (${verify ? 'tokens verified' : 'who-am-I'})`, async (t) => {
    const clock = new ManualClock(Date.now());
    const secret = 'server-secret-for-abuse';
    const s = await startStack(t, {
      clock,
      properties: props({ enabled: true, minutes: 10, 'notification.minutes': 1 }),
      env: { PROXY_TOKEN_SECRET: verify ? secret : '', PROXY_NOTIFY_PATHS: NOTIFY },
      simulator: { tokenSecret: secret },
    });
    const alice = await s.login('alice');
    await s.get('/panopticon/', { cookie: alice });
    await eventually('alice counted', () => s.proxy.engine.describe('alice')?.lastActivity !== undefined);
    const own = await listen(s, { cookie: alice });
    t.equal(own.status, 101);
    clock.advance(3 * MINUTE_MS); // bob's own warning comes two minutes after alice's logout
    const bob = await s.login('bob');
    await s.get('/panopticon/', { cookie: bob });

    const forged = await forgedToken({ sub: 'alice', username: 'alice' });
    const refusedAlone: Array<Record<string, string>> = [
      { cookie: `ptoken=${forged}` }, { authorization: `Bearer ${forged}` }, { cookie: `ptoken=${unsignedToken({ sub: 'alice' })}` }, { 'x-user': 'alice' },
    ];
    for (const headers of refusedAlone) t.equal((await listen(s, headers)).status, 401, `${Object.keys(headers).join('+')}: upgrade refused`);
    const asBob = [
      await listen(s, { cookie: bob, authorization: `Bearer ${forged}` }),
      await listen(s, { cookie: `${bob}; ptoken=${forged}` }),
      await listen(s, { cookie: bob, 'x-user': 'alice' }),
    ];
    t.ok(asBob.every((l) => l.status === 101), 'with bob\'s own cookie next to the forgery, the upgrade is bob\'s');
    await eventually('registered', () => s.proxy.registry.byUser('bob').length === asBob.length);
    t.equal(s.proxy.registry.byUser('alice').length, 1, 'only alice\'s own socket is registered as hers');

    clock.advance(6 * MINUTE_MS); // alice's warning
    await eventually('alice warned', () => own.messages.includes(WARNING));
    clock.advance(MINUTE_MS); // alice's logout; bob's warning is a minute later
    await eventually('alice logged out', () => own.messages.includes(LOGOUT));
    await new Promise((r) => setTimeout(r, 100));
    for (const l of asBob) {
      t.same(l.messages, [], 'the forger\'s socket got neither alice\'s warning nor her logout');
      t.equal(l.ws?.readyState, WebSocket.OPEN, 'and was not closed with hers');
      l.ws?.terminate();
    }
  });
}

t.test('a logged-out credential is refused in every spelling while its upstream logout still fails', async (t) => {
  const clock = new ManualClock(Date.now());
  const s = await startStack(t, { clock, properties: props({ enabled: true, minutes: 5, 'notification.minutes': 0 }), simulator: { issueSessionCookie: true } });
  // alice signs in with the token cookie, dave with a session id only, carol with Basic
  const alice = await s.login('alice');
  const token = /ptoken=([^;]+)/.exec(alice)![1]!;
  const session = (await s.sim.issueLogin('dave')).sessionId;
  const carolBasic = Buffer.from('carol:carol').toString('base64');
  await s.get('/panopticon/', { cookie: alice });
  await s.get('/panopticon/', { cookie: `SESSION=${session}` });
  await s.get('/panopticon/', { authorization: `Basic ${carolBasic}` });
  const users = ['alice', 'dave', 'carol'];
  await eventually('all counted', () => users.every((u) => s.proxy.engine.describe(u)?.lastActivity !== undefined));
  s.sim.failures.failLogout(1_000_000, 500); // the upstream keeps every session: only the proxy stands in the way
  clock.advance(5 * MINUTE_MS);
  await eventually('logged out', () => users.every((u) => s.proxy.engine.describe(u)?.state === 'logged-out'));

  const spellings: Array<[string, Record<string, string>]> = [
    ['the cookies as sent before', { cookie: alice }],
    ['the token cookie quoted', { cookie: `ptoken="${token}"` }],
    ['the token cookie with blanks', { cookie: `ptoken= ${token} ;` }],
    ['the token as a Bearer header', { authorization: `Bearer ${token}` }],
    ['the token as a lower-case bearer', { authorization: `bearer ${token}` }],
    ['the token as BEARER with extra blanks', { authorization: `BEARER   ${token}` }],
    ['the token as a quoted cookie next to a fresh junk cookie', { cookie: `other=1; ptoken="${token}"` }],
    ['the session cookie as before', { cookie: `SESSION=${session}` }],
    ['the session cookie quoted', { cookie: `SESSION="${session}"` }],
    ['Basic as before', { authorization: `Basic ${carolBasic}` }],
    ['basic in lower case', { authorization: `basic ${carolBasic}` }],
    ['BASIC with a tab', { authorization: `BASIC\t${carolBasic}` }],
  ];
  for (const [name, headers] of spellings) {
    // Basic is not a session: only its background traffic is refused (a real request signs in again)
    const isBasic = /^basic/i.test(headers.authorization ?? '');
    const path = isBasic ? '/panopticon/server/rest/data/poll' : '/panopticon/server/rest/server/myself';
    const api = await call(`${s.proxy.url}${path}`, headers);
    t.equal(api.status, 401, `${name}: refused`);
    t.match(api.body, /session_timed_out/, `${name}: by the proxy`);
    if (!isBasic) t.equal((await call(`${s.proxy.url}/rest/user/timeout/reset`, headers)).status, 401, `${name}: the reset service refuses too`);
    t.equal((await listen(s, headers)).status, 401, `${name}: no socket either`);
  }
  for (const u of users) t.equal(s.proxy.engine.describe(u)?.state, 'logged-out', `${u} did not start a new session with an old secret`);
  s.sim.failures.reset();
  const fresh = await s.login('alice');
  t.equal((await call(`${s.proxy.url}/panopticon/server/rest/server/myself`, { cookie: fresh })).status, 200, 'a new login works at once');
  t.comment(`group 6: ${spellings.length * 3} requests re-spelling a logged-out credential`);
});
