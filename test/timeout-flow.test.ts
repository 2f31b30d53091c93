/**
 * The product, end to end through real sockets: simulator ← proxy ← HTTP and WebSocket clients.
 * The proxy's clock is a ManualClock, so "ten minutes later" takes no time; everything else is real.
 */
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { ManualClock } from '../src/sessions/clock.js';
import { MINUTE_MS } from '../src/properties/settings.js';
import { eventually, props, startStack, upgradeStatus } from './helpers/stack.js';

const WARNING = '{"TimeoutNotification":{"minutesUntilTimeout":1}}';
const LOGOUT = '{"LogoutNotification":{"reason":"Logged out due to session timeout"}}';
const NOTIFY = '/panopticon/server/ws/notifications';
const DATA = '/panopticon/server/ws/data';

t.test('idle user: exact warning on every tab, exact logout, sockets closed, license released, old cookie refused, new login works', async (t) => {
  const clock = new ManualClock(Date.now());
  const s = await startStack(t, { clock, properties: props({ enabled: true, minutes: 10, 'notification.minutes': 1 }), env: { PROXY_NOTIFY_PATHS: `${NOTIFY}` } });
  const cookie = await s.login('alice');
  t.same(s.sim.licensesInUse(), { alice: 2 }, 'designer holds 2 units');
  const page = await s.get('/panopticon/', { cookie, accept: 'text/html' });
  t.equal(page.status, 200);
  const tab1 = await s.openSocket(NOTIFY, cookie);
  const tab2 = await s.openSocket(NOTIFY, cookie);
  const data = await s.openSocket(DATA, cookie);
  await data.next((m) => m.includes('tile'));

  clock.advance(9 * MINUTE_MS - 1);
  await new Promise((r) => setTimeout(r, 50));
  t.notOk(tab1.messages.includes(WARNING), 'no warning a millisecond early');
  clock.advance(1);
  t.equal(await tab1.next((m) => m === WARNING), WARNING, 'tab 1 got the exact warning frame');
  t.equal(await tab2.next((m) => m === WARNING), WARNING, 'tab 2 got it too');
  t.notOk(data.messages.some((m) => m.includes('TimeoutNotification')), 'the data socket is not a notification path');

  clock.advance(MINUTE_MS);
  t.equal(await tab1.next((m) => m === LOGOUT), LOGOUT, 'exact logout frame');
  t.equal(await tab2.next((m) => m === LOGOUT), LOGOUT);
  const closes = await Promise.all([tab1.closed, tab2.closed, data.closed]);
  t.ok(closes.every((c) => c.code === 1000), 'every socket of the user closed');
  const i1 = tab1.messages.indexOf(LOGOUT);
  t.equal(i1, tab1.messages.length - 1, 'the logout frame was the last frame before the close');

  await eventually('upstream logout', () => s.sim.logoutCalls.some((c) => c.user === 'alice' && c.status === 200));
  t.match(s.sim.logoutCalls.find((c) => c.user === 'alice'), { via: 'ptoken' }, 'logged out with her own cookie');
  t.same(s.sim.licensesInUse(), {}, 'license units came back');

  const api = await s.get('/panopticon/server/rest/server/myself', { cookie, accept: 'application/json' });
  t.equal(api.status, 401, 'stale cookie refused on an API call');
  t.match(JSON.parse(api.body), { error: 'session_timed_out' });
  const nav = await s.get('/panopticon/', { cookie, accept: 'text/html' });
  t.equal(nav.status, 302, 'page navigation is sent to the login page');
  t.match(nav.headers.location, /^\/panopticon\/login\?reason=Logged%20out%20due%20to%20session%20timeout$/);
  t.match(String(nav.headers['set-cookie']), /ptoken=;/, 'the dead cookie is cleared');
  t.equal(await upgradeStatus(s.proxy.url.replace('http', 'ws') + NOTIFY, cookie), 401, 'stale WebSocket upgrade refused');
  const loginPage = await s.get('/panopticon/login', { cookie, accept: 'text/html' });
  t.equal(loginPage.status, 200, 'the login page still loads with the dead cookie');

  const fresh = await s.login('alice');
  t.not(fresh, cookie);
  t.equal((await s.get('/panopticon/server/rest/server/myself', { cookie: fresh })).status, 200, 'a new login works at once');
  t.same(s.sim.licensesInUse(), { alice: 2 });
  t.notOk(s.logText().includes(cookie.split('=')[1]!), 'the cookie value never reached the log');
});

t.test('background polling, live data and socket traffic do not postpone the timeout', async (t) => {
  const clock = new ManualClock(Date.now());
  const s = await startStack(t, { clock, properties: props({ enabled: true, minutes: 5, 'notification.minutes': 0 }) });
  const cookie = await s.login('bob');
  const t0 = clock.now();
  await s.get('/panopticon/', { cookie, accept: 'text/html' });
  const notify = await s.openSocket(NOTIFY, cookie);
  const data = await s.openSocket(DATA, cookie);
  for (let minute = 1; minute < 5; minute++) {
    clock.advance(MINUTE_MS);
    t.equal((await s.get('/panopticon/server/rest/data/poll', { cookie })).status, 200);
    t.equal((await s.get('/panopticon/server/rest/dashboards/refresh', { cookie, 'x-background-request': 'true' })).status, 200);
    notify.ws.send('ping');
    await notify.next((m) => m === 'pong');
    notify.messages.length = 0;
  }
  await data.next((m) => m.includes('"tile"'));
  t.ok(data.messages.length > 0, 'live data kept flowing');
  t.equal(s.proxy.engine.describe('bob')?.deadlineMs, t0 + 5 * MINUTE_MS, 'deadline never moved');
  const view = s.proxy.engine.describe('bob')!;
  t.ok(view.recent.some((n) => n.rule === 'passive:GET /panopticon/server/rest/data/**'), 'polling recorded as passive');
  t.ok(view.recent.some((n) => n.rule === 'background-header'), 'marked request recorded as background');
  clock.advance(MINUTE_MS);
  await notify.next((m) => m === LOGOUT);
  await eventually('released', () => !('bob' in s.sim.licensesInUse()));
});

t.test('the reset service postpones the timeout, answers only GET, and needs a known caller', async (t) => {
  const clock = new ManualClock(Date.now());
  const s = await startStack(t, { clock, properties: props({ enabled: true, minutes: 10, 'notification.minutes': 1 }) });
  const cookie = await s.login('carol');
  await s.get('/panopticon/', { cookie });
  const tab = await s.openSocket(NOTIFY, cookie);
  clock.advance(9 * MINUTE_MS);
  await tab.next((m) => m === WARNING);
  const before = s.sim.requests.length;
  const reset = await s.get('/panopticon/server/rest/user/timeout/reset', { cookie });
  t.equal(reset.status, 200);
  t.same(JSON.parse(reset.body), { minutesUntilTimeout: 10 });
  const root = await s.get('/rest/user/timeout/reset', { cookie });
  t.equal(root.status, 200, 'the documented root path works too');
  t.notOk(s.sim.requests.slice(before).some((r) => r.path.endsWith('/timeout/reset')), 'never forwarded upstream');
  t.equal(s.proxy.engine.describe('carol')?.deadlineMs, clock.now() + 10 * MINUTE_MS, 'deadline moved to now + timeout');
  clock.advance(9 * MINUTE_MS);
  await tab.next((m) => tab.messages.filter((x) => x === WARNING).length === 2 && m === WARNING);
  t.notOk(tab.messages.includes(LOGOUT), 'not logged out at the old deadline');

  const { request } = await import('undici');
  const post = await request(`${s.proxy.url}/panopticon/server/rest/user/timeout/reset`, { method: 'POST', headers: { cookie } });
  await post.body.dump();
  t.equal(post.statusCode, 405);
  t.equal(post.headers.allow, 'GET');
  t.equal((await s.get('/rest/user/timeout/reset')).status, 401, 'no credential: 401');
  t.equal((await s.get('/rest/user/timeout/reset', { cookie: 'ptoken=not.a.jwt' })).status, 401, 'an unknown credential: 401');
});

t.test('the reset service answers null when timeouts are off or the caller is exempt', async (t) => {
  const s = await startStack(t, { properties: props({ enabled: true, minutes: 10, 'exception.usernames': 'kiosk' }) });
  const kiosk = await s.login('kiosk');
  t.same(JSON.parse((await s.get('/rest/user/timeout/reset', { cookie: kiosk })).body), { minutesUntilTimeout: null });
  await writeFile(s.propertiesPath, props({ enabled: false }));
  await new Promise<void>((resolve) => s.proxy.settings.onChange(() => resolve()));
  const alice = await s.login('alice');
  t.same(JSON.parse((await s.get('/rest/user/timeout/reset', { cookie: alice })).body), { minutesUntilTimeout: null });
});

for (const delimiter of [';', '|']) {
  t.test(`exempt users survive (delimiter ${delimiter})`, async (t) => {
    const clock = new ManualClock(Date.now());
    const s = await startStack(t, { clock, properties: props({ enabled: true, minutes: 1, 'notification.minutes': 0.5, 'exception.delimiter': delimiter, 'exception.usernames': ['kiosk', 'dave'].join(delimiter) }) });
    const kiosk = await s.login('kiosk');
    const dave = await s.login('dave');
    const bob = await s.login('bob');
    const sockets = await Promise.all([kiosk, dave, bob].map((c) => s.openSocket(NOTIFY, c)));
    for (const c of [kiosk, dave, bob]) await s.get('/panopticon/', { cookie: c });
    clock.advance(10 * MINUTE_MS);
    await sockets[2]!.next((m) => m === LOGOUT);
    t.same(sockets[0]!.messages, [], 'kiosk got nothing');
    t.same(sockets[1]!.messages, [], 'dave got nothing');
    await eventually('bob released', () => !('bob' in s.sim.licensesInUse()));
    t.same(Object.keys(s.sim.licensesInUse()).sort(), ['dave', 'kiosk']);
    t.equal((await s.get('/panopticon/server/rest/server/myself', { cookie: kiosk })).status, 200);
  });
}

t.test('a forged token naming another user keeps nobody alive (with and without the secret)', async (t) => {
  for (const withSecret of [true, false]) {
    const clock = new ManualClock(Date.now());
    const secret = { PROXY_TOKEN_SECRET: 'server-secret' };
    const noSecret = { PROXY_TOKEN_SECRET: '' };
    const stack = await startStack(t, {
      clock,
      properties: props({ enabled: true, minutes: 5, 'notification.minutes': 0 }),
      env: withSecret ? secret : noSecret,
      simulator: { tokenSecret: 'server-secret' },
    });
    const cookie = await stack.login('alice');
    await stack.get('/panopticon/', { cookie });
    // without the secret the user is confirmed by a "who am I" call that may finish after the response
    await eventually('alice counted', () => stack.proxy.engine.describe('alice')?.lastActivity?.path === '/panopticon/');
    const t0 = clock.now();
    const { SignJWT } = await import('jose');
    const forged = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode('attacker-secret'));
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"alice"}').toString('base64url')}.`;
    for (let i = 0; i < 4; i++) {
      clock.advance(MINUTE_MS);
      for (const token of [forged, unsigned]) {
        await stack.get('/panopticon/login', { cookie: `ptoken=${token}`, accept: 'text/html' }); // a public page: 200 even for forgers
        await stack.get('/panopticon/server/rest/dashboards/refresh', { cookie: `ptoken=${token}` });
        await stack.get('/rest/user/timeout/reset', { cookie: `ptoken=${token}` });
        await stack.get('/panopticon/', { authorization: `Bearer ${token}` });
      }
    }
    t.equal(stack.proxy.engine.describe('alice')?.deadlineMs, t0 + 5 * MINUTE_MS, `deadline untouched by forgeries (secret configured: ${withSecret})`);
    t.notOk(stack.proxy.engine.describe('alice')!.recent.some((n) => n.atMs > t0), 'forged requests are not even recorded as hers');
    clock.advance(MINUTE_MS);
    await eventually('alice released', () => !('alice' in stack.sim.licensesInUse()));
  }
});

t.test('logout is retried until the upstream accepts it (fails three times first)', async (t) => {
  const clock = new ManualClock(Date.now());
  const s = await startStack(t, { clock, properties: props({ enabled: true, minutes: 1, 'notification.minutes': 0 }) });
  const cookie = await s.login('erin');
  await s.get('/panopticon/', { cookie });
  s.sim.failures.failLogout(3, 500);
  clock.advance(MINUTE_MS);
  // Each clock step starts whatever retry is due; the next step waits until that call has finished
  // (events, not real-time sleeps), so a slow machine cannot make the clock run past the retries.
  await eventually('the first logout call', () => s.sim.logoutCalls.length >= 1);
  for (let i = 0; i < 40 && !s.sim.logoutCalls.some((c) => c.status === 200); i++) {
    await eventually('logout call settled', () => s.proxy.queue.inFlight === 0);
    clock.advance(2000);
  }
  await eventually('logout call settled', () => s.proxy.queue.inFlight === 0);
  t.same(s.sim.logoutCalls.map((c) => c.status), [500, 500, 500, 200]);
  t.same(s.sim.licensesInUse(), {}, 'released in the end');
  const retries = s.logs.filter((l) => l.event === 'logout-retry');
  t.same(retries.map((l) => l.attempts), [1, 2, 3], 'every failed attempt logged with its count');
  const result = s.logs.find((l) => l.event === 'logout-result');
  t.match(result, { user: 'erin', outcome: 'released', attempts: 4 });
});

t.test('a properties edit that shortens the timeout applies to a running session', async (t) => {
  const clock = new ManualClock(Date.now());
  const s = await startStack(t, { clock, properties: props({ enabled: true, minutes: 480, 'notification.minutes': 1 }) });
  const cookie = await s.login('alice');
  await s.get('/panopticon/', { cookie });
  const t0 = clock.now();
  const tab = await s.openSocket(NOTIFY, cookie);
  clock.advance(5 * MINUTE_MS);
  const changed = new Promise<void>((resolve) => s.proxy.settings.onChange(() => resolve()));
  await writeFile(s.propertiesPath, props({ enabled: true, minutes: 10, 'notification.minutes': 1 }));
  await changed;
  t.equal(s.proxy.engine.describe('alice')?.deadlineMs, t0 + 10 * MINUTE_MS);
  clock.advance(4 * MINUTE_MS);
  await tab.next((m) => m === WARNING);
  clock.advance(MINUTE_MS);
  await tab.next((m) => m === LOGOUT);
  const change = s.logs.find((l) => l.event === 'settings-changed');
  t.ok(change, 'the change was logged');
});

t.test('every credential of the sign-in is logged out and refused (a SESSION cookie beside the token)', async (t) => {
  const clock = new ManualClock(Date.now());
  const s = await startStack(t, { clock, properties: props({ enabled: true, minutes: 5, 'notification.minutes': 0 }), simulator: { issueSessionCookie: true } });
  const cookie = await s.login('alice');
  t.match(cookie, /ptoken=.*SESSION=/, 'the login set both cookies');
  await s.get('/panopticon/', { cookie });
  t.equal(s.proxy.engine.describe('alice')?.credentials, 2);
  clock.advance(5 * MINUTE_MS);
  await eventually('both credentials logged out', () => s.proxy.queue.size === 0 && s.sim.logoutCalls.length === 2);
  // each credential is logged out on its own; whichever call lands first ends the whole sign-in,
  // so the other may find it already gone (401), which the proxy counts as released
  t.same(s.sim.logoutCalls.map((c) => c.presented.join('+')).sort(), ['ptoken', 'session'], 'one call per credential, each carrying only that credential');
  t.ok(s.sim.logoutCalls.some((c) => c.status === 200 && c.user === 'alice'), 'one of them ended alice\'s sign-in');
  const sessionOnly = cookie.split('; ').find((c) => c.startsWith('SESSION='))!;
  t.equal((await s.get('/panopticon/server/rest/server/myself', { cookie: sessionOnly })).status, 401, 'the SESSION cookie alone is refused too');
  t.same(s.sim.licensesInUse(), {});
});

t.test('Basic and trusted-header users are not locked out: background traffic is refused, their next real request signs them in again', async (t) => {
  const clock = new ManualClock(Date.now());
  const s = await startStack(t, { clock, properties: props({ enabled: true, minutes: 5, 'notification.minutes': 0 }) });
  const basic = { authorization: `Basic ${Buffer.from('bob:bob').toString('base64')}` };
  t.equal((await s.get('/panopticon/server/rest/dashboards/refresh', basic)).status, 200);
  await eventually('bob known', () => s.proxy.engine.describe('bob') !== undefined);
  clock.advance(5 * MINUTE_MS);
  await eventually('bob logged out upstream', () => s.sim.logoutCalls.some((c) => c.via === 'basic'));
  await eventually('bob\'s logout finished', () => s.proxy.queue.size === 0);
  t.match(s.logs.find((l) => l['event'] === 'logout-result'), { user: 'bob', outcome: 'released' }, 'released without a verification that Basic would always fail (it signs in again)');
  t.same(s.logs.filter((l) => l['event'] === 'logout-unverified'), []);
  t.equal(s.proxy.engine.describe('bob')?.state, 'logged-out');
  const poll = await s.get('/panopticon/server/rest/data/poll', basic);
  t.equal(poll.status, 401, 'background polling after the timeout is refused, so it cannot sign him in again');
  t.match(JSON.parse(poll.body), { error: 'session_timed_out' });
  t.equal((await s.get('/panopticon/server/rest/dashboards/refresh', basic)).status, 200, 'a real request goes through');
  await eventually('new session', () => s.proxy.engine.describe('bob')?.state === 'active');
  t.equal((await s.get('/panopticon/server/rest/data/poll', basic)).status, 200, 'and his background traffic works again');
});
