/**
 * Two replicas on a real Redis Cluster (three masters started by the test, PROXY_REDIS_CLUSTER_NODES):
 * requests alternating over the replicas keep the user's shared timer going, the socket on the
 * other replica gets one warning and one logout, one upstream logout, and both refuse the old
 * cookie. The state is spread over several cluster nodes (hash-tagged keys per user, one slot each).
 */
import t from 'tap';
import { request } from 'undici';
import { props, eventually, loginAt, openRecordingSocket, upgradeStatus } from './helpers/stack.js';
import { startCluster } from './helpers/redis.js';
import { startReplicas } from './helpers/replicas.js';
import { runToEnd, sleep } from './helpers/process.js';

const NOTIFY = '/panopticon/server/ws/notifications';
const API = '/panopticon/server/rest/server/myself';
const isWarning = (m: string) => m.includes('TimeoutNotification');
const isLogout = (m: string) => m.includes('LogoutNotification');

async function status(url: string, cookie: string): Promise<number> {
  const res = await request(url, { headers: { cookie } });
  await res.body.dump();
  return res.statusCode;
}

t.test('two replicas on a three-master Redis Cluster: shared timer, one warning and one logout per socket, one upstream logout, refusals everywhere', async (t) => {
  const cluster = await startCluster(t);
  // 6 s timeout, warning 3 s before
  const r = await startReplicas(t, { count: 2, redisUrl: 'redis://unused.invalid:6379', properties: props({ enabled: true, minutes: 0.1, 'notification.minutes': 0.05 }), env: { PROXY_REDIS_CLUSTER_NODES: cluster.nodes } });
  const [a, b] = r.replicas as [typeof r.replicas[0], typeof r.replicas[0]];
  for (const x of r.replicas) await eventually(`${x.id} joined the cluster`, () => x.proxy.link!.up, 10_000);

  // three users over two replicas: each user's requests alternate between A and B
  const users = ['alice', 'bob', 'carol'];
  const cookies = new Map<string, string>();
  for (const u of users) cookies.set(u, await loginAt(a.proxy.url, u));
  const alice = cookies.get('alice')!;
  const onB = await openRecordingSocket(t, b.proxy.url, NOTIFY, alice);
  // what B hears on the event channel, printed when the test fails
  const heardOnB: string[] = [];
  b.proxy.link!.onMessage((m) => heardOnB.push(`${Date.now()} ${m.t} from ${m.from}: ${JSON.stringify(m).slice(0, 160)}`));
  t.teardown(() => {
    if (t.passing()) return;
    t.comment(`B heard:\n${heardOnB.slice(-40).join('\n')}`);
    for (const x of r.replicas) t.comment(`${x.id} logged: ${JSON.stringify(x.logs().filter((l) => (l['level'] as number) >= 30 && typeof l['event'] === 'string').slice(-30))}`);
  });

  // 9 s of work, longer than the 6 s timeout, every request through the round-robin; the gaps
  // are a person's (uneven), so the timer detection leaves them counted
  const gapsMs = [600, 1400, 900, 1600, 700, 1300, 1000, 1500];
  for (const gapMs of gapsMs) {
    for (const u of users) t.equal((await r.get(API, { cookie: cookies.get(u)! })).status, 200);
    await sleep(gapMs);
  }
  t.notOk(onB.messages.some(isWarning), 'no warning while requests alternate between the replicas');
  t.equal(r.sim.logoutCalls.length, 0, 'nobody was logged out while working');

  // the users' records really are spread over the cluster's nodes
  const sizes = await Promise.all(cluster.ports.map(async (p) => Number((await runToEnd('redis-cli', ['-p', String(p), 'dbsize'])).stdout.trim())));
  t.ok(sizes.filter((n) => n > 0).length >= 2, `keys on several nodes (${sizes.join(', ')})`);

  // now idle: the socket on B gets the warning once, then the logout once
  await onB.next(isWarning, 10_000);
  t.equal(await onB.next(isLogout, 10_000), '{"LogoutNotification":{"reason":"Logged out due to session timeout"}}');
  await onB.closed;
  t.equal(onB.messages.filter(isWarning).length, 1, 'one warning');
  t.equal(onB.messages.filter(isLogout).length, 1, 'one logout notification');
  await eventually('every upstream logout', () => users.every((u) => r.sim.logoutCalls.some((c) => c.user === u && c.status === 200)), 15_000);
  await sleep(1500);
  t.same(r.sim.logoutCalls.map((c) => c.user).sort(), users, 'exactly one upstream logout per user, cluster-wide');
  t.same(r.sim.licensesInUse(), {}, 'the licenses came back');

  for (const x of r.replicas) {
    t.equal(await status(x.proxy.url + API, alice), 401, `the old cookie is refused by ${x.id}`);
    t.equal(await upgradeStatus(x.proxy.url.replace('http', 'ws') + NOTIFY, alice), 401);
  }
  const errors = r.replicas.flatMap((x) => x.logs()).filter((l) => /CROSSSLOT|MOVED|slot/i.test(JSON.stringify(l)));
  t.same(errors, [], 'no cross-slot or routing errors in the logs');
});
