/**
 * Logout candidates, CSRF and verification end to end: simulator personalities (SIM_LOGOUT,
 * SIM_CSRF) <- proxy <- HTTP clients, all on real sockets. The proxy runs on a ManualClock: a
 * logout that needed a backoff wait could only happen after the test moves the clock, so "moved
 * on at once" is checked by the clock standing still, not by a wall-clock bound.
 */
import t, { type Test } from 'tap';
import { request } from 'undici';
import { ManualClock } from '../src/sessions/clock.js';
import { MINUTE_MS } from '../src/properties/settings.js';
import type { SimulatorOptions } from '../src/simulator/server.js';
import { eventually, props, startStack, type Stack } from './helpers/stack.js';

const REST = 'POST /panopticon/server/rest/auth/logout';
const SPRING = 'POST /panopticon/logout';
const TIMEOUT_PROPS = props({ enabled: true, minutes: 10, 'notification.minutes': 1 });

async function stackWith(t: Test, simulator: SimulatorOptions, env: Record<string, string> = {}) {
  const clock = new ManualClock(Date.now());
  const s = await startStack(t, { clock, properties: TIMEOUT_PROPS, simulator, env });
  return { s, clock };
}

/** Signs in through the proxy and makes one counted request, so the proxy holds the credential (and any CSRF token). */
async function signIn(s: Stack, user: string): Promise<string> {
  const cookie = await s.login(user);
  const page = await s.get('/panopticon/', { cookie, accept: 'text/html' });
  if (page.status !== 200) throw new Error(`dashboard answered ${page.status}`);
  return cookie;
}

const audits = (s: Stack, event: string) => s.logs.filter((l) => l['event'] === event);
async function logoutCount(s: Stack, outcome: string): Promise<number> {
  return (await s.proxy.metrics.logouts.get()).values.find((v) => v.labels['outcome'] === outcome)?.value ?? 0;
}
async function upstreamReport(s: Stack) {
  const res = await request(`${s.proxy.adminUrl}/admin/upstream`);
  return (await res.body.json()) as {
    logout: { verified: string | null; candidates: Array<{ method: string; path: string; verified: boolean; lastResult: string | null; lastStatus: number | null }> };
    whoami: { calls: number; lastStatus: number | null };
    websocket: unknown;
  };
}
const cookieValue = (cookie: string, name: string) => new RegExp(`(?:^|; )${name}=([^;]*)`).exec(cookie)?.[1];

t.test('Spring-style server with CSRF: the REST 404 is skipped at once, /logout with the token releases, verified', async (t) => {
  const { s, clock } = await stackWith(t, { logoutStyle: 'spring', csrf: true });
  const cookie = await signIn(s, 'alice');
  const token = cookieValue(cookie, 'XSRF-TOKEN');
  t.ok(token, 'the server handed out a CSRF cookie at sign-in');
  t.same(s.sim.licensesInUse(), { alice: 2 });

  clock.advance(10 * MINUTE_MS);
  await eventually('alice released', () => audits(s, 'logout-result').length === 1);
  const deadlineClockMs = clock.now();
  const [result] = audits(s, 'logout-result');
  t.match(result, { user: 'alice', outcome: 'released', candidate: SPRING, attempts: 1 }, 'released by /logout on the first attempt');
  t.same(s.sim.licensesInUse(), {}, 'the license came back');
  t.equal(clock.now(), deadlineClockMs, 'no clock time passed: nothing waited for a backoff');
  t.same(audits(s, 'logout-retry'), [], 'no retry was scheduled');
  const skipped = audits(s, 'logout-candidate-skipped');
  t.equal(skipped.length, 1);
  t.match(skipped[0], { user: 'alice', candidate: REST, result: 'not-found', status: 404 }, 'the REST path answered 404 and was passed over');

  const calls = s.sim.requests.filter((r) => r.method === 'POST' && /logout$/.test(r.path)).map((r) => `${r.path} ${r.status}`);
  t.same(calls, ['/panopticon/server/rest/auth/logout 404', '/panopticon/logout 302'], 'REST path first (404), then Spring\'s /logout');
  t.equal(await logoutCount(s, 'released'), 1);
  t.equal(await logoutCount(s, 'already_gone'), 0);
  t.equal((await s.proxy.metrics.licenseReleaseSeconds.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value, 1, 'one release in the histogram');

  const report = await upstreamReport(s);
  t.equal(report.logout.verified, SPRING);
  t.equal(report.logout.candidates.length, 2);
  t.match(report.logout.candidates, [
    { method: 'POST', path: '/panopticon/logout', verified: true, lastResult: 'released', lastStatus: 302 },
    { method: 'POST', path: '/panopticon/server/rest/auth/logout', verified: false, lastResult: 'not-found', lastStatus: 404 },
  ], 'the verified candidate is listed (and tried) first');
  t.ok(report.whoami.calls >= 1, 'verification asked "who am I"');
  t.equal(report.whoami.lastStatus, 401, 'and the server no longer knew the credential');
  t.same(report.websocket, [], 'the WebSocket framing report is wired, and empty: no socket was opened');

  // the remembered candidate goes first: bob's logout never touches the REST path
  const bobCookie = await signIn(s, 'bob');
  const before = s.sim.requests.length;
  clock.advance(10 * MINUTE_MS);
  await eventually('bob released', () => audits(s, 'logout-result').length === 2);
  t.match(audits(s, 'logout-result')[1], { user: 'bob', outcome: 'released', candidate: SPRING });
  const bobCalls = s.sim.requests.slice(before).filter((r) => r.method === 'POST' && /logout$/.test(r.path)).map((r) => r.path);
  t.same(bobCalls, ['/panopticon/logout'], 'bob\'s logout went straight to the remembered candidate');

  const logText = s.logText();
  for (const secret of [token!, cookieValue(bobCookie, 'XSRF-TOKEN')!, cookieValue(cookie, 'ptoken')!]) {
    t.notOk(logText.includes(secret), 'no token or CSRF value in the log');
  }
  t.notOk(JSON.stringify(report).includes(token!), 'nor in /admin/upstream');
});

t.test('the freshest CSRF token wins: one the server sets in an answer replaces the one the browser sent', async (t) => {
  const { s, clock } = await stackWith(t, { logoutStyle: 'spring', csrf: true });
  const cookie = await s.login('alice');
  // a browser holding a token the server does not know: the server's answer sets a new one
  const stale = cookie.replace(/XSRF-TOKEN=[^;]*/, 'XSRF-TOKEN=not-issued-by-the-server');
  const page = await s.get('/panopticon/', { cookie: stale, accept: 'text/html' });
  t.equal(page.status, 200);
  t.match(String(page.headers['set-cookie']), /XSRF-TOKEN=/, 'the server set a fresh token');
  clock.advance(10 * MINUTE_MS);
  await eventually('alice released', () => audits(s, 'logout-result').length === 1);
  t.match(audits(s, 'logout-result')[0], { outcome: 'released', candidate: SPRING }, 'the logout carried the token from the Set-Cookie');
  t.same(s.sim.licensesInUse(), {});
});

t.test('a 403 while a CSRF token is sent is a CSRF failure: retried, never "already gone"', async (t) => {
  // the wrong header name: the server never sees the token echoed, and refuses every logout
  const { s, clock } = await stackWith(t, { logoutStyle: 'spring', csrf: true }, { PROXY_CSRF_HEADER: 'X-CSRF-TOKEN' });
  const cookie = await signIn(s, 'alice');
  clock.advance(10 * MINUTE_MS);
  await eventually('a retry was scheduled', () => audits(s, 'logout-retry').length === 1);
  const [retry] = audits(s, 'logout-retry');
  t.match(retry, { user: 'alice', error: /CSRF token refused/ }, 'the audit line says the CSRF token was refused');
  t.same(audits(s, 'logout-candidate-skipped').map((l) => `${l['candidate']} ${l['status']} ${l['result']}`), [`${REST} 403 csrf-rejected`, `${SPRING} 403 csrf-rejected`], 'both candidates refused the token (403), both passed over');
  t.equal(await logoutCount(s, 'already_gone'), 0, 'not counted as already gone');
  t.equal(await logoutCount(s, 'released'), 0);
  t.equal(s.proxy.queue.size, 1, 'the logout is still pending');
  t.same(s.sim.licensesInUse(), { alice: 2 }, 'the server still holds the license (truthfully reported)');
  const api = await s.get('/panopticon/server/rest/server/myself', { cookie, accept: 'application/json' });
  t.equal(api.status, 401, 'the timed-out credential is refused at the proxy anyway');
  t.notOk(s.logText().includes(cookieValue(cookie, 'XSRF-TOKEN')!), 'the CSRF value is not logged');
});

t.test('a logout that answers 200 but ends nothing is unverified, retried, never counted released', async (t) => {
  const { s, clock } = await stackWith(t, { logoutStyle: 'fake' });
  const cookie = await signIn(s, 'alice');
  clock.advance(10 * MINUTE_MS);
  await eventually('first attempt done', () => audits(s, 'logout-retry').length === 1);
  t.same(audits(s, 'logout-unverified').map((l) => `${l['user']} ${l['candidate']} ${l['status']}`), [`alice ${REST} 200`, `alice ${SPRING} 200`], 'each candidate answered 200, and "who am I" still named alice: an audit line per candidate');
  t.equal(await logoutCount(s, 'unverified'), 2);
  // the backoff: the retry happens only once the clock moves
  const attemptsBefore = s.sim.logoutCalls.length;
  await new Promise((r) => setTimeout(r, 100));
  t.equal(s.sim.logoutCalls.length, attemptsBefore, 'no retry before the backoff delay');
  clock.advance(5_000);
  await eventually('second attempt done', () => audits(s, 'logout-retry').length === 2);
  t.equal(await logoutCount(s, 'unverified'), 4, 'retried, unverified again');
  t.equal(s.sim.logoutCalls.length, attemptsBefore + 2);
  t.equal(await logoutCount(s, 'released'), 0, 'never counted released');
  t.equal(await logoutCount(s, 'already_gone'), 0);
  t.equal((await s.proxy.metrics.licenseReleaseSeconds.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0, 0, 'no release in the histogram');
  t.same(s.sim.licensesInUse(), { alice: 2 }, 'the simulator still counts the license: it was never released');
  t.same(audits(s, 'logout-result'), [], 'no result line: the job is still pending');
  const report = await upstreamReport(s);
  t.equal(report.logout.verified, null, 'no candidate verified');
  t.same(report.logout.candidates.map((c) => c.lastResult), ['unverified', 'unverified']);
  const api = await s.get('/panopticon/server/rest/server/myself', { cookie, accept: 'application/json' });
  t.equal(api.status, 401, 'the timed-out credential stays refused at the proxy');
  t.match(JSON.parse(api.body), { error: 'session_timed_out' });
});

t.test('time from deadline to verified release, per personality (figures, not assertions on speed)', async (t) => {
  const personalities: Array<[string, SimulatorOptions]> = [
    ['SIM_LOGOUT=rest', { logoutStyle: 'rest' }],
    ['SIM_LOGOUT=rest SIM_CSRF=true', { logoutStyle: 'rest', csrf: true }],
    ['SIM_LOGOUT=spring', { logoutStyle: 'spring' }],
    ['SIM_LOGOUT=spring SIM_CSRF=true', { logoutStyle: 'spring', csrf: true }],
  ];
  const users = ['alice', 'bob', 'carol', 'dave', 'erin'];
  for (const [name, sim] of personalities) {
    const { s, clock } = await stackWith(t, sim);
    const figures: number[] = [];
    // one user after another: the first pays for the candidate search, the rest use the remembered one
    for (const user of users) {
      await signIn(s, user);
      const startedAtMs = Date.now();
      clock.advance(10 * MINUTE_MS);
      await eventually(`${user} released (${name})`, () => audits(s, 'logout-result').some((l) => l['user'] === user));
      const result = audits(s, 'logout-result').find((l) => l['user'] === user)!;
      t.match(result, { outcome: 'released' }, `${name}: ${user} released and verified`);
      figures.push(Number(result['time']) - startedAtMs);
    }
    t.same(s.sim.licensesInUse(), {}, `${name}: every license back`);
    const sorted = [...figures].sort((a, b) => a - b);
    t.comment(`${name}: deadline -> verified release, first user ${figures[0]} ms, median of ${figures.length} ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms`);
  }
});
