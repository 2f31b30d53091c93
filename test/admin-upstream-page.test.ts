/**
 * The admin page's "Upstream" section in a real Chromium: the logout candidates, "who am I" health
 * and a WebSocket framing table built from whatever rows the provider returns.
 */
import t from 'tap';
import pino from 'pino';
import { loadDeploymentConfig } from '../src/config/deployment.js';
import { buildAdminServer } from '../src/admin/server.js';
import { createMetrics } from '../src/admin/metrics.js';
import { SocketRegistry } from '../src/notifications/registry.js';
import { CandidateBook } from '../src/logout/candidates.js';
import { WhoamiHealth } from '../src/identity/whoami-health.js';
import { makeEngine, settings } from './helpers/engine.js';
import { launchBrowser, newContext } from './helpers/browser.js';

t.test('the upstream section renders candidates, who-am-I health and WebSocket rows', async (t) => {
  const { engine, clock } = makeEngine(settings({ minutes: 10, notify: 1 }));
  t.teardown(() => engine.close());
  const book = new CandidateBook([{ method: 'POST', path: '/p/server/rest/auth/logout' }, { method: 'POST', path: '/p/logout' }], () => clock.now());
  const [rest, spring] = book.order();
  book.record(rest!, 'not-found', 404);
  book.record(spring!, 'released', 302);
  const health = new WhoamiHealth(() => clock.now());
  health.answered(401, 4.5);
  let websocket: unknown;
  const registry = new SocketRegistry();
  const app = await buildAdminServer({
    config: loadDeploymentConfig({ PROXY_UPSTREAM: 'http://127.0.0.1:9' }),
    engine, registry, clock,
    metrics: createMetrics({ usersTracked: () => 0, openSockets: () => 0, pendingLogouts: () => 0 }, { defaultMetrics: false }),
    logger: pino({ level: 'silent' }), audit: pino({ level: 'silent' }),
    settingsLoaded: () => true, upstreamReachable: async () => true,
    upstream: {
      logout: () => ({ verify: true, csrf: { cookie: 'XSRF-TOKEN', header: 'X-XSRF-TOKEN' }, candidates: book.report(), verified: 'POST /p/logout' }),
      whoami: () => health.report(),
      websocket: () => websocket,
    },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/admin`;

  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const page = await (await newContext(t, browser)).newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForSelector('#upstream:not([hidden])');
  const rows = await page.$$eval('#upstream-candidates tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
  t.same(rows.map((r) => r.slice(0, 4)), [
    ['POST /p/logout', 'yes (tried first)', 'released', '302'],
    ['POST /p/server/rest/auth/logout', 'no', 'not-found', '404'],
  ]);
  t.match(await page.textContent('#upstream-logout'), /verified with POST \/p\/logout · verification on · CSRF cookie XSRF-TOKEN → header X-XSRF-TOKEN/);
  t.match(await page.textContent('#upstream-whoami'), /1 calls · last status 401 · last latency 4\.5 ms/);
  t.equal(await page.textContent('#upstream-websocket'), 'not available', 'no rows: not available');

  websocket = [{ path: '/p/ws', framing: 'stomp', destinations: { '/user/queue/notifications': 1 } }, { path: '/p/data', framing: 'json' }];
  await page.click('#refresh');
  await page.waitForSelector('#upstream-websocket table');
  const head = await page.$$eval('#upstream-websocket th', (ths) => ths.map((th) => th.textContent));
  const cells = await page.$$eval('#upstream-websocket tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
  t.same(head, ['path', 'framing', 'destinations'], 'columns from the rows\' keys');
  t.same(cells, [['/p/ws', 'stomp', '{"/user/queue/notifications":1}'], ['/p/data', 'json', '—']]);
  t.same(errors, [], 'no script errors');
});
