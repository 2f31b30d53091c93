/**
 * The timeout state machine. One class owns every user's timer:
 *
 *   seen / activity ──► active ──(deadline − notifyBefore)──► warned ──(deadline)──► logged-out
 *        ▲                 ▲                                     │                       │
 *        │                 └──────────── counted activity ───────┘                       │
 *        └──────────────────── a new credential or counted activity (new session) ───────┘
 *
 * deadline = idleSinceMs + timeoutMs, where idleSinceMs is the last counted activity. Nothing is
 * stored per deadline: a settings change moves every deadline at once because deadlines are derived.
 *
 * Scheduling: the store keeps at most one due time per user in one heap, and the engine keeps one
 * clock timer for the earliest of them. Recording activity only moves idleSinceMs (O(1)); when a
 * user's due time comes and they were active meanwhile, the engine just computes the new due time.
 *
 * With a shared store (several replicas) every replica runs this engine over its local copy of
 * every record; the store's claim decides which replica warns or logs out, asynchronously. Until
 * a claim is answered the user is not looked at again.
 */
import type { TimeoutSettings } from '../properties/settings.js';
import type { Clock, TimerHandle } from './clock.js';
import { MAX_TIMER_DELAY_MS } from './clock.js';
import { storedCredential } from './credential-set.js';
import { internPath } from './note-ring.js';
import {
  CREDENTIALS_PER_USER_MAX,
  type MaybePromise,
  type RequestNote,
  type SessionRecord,
  type SessionStore,
  type StoredCredential,
} from './store.js';

export type LogoutReason = 'timeout' | 'forced';

/** What the engine asks the outside world to do. Implementations must not throw (errors are logged). */
export interface SessionActions {
  warn(user: string, minutesUntilTimeout: number, record: SessionRecord): void;
  logout(user: string, record: SessionRecord, reason: LogoutReason): void;
}

export interface EngineLogger {
  error(obj: object, msg: string): void;
}

export interface SessionEngineOptions {
  clock: Clock;
  store: SessionStore;
  settings: TimeoutSettings;
  actions: SessionActions;
  logger: EngineLogger;
  /** users handled per timer tick before yielding to the event loop */
  batchSize?: number;
  /** how long a logged-out user stays visible (admin, refusals are kept elsewhere) */
  loggedOutRetentionMs?: number;
}

export type SessionState = 'active' | 'warned' | 'logged-out' | 'exempt' | 'untimed';

export interface SessionView {
  readonly user: string;
  readonly state: SessionState;
  readonly exempt: boolean;
  readonly firstSeenMs: number;
  readonly idleSinceMs: number;
  readonly lastActivity: RequestNote | undefined;
  readonly deadlineMs: number | undefined;
  readonly warnAtMs: number | undefined;
  readonly warned: boolean;
  readonly loggedOutAtMs: number | undefined;
  readonly credentials: number;
  readonly recent: readonly RequestNote[];
}

export type CredentialInput = Omit<StoredCredential, 'lastSeenMs'>;

const DEFAULT_BATCH_SIZE = 500;
const DEFAULT_LOGGED_OUT_RETENTION_MS = 60 * 60_000;

export class SessionEngine {
  readonly #clock: Clock;
  readonly #store: SessionStore;
  readonly #actions: SessionActions;
  readonly #logger: EngineLogger;
  readonly #batchSize: number;
  readonly #retentionMs: number;
  #settings: TimeoutSettings;
  #timer: TimerHandle | undefined;
  #timerAtMs: number | undefined;
  #closed = false;
  /** users whose claim is being answered by an asynchronous store */
  readonly #claiming = new Set<string>();

  constructor(opts: SessionEngineOptions) {
    this.#clock = opts.clock;
    this.#store = opts.store;
    this.#actions = opts.actions;
    this.#logger = opts.logger;
    this.#settings = opts.settings;
    this.#batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
    this.#retentionMs = opts.loggedOutRetentionMs ?? DEFAULT_LOGGED_OUT_RETENTION_MS;
    this.#store.watch?.({
      changed: (user) => {
        const record = this.#store.get(user);
        if (record && !this.#claiming.has(user)) this.#ensureScheduled(record);
      },
      reloaded: () => this.#rescheduleAll(),
    });
    this.#rescheduleAll();
  }

  get settings(): TimeoutSettings {
    return this.#settings;
  }

  isExempt(user: string): boolean {
    return this.#settings.exemptUsers.has(user);
  }

  /**
   * The user made a request the upstream accepted (or opened a socket): remember the credential.
   * A logged-out user presenting a credential we have not seen starts a new session.
   */
  seen(user: string, credential?: CredentialInput): SessionRecord {
    const nowMs = this.#clock.now();
    const record = this.#store.ensure(user, nowMs);
    if (record.loggedOutAtMs !== undefined && credential && !record.credentials.has(credential.fingerprint)) {
      this.#startNewSession(record, nowMs);
    }
    if (credential && addCredential(record, credential, nowMs)) this.#store.noteChanged?.(user);
    this.#ensureScheduled(record);
    return record;
  }

  /** A counted activity: resets the user's timer (O(1)). `rule` names what made it count. */
  recordActivity(user: string, method: string, path: string, credential?: CredentialInput, rule = 'counted'): SessionRecord {
    const nowMs = this.#clock.now();
    const note: RequestNote = { atMs: nowMs, method, path: internPath(path), counted: true, rule };
    const existing = this.#store.get(user);
    if (existing?.loggedOutAtMs !== undefined) this.#startNewSession(existing, nowMs);
    const record = this.#store.recordActivity(user, note);
    if (credential && addCredential(record, credential, nowMs)) this.#store.noteChanged?.(user);
    this.#ensureScheduled(record);
    return record;
  }

  /** A request of the user that did not count, remembered with the rule that decided it. */
  recordIgnored(user: string, method: string, path: string, rule: string): void {
    const record = this.#store.get(user);
    if (record) record.recent.push({ atMs: this.#clock.now(), method, path, counted: false, rule });
  }

  /**
   * Activity that turned out to be a timer's is taken back: the idle period runs from `to` (the
   * user's last request that was not a timer's) again, and the user's due time moves with it. Only
   * ever moves back; a logged-out user is left alone. True when something changed.
   */
  retractActivity(user: string, to: RequestNote): boolean {
    const record = this.#store.get(user);
    if (!record || record.loggedOutAtMs !== undefined) return false;
    // A shared store is told even when this copy already shows an earlier idle start (another
    // replica's retraction reached it first): `to` is real activity the others must not lose.
    this.#store.retract?.(user, to, record.idleSinceMs);
    if (to.atMs >= record.idleSinceMs) return false;
    record.idleSinceMs = to.atMs;
    record.lastActivity = to;
    const dueMs = this.#nextDueMs(record);
    if (dueMs === undefined) this.#store.unschedule(user);
    else this.#store.schedule(user, dueMs);
    this.#arm();
    return true;
  }

  /** Admin "extend": counts as activity for the user. False when the user is unknown. */
  extend(user: string): boolean {
    if (!this.#store.get(user)) return false;
    this.recordActivity(user, 'POST', '(admin extend)');
    return true;
  }

  /**
   * Admin "log out now": the same path as a timeout. False when unknown or already logged out.
   * A promise with a shared store (the claim is a round trip).
   */
  forceLogout(user: string): MaybePromise<boolean> {
    const record = this.#store.get(user);
    if (!record || record.loggedOutAtMs !== undefined) return false;
    return this.#logout(record, 'forced');
  }

  /** Applies new settings to every running timer at once. */
  updateSettings(next: TimeoutSettings): void {
    const previous = this.#settings;
    this.#settings = next;
    if (!previous.enabled && next.enabled) {
      // Users never counted as active so far start their idle period now, not at first sight.
      const nowMs = this.#clock.now();
      for (const record of this.#store.all()) {
        if (record.lastActivity === undefined && record.loggedOutAtMs === undefined) {
          record.idleSinceMs = Math.max(record.idleSinceMs, nowMs);
          this.#store.noteChanged?.(record.user);
        }
      }
    }
    this.#rescheduleAll();
  }

  describe(user: string): SessionView | undefined {
    const record = this.#store.get(user);
    return record && this.#view(record);
  }

  list(): SessionView[] {
    const out: SessionView[] = [];
    for (const record of this.#store.all()) out.push(this.#view(record));
    return out;
  }

  get userCount(): number {
    return this.#store.size;
  }

  /** Re-derives every due time (after a settings change or a state restore). */
  rescheduleAll(): void {
    this.#rescheduleAll();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAtMs = undefined;
  }

  // ---- internals -------------------------------------------------------------------------

  #timed(user: string): boolean {
    return this.#settings.enabled && !this.#settings.exemptUsers.has(user);
  }

  #deadlineMs(record: SessionRecord): number {
    return record.idleSinceMs + this.#settings.timeoutMs;
  }

  #warnAtMs(record: SessionRecord): number | undefined {
    const { notifyBeforeMs } = this.#settings;
    return notifyBeforeMs > 0 ? this.#deadlineMs(record) - notifyBeforeMs : undefined;
  }

  /** The next moment the engine must look at this record, or undefined for "never". */
  #nextDueMs(record: SessionRecord): number | undefined {
    if (record.loggedOutAtMs !== undefined) return record.loggedOutAtMs + this.#retentionMs;
    if (!this.#timed(record.user)) return undefined;
    const warnAtMs = this.#warnAtMs(record);
    if (warnAtMs !== undefined && !this.#store.claimed(record.user, 'warn', record.idleSinceMs)) return warnAtMs;
    return this.#deadlineMs(record);
  }

  #ensureScheduled(record: SessionRecord): void {
    if (this.#store.scheduledAtMs(record.user) !== undefined) return;
    const dueMs = this.#nextDueMs(record);
    if (dueMs === undefined) return;
    this.#store.schedule(record.user, dueMs);
    if (this.#timerAtMs === undefined || dueMs < this.#timerAtMs) this.#arm();
  }

  #rescheduleAll(): void {
    this.#store.clearSchedule();
    for (const record of this.#store.all()) {
      const dueMs = this.#nextDueMs(record);
      if (dueMs !== undefined) this.#store.schedule(record.user, dueMs);
    }
    this.#arm();
  }

  #arm(): void {
    if (this.#closed) return;
    const nextMs = this.#store.nextDueAtMs();
    if (nextMs === this.#timerAtMs && this.#timer) return;
    if (this.#timer) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAtMs = nextMs;
    if (nextMs === undefined) return;
    const delayMs = Math.min(Math.max(0, nextMs - this.#clock.now()), MAX_TIMER_DELAY_MS);
    this.#timer = this.#clock.setTimer(() => this.#tick(), delayMs);
  }

  #tick(): void {
    this.#timer = undefined;
    this.#timerAtMs = undefined;
    if (this.#closed) return;
    const nowMs = this.#clock.now();
    for (const user of this.#store.takeDue(nowMs, this.#batchSize)) {
      try {
        this.#process(user, nowMs);
      } catch (err) {
        this.#logger.error({ err, user }, 'session engine failed to process a user');
      }
    }
    // If more users are already due, #arm() sets a zero-delay timer: the rest of the burst
    // continues on the next turn of the event loop, so thousands of timeouts never block request
    // handling. (Work done in the batch may have armed a timer already; #arm() keeps or replaces
    // it, so there is only ever one.)
    this.#arm();
  }

  #process(user: string, nowMs: number): void {
    const record = this.#store.get(user);
    if (!record || this.#claiming.has(user)) return;
    if (record.loggedOutAtMs !== undefined) {
      if (nowMs >= record.loggedOutAtMs + this.#retentionMs) this.#store.delete(user);
      else this.#store.schedule(user, record.loggedOutAtMs + this.#retentionMs);
      return;
    }
    if (!this.#timed(user)) return;
    const deadlineMs = this.#deadlineMs(record);
    if (nowMs >= deadlineMs) {
      void this.#logout(record, 'timeout');
      return;
    }
    const warnAtMs = this.#warnAtMs(record);
    if (warnAtMs !== undefined && nowMs >= warnAtMs && !this.#store.claimed(user, 'warn', record.idleSinceMs)) {
      const periodMs = record.idleSinceMs;
      this.#afterClaim(record, this.#store.claim(user, 'warn', periodMs), (won) => {
        if (won && record.idleSinceMs === periodMs && record.loggedOutAtMs === undefined) {
          this.#safely('warn', user, () => this.#actions.warn(user, this.#settings.notifyBeforeMinutes, record));
        }
        this.#scheduleNext(record);
        return won;
      });
      return;
    }
    this.#store.schedule(user, this.#nextDueMs(record)!);
  }

  #logout(record: SessionRecord, reason: LogoutReason): MaybePromise<boolean> {
    return this.#afterClaim(record, this.#store.claim(record.user, 'logout', record.idleSinceMs, reason === 'forced'), (won) => {
      if (!won || record.loggedOutAtMs !== undefined) {
        if (this.#isShared()) this.#scheduleNext(record);
        return false;
      }
      const atMs = this.#clock.now();
      record.loggedOutAtMs = atMs;
      this.#store.noteChanged?.(record.user);
      this.#safely('logout', record.user, () => this.#actions.logout(record.user, record, reason));
      this.#store.schedule(record.user, atMs + this.#retentionMs);
      this.#arm();
      return true;
    });
  }

  /**
   * Runs `then` with the claim's answer: at once for a synchronous store (exactly as before),
   * or when a shared store answers, keeping the user out of the schedule meanwhile.
   */
  #afterClaim(record: SessionRecord, answer: MaybePromise<boolean>, then: (won: boolean) => boolean): MaybePromise<boolean> {
    if (!(answer instanceof Promise)) return then(answer);
    const user = record.user;
    this.#claiming.add(user);
    return answer.then(
      (won) => {
        this.#claiming.delete(user);
        return this.#closed ? false : then(won);
      },
      (err: unknown) => {
        this.#claiming.delete(user);
        this.#logger.error({ err, user }, 'session store could not answer a claim');
        return false;
      },
    );
  }

  /**
   * After a claim: look at the user again when next due. A due time already past means the store
   * could not decide (shared store unreachable); it reports the user again when it can.
   */
  #scheduleNext(record: SessionRecord): void {
    if (this.#closed) return;
    const dueMs = this.#nextDueMs(record);
    if (dueMs === undefined) return;
    if (this.#isShared() && dueMs <= this.#clock.now() && record.loggedOutAtMs === undefined) return;
    this.#store.schedule(record.user, dueMs);
    this.#arm();
  }

  #isShared(): boolean {
    return this.#store.watch !== undefined;
  }

  #startNewSession(record: SessionRecord, nowMs: number): void {
    record.loggedOutAtMs = undefined;
    record.credentials.clear();
    record.idleSinceMs = nowMs;
    this.#store.unschedule(record.user);
    this.#store.noteChanged?.(record.user);
  }

  #safely(action: string, user: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#logger.error({ err, user, action }, 'session action failed');
    }
  }

  #view(record: SessionRecord): SessionView {
    const exempt = this.isExempt(record.user);
    const timed = this.#timed(record.user) && record.loggedOutAtMs === undefined;
    const warned = this.#store.claimed(record.user, 'warn', record.idleSinceMs);
    let state: SessionState;
    if (record.loggedOutAtMs !== undefined) state = 'logged-out';
    else if (exempt) state = 'exempt';
    else if (!this.#settings.enabled) state = 'untimed';
    else state = warned ? 'warned' : 'active';
    return {
      user: record.user,
      state,
      exempt,
      firstSeenMs: record.firstSeenMs,
      idleSinceMs: record.idleSinceMs,
      lastActivity: record.lastActivity,
      deadlineMs: timed ? this.#deadlineMs(record) : undefined,
      warnAtMs: timed ? this.#warnAtMs(record) : undefined,
      warned,
      loggedOutAtMs: record.loggedOutAtMs,
      credentials: record.credentials.size,
      recent: record.recent.toArray(),
    };
  }
}

/** Adds or refreshes a credential; true when it is new to the record (or its CSRF token is). */
function addCredential(record: SessionRecord, credential: CredentialInput, nowMs: number): boolean {
  const changed = record.credentials.refresh(credential.fingerprint, nowMs, credential.csrf);
  if (changed !== undefined) return changed;
  record.credentials.set(credential.fingerprint, storedCredential(credential, nowMs));
  if (record.credentials.size > CREDENTIALS_PER_USER_MAX) {
    // Drop credentials that expired first, then the least recently seen one.
    let victim: StoredCredential | undefined;
    for (const c of record.credentials.values()) {
      if (c.expiresAtMs !== undefined && c.expiresAtMs <= nowMs) {
        victim = c;
        break;
      }
      if (!victim || c.lastSeenMs < victim.lastSeenMs) victim = c;
    }
    if (victim) record.credentials.delete(victim.fingerprint);
  }
  return true;
}
