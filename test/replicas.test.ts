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

  // 10 s of work (longer than the 6 s timeout): clicks land on A only, then alternate over all
  // three. The gaps are a person's (uneven): one request a second would be a timer, recognised
  // and taken back on every replica (test/replicas-timers.test.ts)
  const gapsMs = [600, 1400, 900, 1600, 700, 1300, 1000, 1500, 800];
  for (let i = 0; i < gapsMs.length; i++) {
    const res = i < 5 ? await request(a.proxy.url + '/panopticon/server/rest/server/myself', { headers: { cookie } }) : await r.get('/panopticon/server/rest/server/myself', { cookie });
    t.equal('statusCode' in res ? res.statusCode : res.status, 200);
    if ('body' in res && typeof res.body !== 'string') await res.body.dump();
    await sleep(gapsMs[i]!);
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

async function adminCall(adminUrl: string, method: 'GET' | 'POST', path: string): Promise<{ status: number; json: any }> {
  const res = await request(adminUrl + path, { method });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? JSON.parse(text) : undefined };
}

t.test('the admin API on any replica lists sessions cluster-wide with the replica holding each socket; extend and log out now act everywhere', async (t) => {
  const redis = await startRedis(t);
  const r = await startReplicas(t, { count: 3, redisUrl: redis.url, properties: props({ enabled: true, minutes: 1, 'notification.minutes': 0 }) });
  const [a, b, c] = r.replicas as [typeof r.replicas[0], typeof r.replicas[0], typeof r.replicas[0]];
  const alice = await loginAt(a.proxy.url, 'alice');
  const bob = await loginAt(a.proxy.url, 'bob');
  await (await request(a.proxy.url + '/panopticon/server/rest/server/myself', { headers: { cookie: alice } })).body.dump();
  await (await request(a.proxy.url + '/panopticon/server/rest/server/myself', { headers: { cookie: bob } })).body.dump();
  const onB = await openRecordingSocket(t, b.proxy.url, NOTIFY, alice);

  let listed: any;
  await eventually('C lists alice with her socket on B', async () => {
    listed = (await adminCall(c.proxy.adminUrl, 'GET', '/admin/sessions')).json;
    const row = listed.sessions.find((s: any) => s.user === 'alice');
    return row?.openSockets === 1 && row.socketsByReplica?.[b.id] === 1;
  }, 8000);
  t.same(listed.sessions.map((s: any) => s.user).sort(), ['alice', 'bob'], 'C, which served neither, lists both users');

  const before = b.proxy.engine.describe('bob')!.deadlineMs!;
  await sleep(50);
  const extended = await adminCall(c.proxy.adminUrl, 'POST', '/admin/sessions/bob/extend');
  t.equal(extended.status, 200);
  await eventually('the extension reaches B', () => (b.proxy.engine.describe('bob')?.deadlineMs ?? 0) > before, 5000);

  const forced = await adminCall(c.proxy.adminUrl, 'POST', '/admin/sessions/alice/logout');
  t.equal(forced.status, 202, 'log out now on C');
  await onB.next(isLogout, 5000);
  await onB.closed;
  await eventually('one upstream logout', () => r.sim.logoutCalls.some((call) => call.user === 'alice' && call.status === 200), 5000);
  await sleep(1000);
  t.equal(r.sim.logoutCalls.filter((call) => call.user === 'alice').length, 1, 'exactly one upstream logout for alice');
  t.equal((await adminCall(a.proxy.adminUrl, 'POST', '/admin/sessions/alice/logout')).status, 409, 'A knows she is logged out already');
  const res = await request(a.proxy.url + '/panopticon/server/rest/server/myself', { headers: { cookie: alice } });
  await res.body.dump();
  t.equal(res.statusCode, 401, 'A refuses her old cookie');
});
