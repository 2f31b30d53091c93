/**
 * Redis Sentinel failover under two replicas: the master is killed, the Sentinel promotes its
 * replica, the proxies find the new master through the Sentinel (PROXY_REDIS_SENTINELS) and go
 * on; the idle user is logged out once, after the failover.
 */
import t from 'tap';
import { request } from 'undici';
import { props, eventually, loginAt, openRecordingSocket } from './helpers/stack.js';
import { startSentinelSetup } from './helpers/redis.js';
import { startReplicas } from './helpers/replicas.js';

const NOTIFY = '/panopticon/server/ws/notifications';

async function readyStatus(adminUrl: string): Promise<string> {
  const res = await request(adminUrl + '/readyz');
  return ((await res.body.json()) as { status: string }).status;
}

t.test('the Redis master dies: the Sentinel promotes the replica, the proxies follow, one logout', async (t) => {
  const redis = await startSentinelSetup(t);
  // 10 s timeout, no warning
  const r = await startReplicas(t, { count: 2, redisUrl: 'redis://unused.invalid:6379', properties: props({ enabled: true, minutes: 0.1667, 'notification.minutes': 0 }), env: { PROXY_REDIS_SENTINELS: redis.sentinels, PROXY_REDIS_SENTINEL_NAME: 'mymaster' } });
  const [a, b] = r.replicas as [typeof r.replicas[0], typeof r.replicas[0]];
  for (const x of r.replicas) t.equal(await readyStatus(x.proxy.adminUrl), 'ready', `${x.id} reached the master through the Sentinel`);
  const cookie = await loginAt(a.proxy.url, 'alice');
  const socket = await openRecordingSocket(t, b.proxy.url, NOTIFY, cookie);
  await eventually('B knows alice', () => b.proxy.engine.describe('alice') !== undefined, 5000);

  await redis.master.stop();
  await eventually('a replica noticed', async () => (await readyStatus(a.proxy.adminUrl)) === 'degraded' || (await readyStatus(b.proxy.adminUrl)) === 'degraded', 8000);
  for (const x of r.replicas) await eventually(`${x.id} on the new master`, async () => (await readyStatus(x.proxy.adminUrl)) === 'ready', 20_000);
  t.equal(r.sim.logoutCalls.length, 0, 'nobody logged out during the failover');

  await socket.next((m) => m.includes('LogoutNotification'), 25_000);
  await eventually('upstream logout', () => r.sim.logoutCalls.some((c) => c.status === 200), 10_000);
  await new Promise((res) => setTimeout(res, 1500));
  t.same(r.sim.logoutCalls.map((c) => [c.user, c.status]), [['alice', 200]], 'alice logged out once, after the failover');
});
