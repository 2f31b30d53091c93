/** The five documented `timeout.session.*` keys, as one typed, immutable value. */
export interface TimeoutSettings {
  /** timeout.session.enabled */
  readonly enabled: boolean;
  /** timeout.session.minutes, converted to milliseconds */
  readonly timeoutMs: number;
  /** timeout.session.minutes as written (for the reset service answer and logs) */
  readonly timeoutMinutes: number;
  /** timeout.session.notification.minutes, converted to milliseconds (0 = no warning) */
  readonly notifyBeforeMs: number;
  /** timeout.session.notification.minutes as written (the N of minutesUntilTimeout) */
  readonly notifyBeforeMinutes: number;
  /** timeout.session.exception.delimiter, taken literally */
  readonly exemptDelimiter: string;
  /** timeout.session.exception.usernames, split on the delimiter, trimmed, empties dropped */
  readonly exemptUsers: ReadonlySet<string>;
}

export const PROPERTY_KEYS = {
  enabled: 'timeout.session.enabled',
  delimiter: 'timeout.session.exception.delimiter',
  usernames: 'timeout.session.exception.usernames',
  minutes: 'timeout.session.minutes',
  notificationMinutes: 'timeout.session.notification.minutes',
} as const;

export const MINUTE_MS = 60_000;

export const DEFAULT_SETTINGS: TimeoutSettings = Object.freeze({
  enabled: false,
  timeoutMs: 480 * MINUTE_MS,
  timeoutMinutes: 480,
  notifyBeforeMs: 1 * MINUTE_MS,
  notifyBeforeMinutes: 1,
  exemptDelimiter: ',',
  exemptUsers: new Set<string>() as ReadonlySet<string>,
});

/** Anything that can hand out the current settings and say when they change. */
export interface SettingsSource {
  readonly current: TimeoutSettings;
  onChange(listener: (next: TimeoutSettings, previous: TimeoutSettings) => void): () => void;
}
