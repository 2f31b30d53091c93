/**
 * Turns the text of a Panopticon.properties file into TimeoutSettings. Pure: no I/O here
 * (the file reader is read-file.ts). Only the five `timeout.session.*` keys are read; the
 * file is the server's whole configuration, so every other key is ignored.
 */
import { DEFAULT_SETTINGS, MINUTE_MS, PROPERTY_KEYS, type TimeoutSettings } from './settings.js';
import { freezeSettings } from './frozen.js';
import { readPropertyEntries, type PropertyEntry } from './java-format.js';

/** Larger files are refused without being parsed. */
export const MAX_PROPERTIES_BYTES = 5 * 1024 * 1024;
/** 10 years. */
export const MAX_TIMEOUT_MINUTES = 5_256_000;
/** The `key` of problems that concern the file as a whole. */
export const FILE_PROBLEM_KEY = '(file)';

export interface SettingsProblem {
  /** a property key, or `(file)` */
  readonly key: string;
  readonly value: string;
  readonly rule: string;
}

export type ParseResult =
  | { ok: true; settings: TimeoutSettings; warnings: string[] }
  | { ok: false; problems: SettingsProblem[]; warnings: string[] };

export const TIMEOUT_KEYS: readonly string[] = Object.values(PROPERTY_KEYS);

export const RULES = {
  enabled: 'must be true or false',
  minutes: 'must be a positive number of minutes (decimals allowed)',
  minutesMax: `must be at most ${MAX_TIMEOUT_MINUTES} minutes (10 years)`,
  notification: 'must be 0 (no warning) or a positive number of minutes (decimals allowed)',
  notificationBelow: (minutes: number) => `must be less than ${PROPERTY_KEYS.minutes} (${minutes})`,
  delimiter: 'must not be empty',
  malformedEscape: 'contains a malformed \\uXXXX escape (Java refuses to load such a file)',
  tooLarge: `is larger than ${MAX_PROPERTIES_BYTES / 1024 / 1024} MiB; refusing to read it`,
} as const;

const SHOWN_VALUE_CHARS = 200;

/** Keeps log lines short when someone puts a huge value in the file. */
function clip(value: string): string {
  return value.length <= SHOWN_VALUE_CHARS ? value : `${value.slice(0, SHOWN_VALUE_CHARS)}…(${value.length} chars)`;
}

export function problem(key: string, value: string, rule: string): SettingsProblem {
  return { key, value: clip(value), rule };
}

/** `timeout.session.minutes="480min" is invalid: must be a positive number ...` */
export function describeProblem(p: SettingsProblem): string {
  if (p.key === FILE_PROBLEM_KEY) return `properties file ${JSON.stringify(p.value)} ${p.rule}`;
  return `${p.key}=${JSON.stringify(p.value)} is invalid: ${p.rule}`;
}

/** Unsigned decimal: `480`, `0.5`, `.5`, `5.`, optional leading `+`. No exponent, hex, units. */
const DECIMAL = /^\+?(?:\d+(?:\.\d*)?|\.\d+)$/;

function parseDecimal(raw: string): number | undefined {
  const s = raw.trim();
  if (!DECIMAL.test(s)) return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

const UTF8_BOM = [0xef, 0xbb, 0xbf] as const;

/**
 * Bytes to text: UTF-8 (a leading BOM is dropped); bytes that are not valid UTF-8 are read as
 * ISO-8859-1 instead, which is what Java's Properties.load(InputStream) does, with a warning.
 */
export function decodePropertiesBytes(buf: Buffer): { text: string; warning?: string } {
  let bytes: Uint8Array = buf;
  if (bytes.length >= 3 && UTF8_BOM.every((b, i) => bytes[i] === b)) bytes = bytes.subarray(3);
  const utf16 = bytes.length >= 2 && ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff));
  try {
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
    return { text };
  } catch {
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
    const warning = utf16
      ? 'the properties file looks like UTF-16; Java reads .properties files as ISO-8859-1 and would not see any key in it. Save it as UTF-8 or ISO-8859-1'
      : 'the properties file is not valid UTF-8; it was read as ISO-8859-1 (as Java does)';
    return { text, warning };
  }
}

interface Picked {
  /** last value per timeout key (Java keeps the last of duplicates) */
  readonly values: Map<string, PropertyEntry>;
  readonly warnings: string[];
}

const EXACT_KEYS = new Set(TIMEOUT_KEYS);
const KEY_BY_LOWER = new Map(TIMEOUT_KEYS.map((k) => [k.toLowerCase(), k]));

function pickTimeoutEntries(entries: readonly PropertyEntry[]): Picked {
  const values = new Map<string, PropertyEntry>();
  const lines = new Map<string, number[]>();
  const warnings: string[] = [];
  for (const e of entries) {
    if (EXACT_KEYS.has(e.key)) {
      values.set(e.key, e);
      lines.set(e.key, [...(lines.get(e.key) ?? []), e.line]);
      continue;
    }
    const near = KEY_BY_LOWER.get(e.key.toLowerCase());
    if (near !== undefined) {
      warnings.push(`line ${e.line}: ${JSON.stringify(clip(e.key))} is ignored because property keys are case-sensitive; did you mean ${near}?`);
    } else if (e.malformedEscape) {
      warnings.push(`line ${e.line}: malformed \\uXXXX escape in ${JSON.stringify(clip(e.key))}; Java's Properties.load would refuse this file`);
    }
  }
  for (const [key, at] of lines) {
    if (at.length > 1) warnings.push(`${key} is set ${at.length} times (lines ${at.join(', ')}); the last one wins, as in Java`);
  }
  return { values, warnings };
}

/** Parses the whole properties text. Never throws. */
export function parseTimeoutProperties(text: string): ParseResult {
  if (text.length > MAX_PROPERTIES_BYTES) {
    return { ok: false, problems: [problem(FILE_PROBLEM_KEY, `${text.length} characters`, RULES.tooLarge)], warnings: [] };
  }
  const { values, warnings } = pickTimeoutEntries(readPropertyEntries(text));
  const problems: SettingsProblem[] = [];
  const raw = (key: string): string | undefined => {
    const e = values.get(key);
    if (e === undefined) return undefined;
    if (e.malformedEscape) {
      problems.push(problem(key, e.value, RULES.malformedEscape));
      return undefined;
    }
    return e.value;
  };

  let enabled = DEFAULT_SETTINGS.enabled;
  const enabledRaw = raw(PROPERTY_KEYS.enabled);
  if (enabledRaw !== undefined) {
    const v = enabledRaw.trim().toLowerCase();
    if (v === 'true' || v === 'false') enabled = v === 'true';
    else problems.push(problem(PROPERTY_KEYS.enabled, enabledRaw, RULES.enabled));
  }

  let minutes: number | undefined = DEFAULT_SETTINGS.timeoutMinutes;
  const minutesRaw = raw(PROPERTY_KEYS.minutes);
  if (minutesRaw !== undefined) {
    const n = parseDecimal(minutesRaw);
    minutes = undefined;
    if (n === undefined || n <= 0) problems.push(problem(PROPERTY_KEYS.minutes, minutesRaw, RULES.minutes));
    else if (n > MAX_TIMEOUT_MINUTES) problems.push(problem(PROPERTY_KEYS.minutes, minutesRaw, RULES.minutesMax));
    else minutes = n;
  } else if (values.has(PROPERTY_KEYS.minutes)) {
    minutes = undefined; // malformed escape, already reported
  }

  let notify: number | undefined = DEFAULT_SETTINGS.notifyBeforeMinutes;
  const notifyRaw = raw(PROPERTY_KEYS.notificationMinutes);
  if (notifyRaw !== undefined) {
    const n = parseDecimal(notifyRaw);
    notify = undefined;
    if (n === undefined) problems.push(problem(PROPERTY_KEYS.notificationMinutes, notifyRaw, RULES.notification));
    else if (minutes !== undefined && n > 0 && n * MINUTE_MS >= minutes * MINUTE_MS) {
      problems.push(problem(PROPERTY_KEYS.notificationMinutes, notifyRaw, RULES.notificationBelow(minutes)));
    } else notify = n;
  } else if (values.has(PROPERTY_KEYS.notificationMinutes)) {
    notify = undefined;
  } else if (minutes !== undefined && notify * MINUTE_MS >= minutes * MINUTE_MS) {
    // Only the default is in the way: the operator asked for a short timeout and said nothing
    // about the warning. Refusing the file for a value nobody wrote would be surprising.
    warnings.push(
      `${PROPERTY_KEYS.notificationMinutes} is not set and its default (${notify}) is not less than ${PROPERTY_KEYS.minutes} (${minutes}); no timeout warning will be sent`,
    );
    notify = 0;
  }

  let delimiter: string | undefined = DEFAULT_SETTINGS.exemptDelimiter;
  const delimiterRaw = raw(PROPERTY_KEYS.delimiter);
  if (delimiterRaw !== undefined) {
    delimiter = delimiterRaw === '' ? undefined : delimiterRaw; // taken literally, not trimmed
    if (delimiter === undefined) problems.push(problem(PROPERTY_KEYS.delimiter, delimiterRaw, RULES.delimiter));
  } else if (values.has(PROPERTY_KEYS.delimiter)) {
    delimiter = undefined;
  }

  const usersRaw = raw(PROPERTY_KEYS.usernames) ?? '';
  if (problems.length > 0 || minutes === undefined || notify === undefined || delimiter === undefined) {
    return { ok: false, problems, warnings };
  }
  const users = usersRaw.split(delimiter).map((u) => u.trim()).filter((u) => u !== '');
  const settings = freezeSettings({
    enabled,
    timeoutMs: minutes * MINUTE_MS,
    timeoutMinutes: minutes,
    notifyBeforeMs: notify * MINUTE_MS,
    notifyBeforeMinutes: notify,
    exemptDelimiter: delimiter,
    exemptUsers: new Set(users),
  });
  return { ok: true, settings, warnings };
}

function sameUsers(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const u of a) if (!b.has(u)) return false;
  return true;
}

/** One row per property key, with the value as an operator would write or read it. */
function shown(s: TimeoutSettings): Array<[string, string]> {
  return [
    [PROPERTY_KEYS.enabled, String(s.enabled)],
    [PROPERTY_KEYS.minutes, String(s.timeoutMinutes)],
    [PROPERTY_KEYS.notificationMinutes, String(s.notifyBeforeMinutes)],
    [PROPERTY_KEYS.delimiter, JSON.stringify(s.exemptDelimiter)],
    [PROPERTY_KEYS.usernames, JSON.stringify([...s.exemptUsers])],
  ];
}

export interface SettingsChange {
  readonly key: string;
  readonly from: string;
  readonly to: string;
}

/** What changed between two settings, keyed by property key (for the change log line). */
export function settingsDiff(prev: TimeoutSettings, next: TimeoutSettings): SettingsChange[] {
  const a = shown(prev);
  const b = shown(next);
  const out: SettingsChange[] = [];
  for (let i = 0; i < a.length; i++) {
    const [key, from] = a[i]!;
    const to = b[i]![1];
    const usersKey = key === PROPERTY_KEYS.usernames;
    const differs = usersKey ? !sameUsers(prev.exemptUsers, next.exemptUsers) : from !== to;
    if (differs) out.push({ key, from, to });
  }
  return out;
}

export function settingsEqual(a: TimeoutSettings, b: TimeoutSettings): boolean {
  return (
    a.enabled === b.enabled &&
    a.timeoutMs === b.timeoutMs &&
    a.timeoutMinutes === b.timeoutMinutes &&
    a.notifyBeforeMs === b.notifyBeforeMs &&
    a.notifyBeforeMinutes === b.notifyBeforeMinutes &&
    a.exemptDelimiter === b.exemptDelimiter &&
    sameUsers(a.exemptUsers, b.exemptUsers)
  );
}
