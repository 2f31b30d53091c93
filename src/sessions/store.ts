/**
 * Per-user session state behind one small interface, so the engine does not care where it lives:
 * this process's memory (MemorySessionStore) or Redis shared by several replicas
 * (RedisSessionStore, which keeps a local copy for the engine and the request path).
 *
 * Everything the request path calls is synchronous. Only a claim may be asynchronous: with
 * several replicas, deciding who warns or logs a user out is a round trip to the shared store.
 */
import type { Credentials } from './credential-set.js';

/** A credential the upstream accepted for this user, kept so the user can be logged out with it. */
export interface StoredCredential {
  readonly fingerprint: string;
  readonly kind: string;
  /** headers that replay this credential to the upstream — SECRET, never logged or shown */
  readonly replay: Readonly<Record<string, string>>;
  readonly expiresAtMs?: number;
  /** the same secret in any spelling (see Credential.secretFingerprint) */
  readonly secretFingerprint?: string;
  /** SECRET: the freshest CSRF token seen with this credential, replayed on its logout */
  csrf?: string;
  lastSeenMs: number;
}

/** One request as remembered for "why was I (not) logged out?". */
export interface RequestNote {
  readonly atMs: number;
  readonly method: string;
  readonly path: string;
  readonly counted: boolean;
  /** the rule that decided: `counted`, `passive:<glob>`, `background-header`, `upstream-401`, ... */
  readonly rule: string;
}

/** A bounded history of one user's requests; adding is O(1). */
export interface RecentNotes {
  readonly length: number;
  push(note: RequestNote): void;
  /** oldest first */
  toArray(): RequestNote[];
}

export interface SessionRecord {
  readonly user: string;
  readonly firstSeenMs: number;
  /** when the current idle period started: the last counted activity, or when timing began */
  idleSinceMs: number;
  /** the last request that counted as activity */
  lastActivity: RequestNote | undefined;
  /** set once the user was logged out; cleared when a new session of the user starts */
  loggedOutAtMs: number | undefined;
  /** credentials by fingerprint (a CredentialSet in the stores: one inline slot, a Map only for more) */
  readonly credentials: Credentials;
  /** the last RECENT_NOTES_MAX requests, bounded (a packed ring in memory: note-ring.ts) */
  readonly recent: RecentNotes;
}

export type ClaimAction = 'warn' | 'logout';

export type MaybePromise<T> = T | Promise<T>;

/** What a shared store tells the engine about changes it did not make itself. */
export interface StoreListener {
  /** the user's record changed (activity on another replica, a claim taken elsewhere, ...) */
  changed(user: string): void;
  /** records were (re)loaded in bulk: every due time must be derived again */
  reloaded(): void;
}

export interface SessionStore {
  get(user: string): SessionRecord | undefined;
  /** Returns the user's record, creating it (idle since `nowMs`) when missing. */
  ensure(user: string, nowMs: number): SessionRecord;
  /** Marks a counted activity: O(1), does not touch the schedule. */
  recordActivity(user: string, note: RequestNote): SessionRecord;
  delete(user: string): void;
  all(): IterableIterator<SessionRecord>;
  readonly size: number;

  /** Sets the single time at which the engine must look at this user again (replaces any earlier one). */
  schedule(user: string, atMs: number): void;
  unschedule(user: string): void;
  scheduledAtMs(user: string): number | undefined;
  /** Earliest scheduled time, if any. */
  nextDueAtMs(): number | undefined;
  /** Removes and returns up to `limit` users whose scheduled time is <= nowMs, earliest first. */
  takeDue(nowMs: number, limit: number): string[];
  /** Drops every schedule entry (used before rescheduling everyone after a settings change). */
  clearSchedule(): void;

  /**
   * Claims the right to perform `action` for the user's idle period starting at `periodMs`.
   * True exactly once per (user, action, period): a warning or logout is never done twice.
   * A shared store answers asynchronously and may answer false because the record moved on
   * (it then updates the record) or because it cannot decide now (it reports the user through
   * StoreListener.changed when it can). `force` (admin "log out now") ignores activity the store
   * knows of that this record does not show yet.
   */
  claim(user: string, action: ClaimAction, periodMs: number, force?: boolean): MaybePromise<boolean>;
  /** Whether `action` was already claimed for that period. */
  claimed(user: string, action: ClaimAction, periodMs: number): boolean;

  /** The engine changed the record in place (credential, new session, logout): a shared store writes it. */
  noteChanged?(user: string): void;
  /**
   * Shared stores: the engine took activity back (it was a timer's): the idle period runs from
   * `to` again, covering what this replica counted up to `coveredUntilMs`. Written to the other
   * replicas as a set-to (see redis-scripts.ts); the local record was already changed.
   */
  retract?(user: string, to: RequestNote, coveredUntilMs: number): void;
  /** Registers the engine for changes made elsewhere (shared stores only). */
  watch?(listener: StoreListener): void;

  /** Every record with its claims, for saving. */
  exportSnapshots(): SessionSnapshot[];
  /** Replaces the contents with saved records (the schedule is left empty: the engine rebuilds it). */
  importSnapshots(snapshots: readonly SessionSnapshot[]): void;
}

/** A record as saved across restarts, with the warn/logout claims of its current idle period. */
export interface SessionSnapshot {
  readonly user: string;
  readonly firstSeenMs: number;
  readonly idleSinceMs: number;
  readonly lastActivity: RequestNote | null;
  readonly loggedOutAtMs: number | null;
  readonly warnClaimMs: number | null;
  readonly logoutClaimMs: number | null;
  readonly credentials: readonly StoredCredential[];
  readonly recent: readonly RequestNote[];
}

export const RECENT_NOTES_MAX = 20;
export const CREDENTIALS_PER_USER_MAX = 20;
