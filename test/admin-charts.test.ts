/**
 * The admin page's pictures: the 24-hour history ring (src/admin/history.ts) on an injected time,
 * and the page in Chromium after a simulated day of real traffic through the proxy (ManualClock:
 * the day takes seconds; requests, logouts, refusals are real, against the simulator).
 */
import t from 'tap';
import { request } from 'undici';
import type { Page } from 'playwright-core';
import { createMetrics } from '../src/admin/metrics.js';
import { ActivityHistory, CHART_OUTCOMES, HISTORY_BUCKET_MS } from '../src/admin/history.js';
import { ManualClock } from '../src/sessions/clock.js';
import { launchBrowser, newContext, screenshot } from './helpers/browser.js';
import { props, startStack } from './helpers/stack.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

t.test('history ring: deltas per bucket, most users, outcomes, 24 h window', async (t) => {
  let users = 0;
  let now = 1_700_000_000_000 - (1_700_000_000_000 % HISTORY_BUCKET_MS);
  const m = createMetrics({ usersTracked: () => users, openSockets: () => 0, pendingLogouts: () => 0 }, { defaultMetrics: false });
  const h = new ActivityHistory({ metrics: m, nowMs: () => now });

  users = 3;
  m.warningsSent.inc({ mode: 'enforce' }, 2);
  m.logouts.inc({ outcome: 'released' });
  m.logouts.inc({ outcome: 'unverified' });
  m.logouts.inc({ outcome: 'retrying' }); // not an outcome the chart shows
  m.refusedStale.inc({ kind: 'token', mode: 'enforce' });
  await h.sample();
  users = 5;
  now += MINUTE_MS;
  m.logouts.inc({ outcome: 'released' });
  await h.sample();
  users = 1;
  await h.sample();

  let v = h.view();
  t.equal(v.buckets.length, 1, 'one bucket so far');
  t.same(v.outcomes, CHART_OUTCOMES);
  t.match(v.buckets[0], { usersTracked: 5, warnings: 2, refused: 1, logouts: { released: 2, unverified: 1, failed: 0 } }, 'differences summed, most users kept');

  now += HISTORY_BUCKET_MS;
  m.logouts.inc({ outcome: 'failed' });
  await h.sample();
  v = h.view();
  t.equal(v.buckets.length, 2, 'a new bucket');
  t.match(v.buckets[1], { usersTracked: 1, warnings: 0, logouts: { released: 0, failed: 1 } }, 'only what changed since the last sample');
  t.equal(v.toMs - v.fromMs, 24 * HOUR_MS, '24 hours shown');

  now += 24 * HOUR_MS;
  await h.sample();
  v = h.view();
  t.equal(v.buckets.length, 1, 'older than 24 h is gone (the ring slot was reused or is out of the window)');
  t.equal(v.buckets[0]!.warnings, 0);
});

/** Chromium sees the page with the admin token typed in. */
async function openAdmin(page: Page, adminUrl: string, token: string): Promise<void> {
  await page.goto(`${adminUrl}/admin`);
  await page.locator('#token').fill(token);
  await page.locator('#login button[type=submit]').click();
  await page.locator('#sessions').waitFor({ state: 'visible' });
}

t.test('a simulated day on the admin page: 24-hour chart and a user\'s timeline (Chromium)', async (t) => {
  const start = Date.UTC(2026, 0, 15, 0, 0, 0);
  const clock = new ManualClock(start);
  const token = 'admin-token-for-the-chart-test';
  const s = await startStack(t, {
    clock,
    properties: props({ enabled: true, minutes: 30, 'notification.minutes': 5 }),
    env: { PROXY_ADMIN_TOKEN: token, PROXY_LOGOUT_GIVE_UP_MS: String(10 * MINUTE_MS), PROXY_LOGOUT_RETRY_MIN_MS: '1000', PROXY_LOGOUT_RETRY_MAX_MS: String(MINUTE_MS) },
  });
  const admin = s.proxy.adminUrl!;
  const history = async () => {
    const res = await request(`${admin}/admin/history`, { headers: { authorization: `Bearer ${token}` } });
    return (await res.body.json()) as { buckets: Array<{ usersTracked: number; warnings: number; refused: number; logouts: Record<string, number> }> };
  };

  // office hours: each user works in a few stretches; between them they leave the tab open
  const people: Record<string, Array<[number, number]>> = {
    alice: [[7, 9.5], [10.5, 12], [13, 17]],
    bob: [[8, 11], [14, 15]],
    carol: [[9, 12.5], [13.5, 18.5]],
    dave: [[6, 7], [11, 16]],
    erin: [[12, 13], [15, 20], [21, 22]],
  };
  const cookies = new Map<string, string>();
  const stale = new Map<string, string>();
  const steps = (24 * HOUR_MS) / (5 * MINUTE_MS);
  for (let step = 0; step < steps; step++) {
    const hour = (clock.now() - start) / HOUR_MS;
    if (hour === 16) await request(`${s.sim.url}/__simulator/failures`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ failLogout: 1000, status: 503 }) });
    if (hour === 18) await request(`${s.sim.url}/__simulator/failures`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reset: true }) });
    for (const [user, stretches] of Object.entries(people)) {
      const working = stretches.some(([from, to]) => hour >= from && hour < to);
      let cookie = cookies.get(user);
      const view = s.proxy.engine.describe(user);
      if (cookie && view?.state === 'logged-out') {
        stale.set(user, cookie); // the old tab still holds it
        cookies.delete(user);
        cookie = undefined;
      }
      if (working && !cookie) {
        const old = stale.get(user);
        if (old) await s.get('/panopticon/', { cookie: old, accept: 'text/html' }); // refused: logged out
        stale.delete(user);
        cookie = await s.login(user);
        cookies.set(user, cookie);
      }
      if (!cookie) continue;
      if (working && step % 2 === 0) await s.get('/panopticon/', { cookie, accept: 'text/html' });
      await s.get('/panopticon/server/rest/data/poll', { cookie }); // the open tab polls (not activity)
    }
    await history(); // a sample in this 5-minute bucket
    clock.advance(5 * MINUTE_MS);
    await new Promise((r) => setImmediate(r)); // let logout calls started by timers go out
  }
  // the evening: erin is back, works for a few minutes, then leaves the tab open past the warning
  const erin = await s.login('erin');
  for (let i = 0; i < 5; i++) {
    await s.get('/panopticon/', { cookie: erin, accept: 'text/html' });
    await s.get('/panopticon/server/rest/data/poll', { cookie: erin });
    clock.advance(MINUTE_MS);
  }
  for (let i = 0; i < 13; i++) {
    if (i % 2 === 0) await s.get('/panopticon/server/rest/data/poll', { cookie: erin });
    else await s.get('/panopticon/server/rest/dashboards/refresh', { cookie: erin, 'x-background-request': 'true' });
    clock.advance(2 * MINUTE_MS);
  }

  const day = await history();
  const total = (f: (b: (typeof day.buckets)[number]) => number) => day.buckets.reduce((n, b) => n + f(b), 0);
  t.ok(total((b) => b.warnings) > 0, `warnings counted (${total((b) => b.warnings)})`);
  t.ok(total((b) => b.logouts['released'] ?? 0) > 0, `released logouts counted (${total((b) => b.logouts['released'] ?? 0)})`);
  t.ok(total((b) => b.logouts['failed'] ?? 0) > 0, `failed logouts counted (${total((b) => b.logouts['failed'] ?? 0)})`);
  t.ok(total((b) => b.refused) > 0, `refused credentials counted (${total((b) => b.refused)})`);
  t.ok(Math.max(...day.buckets.map((b) => b.usersTracked)) >= 3, 'several users tracked at the busiest time');

  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const context = await newContext(t, browser);
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // (the first load, before the token is typed in, is a 401 the page answers with its token form)
  page.on('console', (msg) => { if (msg.type() === 'error' && !/status of 401/.test(msg.text())) errors.push(msg.text()); });
  await page.setViewportSize({ width: 1100, height: 1000 });
  await openAdmin(page, admin, token);
  await page.locator('#history svg').waitFor({ state: 'visible' });
  const chart = await page.evaluate(() => {
    const svg = document.querySelector('#history svg')!;
    const count = (sel: string) => svg.querySelectorAll(sel).length;
    return {
      users: count('path.users'),
      released: count('rect.c-released'),
      failed: count('rect.c-failed'),
      warnings: count('rect.c-warnings'),
      refused: count('rect.c-refused'),
      legend: document.getElementById('history-legend')!.textContent,
    };
  });
  t.ok(chart.users >= 1, 'the users-tracked line is drawn');
  t.ok(chart.released > 0 && chart.warnings > 0 && chart.failed > 0 && chart.refused > 0, `bars for every kind of event: ${JSON.stringify(chart)}`);
  for (const outcome of CHART_OUTCOMES) t.match(chart.legend, `logged out: ${outcome}`, `legend names ${outcome}`);

  await page.getByRole('button', { name: 'erin', exact: true }).click();
  await page.locator('#detail-timeline svg').waitFor({ state: 'visible' });
  const timeline = await page.evaluate(() => {
    const svg = document.querySelector('#detail-timeline svg')!;
    return {
      counted: svg.querySelectorAll('circle.counted').length,
      passive: svg.querySelectorAll('circle.passive').length,
      warning: svg.querySelectorAll('line.mark-warning').length,
      deadline: svg.querySelectorAll('line.mark-deadline').length,
      tips: [...svg.querySelectorAll('circle title')].map((e) => e.textContent ?? ''),
    };
  });
  t.ok(timeline.counted >= 3, `counted requests drawn (${timeline.counted})`);
  t.ok(timeline.passive > timeline.counted, `passive requests drawn (${timeline.passive})`);
  t.equal(timeline.warning, 1, 'the warning is marked');
  t.match(await page.locator('#detail-explanation').textContent(), /the timeout warning was sent/, 'the explanation agrees: warned');
  t.equal(timeline.deadline, 1, 'the deadline is marked');
  t.ok(timeline.tips.some((x) => x.includes('passive:GET /panopticon/server/rest/data/**')), 'a dot\'s tooltip names its rule');
  t.ok(timeline.tips.some((x) => x.includes('background-header')), 'background requests carry their rule too');
  t.same(errors, [], 'no script errors on the page');
  await screenshot(page, 'admin-charts.png', 'docs/screenshots/admin-charts.png');
});
