/**
 * Timers told from people, end to end: the Panopticon simulator behind the proxy on real sockets,
 * with dashboard refresh paths that are in no list. One test runs on the real clock (a 1-second
 * refresh timer); the others inject a ManualClock so that minutes and hours pass instantly while
 * every request still goes through the proxy and the simulator.
 */
import t, { type Test } from 'tap';
import { request } from 'undici';
import { ManualClock } from '../src/sessions/clock.js';
import { MINUTE_MS } from '../src/properties/settings.js';
import { eventually, props, startStack, type Stack } from './helpers/stack.js';

const CTX = '/panopticon';
const REFRESH_7 = `${CTX}/server/rest/dashboards/7/refresh`;
const REFRESH_8 = `${CTX}/server/rest/dashboards/8/refresh`;
const BUTTON = `${CTX}/server/rest/dashboards/refresh`;
const MYSELF = `${CTX}/server/rest/server/myself`;
const RENEW = `${CTX}/server/rest/auth/renew`;
const HOUR_MS = 60 * MINUTE_MS;
/** what a browser sends for a navigation the user triggered */
const BY_HAND = { 'sec-fetch-mode': 'navigate', 'sec-fetch-user': '?1', 'sec-fetch-dest': 'document' };
const FETCH = { 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' };

interface Session {
  s: Stack;
  clock: ManualClock;
  cookie: string;
  /** one request of alice through the proxy; resolves once answered (the verdict is applied by then) */
  send(path: string, headers?: Record<string, string>): Promise<number>;
  view(): NonNullable<ReturnType<Stack['proxy']['engine']['describe']>>;
}

async function signedIn(t: Test, opts: { minutes: number; notify?: number; env?: Record<string, string> }): Promise<Session> {
  const clock = new ManualClock(Date.now());
  const s = await startStack(t, { properties: props({ enabled: true, minutes: opts.minutes, 'notification.minutes': opts.notify ?? 0 }), clock, env: opts.env });
  const cookie = await s.login('alice');
  const send = async (path: string, headers: Record<string, string> = FETCH) => (await s.get(path, { cookie, ...headers })).status;
  const view = () => {
    const v = s.proxy.engine.describe('alice');
    if (!v) throw new Error('alice is not tracked');
    return v;
  };
  return { s, clock, cookie, send, view };
}

/**
 * Plays a timer: every `intervalMs` (times 1 + jitter) a request of `path`, until `untilMs` or
 * alice is logged out. Returns how many requests were sent.
 */
async function runTimer(x: Session, path: string, intervalMs: number, untilMs: number, jitter: () => number = () => 0): Promise<number> {
  let sent = 0;
  for (;;) {
    const gapMs = Math.round(intervalMs * (1 + jitter()));
    if (x.clock.now() + gapMs > untilMs || x.view().state === 'logged-out') return sent;
    x.clock.advance(gapMs);
    await x.send(path);
    sent++;
  }
}

/** ±5 % jitter from a fixed seed */
function jitter5(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a * 1103515245 + 12345) % 2147483648;
    return (a / 2147483648) * 0.1 - 0.05;
  };
}

async function counts(s: Stack): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await s.proxy.metrics.requests.get()).values) out[`${v.labels.counted}:${v.labels.rule}`] = v.value;
  return out;
}

t.test('real clock: an idle user with a 1-second refresh timer is warned and logged out about one timeout after the last real request', async (t) => {
  const minutes = 0.2; // 12 s
  const s = await startStack(t, { properties: props({ enabled: true, minutes, 'notification.minutes': 0.05 }) });
  const cookie = await s.login('alice');
  t.equal((await s.get(`${CTX}/`, { cookie, ...BY_HAND })).status, 200, 'the dashboard page loads');
  const lastReal = s.proxy.engine.describe('alice')!.lastActivity!;
  t.equal(lastReal.rule, 'sec-fetch-user');
  let stop = false;
  const timer = (async () => {
    let next = Date.now() + 1000;
    while (!stop) {
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
      next += 1000;
      if (!stop) await s.get(REFRESH_7, { cookie, ...FETCH }).catch(() => undefined);
    }
  })();
  t.teardown(async () => { stop = true; await timer; });
  await eventually('alice is logged out', () => s.proxy.engine.describe('alice')?.state === 'logged-out', minutes * MINUTE_MS + 15_000);
  stop = true;
  await timer;
  const v = s.proxy.engine.describe('alice')!;
  const arrivals = s.sim.requests.filter((r) => r.path === REFRESH_7).map((r) => r.atMs);
  t.comment(`gaps between refreshes as the upstream saw them: ${arrivals.slice(1).map((at, i) => at - arrivals[i]!).join(' ')} ms`);
  t.equal(v.idleSinceMs, lastReal.atMs, 'idle time ran from the page load, not from the timer');
  const afterMs = v.loggedOutAtMs! - lastReal.atMs;
  t.ok(afterMs >= minutes * MINUTE_MS, `not before the timeout (${afterMs} ms)`);
  t.ok(afterMs <= minutes * MINUTE_MS + 3000, `about one timeout after the last real request (${afterMs} ms)`);
  const marked = v.recent.filter((n) => n.rule.startsWith('periodic:')).map((n) => n.rule);
  t.ok(marked.length > 0 && marked.every((r) => /^periodic:GET \/panopticon\/server\/rest\/dashboards\/:n\/refresh@(0\.9|1(\.1)?)s$/.test(r)), `the timer requests are marked with the periodic rule (${marked[0]})`);
  const m = await counts(s);
  t.ok((m['false:periodic'] ?? 0) >= 1, 'counted per rule kind in the metrics');
  t.ok(s.logs.some((l) => l.event === 'periodic-recognised' && l.user === 'alice'), 'the recognition is logged');
  t.ok(s.logs.some((l) => l.event === 'activity-retracted' && l.idleSinceMs === lastReal.atMs), 'the learned requests were taken back');
  await eventually('the upstream logout was called', () => s.sim.logoutCalls.some((c) => c.user === 'alice'), 10_000);
  t.ok(((await s.proxy.metrics.warningsSent.get()).values[0]?.value ?? 0) >= 1, 'the warning was sent first');
});

t.test('a 7-second timer with ±5 % jitter: logged out exactly one timeout after the last real request; the admin view shows the pattern', async (t) => {
  const x = await signedIn(t, { minutes: 5, notify: 1 });
  await x.send(`${CTX}/`, BY_HAND);
  x.clock.advance(40_000);
  await x.send(BUTTON); // a click: counts
  const lastReal = x.clock.now();
  await runTimer(x, REFRESH_7, 7000, lastReal + 10 * MINUTE_MS, jitter5(42));
  const v = x.view();
  t.equal(v.state, 'logged-out');
  t.equal(v.idleSinceMs, lastReal, 'idle since the click');
  t.equal(v.loggedOutAtMs, lastReal + 5 * MINUTE_MS, 'logged out at the deadline the click set');
  const res = await request(`${x.s.proxy.adminUrl}/admin/sessions/alice`);
  const body = (await res.body.json()) as { patterns: Array<Record<string, unknown>>; recent: Array<{ rule: string }> };
  t.match(body.patterns[0], { method: 'GET', shape: `${CTX}/server/rest/dashboards/:n/refresh`, state: 'timer', interval: /^(6\.\d|7(\.\d)?)s$/, seen: Number, timerRequests: Number, timerSinceMs: Number });
  t.ok(body.recent.some((n) => /^periodic:GET \/panopticon\/server\/rest\/dashboards\/:n\/refresh@(6\.\d|7(\.\d)?)s$/.test(n.rule)), 'remembered requests carry the rule');
});

t.test('control: with PROXY_DETECT_PERIODIC=false the same timer keeps the user signed in', async (t) => {
  const x = await signedIn(t, { minutes: 5, env: { PROXY_DETECT_PERIODIC: 'false' } });
  await x.send(`${CTX}/`, BY_HAND);
  await runTimer(x, REFRESH_7, 7000, x.clock.now() + 10 * MINUTE_MS, jitter5(42));
  t.equal(x.view().state, 'active', 'still signed in after twice the timeout');
  t.same((await counts(x.s))['false:periodic'], undefined, 'nothing recognised');
});

t.test('a person clicking at irregular times, with bursts and pauses, is never taken for a timer', async (t) => {
  const x = await signedIn(t, { minutes: 5 });
  await x.send(`${CTX}/`, BY_HAND);
  const gapsMs = [4200, 5600, 300, 250, 250, 300, 20_100, 2500, 13_500, 400, 400, 500, 71_700, 6500, 4500, 21_000, 350, 9000, 16_000, 3000, 45_000, 7000, 7600, 12_000];
  for (const gapMs of gapsMs) {
    x.clock.advance(gapMs);
    await x.send(REFRESH_7);
    t.equal(x.view().idleSinceMs, x.clock.now(), `the click at +${gapMs} ms counted`);
  }
  t.same((await counts(x.s))['false:periodic'], undefined);
});

t.test('two timers at once (two dashboards on one path shape, and a heartbeat), then the user comes back', async (t) => {
  const x = await signedIn(t, { minutes: 5 });
  await x.send(`${CTX}/`, BY_HAND);
  const lastReal = x.clock.now();
  const heartbeat = `${CTX}/server/rest/heartbeat`;
  // dashboard 7 every 5 s, dashboard 8 every 5 s two seconds later, a heartbeat every 3 s
  const plan: Array<[number, string]> = [];
  for (let at = 1000; at < 4 * MINUTE_MS; at += 5000) plan.push([at, REFRESH_7], [at + 2000, REFRESH_8]);
  for (let at = 700; at < 4 * MINUTE_MS; at += 3000) plan.push([at, heartbeat]);
  plan.sort((a, b) => a[0] - b[0]);
  for (const [at, path] of plan) {
    x.clock.advance(lastReal + at - x.clock.now());
    await x.send(path);
  }
  t.equal(x.view().idleSinceMs, lastReal, 'three timers learned and taken back');
  t.equal(x.view().state, 'active');
  x.clock.advance(1000);
  await x.send(BUTTON);
  t.equal(x.view().idleSinceMs, x.clock.now(), 'a click counts as usual');
});

t.test('a timer that stops and restarts: the restart is learned again and taken back', async (t) => {
  const x = await signedIn(t, { minutes: 5 });
  await x.send(`${CTX}/`, BY_HAND);
  const lastReal = x.clock.now();
  await runTimer(x, REFRESH_7, 4000, lastReal + MINUTE_MS);
  t.equal(x.view().idleSinceMs, lastReal);
  x.clock.advance(90_000 + 1700); // the tab was closed, then the dashboard opened again (no click)
  await runTimer(x, REFRESH_7, 4000, lastReal + 4 * MINUTE_MS);
  t.equal(x.view().idleSinceMs, lastReal, 'the restart did not move the idle start');
  await runTimer(x, REFRESH_7, 4000, lastReal + 6 * MINUTE_MS);
  t.equal(x.view().state, 'logged-out');
  t.equal(x.view().loggedOutAtMs, lastReal + 5 * MINUTE_MS);
});

t.test('an hourly background request under an 8-hour timeout is caught (injected clock)', async (t) => {
  const x = await signedIn(t, { minutes: 480, notify: 10 });
  await x.send(`${CTX}/`, BY_HAND);
  x.clock.advance(20 * MINUTE_MS);
  await x.send(BUTTON);
  const lastReal = x.clock.now();
  await runTimer(x, MYSELF, HOUR_MS, lastReal + 10 * HOUR_MS, jitter5(7));
  const v = x.view();
  t.equal(v.state, 'logged-out');
  t.equal(v.loggedOutAtMs, lastReal + 8 * HOUR_MS, 'eight hours after the last click, although the client checked in every hour');
});

t.test('Sec-Fetch-User always counts; Sec-Fetch-Mode: navigate counts unless periodic (an auto-refreshing page)', async (t) => {
  const x = await signedIn(t, { minutes: 5 });
  await x.send(`${CTX}/`, BY_HAND);
  const lastReal = x.clock.now();
  // a page that reloads itself every 10 s: navigations without a user gesture
  await runTimer(x, `${CTX}/`, 10_000, lastReal + 2 * MINUTE_MS);
  t.equal(x.view().idleSinceMs, lastReal, 'the auto-refreshing page was recognised as a timer');
  t.ok(x.view().recent.some((n) => n.rule === `periodic:GET ${CTX}/@10s`));
  // the user clicks a link to the same page on the beat: the gesture counts
  x.clock.advance(10_000);
  await x.send(`${CTX}/`, BY_HAND);
  t.equal(x.view().idleSinceMs, x.clock.now(), 'Sec-Fetch-User: ?1 counts even on the timer path and beat');
  t.equal(x.view().lastActivity?.rule, 'sec-fetch-user');
  // a navigation that is no timer counts, marked as such
  x.clock.advance(3300);
  await x.send(`${CTX}/dashboard`, { 'sec-fetch-mode': 'navigate' });
  t.equal(x.view().lastActivity?.rule, 'navigate');
});

t.test('PROXY_ACTIVE_PATHS pins requests as activity, over periodic detection and passive paths', async (t) => {
  const x = await signedIn(t, { minutes: 5, env: { PROXY_ACTIVE_PATHS: `GET ${CTX}/server/rest/dashboards/*/refresh,GET ${CTX}/server/rest/data/poll` } });
  await x.send(`${CTX}/`, BY_HAND);
  await runTimer(x, REFRESH_7, 7000, x.clock.now() + 10 * MINUTE_MS);
  t.equal(x.view().state, 'active', 'the pinned timer keeps the user signed in');
  t.equal(x.view().lastActivity?.rule, `active:GET ${CTX}/server/rest/dashboards/*/refresh`);
  x.clock.advance(1000);
  await x.send(`${CTX}/server/rest/data/poll`);
  t.equal(x.view().lastActivity?.rule, `active:GET ${CTX}/server/rest/data/poll`, 'wins over the default passive rule');
  const m = await counts(x.s);
  t.ok((m[`true:active:GET ${CTX}/server/rest/dashboards/*/refresh`] ?? 0) > 80);
  t.same(m['false:periodic'], undefined);
});

t.test('credential renewal is not activity, from the first time', async (t) => {
  const x = await signedIn(t, { minutes: 5 });
  await x.send(`${CTX}/`, BY_HAND);
  const lastReal = x.clock.now();
  x.clock.advance(30_000);
  const res = await x.s.get(RENEW, { cookie: x.cookie, ...FETCH });
  t.equal(res.status, 200);
  t.match(String(res.headers['set-cookie']), /^ptoken=/, 'the answer renews the token cookie');
  t.equal(x.view().idleSinceMs, lastReal, 'the first renewal did not count');
  t.equal(x.view().recent.at(-1)?.rule, 'credential-renewal');
  t.equal((await counts(x.s))['false:credential-renewal'], 1);
});

t.test('shadow mode: timers are recognised, logged and counted the same; nobody is logged out', async (t) => {
  const x = await signedIn(t, { minutes: 5, env: { PROXY_MODE: 'shadow' } });
  await x.send(`${CTX}/`, BY_HAND);
  const lastReal = x.clock.now();
  await runTimer(x, REFRESH_7, 7000, lastReal + 7 * MINUTE_MS);
  t.ok(x.s.logs.some((l) => l.event === 'periodic-recognised' && l.mode === 'shadow'));
  t.ok(x.s.logs.some((l) => l.msg === 'request' && l.user === 'alice' && typeof l.activity === 'string' && l.activity.startsWith('periodic:')), 'each request\'s verdict is in its access-log line');
  t.ok(x.s.logs.some((l) => l.event === 'activity-retracted' && l.idleSinceMs === lastReal && l.mode === 'shadow'));
  t.ok(((await counts(x.s))['false:periodic'] ?? 0) > 30, 'counted as periodic in the metrics');
  t.equal(x.view().loggedOutAtMs, lastReal + 5 * MINUTE_MS, 'the logout is recorded as it would have happened');
  t.same(x.s.sim.logoutCalls, [], 'but the upstream session was left alone');
});
