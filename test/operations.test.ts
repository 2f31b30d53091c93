/**
 * Operations through the running proxy: shadow mode and the metrics an operator scrapes after a
 * scripted scenario. Real simulator, real sockets, ManualClock for the timers.
 */
import t from 'tap';
import { request } from 'undici';
import { ManualClock } from '../src/sessions/clock.js';
import { MINUTE_MS } from '../src/properties/settings.js';
import { eventually, props, startStack } from './helpers/stack.js';

const NOTIFY = '/panopticon/server/ws/notifications';
const ADMIN_TOKEN = 'ops-test-admin-token';

async function scrape(adminUrl: string): Promise<Map<string, number>> {
  const res = await request(`${adminUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const text = await res.body.text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const i = line.lastIndexOf(' ');
    values.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return values;
}

t.test('shadow mode: computes, logs and counts, but injects nothing, logs nobody out, refuses nothing', async (t) => {
  const clock = new ManualClock(Date.now());
  const s = await startStack(t, { clock, properties: props({ enabled: true, minutes: 10, 'notification.minutes': 1 }), env: { PROXY_MODE: 'shadow', PROXY_ADMIN_TOKEN: ADMIN_TOKEN } });
  const cookie = await s.login('alice');
  await s.get('/panopticon/', { cookie });
  const tab = await s.openSocket(NOTIFY, cookie);
  clock.advance(9 * MINUTE_MS);
  clock.advance(MINUTE_MS);
  await eventually('would-log-out line', () => s.logs.some((l) => l.event === 'timeout-logout'));
  tab.ws.send('ping');
  await tab.next((m) => m === 'pong');
  t.same(tab.messages, ['pong'], 'no frame was injected');
  t.equal(tab.ws.readyState, tab.ws.OPEN, 'the socket stays open');
  t.same(s.sim.logoutCalls, [], 'no upstream logout');
  t.same(s.sim.licensesInUse(), { alice: 2 }, 'the license stays checked out');
  const warn = s.logs.find((l) => l.event === 'timeout-warning');
  t.match(warn, { user: 'alice', mode: 'shadow', msg: /would warn/ });
  t.match(s.logs.find((l) => l.event === 'timeout-logout'), { user: 'alice', mode: 'shadow', msg: /would log user out/ });
  t.equal((await s.get('/panopticon/server/rest/server/myself', { cookie })).status, 200, 'nothing refused');
  const m = await scrape(s.proxy.adminUrl);
  t.equal(m.get('session_timeout_proxy_warnings_total{mode="shadow"}'), 1);
  t.equal(m.get('session_timeout_proxy_logouts_total{outcome="shadow"}'), 1);
  t.equal(m.get('session_timeout_proxy_logouts_total{outcome="released"}') ?? 0, 0);
});

t.test('metrics after a scripted scenario', async (t) => {
  const clock = new ManualClock(Date.now());
  const s = await startStack(t, { clock, properties: props({ enabled: true, minutes: 5, 'notification.minutes': 1 }), env: { PROXY_ADMIN_TOKEN: ADMIN_TOKEN } });
  const alice = await s.login('alice');
  const bob = await s.login('bob');
  await s.get('/panopticon/', { cookie: alice });
  await s.get('/panopticon/server/rest/dashboards/refresh', { cookie: alice });
  await s.get('/panopticon/server/rest/data/poll', { cookie: alice });
  await s.get('/panopticon/', { cookie: bob });
  await s.openSocket(NOTIFY, alice);
  await s.openSocket(NOTIFY, bob);
  s.sim.failures.failLogout(1, 503);
  clock.advance(5 * MINUTE_MS);
  for (let i = 0; i < 40 && s.proxy.queue.size > 0; i++) {
    await new Promise((r) => setTimeout(r, 25));
    clock.advance(1000);
  }
  await eventually('both released', () => Object.keys(s.sim.licensesInUse()).length === 0);
  t.equal((await s.get('/panopticon/', { cookie: alice, accept: 'text/html' })).status, 302);
  t.equal((await s.get('/panopticon/server/rest/data/poll', { cookie: bob })).status, 401);

  const m = await scrape(s.proxy.adminUrl);
  t.equal(m.get('session_timeout_proxy_users_tracked'), 2);
  t.equal(m.get('session_timeout_proxy_requests_total{counted="true",rule="counted"}'), 3, 'two page loads and one refresh counted');
  t.equal(m.get('session_timeout_proxy_requests_total{counted="false",rule="passive:GET /panopticon/server/rest/data/**"}'), 1);
  t.equal(m.get('session_timeout_proxy_warnings_total{mode="enforce"}'), 2);
  t.equal(m.get('session_timeout_proxy_logouts_total{outcome="released"}'), 2);
  t.equal(m.get('session_timeout_proxy_logouts_total{outcome="retrying"}'), 1, 'the one failed attempt');
  t.equal(m.get('session_timeout_proxy_license_release_seconds_count'), 2);
  t.equal(m.get('session_timeout_proxy_refused_stale_credentials_total{kind="token-cookie",mode="enforce"}'), 2);
  t.equal(m.get('session_timeout_proxy_open_sockets'), 0, 'the users\' sockets were closed');
  t.equal(m.get('session_timeout_proxy_pending_logouts'), 0);
  t.equal(m.get('session_timeout_proxy_settings_reloads_total'), 0);
});
