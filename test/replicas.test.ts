/**
 * Several replicas on one real Redis, behind a round-robin without sticky sessions: the three
 * wrong situations of a per-process store are right, refusals and the admin act cluster-wide.
 * Timeouts are a few seconds (decimal minutes); the clock is the real one.
 */
import t from 'tap';
import { request } from 'undici';
import { props, eventually, loginAt, openRecordingSocket, upgradeStatus } from './helpers/stack.js';
import { startRedis } from './helpers/redis.js';
import { startReplicas } from './helpers/replicas.js';
import { sleep } from './helpers/process.js';

const NOTIFY = '/panopticon/server/ws/notifications';
const LOGOUT = '{"LogoutNotification":{"reason":"Logged out due to session timeout"}}';
const isWarning = (m: string) => m.includes('TimeoutNotification');
const isLogout = (m: string) => m.includes('LogoutNotification');
// 6 s timeout, warning 3 s before
const PROPS = props({ enabled: true, minutes: 0.1, 'notification.minutes': 0.05 });

t.test('clicks on one replica, socket on another, requests alternating: no early warning or logout; then exactly one warning per socket and one upstream logout', async (t) => {
  const redis = await startRedis(t);
  const r = await startReplicas(t, { count: 3, redisUrl: redis.url, properties: PROPS });
  const [a, b, c] = r.replicas as [typeof r.replicas[0], typeof r.replicas[0], typeof r.replicas[0]];
  const cookie = await loginAt(a.proxy.url, 'alice');
  const onB = await openRecordingSocket(t, b.proxy.url, NOTIFY, cookie);
  const onC = await openRecordingSocket(t, c.proxy.url, NOTIFY, cookie);

  // 9 s of work (longer than the 6 s timeout): clicks land on A only, then alternate over all three
  for (let i = 0; i < 9; i++) {
    const res = i < 5 ? await request(a.proxy.url + '/panopticon/server/rest/server/myself', { headers: { cookie } }) : await r.get('/panopticon/server/rest/server/myself', { cookie });
    t.equal('statusCode' in res ? res.statusCode : res.status, 200);
    if ('body' in res && typeof res.body !== 'string') await res.body.dump();
    await sleep(1000);
  }
  t.notOk(onB.messages.some(isWarning), 'B (socket only) did not warn a user working on A');
  t.notOk(onC.messages.some(isWarning), 'no warning while requests alternate between replicas');
  t.equal(r.sim.logoutCalls.length, 0, 'nobody logged her out');

  // now idle: each socket gets the warning once, then the logout once
  await onB.next(isWarning, 8000);
  await onC.next(isWarning, 8000);
  t.equal(await onB.next(isLogout, 8000), LOGOUT);
  await onC.next(isLogout, 8000);
  await Promise.all([onB.closed, onC.closed]);
  t.equal(onB.messages.filter(isWarning).length, 1, 'one warning on B');
  t.equal(onC.messages.filter(isWarning).length, 1, 'one warning on C');
  t.equal(onB.messages.filter(isLogout).length, 1, 'one logout notification on B');
  await eventually('upstream logout', () => r.sim.logoutCalls.some((call) => call.status === 200), 8000);
  await sleep(1500);
  t.same(r.sim.logoutCalls.map((call) => [call.user, call.status]), [['alice', 200]], 'exactly one upstream logout, by one replica');
  t.same(r.sim.licensesInUse(), {}, 'the license came back');
  const loggers = r.replicas.filter((x) => x.logs().some((l) => l['event'] === 'timeout-logout'));
  t.equal(loggers.length, 1, 'one replica performed the logout');

  // refused on every replica
  for (const x of r.replicas) {
    const res = await request(x.proxy.url + '/panopticon/server/rest/server/myself', { headers: { cookie } });
    await res.body.dump();
    t.equal(res.statusCode, 401, `the old cookie is refused by ${x.id}`);
    t.equal(await upgradeStatus(x.proxy.url.replace('http', 'ws') + NOTIFY, cookie), 401);
  }
});
