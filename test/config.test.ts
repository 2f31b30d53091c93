import { readFileSync } from 'node:fs';
import t from 'tap';
import { loadDeploymentConfig, ConfigError, flagOf, SETTINGS } from '../src/config/deployment.js';

t.test('defaults derive from the context path', async (t) => {
  const cfg = loadDeploymentConfig({ PROXY_UPSTREAM: 'http://up:8080' });
  t.equal(cfg.port, 3000);
  t.same(cfg.logoutPath, [{ method: 'POST', path: '/panopticon/server/rest/auth/logout' }, { method: 'POST', path: '/panopticon/logout' }]);
  t.equal(cfg.logoutVerify, true);
  t.equal(cfg.csrfCookie, 'XSRF-TOKEN');
  t.equal(cfg.csrfHeader, 'X-XSRF-TOKEN');
  t.same(cfg.resetPaths, ['/rest/user/timeout/reset', '/panopticon/server/rest/user/timeout/reset']);
});

t.test('flags win over env', async (t) => {
  const cfg = loadDeploymentConfig({ PROXY_UPSTREAM: 'http://up:8080', PROXY_PORT: '1' }, ['--port', '2', '--context-path=/x']);
  t.equal(cfg.port, 2);
  t.equal(cfg.whoamiPath, '/x/server/rest/server/myself');
  t.equal(flagOf('PROXY_ADMIN_PORT'), '--admin-port');
});

t.test('logout candidates: [METHOD ]path lists, PROXY_LOGOUT_METHOD for those without one', async (t) => {
  const up = { PROXY_UPSTREAM: 'http://up:8080' };
  t.same(loadDeploymentConfig({ ...up, PROXY_LOGOUT_PATH: 'delete /a/logout, /b/logout' }).logoutPath, [{ method: 'DELETE', path: '/a/logout' }, { method: 'POST', path: '/b/logout' }]);
  t.same(loadDeploymentConfig({ ...up, PROXY_LOGOUT_METHOD: 'get' }).logoutPath.map((c) => c.method), ['GET', 'GET'], 'an old PROXY_LOGOUT_METHOD still applies to the default list');
  t.same(loadDeploymentConfig({ ...up, PROXY_LOGOUT_PATH: '/old/logout', PROXY_LOGOUT_METHOD: 'PUT' }).logoutPath, [{ method: 'PUT', path: '/old/logout' }], 'an old single-path config keeps working');
  t.throws(() => loadDeploymentConfig({ ...up, PROXY_LOGOUT_PATH: 'POST logout' }), /PROXY_LOGOUT_PATH: "POST logout" is not valid: a path must start with "\/"/);
  t.throws(() => loadDeploymentConfig({ ...up, PROXY_LOGOUT_PATH: 'FETCH /x' }), /unknown method "FETCH"/);
  t.throws(() => loadDeploymentConfig({ ...up, PROXY_LOGOUT_PATH: 'POST /a b' }), /cannot contain spaces/);
  t.throws(() => loadDeploymentConfig({ ...up, PROXY_LOGOUT_PATH: '/a, /a' }), /listed twice/);
  t.throws(() => loadDeploymentConfig({ ...up, PROXY_LOGOUT_PATH: ' , ' }), /lists no logout path/);
  t.throws(() => loadDeploymentConfig({ ...up, PROXY_LOGOUT_METHOD: 'FETCH' }), /PROXY_LOGOUT_METHOD="FETCH"/);
  t.throws(() => loadDeploymentConfig({ ...up, PROXY_CSRF_HEADER: 'X XSRF' }), /PROXY_CSRF_HEADER="X XSRF" is not a valid/);
  t.throws(() => loadDeploymentConfig({ ...up, PROXY_LOGOUT_VERIFY: 'maybe' }), /PROXY_LOGOUT_VERIFY="maybe"/);
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
