/**
 * Real browser, STOMP personalities: Debian's Chromium → the proxy (default notification settings)
 * → the simulator speaking STOMP over SockJS (with Spring's logout and cookie CSRF) or STOMP over a
 * plain WebSocket. The dashboard runs the real `@stomp/stompjs` and `sockjs-client` bundles. The
 * warning dialog must appear from the injected MESSAGE, the logout must follow, the license must
 * come back, and neither the client libraries nor the strict server may see a protocol error.
 */
import t, { type Test } from 'tap';
import type { Browser } from 'playwright-core';
import { eventually, props, startStack } from './helpers/stack.js';
import { launchBrowser, newContext, openPage, screenshot, signIn, waitForSockets, type RecordedPage } from './helpers/browser.js';
import type { SimulatorOptions } from '../src/simulator/server.js';

const CTX = '/panopticon';
const NOTIFY_DESTINATION = '/user/queue/notifications';
const TIMEOUT_REASON = 'Logged out due to session timeout';
/** the proxy's timers cannot fire early; this only absorbs clock-reading jitter */
const EARLY_TOLERANCE_MS = 100;
/** how late the browser may show the effect on a busy 2-core CI machine */
const LATE_TOLERANCE_MS = 2500;
const SLACK_MS = 15_000;
const timings: string[] = [];

/** The STOMP frames inside one received WebSocket message (unwrapping SockJS a[...]). */
function stompFramesOf(payload: string): string[] {
  const texts = payload.startsWith('a[') ? JSON.parse(payload.slice(1)) as string[] : [payload];
  return texts.flatMap((text) => text.split('\0')).map((f) => f.replace(/^\n+/, '')).filter((f) => f !== '');
}

function headerOf(frame: string, name: string): string | undefined {
  const head = frame.slice(0, frame.indexOf('\n\n')).split('\n');
  return head.find((l) => l.startsWith(`${name}:`))?.slice(name.length + 1);
}

/** Every STOMP frame the page received that carries the needle, as [command, destination]. */
function framesCarrying(tab: RecordedPage, needle: string): Array<{ at: number; command: string; destination: string | undefined }> {
  return tab.frames.flatMap((f) => stompFramesOf(f.payload).filter((s) => s.includes(needle)).map((s) => ({
    at: f.at, command: s.slice(0, s.indexOf('\n')), destination: headerOf(s, 'destination'),
  })));
}

let browser: Browser | undefined;
try {
  browser = await launchBrowser();
} catch (err) {
  t.fail((err as Error).message);
}

async function idleUntilLoggedOut(t: Test, b: Browser, name: string, simulator: SimulatorOptions): Promise<void> {
  const minutes = 0.1;
  const notify = 0.05;
  const s = await startStack(t, {
    properties: props({ enabled: true, minutes, 'notification.minutes': notify }),
    simulator: { dataIntervalMs: 500, pollIntervalMs: 1000, ...simulator },
  });
  const context = await newContext(t, b);
  const tab = await openPage(context);
  const { page } = tab;
  const consoleErrors: string[] = [];
  // Failed loads are checked by URL (the console text does not say which): before the logout, only
  // the browser's own /favicon.ico may fail (a poll in flight at the logout is refused, rightly).
  const failedLoads: Array<{ at: number; text: string }> = [];
  page.on('console', (msg) => { if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) consoleErrors.push(msg.text()); });
  page.on('response', (res) => {
    const path = new URL(res.url()).pathname;
    if (res.status() >= 400 && path !== '/favicon.ico') failedLoads.push({ at: Date.now(), text: `${res.request().method()} ${path} answered ${res.status()}` });
  });
  page.on('pageerror', (err) => consoleErrors.push(`page error: ${err.message}`));

  await signIn(page, s.proxy.url, 'alice');
  await waitForSockets(page);
  const units = s.sim.licensesInUse()['alice'];
  t.ok(units !== undefined && units > 0, `alice holds ${units} unit(s)`);
  await page.waitForFunction(() => document.getElementById('live-value')?.textContent !== '-', undefined, { polling: 50, timeout: 10_000 });
  t.pass('live data arrives on the STOMP data subscription');
  const view = s.proxy.engine.describe('alice');
  if (view?.warnAtMs === undefined || view.deadlineMs === undefined) throw new Error(`no timed session: ${JSON.stringify(view)}`);
  const { warnAtMs, deadlineMs } = view;

  const dialog = page.getByRole('alertdialog', { name: 'Session about to time out' });
  await dialog.waitFor({ state: 'visible', timeout: deadlineMs - Date.now() + SLACK_MS });
  const shownAt = (await tab.dialogShownAt())[0];
  if (shownAt === undefined) throw new Error('the dialog is visible but its watch saw no change');
  const lateBy = shownAt - warnAtMs;
  timings.push(`${name}: warning dialog ${lateBy} ms after its due time (${deadlineMs - shownAt} ms before the deadline)`);
  t.ok(lateBy >= -EARLY_TOLERANCE_MS && lateBy <= LATE_TOLERANCE_MS, `the dialog came on time (${lateBy} ms after the warning was due)`);
  t.equal(await page.locator('#timeout-message').textContent(), `You will be signed out in ${notify} minute(s) due to inactivity.`);
  await screenshot(page, `warning-dialog-${simulator.wsProtocol}.png`);

  await page.waitForURL(/\/panopticon\/login\?reason=/, { timeout: deadlineMs - Date.now() + SLACK_MS });
  const loginAt = Date.now();
  t.equal(await page.locator('#login-reason').textContent(), TIMEOUT_REASON, 'the login page says why');
  await eventually('alice\'s units released', () => !('alice' in s.sim.licensesInUse()), 10_000);
  const releasedAt = Date.now();
  timings.push(`${name}: login page ${loginAt - deadlineMs} ms after the deadline; units released (seen) ${releasedAt - deadlineMs} ms after it`);

  const warnings = framesCarrying(tab, 'TimeoutNotification');
  const logouts = framesCarrying(tab, 'LogoutNotification');
  t.same(warnings.map((w) => [w.command, w.destination]), [['MESSAGE', NOTIFY_DESTINATION]], 'exactly one warning, a MESSAGE on the notification subscription');
  t.same(logouts.map((w) => [w.command, w.destination]), [['MESSAGE', NOTIFY_DESTINATION]], 'exactly one logout message, on the notification subscription');
  if (simulator.wsProtocol === 'sockjs-stomp') {
    const malformed = tab.frames.filter((f) => !(f.payload === 'o' || f.payload === 'h' || /^[ac]\[/.test(f.payload)));
    t.same(malformed, [], 'every frame the page received is SockJS framing');
  }
  // the dashboard's STOMP transport writes every ERROR frame, unhandled frame and socket error to the console
  t.same(consoleErrors, [], 'no console error: no STOMP ERROR, unhandled frame or socket error on the dashboard');
  t.same(failedLoads.filter((f) => f.at < deadlineMs).map((f) => f.text), [], 'no failed request before the logout');
  t.same(s.sim.protocolErrors, [], 'the strict server saw no protocol error (no ACK for an injected message, nothing malformed)');
  const released = s.sim.logoutCalls.filter((c) => c.user === 'alice' && (c.status === 200 || c.status === 302));
  t.ok(released.length >= 1, `the proxy logged alice out upstream (${s.sim.logoutCalls.map((c) => `${c.path} ${c.status}`).join(', ')})`);
}

if (browser) {
  const b = browser;
  t.teardown(() => b.close());

  t.test('STOMP over SockJS (Spring logout + cookie CSRF): warning dialog, logout, license released, no protocol error', async (t) => {
    await idleUntilLoggedOut(t, b, 'sockjs-stomp', { wsProtocol: 'sockjs-stomp', logoutStyle: 'spring', csrf: true });
  });

  t.test('STOMP over a plain WebSocket (REST logout): warning dialog, logout, license released, no protocol error', async (t) => {
    await idleUntilLoggedOut(t, b, 'stomp', { wsProtocol: 'stomp', logoutStyle: 'rest' });
  });

  t.teardown(() => {
    if (timings.length > 0) console.error(`# browser (STOMP) timings:\n${timings.map((l) => `#   ${l}`).join('\n')}`);
  });
}
