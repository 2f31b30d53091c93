/**
 * Hardening, group 4b: an upstream logout endpoint that fails for one user ("victim") in four ways
 * — 500 for ten minutes of clock time, hanging, closing the connection, accepting only the fifth
 * try — while twelve other users time out around it. With a ManualClock driving the proxy:
 *
 *   - the victim's license is released in the end;
 *   - every attempt shows in the metrics (logouts_total, logout_attempts_total) and the log
 *     (one logout-retry line per failed attempt, one logout-result line);
 *   - the others' warnings and logouts are not held up: each arrives before the clock moves on
 *     past its due time, and the real delay (due time crossed -> upstream saw the call) stays well
 *     below the hanging call's duration (NOT_HELD_UP_MS); the warning delays are printed.
 */
import t, { type Test } from 'tap';
import { performance } from 'node:perf_hooks';
import { request } from 'undici';
import WebSocket from 'ws';
import { MINUTE_MS } from '../src/properties/settings.js';
import { ManualClock } from '../src/sessions/clock.js';
import { bearerOf, startFakePanopticon, type LogoutBehaviour } from './helpers/fake-panopticon.js';
import { eventually, props, startStack, type Stack } from './helpers/stack.js';

const TIMEOUT_MIN = 10;
const OTHERS = 12;
const SPREAD_MS = 100_000;
const STEP_MS = 1000;
/** how long a hanging call lasts: small enough to keep the test short, big enough that a busy test machine never hits it by accident */
const LOGOUT_TIMEOUT_MS = 2000;
/**
 * The claim: another user's logout is not held up by a hanging call. Held up, it would wait for
 * the hanging call to time out (LOGOUT_TIMEOUT_MS); not held up, it takes one local HTTP call.
 */
const NOT_HELD_UP_MS = LOGOUT_TIMEOUT_MS / 2;
const WARNING = '{"TimeoutNotification":{"minutesUntilTimeout":1}}';

interface UserSide { user: string; deadlineMs: number; messages: Array<{ text: string; atRealMs: number }>; ws: WebSocket }

async function metric(s: Stack, name: string, label: string): Promise<number> {
  const res = await request(`${s.proxy.adminUrl}/metrics`);
  const text = await res.body.text();
  const re = new RegExp(`^session_timeout_proxy_${name}\\{${label}\\} (\\d+)`, 'm');
  return Number(re.exec(text)?.[1] ?? 0);
}

/** Makes `user` active through the proxy, opens a notification socket, and returns its side. */
async function activate(s: Stack, user: string): Promise<UserSide> {
  const res = await request(`${s.proxy.url}/panopticon/server/rest/dashboards/refresh`, { headers: { authorization: bearerOf(user) } });
  await res.body.dump();
  await eventually(`${user} counted`, () => s.proxy.engine.describe(user)?.lastActivity !== undefined);
  const ws = new WebSocket(`${s.proxy.url.replace('http', 'ws')}/panopticon/server/ws/notifications`, { headers: { authorization: bearerOf(user) } });
  const messages: UserSide['messages'] = [];
  ws.on('message', (data) => messages.push({ text: String(data), atRealMs: performance.now() }));
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  await eventually(`${user}'s socket registered`, () => s.proxy.registry.countByUser(user) === 1);
  return { user, deadlineMs: s.proxy.engine.describe(user)!.deadlineMs!, messages, ws };
}

async function scenario(t: Test, name: string, victimBehaviour: (attempt: number, clockMs: number, victimDeadlineMs: number) => ReturnType<LogoutBehaviour>) {
  const clock = new ManualClock(Date.now());
  const fake = await startFakePanopticon({ clock });
  t.teardown(() => fake.close());
  const s = await startStack(t, {
    clock,
    properties: props({ enabled: true, minutes: TIMEOUT_MIN, 'notification.minutes': 1 }),
    env: { PROXY_UPSTREAM: fake.url, PROXY_TOKEN_SECRET: '', PROXY_LOGOUT_CONCURRENCY: '4', PROXY_LOGOUT_TIMEOUT_MS: String(LOGOUT_TIMEOUT_MS) },
  });

  // Two others share the victim's deadline, five follow a second apart (inside the victim's first
  // retries), five are spread over the next minutes.
  const victim = await activate(s, 'victim');
  fake.behaviour = (credential, attempt, clockMs) => (credential === bearerOf('victim') ? victimBehaviour(attempt, clockMs, victim.deadlineMs) : 200);
  const others: UserSide[] = [await activate(s, 'same1'), await activate(s, 'same2')];
  for (let i = 1; i <= 5; i++) {
    clock.advance(1000);
    others.push(await activate(s, `soon${i}`));
  }
  for (let i = 1; i <= 5; i++) {
    clock.advance(SPREAD_MS);
    others.push(await activate(s, `later${i}`));
  }
  t.equal(others.length, OTHERS);
  t.equal(others[0]!.deadlineMs, victim.deadlineMs, 'two others time out in the same millisecond as the victim');

  // Drive the clock one step at a time. Before it moves on, everything due must have happened:
  // each other user's warning reached their socket and their logout reached the upstream.
  const crossedAtReal = new Map<string, { warn?: number; logout?: number }>();
  const logoutDelays: number[] = [];
  const warningDelays: number[] = [];
  const endMs = Math.max(victim.deadlineMs + 12 * MINUTE_MS, others.at(-1)!.deadlineMs + STEP_MS);
  while (clock.now() < endMs || !fake.released.has(bearerOf('victim'))) {
    const before = clock.now();
    const stepStartReal = performance.now();
    for (const o of others) {
      const marks = crossedAtReal.get(o.user) ?? {};
      if (marks.warn === undefined && before + STEP_MS >= o.deadlineMs - MINUTE_MS) marks.warn = stepStartReal;
      if (marks.logout === undefined && before + STEP_MS >= o.deadlineMs) marks.logout = stepStartReal;
      crossedAtReal.set(o.user, marks);
    }
    clock.advance(STEP_MS);
    await eventually('logout calls settled', () => s.proxy.queue.inFlight === 0, 5000);
    for (const o of others) {
      const marks = crossedAtReal.get(o.user)!;
      if (marks.warn === stepStartReal) {
        await eventually(`${o.user} warned`, () => o.messages.some((m) => m.text === WARNING));
        warningDelays.push(o.messages.find((m) => m.text === WARNING)!.atRealMs - stepStartReal);
      }
      if (marks.logout === stepStartReal) {
        const call = fake.calls.find((c) => c.credential === bearerOf(o.user));
        if (call === undefined) t.fail(`${o.user}'s logout did not reach the upstream before the clock moved on`);
        else logoutDelays.push(call.atRealMs - stepStartReal);
      }
    }
    if (clock.now() > endMs + 30 * MINUTE_MS) break; // never loop forever
  }

  // the victim
  const victimCalls = fake.calls.filter((c) => c.credential === bearerOf('victim'));
  const failed = victimCalls.filter((c) => c.outcome !== 200).length;
  t.ok(fake.released.has(bearerOf('victim')), `${name}: the victim's license was released in the end, after ${victimCalls.length} attempts`);
  t.equal(victimCalls.at(-1)?.outcome, 200, 'the last attempt is the one that succeeded');
  const retryLines = s.logs.filter((l) => l.event === 'logout-retry' && l.user === 'victim');
  t.same(retryLines.map((l) => l.attempts), Array.from({ length: failed }, (_, i) => i + 1), 'one logout-retry line per failed attempt, numbered');
  t.match(s.logs.filter((l) => l.event === 'logout-result' && l.user === 'victim'), [{ outcome: 'released', attempts: victimCalls.length }], 'one logout-result line with the attempt count');
  t.equal(await metric(s, 'logouts_total', 'outcome="retrying"'), failed, 'logouts_total{outcome="retrying"} counts every failed attempt');
  t.equal(await metric(s, 'logout_attempts_total', 'result="retry"'), failed, 'logout_attempts_total{result="retry"} too');
  t.equal(await metric(s, 'logouts_total', 'outcome="released"'), OTHERS + 1, 'every user released once');
  t.equal(await metric(s, 'logout_attempts_total', 'result="released"'), OTHERS + 1);

  // the others
  for (const o of others) {
    t.equal(fake.callsByCredential.get(bearerOf(o.user)), 1, `${o.user}: logged out with one call`);
    const call = fake.calls.find((c) => c.credential === bearerOf(o.user))!;
    t.ok(call.atClockMs - o.deadlineMs < STEP_MS, `${o.user}: the call came in the clock step of the deadline (${call.atClockMs - o.deadlineMs} ms of clock late)`);
    t.equal(o.messages.filter((m) => m.text === WARNING).length, 1, `${o.user}: warned once`);
  }
  const alongsideVictim = others.filter((o) => fake.calls.some((c) => c.credential === bearerOf(o.user) && c.inFlightWith.includes(bearerOf('victim')))).length;
  const maxLogout = Math.max(...logoutDelays);
  const maxWarning = Math.max(...warningDelays);
  t.equal(logoutDelays.length, OTHERS, 'the real delay of every other user\'s logout was measured');
  t.ok(maxLogout < NOT_HELD_UP_MS, `others' logouts reached the upstream at most ${maxLogout.toFixed(1)} ms after their deadline was crossed (< ${NOT_HELD_UP_MS} ms; a hanging call lasts ${LOGOUT_TIMEOUT_MS} ms)`);
  if (name === 'hanging') t.ok(alongsideVictim >= 2, `others were logged out while a hanging victim call was unanswered (${alongsideVictim})`);
  t.comment(`${name}: victim ${victimCalls.length} attempts (${failed} failed, over ${Math.round((victimCalls.at(-1)!.atClockMs - victim.deadlineMs) / 1000)} s of clock); ` +
    `${alongsideVictim} others were logged out while a victim call was unanswered; others' logouts reached the upstream at most ${maxLogout.toFixed(1)} ms (real) ` +
    `after their deadline was crossed, warnings at most ${maxWarning.toFixed(1)} ms`);
  for (const o of [victim, ...others]) o.ws.terminate();
}

t.test('500 for ten minutes of clock time', (t) => scenario(t, '500 for ten minutes', (_attempt, clockMs, deadlineMs) => (clockMs < deadlineMs + 10 * MINUTE_MS ? 500 : 200)));
t.test(`hanging until the proxy gives up (PROXY_LOGOUT_TIMEOUT_MS=${LOGOUT_TIMEOUT_MS})`, (t) => scenario(t, 'hanging', (attempt) => (attempt <= 3 ? 'hang' : 200)));
t.test('closing the connection', (t) => scenario(t, 'closing the connection', (attempt) => (attempt <= 3 ? 'close' : 200)));
t.test('200 only on the fifth try', (t) => scenario(t, '200 on the fifth try', (attempt) => (attempt < 5 ? 503 : 200)));
