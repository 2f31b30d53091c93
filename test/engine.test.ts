import t from 'tap';
import { makeEngine, settings } from './helpers/engine.js';
import { MINUTE_MS } from '../src/properties/settings.js';

const cred = (fp: string) => ({ fingerprint: fp, kind: 'token-cookie', replay: { cookie: `ptoken=${fp}` } });

t.test('warns notification-minutes before the deadline, then logs out at the deadline', async (t) => {
  const { clock, engine, events, t0 } = makeEngine(settings({ minutes: 10, notify: 2 }));
  engine.recordActivity('alice', 'GET', '/panopticon/', cred('a1'));
  clock.advance(8 * MINUTE_MS - 1);
  t.same(events, [], 'nothing before deadline - notify');
  clock.advance(1);
  t.same(events, [{ kind: 'warn', user: 'alice', minutes: 2, atMs: t0 + 8 * MINUTE_MS }]);
  clock.advance(2 * MINUTE_MS - 1);
  t.equal(events.length, 1, 'warned exactly once');
  clock.advance(1);
  t.equal(events.length, 2);
  t.match(events[1], { kind: 'logout', user: 'alice', reason: 'timeout', atMs: t0 + 10 * MINUTE_MS, credentials: ['a1'] });
  t.equal(engine.describe('alice')?.state, 'logged-out');
  clock.advance(60 * MINUTE_MS);
  t.equal(events.length, 2, 'never logged out twice');
});

t.test('activity resets the timer and re-arms the warning', async (t) => {
  const { clock, engine, events, t0 } = makeEngine(settings({ minutes: 10, notify: 1 }));
  engine.recordActivity('alice', 'GET', '/a');
  clock.advance(9 * MINUTE_MS);
  t.equal(events.length, 1, 'first warning');
  clock.advance(30_000);
  engine.recordActivity('alice', 'GET', '/b');
  t.equal(engine.describe('alice')?.state, 'active', 'activity clears the warned state');
  clock.advance(9 * MINUTE_MS - 1);
  t.equal(events.length, 1, 'no second warning before the new warn time');
  clock.advance(1);
  t.match(events[1], { kind: 'warn', atMs: t0 + 9.5 * MINUTE_MS + 9 * MINUTE_MS });
  clock.advance(MINUTE_MS);
  t.match(events[2], { kind: 'logout', atMs: t0 + 9.5 * MINUTE_MS + 10 * MINUTE_MS });
});

t.test('many activities keep one timer and one schedule entry', async (t) => {
  const { clock, engine, events } = makeEngine(settings({ minutes: 10 }));
  for (let i = 0; i < 1000; i++) {
    engine.recordActivity('alice', 'GET', '/x');
    clock.advance(1000);
  }
  t.equal(clock.pendingTimers, 1, 'a single clock timer');
  t.equal(events.length, 0);
  t.equal(engine.describe('alice')?.lastActivity?.path, '/x');
});

t.test('notification minutes 0 means no warning', async (t) => {
  const { clock, engine, events } = makeEngine(settings({ minutes: 5, notify: 0 }));
  engine.recordActivity('alice', 'GET', '/a');
  clock.advance(5 * MINUTE_MS);
  t.same(events.map((e) => e.kind), ['logout']);
});

t.test('exempt users are never warned or logged out', async (t) => {
  const { clock, engine, events } = makeEngine(settings({ minutes: 1, exempt: ['kiosk'] }));
  engine.recordActivity('kiosk', 'GET', '/a');
  clock.advance(100 * MINUTE_MS);
  t.same(events, []);
  t.equal(engine.describe('kiosk')?.state, 'exempt');
});

t.test('disabled: no timers, no frames, no logouts', async (t) => {
  const { clock, engine, events } = makeEngine(settings({ enabled: false, minutes: 1 }));
  engine.recordActivity('alice', 'GET', '/a');
  clock.advance(100 * MINUTE_MS);
  t.same(events, []);
  t.equal(clock.pendingTimers, 0);
  t.equal(engine.describe('alice')?.state, 'untimed');
});

t.test('disabling cancels pending timers; enabling times from the last activity', async (t) => {
  const { clock, engine, events, t0 } = makeEngine(settings({ minutes: 10, notify: 0 }));
  engine.recordActivity('alice', 'GET', '/a');
  clock.advance(5 * MINUTE_MS);
  engine.updateSettings(settings({ enabled: false, minutes: 10, notify: 0 }));
  clock.advance(20 * MINUTE_MS);
  t.same(events, [], 'nothing while disabled');
  engine.seen('bob', cred('b1'));
  engine.updateSettings(settings({ enabled: true, minutes: 30, notify: 0 }));
  t.equal(engine.describe('alice')?.deadlineMs, t0 + 30 * MINUTE_MS, 'alice: from her last activity');
  t.equal(engine.describe('bob')?.deadlineMs, t0 + 25 * MINUTE_MS + 30 * MINUTE_MS, 'bob (never active): from now');
  clock.advance(5 * MINUTE_MS);
  t.same(events.map((e) => e.user), ['alice']);
  clock.advance(30 * MINUTE_MS);
  t.same(events.map((e) => e.user), ['alice', 'bob']);
});

t.test('a shorter timeout moves running deadlines; a past one logs out at once', async (t) => {
  const { clock, engine, events, t0 } = makeEngine(settings({ minutes: 60, notify: 1 }));
  engine.recordActivity('alice', 'GET', '/a');
  clock.advance(10 * MINUTE_MS);
  engine.recordActivity('bob', 'GET', '/a');
  engine.updateSettings(settings({ minutes: 15, notify: 1 }));
  t.equal(engine.describe('alice')?.deadlineMs, t0 + 15 * MINUTE_MS);
  clock.advance(4 * MINUTE_MS);
  t.same(events.map((e) => `${e.kind}:${e.user}`), ['warn:alice']);
  engine.updateSettings(settings({ minutes: 5, notify: 1 }));
  clock.advance(0);
  t.same(events.map((e) => `${e.kind}:${e.user}`), ['warn:alice', 'logout:alice', 'warn:bob'], 'alice is past her new deadline; bob is inside his new warning window');
});

t.test('a longer warning whose time already passed warns right away', async (t) => {
  const { clock, engine, events, t0 } = makeEngine(settings({ minutes: 10, notify: 1 }));
  engine.recordActivity('alice', 'GET', '/a');
  clock.advance(6 * MINUTE_MS);
  engine.updateSettings(settings({ minutes: 10, notify: 5 }));
  clock.advance(0);
  t.same(events, [{ kind: 'warn', user: 'alice', minutes: 5, atMs: t0 + 6 * MINUTE_MS }]);
});

t.test('adding a user to the exemptions cancels their timer', async (t) => {
  const { clock, engine, events } = makeEngine(settings({ minutes: 10 }));
  engine.recordActivity('alice', 'GET', '/a');
  engine.recordActivity('bob', 'GET', '/a');
  clock.advance(5 * MINUTE_MS);
  engine.updateSettings(settings({ minutes: 10, exempt: ['alice'] }));
  clock.advance(60 * MINUTE_MS);
  t.same(events.map((e) => `${e.kind}:${e.user}`), ['warn:bob', 'logout:bob']);
});

t.test('after a logout, a new credential starts a new session; the old state is not reused', async (t) => {
  const { clock, engine, events } = makeEngine(settings({ minutes: 10, notify: 0 }));
  engine.recordActivity('alice', 'GET', '/a', cred('old'));
  clock.advance(10 * MINUTE_MS);
  t.equal(events.length, 1);
  engine.seen('alice', cred('old'));
  t.equal(engine.describe('alice')?.state, 'logged-out', 'the old credential does not revive the session');
  engine.seen('alice', cred('new'));
  t.equal(engine.describe('alice')?.state, 'active');
  t.equal(engine.describe('alice')?.credentials, 1, 'only the new credential');
  clock.advance(10 * MINUTE_MS);
  t.same(events.map((e) => e.credentials), [['old'], ['new']]);
});

t.test('forced logout and extend', async (t) => {
  const { clock, engine, events } = makeEngine(settings({ minutes: 10, notify: 0 }));
  t.equal(engine.forceLogout('nobody'), false);
  engine.recordActivity('alice', 'GET', '/a');
  engine.recordActivity('bob', 'GET', '/a');
  clock.advance(9 * MINUTE_MS);
  t.equal(engine.extend('bob'), true);
  t.equal(engine.forceLogout('alice'), true);
  t.equal(engine.forceLogout('alice'), false, 'already logged out');
  clock.advance(9 * MINUTE_MS);
  t.same(events.map((e) => `${e.user}:${e.reason}`), ['alice:forced']);
  clock.advance(MINUTE_MS);
  t.same(events.map((e) => `${e.user}:${e.reason}`), ['alice:forced', 'bob:timeout']);
});

t.test('ignored requests are remembered with their rule, and do not move the timer', async (t) => {
  const { clock, engine } = makeEngine(settings({ minutes: 10 }));
  engine.recordActivity('alice', 'GET', '/a');
  const before = engine.describe('alice')!.deadlineMs;
  clock.advance(MINUTE_MS);
  engine.recordIgnored('alice', 'GET', '/poll', 'passive:GET /poll');
  t.equal(engine.describe('alice')!.deadlineMs, before);
  t.match(engine.describe('alice')!.recent.at(-1), { counted: false, rule: 'passive:GET /poll' });
});

t.test('a user seen but never active times out from first sight', async (t) => {
  const { clock, engine, events, t0 } = makeEngine(settings({ minutes: 10, notify: 0 }));
  engine.seen('alice', cred('a'));
  clock.advance(10 * MINUTE_MS);
  t.same(events.map((e) => [e.user, e.atMs]), [['alice', t0 + 10 * MINUTE_MS]]);
});

t.test('10 000 users due in the same instant: each logged out once, in batches', async (t) => {
  const { clock, engine, events } = makeEngine(settings({ minutes: 1, notify: 0 }), { batchSize: 500 });
  for (let i = 0; i < 10_000; i++) engine.recordActivity(`u${i}`, 'GET', '/a');
  clock.advance(MINUTE_MS);
  t.equal(events.length, 10_000);
  t.equal(new Set(events.map((e) => e.user)).size, 10_000, 'none twice');
});

t.test('a burst of timeouts keeps exactly one clock timer at any moment', async (t) => {
  const { clock, engine, events } = makeEngine(settings({ minutes: 1, notify: 0 }), { batchSize: 500 });
  let mostPending = 0;
  const setTimer = clock.setTimer.bind(clock);
  clock.setTimer = (callback, delayMs) => {
    const handle = setTimer(callback, delayMs);
    mostPending = Math.max(mostPending, clock.pendingTimers);
    return handle;
  };
  for (let i = 0; i < 10_000; i++) engine.recordActivity(`u${i}`, 'GET', '/a');
  clock.advance(MINUTE_MS);
  t.equal(events.length, 10_000);
  t.equal(mostPending, 1, 'no batch leaves a second timer behind');
  t.equal(clock.pendingTimers, 1, 'afterwards only the retention timer waits');
});

t.test('logged-out users are forgotten after the retention period', async (t) => {
  const { clock, engine } = makeEngine(settings({ minutes: 1, notify: 0 }));
  engine.recordActivity('alice', 'GET', '/a');
  clock.advance(MINUTE_MS);
  t.equal(engine.userCount, 1);
  clock.advance(60 * MINUTE_MS);
  t.equal(engine.userCount, 0);
});

t.test('an action that throws is logged and does not stop other users', async (t) => {
  const { clock, store } = makeEngine();
  const { SessionEngine } = await import('../src/sessions/engine.js');
  const errors: unknown[] = [];
  const done: string[] = [];
  const engine = new SessionEngine({
    clock, store, settings: settings({ minutes: 1, notify: 0 }), logger: { error: (o) => errors.push(o) },
    actions: { warn: () => {}, logout: (user) => { if (user === 'bad') throw new Error('boom'); done.push(user); } },
  });
  engine.recordActivity('bad', 'GET', '/a');
  engine.recordActivity('good', 'GET', '/a');
  clock.advance(MINUTE_MS);
  t.same(done, ['good']);
  t.equal(errors.length, 1);
});

t.test('retractActivity: a timer\'s activity is taken back, and the warning and logout move with it', async (t) => {
  const { clock, engine, events, t0 } = makeEngine(settings({ minutes: 10, notify: 2 }));
  engine.recordActivity('alice', 'GET', '/panopticon/', cred('a1'), 'sec-fetch-user');
  const real = engine.describe('alice')!.lastActivity!;
  t.equal(real.rule, 'sec-fetch-user', 'the rule that made it count is kept');
  for (let i = 0; i < 5; i++) {
    clock.advance(60_000);
    engine.recordActivity('alice', 'GET', '/refresh');
  }
  t.equal(engine.describe('alice')!.deadlineMs, t0 + 15 * MINUTE_MS, 'the timer moved the deadline while it was learned');
  t.equal(engine.retractActivity('alice', real), true);
  const v = engine.describe('alice')!;
  t.equal(v.idleSinceMs, t0);
  t.equal(v.deadlineMs, t0 + 10 * MINUTE_MS);
  t.same(v.lastActivity, real, 'the last counted request is the real one again');
  t.equal(engine.retractActivity('alice', { ...real, atMs: t0 + 1 }), false, 'never moves forward');
  clock.advance(3 * MINUTE_MS - 1); // t0 + 8 min - 1
  t.same(events, []);
  clock.advance(1);
  t.match(events, [{ kind: 'warn', atMs: t0 + 8 * MINUTE_MS }], 'warned at the earlier time');
  clock.advance(2 * MINUTE_MS);
  t.match(events[1], { kind: 'logout', atMs: t0 + 10 * MINUTE_MS });
  t.equal(engine.retractActivity('alice', { ...real, atMs: t0 - 1 }), false, 'a logged-out user is left alone');
  t.equal(engine.retractActivity('nobody', real), false);
});

t.test('retractActivity past the deadline logs out at once', async (t) => {
  const { clock, engine, events, t0 } = makeEngine(settings({ minutes: 10, notify: 0 }));
  engine.recordActivity('alice', 'GET', '/a');
  const real = engine.describe('alice')!.lastActivity!;
  for (let i = 0; i < 12; i++) {
    clock.advance(MINUTE_MS);
    engine.recordActivity('alice', 'GET', '/refresh');
  }
  engine.retractActivity('alice', real);
  clock.advance(0);
  t.match(events, [{ kind: 'logout', user: 'alice', atMs: t0 + 12 * MINUTE_MS }]);
});
