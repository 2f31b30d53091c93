/**
 * An independent yardstick for TimeoutSettings: a plain record (users sorted) compared with
 * node:util's deep equality. The tests use it instead of `settingsEqual`, the function under test.
 */
import { isDeepStrictEqual } from 'node:util';
import type { TimeoutSettings } from '../../src/properties/settings.js';

/** Every field of TimeoutSettings, by name: a new field must be added here (a test checks it). */
export const SETTINGS_FIELDS = ['enabled', 'timeoutMs', 'timeoutMinutes', 'notifyBeforeMs', 'notifyBeforeMinutes', 'exemptDelimiter', 'exemptUsers'] as const;

export function settingsRecord(s: TimeoutSettings): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of SETTINGS_FIELDS) out[f] = f === 'exemptUsers' ? [...s.exemptUsers].sort() : s[f];
  return out;
}

export function sameSettings(a: TimeoutSettings, b: TimeoutSettings): boolean {
  return isDeepStrictEqual(settingsRecord(a), settingsRecord(b));
}
