import { ManualClock } from '../../src/sessions/clock.js';
import { SessionEngine, type LogoutReason } from '../../src/sessions/engine.js';
import { MemorySessionStore } from '../../src/sessions/memory-store.js';
import { DEFAULT_SETTINGS, MINUTE_MS, type TimeoutSettings } from '../../src/properties/settings.js';

export function settings(over: Partial<{ enabled: boolean; minutes: number; notify: number; exempt: string[] }> = {}): TimeoutSettings {
  const minutes = over.minutes ?? 10;
  const notify = over.notify ?? 1;
  return Object.freeze({
    ...DEFAULT_SETTINGS,
    enabled: over.enabled ?? true,
    timeoutMinutes: minutes,
    timeoutMs: minutes * MINUTE_MS,
    notifyBeforeMinutes: notify,
    notifyBeforeMs: notify * MINUTE_MS,
    exemptUsers: new Set(over.exempt ?? []),
  });
}

export interface Recorded {
  kind: 'warn' | 'logout';
  user: string;
  atMs: number;
  minutes?: number;
  reason?: LogoutReason;
  credentials?: string[];
}

export function makeEngine(s: TimeoutSettings = settings(), opts: { batchSize?: number } = {}) {
  const clock = new ManualClock();
  const store = new MemorySessionStore();
  const events: Recorded[] = [];
  const errors: unknown[] = [];
  const engine = new SessionEngine({
    clock,
    store,
    settings: s,
    logger: { error: (obj) => errors.push(obj) },
    batchSize: opts.batchSize,
    actions: {
      warn: (user, minutes) => events.push({ kind: 'warn', user, minutes, atMs: clock.now() }),
      logout: (user, record, reason) =>
        events.push({ kind: 'logout', user, reason, atMs: clock.now(), credentials: [...record.credentials.keys()] }),
    },
  });
  return { clock, store, engine, events, errors, t0: clock.now() };
}
