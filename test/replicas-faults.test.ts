/**
 * Replicas on one real Redis when Redis fails: stopped for 10 s under traffic (no 5xx, readiness
 * says degraded, one log line per transition), then back empty (re-seeded, reconciled: the latest
 * activity wins, one logout per idle period).
 */
import t from 'tap';
import { request } from 'undici';
import { Redis } from 'ioredis';
import { props, eventually, loginAt } from './helpers/stack.js';
import { startRedis } from './helpers/redis.js';
import { startReplicas } from './helpers/replicas.js';
import { sleep } from './helpers/process.js';

const API = '/panopticon/server/rest/server/myself';

async function status(url: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await request(url, { headers });
  await res.body.dump();
  return res.statusCode;
}

async function readyz(adminUrl: string): Promise<{ code: number; body: any }> {
  const res = await request(adminUrl + '/readyz');
  return { code: res.statusCode, body: await res.body.json() };
}

t.test('Redis stopped for 10 s under traffic, then restarted empty', async (t) => {
  const redis = await startRedis(t);
  // 8 s timeout, no warning
  const r = await startReplicas(t, { count: 2, redisUrl: redis.url, properties: props({ enabled: true, minutes: 0.1333, 'notification.minutes': 0 }) });
  const [a, b] = r.replicas as [typeof r.replicas[0], typeof r.replicas[0]];
  const carol = await loginAt(a.proxy.url, 'carol');
  const dave = await loginAt(b.proxy.url, 'dave');
  t.equal(await status(a.proxy.url + API, { cookie: carol }), 200);
  t.equal(await status(b.proxy.url + API, { cookie: dave }), 200);
  await eventually('both replicas know both users', () => r.replicas.every((x) => x.proxy.engine.describe('carol') && x.proxy.engine.describe('dave')), 5000);
  t.same((await readyz(a.proxy.adminUrl)).body.status, 'ready');

  const statuses: number[] = [];
  let traffic = true;
  const load = (async () => {
    while (traffic) {
      // carol keeps working, on A only; dave does nothing
      statuses.push(await status(a.proxy.url + API, { cookie: carol }));
      statuses.push((await r.get('/panopticon/', { accept: 'text/html' })).status);
      await sleep(100);
    }
  })();

  await redis.stop();
  for (const x of r.replicas) {
    await eventually(`${x.id} says degraded`, async () => {
      const ready = await readyz(x.proxy.adminUrl);
      return ready.code === 200 && ready.body.status === 'degraded';
    }, 6000);
  }
  const metrics = await (await request(a.proxy.adminUrl + '/metrics')).body.text();
  t.match(metrics, /session_timeout_proxy_store_degraded 1/, 'the metric shows it');
  await sleep(10_000);
  t.equal(r.sim.logoutCalls.length, 0, 'no logout decided while Redis was down (dave is past his deadline, claims wait)');
  await redis.start();
  for (const x of r.replicas) await eventually(`${x.id} ready again`, async () => (await readyz(x.proxy.adminUrl)).body.status === 'ready', 8000);

  await eventually('dave logged out after Redis came back', () => r.sim.logoutCalls.some((c) => c.user === 'dave' && c.status === 200), 15_000);
  await sleep(2000);
  traffic = false;
  await load;
  t.ok(statuses.length > 50, `traffic went on (${statuses.length} requests)`);
  t.same([...new Set(statuses)].filter((s) => s >= 500), [], 'never a 5xx because of Redis');
  t.equal(r.sim.logoutCalls.filter((c) => c.user === 'dave').length, 1, 'dave logged out exactly once');
  t.equal(r.sim.logoutCalls.filter((c) => c.user === 'carol').length, 0, 'carol, active on A during the outage, was not logged out by B');
  t.ok((b.proxy.engine.describe('carol')?.idleSinceMs ?? 0) > Date.now() - 3000, 'B adopted the activity A saw during the outage');

  for (const x of r.replicas) {
    const lines = x.logs();
    t.equal(lines.filter((l) => l['event'] === 'redis-down').length, 1, `${x.id}: one "down" line`);
    t.equal(lines.filter((l) => l['event'] === 'redis-up').length, 2, `${x.id}: one "up" line at start, one after the outage`);
  }
  const probe = new Redis(redis.url);
  t.teardown(() => probe.disconnect());
  t.equal(await probe.exists('stp:u:{carol}'), 1, 'the restarted Redis was re-seeded with carol');
  t.equal(await probe.hexists('stp:revoked', (await probe.hkeys('stp:revoked'))[0] ?? 'none'), 1, 'and holds the refusal of dave\'s credential');
  const sealed = await probe.hvals('stp:u:{carol}:c');
  t.ok(sealed.length > 0 && sealed.every((v) => v.startsWith('v1.') && !v.includes(carol.split('=')[1]!)), 'credentials in Redis are sealed');
});
