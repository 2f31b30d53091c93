import { CredentialSet, storedCredential } from './credential-set.js';
import { TimeHeap } from './heap.js';
import { NoteRing, NoteSlab } from './note-ring.js';
import {
  type ClaimAction,
  type RequestNote,
  type SessionRecord,
  type SessionSnapshot,
  type SessionStore,
  type StoredCredential,
} from './store.js';

/** A record together with the store's bookkeeping for it: one object per user. */
class Slot implements SessionRecord {
  lastActivity: RequestNote | undefined = undefined;
  loggedOutAtMs: number | undefined = undefined;
  scheduledAtMs: number | undefined = undefined;
  warnClaimMs: number | undefined = undefined;
  logoutClaimMs: number | undefined = undefined;
  readonly credentials: CredentialSet;

  constructor(
    readonly user: string,
    readonly firstSeenMs: number,
    public idleSinceMs: number,
    readonly recent: NoteRing,
    credentials: Iterable<StoredCredential> = [],
  ) {
    this.credentials = new CredentialSet(credentials);
  }

  /** the record as the engine sees it (the slot itself) */
  get record(): SessionRecord {
    return this;
  }
}

/** Session state in this process's memory; one heap orders every user's next due time. */
export class MemorySessionStore implements SessionStore {
  readonly #slots = new Map<string, Slot>();
  readonly #heap = new TimeHeap<string>();
  /** every user's recent requests, packed */
  readonly #notes = new NoteSlab();

  get size(): number {
    return this.#slots.size;
  }

  get(user: string): SessionRecord | undefined {
    return this.#slots.get(user)?.record;
  }

  ensure(user: string, nowMs: number): SessionRecord {
    let slot = this.#slots.get(user);
    if (!slot) {
      slot = new Slot(user, nowMs, nowMs, new NoteRing(this.#notes));
      this.#slots.set(user, slot);
    }
    return slot.record;
  }

  recordActivity(user: string, note: RequestNote): SessionRecord {
    const record = this.ensure(user, note.atMs);
    if (note.atMs >= record.idleSinceMs) record.idleSinceMs = note.atMs;
    record.lastActivity = note;
    record.recent.push(note);
    return record;
  }

  delete(user: string): void {
    this.#slots.get(user)?.record.recent.release();
    this.#slots.delete(user);
  }

  *all(): IterableIterator<SessionRecord> {
    for (const slot of this.#slots.values()) yield slot.record;
  }

  schedule(user: string, atMs: number): void {
    const slot = this.#slots.get(user);
    if (!slot || slot.scheduledAtMs === atMs) return;
    slot.scheduledAtMs = atMs;
    this.#heap.push(atMs, user);
  }

  unschedule(user: string): void {
    const slot = this.#slots.get(user);
    if (slot) slot.scheduledAtMs = undefined;
  }

  scheduledAtMs(user: string): number | undefined {
    return this.#slots.get(user)?.scheduledAtMs;
  }

  nextDueAtMs(): number | undefined {
    this.#dropStale();
    return this.#heap.peekAtMs();
  }

  takeDue(nowMs: number, limit: number): string[] {
    const due: string[] = [];
    while (due.length < limit) {
      this.#dropStale();
      const atMs = this.#heap.peekAtMs();
      if (atMs === undefined || atMs > nowMs) break;
      const { key } = this.#heap.pop()!;
      this.#slots.get(key)!.scheduledAtMs = undefined;
      due.push(key);
    }
    return due;
  }

  clearSchedule(): void {
    this.#heap.clear();
    for (const slot of this.#slots.values()) slot.scheduledAtMs = undefined;
  }

  claim(user: string, action: ClaimAction, periodMs: number): boolean {
    const slot = this.#slots.get(user);
    if (!slot || this.claimed(user, action, periodMs)) return false;
    if (action === 'warn') slot.warnClaimMs = periodMs;
    else slot.logoutClaimMs = periodMs;
    return true;
  }

  claimed(user: string, action: ClaimAction, periodMs: number): boolean {
    const slot = this.#slots.get(user);
    if (!slot) return false;
    return (action === 'warn' ? slot.warnClaimMs : slot.logoutClaimMs) === periodMs;
  }

  exportSnapshots(): SessionSnapshot[] {
    const out: SessionSnapshot[] = [];
    for (const { record, warnClaimMs, logoutClaimMs } of this.#slots.values()) {
      out.push({
        user: record.user,
        firstSeenMs: record.firstSeenMs,
        idleSinceMs: record.idleSinceMs,
        lastActivity: record.lastActivity ?? null,
        loggedOutAtMs: record.loggedOutAtMs ?? null,
        warnClaimMs: warnClaimMs ?? null,
        logoutClaimMs: logoutClaimMs ?? null,
        credentials: [...record.credentials.values()].map((c) => ({ ...c })),
        recent: record.recent.toArray(),
      });
    }
    return out;
  }

  importSnapshots(snapshots: readonly SessionSnapshot[]): void {
    for (const slot of this.#slots.values()) slot.record.recent.release();
    this.#slots.clear();
    this.#heap.clear();
    for (const s of snapshots) {
      const slot = new Slot(s.user, s.firstSeenMs, s.idleSinceMs, NoteRing.from(s.recent, this.#notes), s.credentials.map((c) => storedCredential(c, c.lastSeenMs)));
      slot.lastActivity = s.lastActivity ?? undefined;
      slot.loggedOutAtMs = s.loggedOutAtMs ?? undefined;
      slot.warnClaimMs = s.warnClaimMs ?? undefined;
      slot.logoutClaimMs = s.logoutClaimMs ?? undefined;
      this.#slots.set(s.user, slot);
    }
  }

  /** Heap entries whose user is gone or was rescheduled to another time are skipped lazily. */
  #dropStale(): void {
    for (;;) {
      const atMs = this.#heap.peekAtMs();
      if (atMs === undefined) return;
      const slot = this.#slots.get(this.#heap.peekKey()!);
      if (slot && slot.scheduledAtMs === atMs) return;
      this.#heap.pop();
    }
  }
}
