import t from 'tap';
import { loadDeploymentConfig, ConfigError, flagOf } from '../src/config/deployment.js';

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
