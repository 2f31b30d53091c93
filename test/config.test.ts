import { readFileSync } from 'node:fs';
import t from 'tap';
import { loadDeploymentConfig, ConfigError, flagOf, SETTINGS } from '../src/config/deployment.js';

t.test('defaults derive from the context path', async (t) => {
  const cfg = loadDeploymentConfig({ PROXY_UPSTREAM: 'http://up:8080' });
  t.equal(cfg.port, 3000);
  t.equal(cfg.logoutPath, '/panopticon/server/rest/auth/logout');
  t.same(cfg.resetPaths, ['/rest/user/timeout/reset', '/panopticon/server/rest/user/timeout/reset']);
});

t.test('flags win over env', async (t) => {
  const cfg = loadDeploymentConfig({ PROXY_UPSTREAM: 'http://up:8080', PROXY_PORT: '1' }, ['--port', '2', '--context-path=/x']);
  t.equal(cfg.port, 2);
  t.equal(cfg.whoamiPath, '/x/server/rest/server/myself');
  t.equal(flagOf('PROXY_ADMIN_PORT'), '--admin-port');
});

t.test('errors name the setting', async (t) => {
  t.throws(() => loadDeploymentConfig({}), ConfigError);
  t.throws(() => loadDeploymentConfig({ PROXY_UPSTREAM: 'http://u', PROXY_PORT: 'abc' }), /PROXY_PORT="abc"/);
  t.throws(() => loadDeploymentConfig({ PROXY_UPSTREAM: 'http://u' }, ['--nope', '1']), /unknown option "--nope"/);
});

t.test('the README settings table documents every setting, with its flag, default and meaning', async (t) => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  for (const row of SETTINGS) {
    const line = `| \`${row.env}\` | \`${flagOf(row.env)}\` | ${row.doc} | ${row.meaning} |`;
    t.ok(readme.includes(line), `README row for ${row.env}`);
  }
  const documented = [...readme.matchAll(/^\| `(PROXY_[A-Z_]+)` \|/gm)].map((m) => m[1]);
  t.same(documented.filter((env) => !SETTINGS.some((s) => s.env === env)), [], 'no README row for a setting that does not exist');
});

t.test('store=redis settings are validated up front', async (t) => {
  const base = { PROXY_UPSTREAM: 'http://up:8080' };
  const key = 'k'.repeat(40);
  const cfg = loadDeploymentConfig({ ...base, PROXY_STORE: 'redis', PROXY_STATE_KEY: key, PROXY_REDIS_URL: 'rediss://app:pw@redis.example:6380/3', PROXY_REDIS_SENTINELS: 's1:26379, [::1]:26380' });
  t.equal(cfg.store, 'redis');
  t.equal(cfg.redisUrl.protocol, 'rediss:');
  t.equal(cfg.redisPrefix, 'stp:');
  t.equal(cfg.redisFlushMs, 250);
  t.equal(cfg.logoutLeaseMs, 15000);
  t.same(cfg.redisSentinels, [{ host: 's1', port: 26379 }, { host: '::1', port: 26380 }]);
  t.equal(loadDeploymentConfig(base).store, 'memory', 'memory is the default');
  t.throws(() => loadDeploymentConfig({ ...base, PROXY_STORE: 'redis' }), /PROXY_STORE=redis needs PROXY_STATE_KEY/);
  t.throws(() => loadDeploymentConfig({ ...base, PROXY_STORE: 'etcd' }), /PROXY_STORE="etcd"/);
  t.throws(() => loadDeploymentConfig({ ...base, PROXY_REDIS_URL: 'http://x:1' }), /redis:\/\/ or rediss:\/\//);
  t.throws(() => loadDeploymentConfig({ ...base, PROXY_REDIS_URL: 'redis://x:1/abc' }), /database number/);
  t.throws(() => loadDeploymentConfig({ ...base, PROXY_REDIS_CLUSTER_NODES: 'a:1,b' }), /PROXY_REDIS_CLUSTER_NODES: "b" is not host:port/);
  t.throws(() => loadDeploymentConfig({ ...base, PROXY_REDIS_CLUSTER_NODES: 'a:1', PROXY_REDIS_SENTINELS: 'b:2' }), /not both/);
  const short = (() => { try { loadDeploymentConfig({ ...base, PROXY_STORE: 'redis', PROXY_STATE_KEY: 'secret-but-short' }); return ''; } catch (e) { return (e as Error).message; } })();
  t.match(short, /PROXY_STATE_KEY is too short/);
  t.notMatch(short, /secret-but-short/, 'the key itself is never echoed');
  t.throws(() => loadDeploymentConfig({ ...base, PROXY_STATE_KEY_FILE: '/nonexistent/key' }), /PROXY_STATE_KEY_FILE="\/nonexistent\/key" cannot be read/);
});
