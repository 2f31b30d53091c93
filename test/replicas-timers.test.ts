/**
 * A dashboard timer whose requests alternate over two replicas (round-robin, real Redis, real
 * clock), after the person's last click at T. Each replica recognises the timer (it sees every
 * other request, at a steady interval) and takes the counted timer requests back; the retraction
 * is shared (a set-to in Redis, announced), so the user is logged out about one timeout after T —
 * not one timeout after the last timer request some replica counted before recognising it.
 */
import t from 'tap';
import { request } from 'undici';
import { props, eventually, loginAt } from './helpers/stack.js';
import { startRedis } from './helpers/redis.js';
import { startReplicas } from './helpers/replicas.js';
import { sleep } from './helpers/process.js';

const REFRESH = '/panopticon/server/rest/dashboards/7/refresh';
const CLICK = '/panopticon/server/rest/server/myself';
const FETCH = { 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' };
const TIMEOUT_MS = 10_000;
const TIMER_MS = 600;

t.test('a timer alternating over two replicas: logged out about one timeout after the last click, everywhere', async (t) => {
  const redis = await startRedis(t);
  const r = await startReplicas(t, { count: 2, redisUrl: redis.url, properties: props({ enabled: true, minutes: TIMEOUT_MS / 60_000, 'notification.minutes': 0 }) });
  const [a, b] = r.replicas as [typeof r.replicas[0], typeof r.replicas[0]];
  const cookie = await loginAt(a.proxy.url, 'alice');
  await sleep(300);
  const click = await request(a.proxy.url + CLICK, { headers: { cookie } });
  await click.body.dump();
  const clickAtMs = Date.now();
  t.equal(click.statusCode, 200, 'the last click, on A');

  // the dashboard's timer, through the round-robin, until the upstream logout
  let logoutAtMs: number | undefined;
  let sent = 0;
  while (logoutAtMs === undefined && Date.now() < clickAtMs + TIMEOUT_MS + 15_000) {
    await sleep(TIMER_MS);
    const res = await r.get(REFRESH, { cookie, ...FETCH });
    sent++;
    if (r.sim.logoutCalls.length > 0 || res.status === 401) logoutAtMs = Date.now();
  }
  t.ok(logoutAtMs !== undefined, `logged out while the timer ran (${sent} timer requests)`);
  const afterClickMs = (logoutAtMs ?? Infinity) - clickAtMs;
  t.ok(afterClickMs >= TIMEOUT_MS - 500, `not before one timeout after the click (${afterClickMs} ms)`);
  // without the shared retraction the other replica keeps its last counted timer request (about
  // 7 s after the click, when it recognised the timer) and the logout comes ~17 s after the click
  t.ok(afterClickMs < TIMEOUT_MS + 4000, `about one timeout after the click, not after the timer's last counted request (${afterClickMs} ms)`);
  for (const x of r.replicas) t.ok(x.logs().some((l) => l['event'] === 'periodic-recognised'), `${x.id} recognised the timer itself`);
  t.ok(r.replicas.some((x) => x.logs().some((l) => l['event'] === 'activity-retracted')), 'counted timer requests were taken back');

  await eventually('one upstream logout', () => r.sim.logoutCalls.some((c) => c.status === 200), 8000);
  await sleep(1000);
  t.same(r.sim.logoutCalls.map((c) => c.user), ['alice'], 'exactly one upstream logout');
  for (const x of [a, b]) {
    await eventually(`${x.id} shows alice logged out`, () => x.proxy.engine.describe('alice')?.state === 'logged-out', 5000);
    const res = await request(x.proxy.url + CLICK, { headers: { cookie } });
    await res.body.dump();
    t.equal(res.statusCode, 401, `${x.id} refuses the old cookie`);
  }
});
