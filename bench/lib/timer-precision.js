/**
 * Timer precision of the session engine on the real clock: `users` users become active at random
 * moments over `spreadMs`; with timeout `timeoutMs` and a warning `notifyBeforeMs` before it, each
 * warn/logout action records how late it fired compared with its deadline (derived from the
 * user's recorded idleSinceMs, exactly as the engine derives it).
 */
import { performance, monitorEventLoopDelay } from 'node:perf_hooks';
import { SessionEngine } from '../../dist/sessions/engine.js';
import { MemorySessionStore } from '../../dist/sessions/memory-store.js';
import { systemClock } from '../../dist/sessions/clock.js';

const MINUTE_MS = 60_000;

export function settingsOf({ timeoutMs, notifyBeforeMs, enabled = true }) {
  return Object.freeze({
    enabled,
    timeoutMs,
    timeoutMinutes: timeoutMs / MINUTE_MS,
    notifyBeforeMs,
    notifyBeforeMinutes: notifyBeforeMs / MINUTE_MS,
    exemptDelimiter: ',',
    exemptUsers: new Set(),
  });
}

/** monitorEventLoopDelay samples with a timer of this period; its figures include the period itself */
const LOOP_RESOLUTION_MS = 5;

const nowHiRes = () => performance.timeOrigin + performance.now();

export async function measureTimerPrecision({ users = 500, spreadMs = 1000, timeoutMs = 2000, notifyBeforeMs = 1000, limitMs = 10_000 } = {}) {
  const warnDrift = [];
  const logoutDrift = [];
  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  let done;
  const allDone = new Promise((resolve) => (done = resolve));
  const engine = new SessionEngine({
    clock: systemClock,
    store: new MemorySessionStore(),
    settings: settingsOf({ timeoutMs, notifyBeforeMs }),
    logger: { error: () => {} },
    actions: {
      warn(_user, _minutes, record) {
        warnDrift.push(nowHiRes() - (record.idleSinceMs + timeoutMs - notifyBeforeMs));
      },
      logout(_user, record) {
        logoutDrift.push(nowHiRes() - (record.idleSinceMs + timeoutMs));
        if (logoutDrift.length >= users) done();
      },
    },
  });
  loop.enable();
  const starters = [];
  for (let i = 0; i < users; i++) {
    starters.push(setTimeout(() => engine.recordActivity(`timer-user-${i}`, 'GET', '/panopticon/x'), Math.random() * spreadMs));
  }
  const limit = setTimeout(done, limitMs);
  await allDone;
  clearTimeout(limit);
  for (const s of starters) clearTimeout(s);
  loop.disable();
  engine.close();
  return {
    users,
    warnings: warnDrift.length,
    logouts: logoutDrift.length,
    warnDriftMs: warnDrift,
    logoutDriftMs: logoutDrift,
    // how late the sampling timer fired (the histogram includes the sampling period itself)
    loopDelayP99Ms: Math.max(0, loop.percentile(99) / 1e6 - LOOP_RESOLUTION_MS),
    loopDelayMaxMs: Math.max(0, loop.max / 1e6 - LOOP_RESOLUTION_MS),
  };
}
