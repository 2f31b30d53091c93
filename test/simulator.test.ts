import t, { type Test } from 'tap';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import { decodeJwt } from 'jose';
import { startSimulator, type Simulator, type SimulatorOptions } from '../src/simulator/server.js';
import { BUILTIN_USERS, DEFAULT_USERS_FILE, parseUsers } from '../src/simulator/users.js';
import { DEMO_TOKEN_SECRET, optionsFromEnv } from '../src/simulator/env-options.js';

const CTX = '/panopticon';

async function sim(t: Test, opts: SimulatorOptions = {}): Promise<Simulator> {
  const s = await startSimulator({ logger: false, ...opts });
  t.teardown(() => s.close());
  return s;
}

function get(s: Simulator, path: string, headers: Record<string, string> = {}) {
  return fetch(s.url + path, { headers, redirect: 'manual' });
}

function post(s: Simulator, path: string, headers: Record<string, string> = {}, body?: string) {
  return fetch(s.url + path, { method: 'POST', headers, body, redirect: 'manual' });
}

function postJson(s: Simulator, path: string, value: unknown) {
  return post(s, path, { 'content-type': 'application/json' }, JSON.stringify(value));
}

/** Signs in through the form; returns the Cookie header value and the raw Set-Cookie lines. */
async function login(s: Simulator, username: string, password = username) {
  const res = await post(s, `${CTX}/login`, { 'content-type': 'application/x-www-form-urlencoded' },
    new URLSearchParams({ username, password }).toString());
  const setCookies = res.headers.getSetCookie();
  const cookie = setCookies.map((line) => line.split(';')[0]).join('; ');
  return { res, setCookies, cookie, token: /ptoken=([^;]+)/.exec(cookie)?.[1] ?? '' };
}

const logout = (s: Simulator, headers: Record<string, string>) => post(s, `${CTX}/server/rest/auth/logout`, headers);

const basic = (user: string, password = user) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** Opens a socket; resolves with it, or rejects with the refusal status. */
function openWs(s: Simulator, path: string, headers: Record<string, string> = {}, protocols?: string[]) {
  const ws = new WebSocket(s.url.replace('http:', 'ws:') + path, protocols, { headers });
  return new Promise<WebSocket>((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => { reject(new Error(`refused ${res.statusCode}`)); ws.terminate(); });
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => ws.once('message', (data) => resolve(data.toString())));
}

t.test('form login: ptoken cookie, absolute Location, units checked out', async (t) => {
  const s = await sim(t);
  const { res, setCookies, token } = await login(s, 'alice');
  t.equal(res.status, 302);
  t.equal(res.headers.get('location'), `${s.url}${CTX}/`, 'absolute Location built from the own origin');
  t.equal(setCookies.length, 1, 'no SESSION cookie unless asked for');
  t.match(setCookies[0], /^ptoken=[\w-]+\.[\w-]+\.[\w-]+; Max-Age=604800; Path=\/panopticon; SameSite=Lax$/);
  t.notMatch(setCookies[0], /HttpOnly/i, 'ptoken is readable by scripts, like Panopticon');
  const claims = decodeJwt(token);
  t.equal(claims.sub, 'alice');
  t.type(claims.jti, 'string');
  t.equal(claims.exp! - claims.iat!, 7 * 24 * 3600);
  t.same(s.licensesInUse(), { alice: 2 });
  t.same(await (await get(s, `${CTX}/server/rest/licenses`)).json(), { inUse: { alice: 2 }, total: 2 });
});

t.test('bad credentials answer a 401 page; login page shows the reason', async (t) => {
  const s = await sim(t);
  const { res, setCookies } = await login(s, 'alice', 'wrong');
  t.equal(res.status, 401);
  t.same(setCookies, []);
  t.match(await res.text(), /id="login-error"/);
  t.same(s.licensesInUse(), {});
  const page = await (await get(s, `${CTX}/login?reason=${encodeURIComponent('Logged out due to session timeout <b>')}`)).text();
  t.match(page, /<p id="login-reason"[^>]*>Logged out due to session timeout &lt;b&gt;<\/p>/);
  t.match(page, /<title>[^<]*Simulator<\/title>/);
  t.notMatch(await (await get(s, `${CTX}/login`)).text(), /login-reason/, 'no reason, no message');
});

t.test('SESSION cookie when issueSessionCookie; it authenticates and logs out the same login', async (t) => {
  const s = await sim(t, { issueSessionCookie: true });
  const { setCookies } = await login(s, 'bob');
  const session = setCookies.find((c) => c.startsWith('SESSION='))!;
  t.match(session, /; Path=\/panopticon; HttpOnly; SameSite=Lax$/);
  const cookie = session.split(';')[0]!;
  t.same(await (await get(s, `${CTX}/server/rest/server/myself`, { cookie })).json(), { username: 'bob', role: 'viewer' });
  t.equal((await logout(s, { cookie })).status, 200);
  t.equal(s.logoutCalls.at(-1)!.via, 'session');
  t.equal((await get(s, `${CTX}/server/rest/server/myself`, { cookie })).status, 401);
  t.same(s.licensesInUse(), {});
});

t.test('myself and the dashboard page for a signed-in user', async (t) => {
  const s = await sim(t, { pollIntervalMs: 1234 });
  const { cookie } = await login(s, 'carol');
  t.same(await (await get(s, `${CTX}/server/rest/server/myself`, { cookie })).json(), { username: 'carol', role: 'administrator' });
  for (const path of [`${CTX}/`, `${CTX}/dashboard`]) {
    const res = await get(s, path, { cookie });
    t.equal(res.status, 200, path);
    const html = await res.text();
    for (const id of ['live-tile', 'refresh-btn', 'timeout-dialog', 'timeout-countdown', 'stay-signed-in', 'current-user']) {
      t.match(html, new RegExp(`id="${id}"`), `${path} has #${id}`);
    }
    t.match(html, /role="alertdialog" aria-modal="true"\s+aria-labelledby="timeout-title"/);
    t.match(html, /"pollIntervalMs":1234/);
    t.match(html, />carol</);
  }
  const bare = await get(s, CTX);
  t.equal(bare.headers.get('location'), `${CTX}/`);
});

t.test('units are per logged-in user and come back with the last login', async (t) => {
  const s = await sim(t);
  const first = await login(s, 'alice');
  const second = await login(s, 'alice');
  await login(s, 'bob');
  t.same(s.licensesInUse(), { alice: 2, bob: 1 }, 'alice logged in twice holds her units once');
  t.equal((await logout(s, { cookie: first.cookie })).status, 200);
  t.same(s.licensesInUse(), { alice: 2, bob: 1 }, 'another login of alice is left');
  t.equal((await logout(s, { cookie: second.cookie })).status, 200);
  t.same(await (await get(s, `${CTX}/server/rest/licenses`)).json(), { inUse: { bob: 1 }, total: 1 });
});

t.test('a logged-out token gets 401 on the API and a login redirect on pages', async (t) => {
  const s = await sim(t);
  const { cookie } = await login(s, 'alice');
  const res = await logout(s, { cookie });
  t.equal(res.status, 200);
  t.same(await res.json(), { loggedOut: true });
  t.match(res.headers.getSetCookie().join('\n'), /ptoken=; Max-Age=0/);
  t.equal((await get(s, `${CTX}/server/rest/server/myself`, { cookie })).status, 401);
  const page = await get(s, `${CTX}/`, { cookie });
  t.equal(page.status, 302);
  t.equal(page.headers.get('location'), `${CTX}/login`);
  t.equal((await logout(s, { cookie })).status, 401, 'a deleted credential cannot log out again');
  t.same(s.logoutCalls.map(({ user, status, via }) => ({ user, status, via })), [
    { user: 'alice', status: 200, via: 'ptoken' },
    { user: undefined, status: 401, via: 'none' },
  ]);
  t.notMatch(JSON.stringify(s.logoutCalls) + JSON.stringify(s.requests), /eyJ/, 'records hold no tokens');
});

t.test('failLogout(2): two 500s, then the logout works', async (t) => {
  const s = await sim(t);
  const { cookie } = await login(s, 'alice');
  s.failures.failLogout(2);
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await logout(s, { cookie })).status);
  t.same(statuses, [500, 500, 200]);
  t.same(s.logoutCalls.map((c) => c.status), [500, 500, 200]);
  t.same(s.licensesInUse(), {});
});

t.test('hangLogout holds the answer until switched off', async (t) => {
  const s = await sim(t);
  const { cookie } = await login(s, 'alice');
  s.failures.hangLogout(true);
  let answered = false;
  const pending = logout(s, { cookie }).then((res) => { answered = true; return res; });
  await new Promise((r) => setTimeout(r, 150));
  t.equal(answered, false);
  t.equal(s.logoutCalls[0]!.status, 0, 'recorded as pending');
  s.failures.hangLogout(false);
  t.equal((await pending).status, 200);
  t.same(s.licensesInUse(), {});
});

t.test('a hung logout whose caller gave up is abandoned, and close() does not wait for hung calls', async (t) => {
  const s = await startSimulator({ logger: false });
  const { cookie } = await login(s, 'alice');
  s.failures.hangLogout(true);
  const aborted = fetch(`${s.url}${CTX}/server/rest/auth/logout`, { method: 'POST', headers: { cookie }, signal: AbortSignal.timeout(100) });
  await t.rejects(aborted);
  await new Promise((r) => setTimeout(r, 50));
  t.equal(s.logoutCalls[0]!.status, 499, 'recorded as abandoned as soon as the caller left');
  s.failures.hangLogout(false);
  await new Promise((r) => setTimeout(r, 20));
  t.same(s.licensesInUse(), { alice: 2 }, 'the abandoned call logged nobody out');
  s.failures.hangLogout(true);
  const hung = logout(s, { cookie }).catch((err: Error) => err);
  await new Promise((r) => setTimeout(r, 50));
  const startedMs = Date.now();
  await s.close();
  t.ok(Date.now() - startedMs < 2000, 'closed promptly');
  t.type(await hung, Error, 'the hung caller sees the connection drop');
});

t.test('WebSockets refuse unauthenticated upgrades with 401', async (t) => {
  const s = await sim(t);
  await t.rejects(openWs(s, `${CTX}/server/ws/notifications`), /refused 401/);
  await t.rejects(openWs(s, `${CTX}/server/ws/data`, { cookie: 'ptoken=not.a.jwt' }), /refused 401/);
});

t.test('data socket pushes tiles; notification socket answers ping; sub-protocol echoed', async (t) => {
  const s = await sim(t, { dataIntervalMs: 20 });
  const { cookie } = await login(s, 'alice');
  const data = await openWs(s, `${CTX}/server/ws/data`, { cookie }, ['panopticon.v1', 'other']);
  t.teardown(() => data.terminate());
  t.equal(data.protocol, 'panopticon.v1');
  const frames = [JSON.parse(await nextMessage(data)), JSON.parse(await nextMessage(data))];
  for (const frame of frames) {
    t.equal(frame.tile, 'sales');
    t.type(frame.value, 'number');
    t.ok(!Number.isNaN(Date.parse(frame.at)));
  }
  const notes = await openWs(s, `${CTX}/server/ws/notifications`, { cookie });
  t.teardown(() => notes.terminate());
  t.equal(notes.protocol, '');
  notes.send('ping');
  t.equal(await nextMessage(notes), 'pong');
});

t.test('logout closes the sockets of that login only (4001 "logged out")', async (t) => {
  const s = await sim(t, { dataIntervalMs: 50 });
  const mine = await login(s, 'alice');
  const other = await login(s, 'alice');
  const notes = await openWs(s, `${CTX}/server/ws/notifications`, { cookie: mine.cookie });
  const data = await openWs(s, `${CTX}/server/ws/data`, { cookie: mine.cookie });
  const untouched = await openWs(s, `${CTX}/server/ws/notifications`, { cookie: other.cookie });
  t.teardown(() => untouched.terminate());
  const closes = [once(notes, 'close'), once(data, 'close')];
  t.equal((await logout(s, { cookie: mine.cookie })).status, 200);
  for (const closed of await Promise.all(closes)) {
    t.equal(closed[0], 4001);
    t.equal(closed[1].toString(), 'logged out');
  }
  t.equal(untouched.readyState, WebSocket.OPEN, "the other login's socket stays open");
  untouched.send('ping');
  t.equal(await nextMessage(untouched), 'pong');
});

t.test('Basic and Bearer credentials', async (t) => {
  const s = await sim(t);
  t.same(await (await get(s, `${CTX}/server/rest/server/myself`, { authorization: basic('bob') })).json(), { username: 'bob', role: 'viewer' });
  t.equal((await get(s, `${CTX}/server/rest/server/myself`, { authorization: basic('bob', 'nope') })).status, 401);
  t.same(s.licensesInUse(), {}, 'Basic alone holds no login');

  const token = await s.issueToken('erin');
  t.same(s.licensesInUse(), { erin: 2 });
  const bearer = { authorization: `Bearer ${token}` };
  t.same(await (await get(s, `${CTX}/server/rest/server/myself`, bearer)).json(), { username: 'erin', role: 'designer' });
  const ws = await openWs(s, `${CTX}/server/ws/notifications`, bearer);
  const closed = once(ws, 'close');
  t.equal((await logout(s, bearer)).status, 200);
  t.equal((await closed)[0], 4001);
  t.equal(s.logoutCalls.at(-1)!.via, 'bearer');
  t.equal((await get(s, `${CTX}/server/rest/server/myself`, bearer)).status, 401, 'deleted token refused');

  const forged = await (await sim(t, { tokenSecret: 'another secret' })).issueToken('erin');
  t.equal((await get(s, `${CTX}/server/rest/server/myself`, { authorization: `Bearer ${forged}` })).status, 401, 'wrong signature refused');
  const expired = await s.issueToken('erin', { issuedAtSec: Math.floor(Date.now() / 1000) - 100, lifetimeSec: 10 });
  t.equal((await get(s, `${CTX}/server/rest/server/myself`, { authorization: `Bearer ${expired}` })).status, 401, 'expired token refused');

  await s.issueToken('carol');
  t.equal((await logout(s, { authorization: basic('carol') })).status, 200, 'Basic logout ends all of the user\'s logins');
  t.notOk('carol' in s.licensesInUse());
  await t.rejects(s.issueToken('mallory'), /unknown user/);
});

t.test('poll, refresh and timeout-reset endpoints', async (t) => {
  const s = await sim(t);
  const { cookie } = await login(s, 'alice');
  const poll = await get(s, `${CTX}/server/rest/data/poll`, { cookie });
  t.equal(poll.status, 200);
  t.match(await poll.json(), { tiles: [{ tile: 'sales' }] });
  t.match(await (await get(s, `${CTX}/server/rest/dashboards/refresh`, { cookie })).json(), { refreshed: true, by: 'alice' });
  t.equal((await post(s, `${CTX}/server/rest/dashboards/refresh`, { cookie })).status, 200);
  t.same(await (await get(s, `${CTX}/server/rest/user/timeout/reset`, { cookie })).json(), {});
  t.equal((await get(s, `${CTX}/server/rest/data/poll`)).status, 401);
  const recorded = s.requests.filter((r) => r.path === `${CTX}/server/rest/data/poll`);
  t.same(recorded.map((r) => [r.user, r.status]), [['alice', 200], [undefined, 401]]);
});

t.test('failure switches over HTTP, and the state endpoint', async (t) => {
  const s = await sim(t);
  const { cookie } = await login(s, 'alice');
  const set = await postJson(s, '/__simulator/failures', { failLogout: 1, status: 503 });
  t.equal(set.status, 200);
  t.match(await set.json(), { failLogoutRemaining: 1, failLogoutStatus: 503 });
  t.equal((await logout(s, { cookie })).status, 503);
  t.equal((await postJson(s, '/__simulator/failures', { failLogot: 1 })).status, 400, 'typos are refused');
  t.equal((await postJson(s, '/__simulator/failures', { delayMs: -1 })).status, 400);
  t.equal((await postJson(s, '/__simulator/failures', { failLogout: 2, status: 42 })).status, 400);

  const state = await (await get(s, '/__simulator/state')).json();
  t.same(state.licenses, { inUse: { alice: 2 }, total: 2 });
  t.same(state.logoutCalls.map((c: { status: number }) => c.status), [503]);
  t.match(state.logins, [{ username: 'alice', role: 'designer', hasSession: false }]);
  t.ok(state.requests.length > 0);
  t.notMatch(JSON.stringify(state), /eyJ|password/, 'no secrets in the state');

  t.equal((await postJson(s, '/__simulator/failures', { delayMs: 150 })).status, 200);
  const startedMs = Date.now();
  t.equal((await get(s, `${CTX}/server/rest/licenses`)).status, 200);
  t.ok(Date.now() - startedMs >= 140, 'responses are delayed'); // a lower bound: a slow machine only adds to it
  // A delay no test waits out: a control request that comes back at all was not delayed.
  const longDelayMs = 60_000;
  t.equal((await postJson(s, '/__simulator/failures', { delayMs: longDelayMs })).status, 200, 'control endpoints answer under a long delay');
  const controlStartedMs = Date.now();
  const reset = await postJson(s, '/__simulator/failures', { reset: true });
  t.ok(Date.now() - controlStartedMs < longDelayMs, 'control endpoints are never delayed');
  t.match(await reset.json(), { delayMs: 0 }, 'and the delay is reset');

  t.equal((await post(s, '/__simulator/reset')).status, 200);
  t.same(s.licensesInUse(), {});
  t.same(s.logoutCalls, []);
});

t.test('down: connections are dropped until it is up again', async (t) => {
  const s = await sim(t, { dataIntervalMs: 50 });
  const { cookie } = await login(s, 'alice');
  const ws = await openWs(s, `${CTX}/server/ws/data`, { cookie });
  const closed = once(ws, 'close');
  t.equal((await postJson(s, '/__simulator/failures', { down: true })).status, 200);
  t.equal((await closed)[0], 1006, 'open sockets dropped without a close frame');
  await t.rejects(get(s, `${CTX}/server/rest/licenses`));
  await t.rejects(openWs(s, `${CTX}/server/ws/data`, { cookie }));
  s.failures.setDown(false);
  t.equal((await get(s, `${CTX}/server/rest/licenses`)).status, 200);
  s.failures.setDown(true, 100);
  await t.rejects(get(s, `${CTX}/server/rest/licenses`));
  await new Promise((r) => setTimeout(r, 150));
  t.equal((await get(s, `${CTX}/server/rest/licenses`)).status, 200, 'up again after downMs');
});

t.test('other context path and publicOrigin', async (t) => {
  const s = await sim(t, { contextPath: '/dash/', publicOrigin: 'http://panopticon:8080' });
  const res = await post(s, '/dash/login', { 'content-type': 'application/x-www-form-urlencoded' }, 'username=kiosk&password=kiosk');
  t.equal(res.headers.get('location'), 'http://panopticon:8080/dash/');
  t.match(res.headers.getSetCookie()[0], /Path=\/dash;/);
  t.equal((await get(s, '/dash/server/rest/licenses')).status, 200);
});

t.test('users: the file matches the built-in copy; bad lists are refused', async (t) => {
  t.same(JSON.parse(readFileSync(DEFAULT_USERS_FILE, 'utf8')), BUILTIN_USERS);
  t.throws(() => parseUsers([{ username: 'x', password: 'x', role: 'boss' }]), /role must be/);
  t.throws(() => parseUsers([{ username: 'x', password: 'x', role: 'viewer' }, { username: 'x', password: 'y', role: 'viewer' }]), /duplicate/);
  const s = await sim(t, { users: [{ username: 'zed', password: 'pw', role: 'administrator' }] });
  t.equal((await login(s, 'zed', 'pw')).res.status, 302);
  t.equal((await login(s, 'alice')).res.status, 401);
  t.same(s.licensesInUse(), { zed: 3 });
});

t.test('options from SIM_* variables', async (t) => {
  t.same(optionsFromEnv({}), { host: '0.0.0.0', port: 8080, tokenSecret: DEMO_TOKEN_SECRET, autoRefreshMs: 5000 });
  t.match(optionsFromEnv({ SIM_AUTO_REFRESH_MS: '0' }), { autoRefreshMs: 0 }, 'the auto-refresh timer can be turned off');
  t.match(optionsFromEnv({ SIM_PORT: '9000', SIM_CONTEXT_PATH: '', SIM_ISSUE_SESSION_COOKIE: 'yes', SIM_DATA_INTERVAL_MS: '250', SIM_PUBLIC_ORIGIN: 'http://sim:9000/' }),
    { port: 9000, contextPath: '', issueSessionCookie: true, dataIntervalMs: 250, publicOrigin: 'http://sim:9000' });
  t.throws(() => optionsFromEnv({ SIM_PORT: 'x' }), /SIM_PORT/);
  t.throws(() => optionsFromEnv({ SIM_ISSUE_SESSION_COOKIE: 'maybe' }), /SIM_ISSUE_SESSION_COOKIE/);
});

t.test('dashboard script (run against a stub DOM: no browser needed)', async (t) => {
  const { dashboardScript } = await import('../src/simulator/dashboard-script.js');
  type El = { id: string; textContent: string; hidden: boolean; listeners: Record<string, () => void>; focus(): void; addEventListener(type: string, fn: () => void): void };
  const elements = new Map<string, El>();
  const doc = {
    activeElement: undefined as El | undefined,
    getElementById(id: string): El {
      let el = elements.get(id);
      if (!el) {
        el = { id, textContent: '', hidden: false, listeners: {}, focus() { doc.activeElement = this; }, addEventListener(type, fn) { this.listeners[type] = fn; } };
        elements.set(id, el);
      }
      return el;
    },
    addEventListener() {},
  };
  doc.getElementById('sim-config').textContent = JSON.stringify({ contextPath: '/panopticon', pollIntervalMs: 5000 });
  const sockets: Array<{ url: string; onmessage?: (e: { data: string }) => void; onclose?: (e: { code: number }) => void }> = [];
  const fetches: Array<{ url: string; init: RequestInit }> = [];
  const timeouts: Array<() => void> = [];
  let navigatedTo = '';
  const context = {
    document: doc,
    location: { origin: 'http://proxy:3000', protocol: 'http:', host: 'proxy:3000', assign(url: string) { navigatedTo = url; } },
    WebSocket: class { readyState = 0; url: string; constructor(url: string) { this.url = url; sockets.push(this); } send() {} },
    fetch: (url: string, init: RequestInit) => { fetches.push({ url, init }); return Promise.resolve({ status: 200, ok: true }); },
    setInterval: () => 1, clearInterval: () => {},
    setTimeout: (fn: () => void) => { timeouts.push(fn); return 1; },
    Date, JSON, Math, Number, String, isFinite, encodeURIComponent,
  };
  const vm = await import('node:vm');
  vm.runInNewContext(dashboardScript, context);
  t.same(sockets.map((s) => s.url), ['ws://proxy:3000/panopticon/server/ws/notifications', 'ws://proxy:3000/panopticon/server/ws/data']);
  const [notes, data] = sockets;
  const dialog = elements.get('timeout-dialog')!;
  t.equal(dialog.hidden, true, 'dialog starts hidden');

  data!.onmessage!({ data: JSON.stringify({ tile: 'sales', value: 1234, at: new Date().toISOString() }) });
  t.equal(elements.get('live-value')!.textContent, '1234');

  notes!.onmessage!({ data: 'pong' });
  notes!.onmessage!({ data: '{"TimeoutNotification":{"minutesUntilTimeout":0.05}}' });
  t.equal(dialog.hidden, false);
  t.equal(elements.get('timeout-message')!.textContent, 'You will be signed out in 0.05 minute(s) due to inactivity.');
  t.equal(elements.get('timeout-countdown')!.textContent, '00:03');
  t.equal(doc.activeElement?.id, 'stay-signed-in', 'focus moves to the button');
  notes!.onmessage!({ data: '{"TimeoutNotification":{"minutesUntilTimeout":2}}' });
  t.equal(elements.get('timeout-countdown')!.textContent, '02:00');

  elements.get('stay-signed-in')!.listeners['click']!();
  t.equal(dialog.hidden, true);
  t.same(fetches.map((f) => [f.url, f.init.method, f.init.credentials]), [['http://proxy:3000/panopticon/server/rest/user/timeout/reset', 'GET', 'same-origin']]);

  elements.get('refresh-btn')!.listeners['click']!();
  t.equal(fetches.at(-1)!.url, 'http://proxy:3000/panopticon/server/rest/dashboards/refresh');

  notes!.onclose!({ code: 1006 });
  t.equal(timeouts.length, 1, 'a dropped notification socket is reopened later');
  timeouts[0]!();
  t.equal(sockets.length, 3);

  sockets[2]!.onmessage!({ data: '{"LogoutNotification":{"reason":"Logged out due to session timeout"}}' });
  t.equal(navigatedTo, '/panopticon/login?reason=Logged%20out%20due%20to%20session%20timeout');
});

t.test('SIM_LOGOUT and SIM_CSRF from the environment', async (t) => {
  t.match(optionsFromEnv({ SIM_LOGOUT: 'Spring', SIM_CSRF: 'true' }), { logoutStyle: 'spring', csrf: true });
  t.match(optionsFromEnv({ SIM_LOGOUT: 'fake' }), { logoutStyle: 'fake' });
  t.throws(() => optionsFromEnv({ SIM_LOGOUT: 'saml' }), /SIM_LOGOUT="saml": expected rest, spring or fake/);
  t.throws(() => optionsFromEnv({ SIM_CSRF: 'sometimes' }), /SIM_CSRF/);
});

t.test('SIM_LOGOUT=spring: the REST logout does not exist; POST /logout ends the login and redirects', async (t) => {
  const s = await sim(t, { logoutStyle: 'spring' });
  const { cookie } = await login(s, 'alice');
  t.equal((await logout(s, { cookie })).status, 404, 'no REST logout');
  t.same(s.licensesInUse(), { alice: 2 });
  const res = await post(s, `${CTX}/logout`, { cookie });
  t.equal(res.status, 302);
  t.equal(res.headers.get('location'), `${CTX}/login?logout`);
  t.same(s.licensesInUse(), {}, 'units back');
  t.match(s.logoutCalls, [{ user: 'alice', path: `${CTX}/logout`, status: 302, via: 'ptoken' }]);
  t.equal((await get(s, `${CTX}/server/rest/server/myself`, { cookie })).status, 401, 'the token is dead');
  t.equal((await post(s, `${CTX}/logout`, { cookie })).status, 302, 'like Spring: a logout without a session still redirects');
});

t.test('SIM_LOGOUT=fake: the logout answers 200 and ends nothing; the license stays counted', async (t) => {
  const s = await sim(t, { logoutStyle: 'fake' });
  const { cookie } = await login(s, 'alice');
  t.equal((await logout(s, { cookie })).status, 200);
  t.equal((await post(s, `${CTX}/logout`, { cookie })).status, 200);
  t.same(s.licensesInUse(), { alice: 2 }, 'still checked out');
  const me = await get(s, `${CTX}/server/rest/server/myself`, { cookie });
  t.same(await me.json(), { username: 'alice', role: 'designer' }, 'still signed in');
  t.same(s.logoutCalls.map((c) => c.status), [200, 200]);
});

t.test('SIM_CSRF=true: XSRF-TOKEN cookie, header required on state-changing requests', async (t) => {
  const s = await sim(t, { csrf: true });
  const { cookie, setCookies } = await login(s, 'alice');
  const token = /XSRF-TOKEN=([^;]+)/.exec(cookie)?.[1];
  t.ok(token, 'sign-in sets a fresh CSRF cookie');
  t.equal(setCookies.filter((c) => c.startsWith('XSRF-TOKEN=')).length, 1, 'exactly one');
  const page = await get(s, `${CTX}/`, { cookie });
  t.equal(page.status, 200);
  t.notOk(page.headers.getSetCookie().some((c) => c.startsWith('XSRF-TOKEN=')), 'a valid token is not replaced');
  const stranger = await get(s, `${CTX}/`, { cookie: cookie.replace(token!, 'made-up') });
  t.ok(stranger.headers.getSetCookie().some((c) => c.startsWith('XSRF-TOKEN=')), 'an unknown token gets a fresh one');

  const missing = await logout(s, { cookie });
  t.equal(missing.status, 403, 'no header: refused');
  t.match(await missing.json(), { message: 'Invalid CSRF token' });
  t.equal((await logout(s, { cookie, 'x-xsrf-token': 'wrong' })).status, 403, 'wrong header: refused');
  t.equal((await logout(s, { cookie: cookie.replace(/XSRF-TOKEN=[^;]+/, 'XSRF-TOKEN=made-up'), 'x-xsrf-token': 'made-up' })).status, 403, 'a token the server never issued: refused');
  t.same(s.licensesInUse(), { alice: 2 }, 'nothing ended');
  t.equal((await get(s, `${CTX}/server/rest/server/myself`, { cookie })).status, 200, 'GET needs no header');
  const ok = await logout(s, { cookie, 'x-xsrf-token': token! });
  t.equal(ok.status, 200, 'matching header: logged out');
  t.same(s.licensesInUse(), {});
  t.notMatch(JSON.stringify(s.logoutCalls) + JSON.stringify(s.requests), token!, 'records hold no CSRF values');
});
