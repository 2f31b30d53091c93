/**
 * Redis over TLS (`rediss://`) with an ACL user, as a deployment would run it: redis-server speaks
 * only TLS with a certificate from a private CA made by the test; the proxy runs as its own process
 * with NODE_EXTRA_CA_CERTS (the README's way to trust a private CA; Node reads it at start-up
 * only). Two proxies share a user's timer and log her out once; a wrong password leaves a third
 * proxy serving, degraded, with a clear error that does not contain the password; without the CA
 * the server certificate is refused.
 */
import t from 'tap';
import { request } from 'undici';
import { props, eventually, loginAt } from './helpers/stack.js';
import { startTlsRedis } from './helpers/redis.js';
import { TEST_STATE_KEY } from './helpers/replicas.js';
import { startProxyProcess } from './helpers/process.js';
import { startSimulator } from '../src/simulator/server.js';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const API = '/panopticon/server/rest/server/myself';
const PASSWORD = 'tls-acl-Pa55word';

async function readyz(adminUrl: string): Promise<{ code: number; status: string }> {
  const res = await request(adminUrl + '/readyz');
  return { code: res.statusCode, status: ((await res.body.json()) as { status: string }).status };
}

async function status(url: string, cookie: string): Promise<number> {
  const res = await request(url, { headers: { cookie } });
  await res.body.dump();
  return res.statusCode;
}

t.test('rediss:// with a private CA and an ACL user: two proxies share timers; a wrong password is degraded, named, not leaked', async (t) => {
  const redis = await startTlsRedis(t, ['--user', 'default', 'off', '--user', 'stp', 'on', `>${PASSWORD}`, '~stp:*', '&stp:*', '+@all']);
  const sim = await startSimulator({ logger: false, dataIntervalMs: 200 });
  t.teardown(() => sim.close());
  const dir = await mkdtemp(join(tmpdir(), 'stp-tls-props-'));
  const propertiesPath = join(dir, 'Panopticon.properties');
  // 6 s timeout, no warning
  await writeFile(propertiesPath, props({ enabled: true, minutes: 0.1, 'notification.minutes': 0 }));
  const env = (password: string) => ({
    NODE_EXTRA_CA_CERTS: redis.caFile,
    PROXY_UPSTREAM: sim.url,
    PROXY_HOST: '127.0.0.1',
    PROXY_PORT: '0',
    PROXY_ADMIN_PORT: '0',
    PROXY_PROPERTIES: propertiesPath,
    PROXY_TOKEN_SECRET: sim.tokenSecret,
    PROXY_STORE: 'redis',
    PROXY_REDIS_URL: `rediss://stp:${encodeURIComponent(password)}@localhost:${redis.port}`,
    PROXY_REDIS_FLUSH_MS: '100',
    PROXY_STATE_KEY: TEST_STATE_KEY,
    PROXY_LOG_LEVEL: 'info',
  });
  const a = await startProxyProcess(t, env(PASSWORD));
  const b = await startProxyProcess(t, env(PASSWORD));
  for (const p of [a, b]) {
    await p.waitForLog((l) => l['event'] === 'redis-up', 15_000, 'redis-up over TLS');
    t.same(await readyz(p.adminUrl), { code: 200, status: 'ready' }, 'connected over TLS as the ACL user');
  }

  const cookie = await loginAt(a.url, 'alice');
  t.equal(await status(a.url + API, cookie), 200);
  await eventually('B knows alice (shared through the TLS Redis)', async () => {
    const res = await request(b.adminUrl + '/admin/sessions');
    const body = (await res.body.json()) as { sessions: Array<{ user: string }> };
    return body.sessions.some((s) => s.user === 'alice');
  }, 8000);
  await eventually('alice logged out upstream', () => sim.logoutCalls.some((c) => c.user === 'alice' && c.status === 200), 20_000);
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(sim.logoutCalls.filter((c) => c.user === 'alice').length, 1, 'exactly one upstream logout');
  t.equal(await status(b.url + API, cookie), 401, 'B refuses her old cookie');

  const wrong = await startProxyProcess(t, env('not-the-Pa55word'));
  const line = await wrong.waitForLog((l) => l['event'] === 'redis-unreachable', 15_000, 'redis-unreachable');
  t.match(String(line['error']), /WRONGPASS|invalid username-password/, 'the error names the cause');
  const r = await readyz(wrong.adminUrl);
  t.same(r, { code: 200, status: 'degraded' }, 'still ready, but degraded');
  const bob = await loginAt(wrong.url, 'bob');
  t.equal(await status(wrong.url + API, bob), 200, 'it goes on proxying');
  const all = wrong.stdout() + wrong.stderr() + a.stdout() + b.stdout();
  t.notOk(all.includes('not-the-Pa55word') || all.includes(PASSWORD) || all.includes(encodeURIComponent(PASSWORD)), 'no password in any log');
  t.equal(wrong.logs.filter((l) => l['event'] === 'redis-unreachable').length, 1, 'said once, not per retry');

  // the certificate is really checked: without the private CA the right password does not help
  const untrusting = await startProxyProcess(t, { ...env(PASSWORD), NODE_EXTRA_CA_CERTS: undefined });
  const tlsLine = await untrusting.waitForLog((l) => l['event'] === 'redis-unreachable', 15_000, 'redis-unreachable without the CA');
  t.match(String(tlsLine['error']), /certificate/i, 'an untrusted server certificate is named as the cause');
  t.equal((await readyz(untrusting.adminUrl)).status, 'degraded');
});
