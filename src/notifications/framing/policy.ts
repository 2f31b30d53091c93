/**
 * Which sockets are inspected and how: builds the per-socket tracker for a notification socket
 * from the settings (PROXY_NOTIFY_FRAMING, PROXY_NOTIFY_DESTINATIONS) and feeds the report.
 */
import picomatch from 'picomatch';
import type { FramingReport } from './report.js';
import type { FramingSetting } from './inspector.js';
import { FramingTracker } from './tracker.js';

export interface FramingPolicyOptions {
  readonly setting: FramingSetting;
  /** globs of STOMP notification destinations; empty = any destination containing "notification" (any case) */
  readonly destinations: readonly string[];
  readonly report: FramingReport;
}

const NOTIFICATION_WORD = 'notification';

/** The rule that says which STOMP destinations are notification subscriptions. */
export function notificationDestinationRule(globs: readonly string[]): (destination: string) => boolean {
  if (globs.length === 0) return (destination) => destination.toLowerCase().includes(NOTIFICATION_WORD);
  return picomatch([...globs], { dot: true });
}

export class FramingPolicy {
  readonly #setting: FramingSetting;
  readonly #isNotificationDestination: (destination: string) => boolean;
  readonly #report: FramingReport;

  constructor(opts: FramingPolicyOptions) {
    this.#setting = opts.setting;
    this.#isNotificationDestination = notificationDestinationRule(opts.destinations);
    this.#report = opts.report;
  }

  /** The tracker of a new socket on `path` whose upstream chose sub-protocol `protocol` ('' for none). */
  trackerFor(path: string, protocol: string): FramingTracker {
    return new FramingTracker({
      setting: this.#setting,
      path,
      protocol,
      isNotificationDestination: this.#isNotificationDestination,
      observer: this.#report.forPath(path),
    });
  }
}
