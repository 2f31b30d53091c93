/**
 * Hardening, group 5: 10 000 users time out in the same second. The running proxy's engine is
 * seeded directly (one distinct fake credential per user) instead of 10 000 logins; a fake
 * upstream counts logout calls per credential and the most in flight at once. Every logout must
 * be made exactly once, never more than PROXY_LOGOUT_CONCURRENCY at a time; the batch's duration
 * is printed.
 */
import t from 'tap';
import { performance } from 'node:perf_hooks';
import { MINUTE_MS } from '../src/properties/settings.js';
import { ManualClock } from '../src/sessions/clock.js';
import { bearerOf, startFakePanopticon } from './helpers/fake-panopticon.js';
import { eventually, props, startStack } from './helpers/stack.js';

const USERS = 10_000;
const CONCURRENCY = 16;

t.test(`${USERS} users timing out in the same second are each logged out exactly once`, async (t) => {
  const clock = new ManualClock(Date.now());
  // each answer takes a few ms, as a real server's would: concurrent calls then overlap visibly
  const fake = await startFakePanopticon({ clock, logoutAnswerDelayMs: 5 });
  t.teardown(() => fake.close());
  const s = await startStack(t, {
    clock,
    properties: props({ enabled: true, minutes: 5, 'notification.minutes': 0 }),
    env: { PROXY_UPSTREAM: fake.url, PROXY_TOKEN_SECRET: '', PROXY_LOGOUT_CONCURRENCY: String(CONCURRENCY) },
  });

  const seedStarted = performance.now();
  for (let i = 0; i < USERS; i++) {
    const user = `user${i}`;
    // spread over one second of clock time
    if (i % 1000 === 0 && i > 0) clock.advance(100);
    s.proxy.engine.recordActivity(user, 'GET', '/panopticon/', { kind: 'authorization', fingerprint: `burst-fp-${i}`, replay: { authorization: bearerOf(user) } });
  }
  t.equal(s.proxy.engine.userCount, USERS, `${USERS} sessions seeded in ${Math.round(performance.now() - seedStarted)} ms`);

  const started = performance.now();
  clock.advance(5 * MINUTE_MS);
  const dueHandledMs = performance.now() - started;
  await eventually('every logout answered', () => fake.released.size === USERS && s.proxy.queue.size === 0, 60_000);
  const batchMs = performance.now() - started;

  t.equal(fake.calls.length, USERS, `${USERS} logout calls, no more`);
  const repeated = [...fake.callsByCredential].filter(([, n]) => n !== 1);
  t.same(repeated, [], 'each credential exactly once');
  t.equal(fake.released.size, USERS, 'every license released');
  t.ok(fake.maxInFlight <= CONCURRENCY, `at most ${CONCURRENCY} in flight (seen: ${fake.maxInFlight})`);
  t.ok(fake.maxInFlight > 1, 'and they did run side by side');
  t.equal(s.logs.filter((l) => l.event === 'logout-result' && l.outcome === 'released').length, USERS, 'one logout-result line each');
  t.ok(s.proxy.engine.list().every((v) => v.state === 'logged-out'), 'everyone is logged out in the engine');
  t.equal(s.proxy.revoked.size, USERS, 'every credential is refused from now on');
  t.equal((await s.get('/_session-timeout-proxy/healthz')).status, 200, 'the proxy still answers');
  t.comment(`group 5: ${USERS} users timed out within one second of clock; the engine handed out every logout in ${dueHandledMs.toFixed(0)} ms, ` +
    `the whole batch was answered by the upstream ${batchMs.toFixed(0)} ms after the deadline (PROXY_LOGOUT_CONCURRENCY=${CONCURRENCY}, most in flight: ${fake.maxInFlight})`);
});
