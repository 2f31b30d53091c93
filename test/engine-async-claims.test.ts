/**
 * The engine with a store whose claims are answered later (as the Redis store's are): a user is
 * not looked at again while a claim is open, a won claim acts once, and a claim the store could
 * not decide waits until the store reports the user again.
 */
import t from 'tap';
import { ManualClock } from '../src/sessions/clock.js';
import { SessionEngine } from '../src/sessions/engine.js';
import { MemorySessionStore } from '../src/sessions/memory-store.js';
import type { ClaimAction, RequestNote, SessionStore, StoreListener } from '../src/sessions/store.js';
import { MINUTE_MS } from '../src/properties/settings.js';
import { settings } from './helpers/engine.js';

class DeferredClaims implements SessionStore {
  readonly mem = new MemorySessionStore();
  listener: StoreListener | undefined;
  readonly open: Array<{ user: string; action: ClaimAction; periodMs: number; answer(won: boolean): void }> = [];
  get size() { return this.mem.size; }
  get(user: string) { return this.mem.get(user); }
  ensure(user: string, nowMs: number) { return this.mem.ensure(user, nowMs); }
  recordActivity(user: string, note: RequestNote) { return this.mem.recordActivity(user, note); }
  delete(user: string) { this.mem.delete(user); }
  all() { return this.mem.all(); }
  schedule(user: string, atMs: number) { this.mem.schedule(user, atMs); }
  unschedule(user: string) { this.mem.unschedule(user); }
  scheduledAtMs(user: string) { return this.mem.scheduledAtMs(user); }
  nextDueAtMs() { return this.mem.nextDueAtMs(); }
  takeDue(nowMs: number, limit: number) { return this.mem.takeDue(nowMs, limit); }
  clearSchedule() { this.mem.clearSchedule(); }
  claimed(user: string, action: ClaimAction, periodMs: number) { return this.mem.claimed(user, action, periodMs); }
  exportSnapshots() { return this.mem.exportSnapshots(); }
  importSnapshots(s: Parameters<SessionStore['importSnapshots']>[0]) { this.mem.importSnapshots(s); }
  watch(listener: StoreListener) { this.listener = listener; }
  claim(user: string, action: ClaimAction, periodMs: number): Promise<boolean> {
    return new Promise((resolve) => this.open.push({ user, action, periodMs, answer: (won) => resolve(won && this.mem.claim(user, action, periodMs)) }));
  }
}

const flush = () => new Promise((r) => setImmediate(r));

t.test('a claim answered later: nothing happens meanwhile, a won claim acts once, an undecided one waits for the store', async (t) => {
  const clock = new ManualClock();
  const store = new DeferredClaims();
  const logouts: string[] = [];
  const engine = new SessionEngine({ clock, store, settings: settings({ minutes: 10, notify: 0 }), logger: { error: () => undefined }, actions: { warn: () => undefined, logout: (u) => logouts.push(u) } });
  engine.recordActivity('alice', 'GET', '/a');
  clock.advance(10 * MINUTE_MS);
  t.equal(store.open.length, 1, 'one claim asked at the deadline');
  clock.advance(MINUTE_MS);
  await flush();
  t.equal(store.open.length, 1, 'not asked again while it is open');
  t.same(logouts, [], 'nothing done before the answer');

  store.open.shift()!.answer(false); // the store could not decide (Redis unreachable)
  await flush();
  clock.advance(10 * MINUTE_MS);
  t.equal(store.open.length, 0, 'an undecided claim is not retried on a timer');
  t.equal(engine.describe('alice')?.state, 'active');

  store.listener!.changed('alice'); // the store can decide again
  clock.advance(0);
  t.equal(store.open.length, 1, 'asked again once the store reported the user');
  store.open.shift()!.answer(true);
  await flush();
  t.same(logouts, ['alice'], 'logged out once');
  t.equal(engine.describe('alice')?.state, 'logged-out');
  const forced = engine.forceLogout('alice');
  t.equal(forced, false, 'already logged out');
});

t.test('forceLogout with an asynchronous store answers with a promise', async (t) => {
  const clock = new ManualClock();
  const store = new DeferredClaims();
  const logouts: string[] = [];
  const engine = new SessionEngine({ clock, store, settings: settings({ minutes: 10, notify: 0 }), logger: { error: () => undefined }, actions: { warn: () => undefined, logout: (u, _r, reason) => logouts.push(`${u}:${reason}`) } });
  engine.recordActivity('bob', 'GET', '/a');
  const answer = engine.forceLogout('bob');
  t.ok(answer instanceof Promise);
  t.match(store.open[0], { user: 'bob', action: 'logout' });
  store.open[0]!.answer(true);
  t.equal(await answer, true);
  t.same(logouts, ['bob:forced']);
});
