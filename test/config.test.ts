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
