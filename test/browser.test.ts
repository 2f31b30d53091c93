/**
 * Real browser, end to end: Debian's Chromium (playwright-core) → the proxy → the Panopticon
 * simulator, on real sockets and the real clock. Timeouts are a few seconds long (decimal minutes
 * in the properties); the simulator pushes live data every 500 ms and the page polls every second,
 * so background traffic really is flowing while the user is idle.
 *
 * Chromium must be installed (`apt-get install -y chromium`, or CHROMIUM_PATH); without it this
 * file fails. Screenshots go to test-artifacts/browser/; the README's copies in docs/screenshots/
 * are written when missing, or refreshed with UPDATE_SCREENSHOTS=1.
 */
import t, { type Test } from 'tap';
import type { Browser, Page } from 'playwright-core';
import { MINUTE_MS } from '../src/properties/settings.js';
import { eventually, props, startStack, type Stack } from './helpers/stack.js';
import { idle, launchBrowser, newContext, openPage, screenshot, signIn, waitForSockets, type RecordedPage } from './helpers/browser.js';

const CTX = '/panopticon';
const SIM = { dataIntervalMs: 500, pollIntervalMs: 1000 };
const TIMEOUT_REASON = 'Logged out due to session timeout';
/** the proxy's timers cannot fire early; this only absorbs clock-reading jitter */
const EARLY_TOLERANCE_MS = 100;
/** how late the browser may show the effect on a busy 2-core CI machine and still be "on time" */
const LATE_TOLERANCE_MS = 2500;
/** how long before a deadline the "nothing happens" watch stops */
const WATCH_MARGIN_MS = 1500;
/** time allowed for anything the browser must do (on top of the wait for a deadline) */
const SLACK_MS = 15_000;

const timings: string[] = [];
/** pauses between a person's clicks (irregular on purpose) */
const CLICK_PAUSES_MS = [600, 1100, 750, 1400, 900, 650];

function dashboardUrl(s: Stack): string {
  return `${s.proxy.url}${CTX}/`;
}

function timedView(s: Stack, user: string): { warnAtMs: number; deadlineMs: number; idleSinceMs: number } {
  const view = s.proxy.engine.describe(user);
  if (view?.deadlineMs === undefined || view.warnAtMs === undefined) throw new Error(`no timed session for ${user}: ${JSON.stringify(view)}`);
  return { warnAtMs: view.warnAtMs, deadlineMs: view.deadlineMs, idleSinceMs: view.idleSinceMs };
}

/** Asserts that something measured happened no earlier than expected and at most LATE_TOLERANCE_MS after. */
function onTime(t: Test, what: string, measuredMs: number, expectedMs: number, sinceMs: number): void {
  const lateBy = measuredMs - expectedMs;
  const line = `${what}: expected ${expectedMs - sinceMs} ms after the last activity, measured ${measuredMs - sinceMs} ms (${lateBy >= 0 ? '+' : ''}${lateBy} ms)`;
  timings.push(line);
  t.comment(line);
  t.ok(lateBy >= -EARLY_TOLERANCE_MS, `${what}: not early (${lateBy} ms)`);
  t.ok(lateBy <= LATE_TOLERANCE_MS, `${what}: on time (${lateBy} ms late, at most ${LATE_TOLERANCE_MS})`);
}

async function startTimedStack(t: Test, over: Record<string, string | number | boolean>): Promise<Stack> {
  return startStack(t, { properties: props({ enabled: true, ...over }), simulator: SIM });
}

async function openDashboard(t: Test, s: Stack, rec: RecordedPage, user: string): Promise<void> {
  await signIn(rec.page, s.proxy.url, user);
  t.equal(rec.page.url(), dashboardUrl(s), `${user}: the login redirect stayed on the proxy`);
  t.equal(await rec.page.locator('#current-user').textContent(), user, `${user} sees the dashboard`);
  await waitForSockets(rec.page);
}

function dialogOf(page: Page) {
  return page.getByRole('alertdialog', { name: 'Session about to time out' });
}

async function firstDialogShownAt(rec: RecordedPage): Promise<number> {
  const shown = await rec.dialogShownAt();
  if (shown.length === 0) throw new Error('the dialog is visible but its watch saw no change');
  return shown[0]!;
}

let browser: Browser | undefined;
try {
  browser = await launchBrowser();
} catch (err) {
  t.fail((err as Error).message);
}

if (browser) {
  const b = browser;
  t.teardown(() => b.close());

  t.test('idle user: the warning dialog appears on time, and "Stay signed in" keeps the session', async (t) => {
    const minutes = 0.1;
    const notify = 0.05;
    const s = await startTimedStack(t, { minutes, 'notification.minutes': notify });
    const tab = await openPage(await newContext(t, b));
    const { page } = tab;
    await openDashboard(t, s, tab, 'alice');
    t.same(s.sim.licensesInUse(), { alice: 2 }, 'alice holds her 2 license units');
    const first = timedView(s, 'alice');
    t.ok(Math.abs(first.deadlineMs - first.warnAtMs - notify * MINUTE_MS) < 2, 'warning is due 3 s before the deadline');

    const dialog = dialogOf(page);
    await dialog.waitFor({ state: 'visible', timeout: first.deadlineMs - Date.now() + SLACK_MS });
    onTime(t, 'warning dialog (alice)', await firstDialogShownAt(tab), first.warnAtMs, first.idleSinceMs);
    const frames = tab.framesWith('TimeoutNotification');
    t.ok(frames.length >= 1, 'the page received the warning frame');
    t.same(JSON.parse(frames[0]!.payload), { TimeoutNotification: { minutesUntilTimeout: notify } }, 'documented warning format');
    t.equal(await page.locator('#timeout-message').textContent(), `You will be signed out in ${notify} minute(s) due to inactivity.`, 'the dialog says when');
    t.match(await page.locator('#timeout-countdown').textContent(), /^00:0[0-3]$/, 'countdown shows the seconds left');
    t.equal(await page.evaluate(() => document.activeElement?.id), 'stay-signed-in', 'focus moved to "Stay signed in"');
    t.equal(timedView(s, 'alice').deadlineMs, first.deadlineMs, 'live data and polling did not move the deadline');
    await screenshot(page, 'warning-dialog-alice.png');

    const clickAt = Date.now();
    await page.getByRole('button', { name: 'Stay signed in' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await page.locator('#session-status', { hasText: 'Session extended at' }).waitFor();
    const extended = timedView(s, 'alice');
    t.ok(extended.deadlineMs >= clickAt + minutes * MINUTE_MS - 1, `the reset moved the deadline a full period past the click (+${extended.deadlineMs - first.deadlineMs} ms)`);

    // Nothing may happen now: watch past the old deadline, until just before the new one.
    await idle(extended.deadlineMs - WATCH_MARGIN_MS - Date.now());
    const stillShown = await page.locator('#current-user').isVisible();
    const url = page.url();
    const logoutFrames = tab.framesWith('LogoutNotification');
    const units = s.sim.licensesInUse();
    const logoutCalls = [...s.sim.logoutCalls];
    t.ok(Date.now() > first.deadlineMs + 1000, `the old deadline passed ${Date.now() - first.deadlineMs} ms ago; ${Date.now() - clickAt} ms since the click`);
    t.ok(stillShown, 'the dashboard is still shown');
    t.equal(url, dashboardUrl(s), 'still on the dashboard');
    t.same(logoutFrames, [], 'no logout frame');
    t.same(units, { alice: 2 }, 'the simulator still shows her units');
    t.same(logoutCalls, [], 'no logout call reached the simulator');
  });

  t.test('idle user with live data and polling: logged out at the timeout, lands on the login page, units released', async (t) => {
    const minutes = 0.1;
    const s = await startTimedStack(t, { minutes, 'notification.minutes': 0.05 });
    const tab = await openPage(await newContext(t, b));
    const { page } = tab;
    await openDashboard(t, s, tab, 'bob');
    const loadedAt = Date.now();
    const units = s.sim.licensesInUse()['bob'];
    t.ok(units !== undefined && units > 0, `bob holds ${units} unit(s)`);
    const view = timedView(s, 'bob');

    const firstValue = await (await page.waitForFunction(() => {
      const v = document.getElementById('live-value')?.textContent;
      return v && v !== '-' ? v : false;
    }, undefined, { polling: 50 })).jsonValue();
    const firstAt = await page.locator('#live-at').textContent();
    await page.waitForFunction((before) => document.getElementById('live-at')?.textContent !== before, firstAt, { polling: 50, timeout: 10_000 });
    t.pass(`the live tile keeps updating (first value ${firstValue}, now ${await page.locator('#live-value').textContent()})`);
    const polls = () => s.sim.requests.filter((r) => r.path === `${CTX}/server/rest/data/poll` && r.user === 'bob' && r.atMs >= loadedAt);
    await eventually('two background polls reached the simulator', () => polls().length >= 2, 10_000);
    t.match(await page.locator('#poll-status').textContent(), /\(200\)$/, 'the page shows a successful poll');
    t.equal(timedView(s, 'bob').deadlineMs, view.deadlineMs, 'neither live data nor polling moved the deadline');

    await page.waitForURL(/\/panopticon\/login\?reason=/, { timeout: view.deadlineMs - Date.now() + SLACK_MS });
    const logoutFrames = tab.framesWith('LogoutNotification');
    t.ok(logoutFrames.length >= 1, 'the page received the logout frame');
    t.same(JSON.parse(logoutFrames[0]!.payload), { LogoutNotification: { reason: TIMEOUT_REASON } }, 'documented logout format');
    onTime(t, 'logout frame (bob)', logoutFrames[0]!.at, view.deadlineMs, view.idleSinceMs);
    t.equal(tab.framesWith('TimeoutNotification').filter((f) => f.at < logoutFrames[0]!.at && f.path.endsWith('/notifications')).length, 1, 'exactly one warning came first');
    t.ok(polls().filter((r) => r.atMs < view.deadlineMs).length >= 3, `the page polled while idle (${polls().length} polls)`);

    await page.locator('#login-form').waitFor({ state: 'visible' });
    t.equal(await page.locator('#login-reason').textContent(), TIMEOUT_REASON, 'the login page says why');
    await screenshot(page, 'logged-out-bob.png', 'docs/screenshots/logged-out.png');
    await eventually('bob\'s units released', () => !('bob' in s.sim.licensesInUse()), 10_000);
    t.ok(s.sim.logoutCalls.some((c) => c.user === 'bob' && c.status === 200), 'the proxy logged bob out upstream');

    // Back to the dashboard URL: the proxy refuses the dead cookie (302 to the login page with the
    // reason), or, if a request in flight at the logout already got the cookie cleared, the
    // simulator sends the cookie-less browser to its login page. Either way: the login page.
    await page.goto(dashboardUrl(s));
    const back = new URL(page.url());
    t.equal(`${back.origin}${back.pathname}`, `${s.proxy.url}${CTX}/login`, `the dashboard URL now leads to the login page (${back.pathname}${back.search})`);
    await page.locator('#login-form').waitFor({ state: 'visible' });
    t.notOk(await page.locator('#current-user').count(), 'no dashboard');
    t.notOk('bob' in s.sim.licensesInUse(), 'going back did not sign him in again');
  });

  t.test('idle user with an auto-refreshing dashboard (a timer on a path in no list): warned and logged out one timeout after the page load', async (t) => {
    const minutes = 0.2;
    const s = await startStack(t, { properties: props({ enabled: true, minutes, 'notification.minutes': 0.05 }), simulator: { ...SIM, autoRefreshMs: 1000 } });
    const tab = await openPage(await newContext(t, b));
    const { page } = tab;
    await openDashboard(t, s, tab, 'dave');
    const refreshPath = `${CTX}/server/rest/dashboards/7/refresh`;
    const refreshes = () => s.sim.requests.filter((r) => r.path === refreshPath && r.user === 'dave');

    await dialogOf(page).waitFor({ state: 'visible', timeout: minutes * MINUTE_MS + SLACK_MS });
    const view = timedView(s, 'dave');
    onTime(t, 'warning dialog (dave, auto-refreshing page)', await firstDialogShownAt(tab), view.warnAtMs, view.idleSinceMs);
    t.ok(refreshes().filter((r) => r.atMs > view.idleSinceMs).length >= 6, `the page kept refreshing while dave was idle (${refreshes().length} refreshes)`);
    t.match(await page.locator('#auto-refresh-status').textContent(), /\(200\)$/, 'the page shows its last auto-refresh');
    const marked = s.proxy.engine.describe('dave')!.recent.filter((n) => n.rule.startsWith(`periodic:GET ${CTX}/server/rest/dashboards/:n/refresh@`));
    t.ok(marked.length >= 1, `the refreshes are marked as a timer's (${marked[0]?.rule})`);
    await screenshot(page, 'warning-dialog-auto-refresh-dave.png');

    await page.waitForURL(/\/panopticon\/login\?reason=/, { timeout: view.deadlineMs - Date.now() + SLACK_MS });
    const logoutFrames = tab.framesWith('LogoutNotification');
    t.ok(logoutFrames.length >= 1, 'the page received the logout frame');
    onTime(t, 'logout frame (dave, auto-refreshing page)', logoutFrames[0]!.at, view.deadlineMs, view.idleSinceMs);
    t.equal(s.proxy.engine.describe('dave')!.idleSinceMs, view.idleSinceMs, 'idle time ran from the page load throughout');
    await eventually('dave\'s units released', () => !('dave' in s.sim.licensesInUse()), 10_000);
  });

  t.test('two tabs of one user: the warning shows in both; activity in one keeps both signed in', async (t) => {
    const minutes = 0.1;
    const timeoutMs = minutes * MINUTE_MS;
    const s = await startTimedStack(t, { minutes, 'notification.minutes': 0.05 });
    const context = await newContext(t, b);
    const tabA = await openPage(context);
    await openDashboard(t, s, tabA, 'carol');
    const tabB = await openPage(context);
    await tabB.page.goto(dashboardUrl(s));
    t.equal(await tabB.page.locator('#current-user').textContent(), 'carol', 'the second tab shares the login');
    const units = s.sim.licensesInUse()['carol'];
    t.ok(units !== undefined && units > 0, `carol holds ${units} unit(s), once for both tabs`);
    await waitForSockets(tabB.page);
    const view = timedView(s, 'carol');

    await Promise.all([tabA, tabB].map((tab) => dialogOf(tab.page).waitFor({ state: 'visible', timeout: view.deadlineMs - Date.now() + SLACK_MS })));
    onTime(t, 'warning dialog (carol, tab A)', await firstDialogShownAt(tabA), view.warnAtMs, view.idleSinceMs);
    onTime(t, 'warning dialog (carol, tab B)', await firstDialogShownAt(tabB), view.warnAtMs, view.idleSinceMs);
    const warnings = [tabA, tabB].map((tab) => tab.framesWith('TimeoutNotification').length);
    t.ok(warnings.every((n) => n >= 1), 'both tabs received the warning frame');

    // The user answers in tab A only, and keeps working there (Refresh is counted activity).
    await tabA.page.getByRole('button', { name: 'Stay signed in' }).click();
    await dialogOf(tabA.page).waitFor({ state: 'hidden' });
    await dialogOf(tabB.page).waitFor({ state: 'hidden', timeout: 3000 });
    t.pass('answering in tab A closed the warning in tab B too');
    const stayAt = Date.now();
    const statuses: number[] = [];
    while (Date.now() < stayAt + timeoutMs + 1500) {
      const [response] = await Promise.all([
        tabA.page.waitForResponse((r) => r.url().endsWith(`${CTX}/server/rest/dashboards/refresh`), { timeout: 5000 }),
        tabA.page.locator('#refresh-btn').click({ timeout: 5000 }),
      ]);
      statuses.push(response.status());
      // a person's pace, not a metronome: clicks at a steady interval would be taken for a timer
      await idle(CLICK_PAUSES_MS[statuses.length % CLICK_PAUSES_MS.length]!);
    }
    t.ok(statuses.length >= 4 && statuses.every((st) => st === 200), `tab A refreshed ${statuses.length} times: ${statuses.join(',')}`);
    t.ok(Date.now() > stayAt + timeoutMs, `${Date.now() - stayAt} ms since "Stay signed in": more than a full period, so only the refreshes kept the session`);

    for (const [name, tab] of [['A', tabA], ['B', tabB]] as const) {
      t.equal(tab.page.url(), dashboardUrl(s), `tab ${name} is still on the dashboard`);
      t.same(tab.framesWith('LogoutNotification'), [], `tab ${name} got no logout frame`);
    }
    t.same([tabA, tabB].map((tab) => tab.framesWith('TimeoutNotification').length), warnings, 'no further warning: the refreshes counted');
    t.match(await tabB.page.locator('#poll-status').textContent(), /\(200\)$/, 'tab B\'s polls still succeed');
    t.same(s.sim.licensesInUse(), { carol: units }, 'the simulator still shows her units');
    t.same(s.sim.logoutCalls, [], 'no logout call');
    t.ok(timedView(s, 'carol').deadlineMs > Date.now() + 2000, 'the deadline follows the activity in tab A');
  });

  t.test('an exempt user idles past the timeout and stays signed in (a non-exempt user is logged out meanwhile)', async (t) => {
    const minutes = 0.1;
    const s = await startTimedStack(t, { minutes, 'notification.minutes': 0.05, 'exception.usernames': 'kiosk' });
    const kiosk = await openPage(await newContext(t, b));
    const alice = await openPage(await newContext(t, b));
    await openDashboard(t, s, kiosk, 'kiosk');
    const kioskIdleFrom = Date.now();
    await openDashboard(t, s, alice, 'alice');
    t.match(s.proxy.engine.describe('kiosk'), { exempt: true, deadlineMs: undefined }, 'kiosk has no deadline');
    const aliceView = timedView(s, 'alice');

    await alice.page.waitForURL(/\/panopticon\/login\?reason=/, { timeout: aliceView.deadlineMs - Date.now() + SLACK_MS });
    t.pass('the timeout is running: alice (not exempt) was logged out');
    await idle(kioskIdleFrom + minutes * MINUTE_MS + 2000 - Date.now());
    t.ok(Date.now() - kioskIdleFrom > minutes * MINUTE_MS + 1000, `kiosk idled ${Date.now() - kioskIdleFrom} ms (timeout ${minutes * MINUTE_MS} ms)`);
    t.equal(kiosk.page.url(), dashboardUrl(s), 'kiosk is still on the dashboard');
    t.same(kiosk.framesWith('TimeoutNotification'), [], 'kiosk got no warning');
    t.same(kiosk.framesWith('LogoutNotification'), [], 'kiosk got no logout frame');
    t.notOk(await dialogOf(kiosk.page).isVisible(), 'no dialog on the kiosk');
    await eventually('alice released', () => !('alice' in s.sim.licensesInUse()), 10_000);
    t.ok((s.sim.licensesInUse()['kiosk'] ?? 0) > 0, 'kiosk still holds its units');
    t.match(await kiosk.page.locator('#poll-status').textContent(), /\(200\)$/, 'the kiosk page still polls successfully');
  });

  t.test('the warning dialog with the default one-minute notice (README screenshot)', async (t) => {
    // minutes 1.05 with a 1-minute notice: the dialog comes 3 s after the last activity
    const s = await startTimedStack(t, { minutes: 1.05, 'notification.minutes': 1 });
    const tab = await openPage(await newContext(t, b));
    await openDashboard(t, s, tab, 'alice');
    const view = timedView(s, 'alice');
    await dialogOf(tab.page).waitFor({ state: 'visible', timeout: view.warnAtMs - Date.now() + SLACK_MS });
    onTime(t, 'warning dialog (1-minute notice)', await firstDialogShownAt(tab), view.warnAtMs, view.idleSinceMs);
    t.equal(await tab.page.locator('#timeout-message').textContent(), 'You will be signed out in 1 minute(s) due to inactivity.', 'the dialog says when');
    // let the live tile show a value and the countdown tick once, for a representative picture
    await tab.page.waitForFunction(() => document.getElementById('timeout-countdown')?.textContent === '00:59', undefined, { polling: 50, timeout: 5000 });
    await screenshot(tab.page, 'warning-dialog.png', 'docs/screenshots/warning-dialog.png');
  });

  t.teardown(() => {
    if (timings.length > 0) console.error(`# browser timings:\n${timings.map((l) => `#   ${l}`).join('\n')}`);
  });
}
