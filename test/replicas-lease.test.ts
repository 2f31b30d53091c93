/**
 * The logout lease with real processes: a replica killed with `kill -9` while its upstream logout
 * keeps failing leaves the job in Redis; another replica takes it over within
 * PROXY_LOGOUT_LEASE_MS and finishes it, and the logout is done once.
 */
import t from 'tap';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startSimulator } from '../src/simulator/server.js';
import { eventually, loginAt } from './helpers/stack.js';
import { sleep, startProxyProcess, type LogLine, type ProxyProcess } from './helpers/process.js';
import { startRedis } from './helpers/redis.js';
import { TEST_STATE_KEY } from './helpers/replicas.js';

const LEASE_MS = 3000;

t.test('kill -9 of the replica holding a failing logout: another takes it over and finishes it once', async (t) => {
  const redis = await startRedis(t);
  const sim = await startSimulator({ logger: false, dataIntervalMs: 1000 });
  t.teardown(() => sim.close());
  const dir = await mkdtemp(join(tmpdir(), 'stp-lease-'));
  const propsPath = join(dir, 'Panopticon.properties');
  await writeFile(propsPath, 'timeout.session.enabled=true\ntimeout.session.minutes=0.05\ntimeout.session.notification.minutes=0\n');
  const env = {
    PROXY_UPSTREAM: sim.url,
    PROXY_HOST: '127.0.0.1',
    PROXY_PORT: '0',
    PROXY_ADMIN_PORT: '0',
    PROXY_PROPERTIES: propsPath,
    PROXY_TOKEN_SECRET: sim.tokenSecret,
    PROXY_STORE: 'redis',
    PROXY_REDIS_URL: redis.url,
    PROXY_REDIS_FLUSH_MS: '100',
    PROXY_STATE_KEY: TEST_STATE_KEY,
    PROXY_LOGOUT_LEASE_MS: String(LEASE_MS),
    PROXY_LOGOUT_RETRY_MIN_MS: '200',
    PROXY_LOGOUT_RETRY_MAX_MS: '400',
    PROXY_LOG_LEVEL: 'info',
  };
  const replicas = [await startProxyProcess(t, env), await startProxyProcess(t, env)];
  sim.failures.failLogout(1_000_000, 503);
  const cookie = await loginAt(replicas[0]!.url, 'alice');
  const res = await request(replicas[0]!.url + '/panopticon/', { headers: { cookie, accept: 'text/html' } });
  await res.body.dump();
  t.equal(res.statusCode, 200);

  const isRetry = (l: LogLine) => l['event'] === 'logout-retry' && l['user'] === 'alice';
  const holder = await Promise.race(replicas.map((p) => p.waitForLog(isRetry, 20_000, 'a failing logout attempt').then(() => p)));
  const other = replicas.find((p) => p !== holder) as ProxyProcess;
  await eventually('a few failed attempts', () => sim.logoutCalls.length >= 2, 5000);
  t.notOk(other.logs.some(isRetry), 'only the holder tries');

  holder.signal('SIGKILL');
  const killedAtMs = Date.now();
  await holder.exited;
  sim.failures.failLogout(0);

  const takeover = await other.waitForLog((l) => l['event'] === 'logout-takeover' && l['user'] === 'alice', LEASE_MS * 4, 'the takeover');
  const takeoverMs = Number(takeover['time']) - killedAtMs;
  t.ok(takeoverMs <= LEASE_MS + 1000, `taken over ${takeoverMs} ms after the kill (lease ${LEASE_MS} ms)`);
  await other.waitForLog((l) => l['event'] === 'logout-result' && l['user'] === 'alice' && l['outcome'] === 'released', 10_000, 'the released logout');
  await sleep(LEASE_MS);
  t.same(sim.logoutCalls.filter((c) => c.status === 200).map((c) => c.user), ['alice'], 'one successful upstream logout');
  t.same(sim.licensesInUse(), {}, 'her license came back');
  t.equal(other.logs.filter((l) => l['event'] === 'logout-takeover').length, 1, 'taken over once');
  await other.stop();
});
