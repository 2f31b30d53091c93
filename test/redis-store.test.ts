/**
 * The Redis store's building blocks against a real redis-server: claims are exactly-once across
 * replicas, an ACL user and password in the URL work (a wrong one leaves the replica degraded, not
 * failing), and replicas with different timeout settings are named in a warning.
 */
import t, { type Test } from 'tap';
import { Writable } from 'node:stream';
import { loadDeploymentConfig } from '../src/config/deployment.js';
import { stateKeyBytes } from '../src/config/state-key.js';
import { createLogger } from '../src/log.js';
import { systemClock } from '../src/sessions/clock.js';
import { RedisLink } from '../src/sessions/redis-link.js';
import { RedisSessionStore } from '../src/sessions/redis-store.js';
import { ReplicaDirectory } from '../src/sessions/replica-directory.js';
import { SecretBox } from '../src/sessions/secret-box.js';
import { eventually } from './helpers/stack.js';
import { settings } from './helpers/engine.js';
import { startRedis } from './helpers/redis.js';
import { TEST_STATE_KEY } from './helpers/replicas.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({ write(chunk, _enc, cb) { for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l)); cb(); } });
  return { lines, logger: createLogger({ level: 'debug', destination }) };
}

function linkTo(t: Test, url: string, logger = capture().logger, id?: string): RedisLink {
  const config = loadDeploymentConfig({ PROXY_UPSTREAM: 'http://up:1', PROXY_REDIS_URL: url });
  const link = new RedisLink(config, logger, id);
  t.teardown(() => link.close());
  return link;
}

/** Two replicas' stores on one Redis, connected. */
async function twoStores(t: Test, url: string): Promise<[{ link: RedisLink; store: RedisSessionStore }, { link: RedisLink; store: RedisSessionStore }]> {
  const box = new SecretBox(stateKeyBytes(TEST_STATE_KEY));
  const pair = [0, 1].map(() => {
    const { logger } = capture();
    const link = linkTo(t, url, logger);
    const store = new RedisSessionStore({ link, box, clock: systemClock, flushMs: 50, logger });
    t.teardown(() => store.close());
    return { link, store };
  });
  for (const { link } of pair) await link.waitUntilUp(5000);
  return pair as [{ link: RedisLink; store: RedisSessionStore }, { link: RedisLink; store: RedisSessionStore }];
}

t.test('three replicas race for the same claims: each (user, action, period) is won exactly once', async (t) => {
  const redis = await startRedis(t);
  const box = new SecretBox(stateKeyBytes(TEST_STATE_KEY));
  const stores = [0, 1, 2].map(() => {
    const { logger } = capture();
    const link = linkTo(t, redis.url, logger);
    const store = new RedisSessionStore({ link, box, clock: systemClock, flushMs: 50, logger });
    t.teardown(() => store.close());
    return { link, store };
  });
  for (const s of stores) t.ok(await s.link.waitUntilUp(5000), 'connected');
  const users = Array.from({ length: 200 }, (_, i) => `user${i}`);
  const periodMs = Date.now() - 60_000;
  for (const { store } of stores) {
    for (const u of users) store.ensure(u, periodMs).idleSinceMs = periodMs;
  }
  const results = await Promise.all(stores.map(({ store }) => Promise.all(users.map((u) => store.claim(u, 'logout', periodMs)))));
  const wins = users.map((_, i) => results.filter((r) => r[i]).length);
  t.same([...new Set(wins)], [1], 'every user has exactly one winner');
  for (const { store } of stores) {
    t.equal(users.filter((u) => store.get(u)!.loggedOutAtMs !== undefined || store.claimed(u, 'logout', periodMs)).length, users.length, 'every replica knows each logout was claimed');
  }
  const again = await Promise.all(users.map((u) => stores[0]!.store.claim(u, 'logout', periodMs)));
  t.notOk(again.some(Boolean), 'a claim is never won twice');
});

t.test('activity seen elsewhere wins over a stale deadline', async (t) => {
  const redis = await startRedis(t);
  const [a, b] = await twoStores(t, redis.url);
  const oldMs = Date.now() - 60_000;
  b.store.ensure('zoe', oldMs).idleSinceMs = oldMs;
  const nowMs = Date.now();
  a.store.recordActivity('zoe', { atMs: nowMs, method: 'GET', path: '/work', counted: true, rule: 'counted' });
  t.equal(await b.store.claim('zoe', 'logout', oldMs), false, 'B cannot log zoe out for an idle period A saw end');
  t.equal(b.store.get('zoe')!.idleSinceMs, nowMs, 'B adopted her latest activity');
});

t.test('Redis ACL user and password from the URL; a wrong password leaves the replica degraded', async (t) => {
  const redis = await startRedis(t, ['--user', 'default', 'off', '--user', 'proxy', 'on', '>s3cret-pass', '~*', '&*', '+@all']);
  const good = linkTo(t, `redis://proxy:s3cret-pass@127.0.0.1:${redis.port}/2`);
  t.ok(await good.waitUntilUp(5000), 'connected as the ACL user');
  t.equal(await good.cmd.acl('WHOAMI'), 'proxy');
  const { lines, logger } = capture();
  const bad = linkTo(t, `redis://proxy:wrong@127.0.0.1:${redis.port}`, logger);
  t.notOk(await bad.waitUntilUp(1500), 'a wrong password never connects');
  t.notOk(lines.some((l) => JSON.stringify(l).includes('s3cret') || JSON.stringify(l).includes('wrong')), 'no password in the log');
});

t.test('replicas that read different timeout settings are named in one warning', async (t) => {
  const redis = await startRedis(t);
  const one = capture();
  const two = capture();
  const linkA = linkTo(t, redis.url, one.logger, 'replica-a');
  const linkB = linkTo(t, redis.url, two.logger, 'replica-b');
  await linkA.waitUntilUp(5000);
  await linkB.waitUntilUp(5000);
  const dirA = new ReplicaDirectory({ link: linkA, logger: one.logger, settings: () => settings({ minutes: 10 }), socketsByUser: () => new Map([['alice', 2]]), intervalMs: 100 });
  const dirB = new ReplicaDirectory({ link: linkB, logger: two.logger, settings: () => settings({ minutes: 15 }), socketsByUser: () => new Map(), intervalMs: 100 });
  t.teardown(() => { dirA.close(); dirB.close(); });
  await eventually('B warned', () => two.lines.some((l) => l['event'] === 'replica-settings-differ'), 5000);
  await new Promise((r) => setTimeout(r, 500));
  const warnings = two.lines.filter((l) => l['event'] === 'replica-settings-differ');
  t.equal(warnings.length, 1, 'once, not every heartbeat');
  t.match(warnings[0], { replica: 'replica-b', otherReplica: 'replica-a', settings: /minutes=15/, otherSettings: /minutes=10/ });
  t.match(String(warnings[0]!['msg']), /replica-b has .*minutes=15.*replica-a has .*minutes=10/);
  t.same(dirB.socketsByReplica('alice'), { 'replica-a': 2 }, 'B knows alice\'s sockets are on A');
});

t.test('the claim script: a replica that lost the answer recognises its own claim; another replica does not', async (t) => {
  const { withScripts } = await import('../src/sessions/redis-scripts.js');
  const redis = await startRedis(t);
  const link = linkTo(t, redis.url);
  await link.waitUntilUp(5000);
  const r = withScripts(link.cmd);
  await r.hset('stp:u:{amy}', 'idle', '1000');
  await r.hset('stp:u:{amy}:c', 'fp1', 'v1.sealed');
  t.same(await r.stpClaim('stp:u:{amy}', 'stp:u:{amy}:c', 'logout', '1000', '0', '5000', 'replica-a'), ['won', '1000', 'fp1', 'v1.sealed']);
  t.same(await r.stpClaim('stp:u:{amy}', 'stp:u:{amy}:c', 'logout', '1000', '0', '5001', 'replica-a'), ['won', '1000', 'fp1', 'v1.sealed'], 'asked again by the same replica: still its claim');
  t.same(await r.stpClaim('stp:u:{amy}', 'stp:u:{amy}:c', 'logout', '1000', '0', '5002', 'replica-b'), ['taken', '1000', '5000', 'replica-a'], 'another replica: taken, with when and by whom');
  t.same(await r.stpClaim('stp:u:{amy}', 'stp:u:{amy}:c', 'logout', '900', '0', '5003', 'replica-b'), ['moved', '1000'], 'an older idle period: the record moved on');
});

t.test('a timer retraction is a shared set-to: back to the latest real request any replica retracted to; stale timer counts lose, newer activity wins', async (t) => {
  const redis = await startRedis(t);
  const [a, b] = await twoStores(t, redis.url);
  const note = (atMs: number, path: string) => ({ atMs, method: 'GET', path, counted: true, rule: 'counted' });
  // what SessionEngine.retractActivity does with a shared store
  const retract = (s: RedisSessionStore, to: ReturnType<typeof note>) => {
    const r = s.get('tim')!;
    s.retract(r.user, to, r.idleSinceMs);
    if (to.atMs < r.idleSinceMs) {
      r.idleSinceMs = to.atMs;
      r.lastActivity = to;
    }
  };
  const idleOf = async () => Number(await a.link.cmd.hget('stp:u:{tim}', 'idle'));
  const t0 = Date.now() - 60_000;
  const login = note(t0, '/login'); // seen by A
  const click = note(t0 + 5000, '/click'); // the person's last click, seen by B
  a.store.recordActivity('tim', login);
  b.store.recordActivity('tim', click);
  // the timer alternates over A and B and is counted by both until recognised
  for (let i = 1; i <= 10; i++) (i % 2 ? a : b).store.recordActivity('tim', note(t0 + 5000 + i * 1000, '/timer'));
  await Promise.all([a.store.flush(), b.store.flush()]);
  await eventually('both copies at the last timer request', () => a.store.get('tim')!.idleSinceMs === t0 + 15_000 && b.store.get('tim')!.idleSinceMs === t0 + 15_000, 3000);

  // A recognises the timer first: its last real request is the login
  retract(a.store, login);
  await a.store.flush();
  t.equal(await idleOf(), t0, 'A\'s retraction moved the shared idle start back (a set-to, not a max)');
  await eventually('B hears it and goes back too', () => b.store.get('tim')!.idleSinceMs === t0, 3000);
  // B counted one more timer request before it recognised the timer: stale, it loses
  b.store.recordActivity('tim', note(t0 + 14_500, '/timer'));
  await b.store.flush();
  t.equal(await idleOf(), t0, 'a timer request counted before the retraction (inside what it covered) loses');
  // B recognises the timer: its last real request is the click, which must not be lost
  retract(b.store, click);
  await b.store.flush();
  t.equal(await idleOf(), t0 + 5000, 'B\'s retraction to the click wins over A\'s older one');
  await eventually('both copies idle since the click', () => a.store.get('tim')!.idleSinceMs === t0 + 5000 && b.store.get('tim')!.idleSinceMs === t0 + 5000, 3000);
  t.equal(a.store.get('tim')!.lastActivity?.path, '/click', 'A shows the click as the last activity');
  // A retracts again (to the login): the click stays
  retract(a.store, login);
  await a.store.flush();
  t.equal(await idleOf(), t0 + 5000, 'a later retraction to an older request does not lose the click');
  // genuinely newer activity (after everything the retractions covered) wins as always
  a.store.recordActivity('tim', note(t0 + 20_000, '/another-click'));
  await a.store.flush();
  t.equal(await idleOf(), t0 + 20_000, 'newer real activity moves the idle start forward');
  await eventually('B adopts it', () => b.store.get('tim')!.idleSinceMs === t0 + 20_000, 3000);
});
