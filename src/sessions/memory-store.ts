import { CredentialSet, storedCredential } from './credential-set.js';
import { TimeHeap } from './heap.js';
import { NoteRing } from './note-ring.js';
import { present, ROW_MASK, type UserChunk, UserTable } from './user-table.js';
import {
  type ClaimAction,
  type RecentNotes,
  type RequestNote,
  type SessionRecord,
  type SessionSnapshot,
  type SessionStore,
  type StoredCredential,
} from './store.js';

export interface StoreStorage {
  readonly rowsAllocated: number;
  readonly rowsInUse: number;
  readonly credentialBytes: number;
  readonly credentialBytesReserved: number;
  /** distinct paths the notes refer to */
  readonly paths: number;
}

/**
 * A user's record as a view of their row: the numbers live in the store's UserTable, the
 * credentials in its arena. The store keeps only the row number per user (a small integer in its
 * Map, no object), and makes a Slot whenever a record is asked for: a short-lived object the young
 * generation takes back for almost nothing, instead of 56 bytes held per user. Like any record, a
 * view must not be used after its user is deleted (the row may then be another user's).
 */
class Slot implements SessionRecord {
  constructor(
    readonly user: string,
    readonly row: number,
    readonly table: UserTable,
  ) {}

  /** the columns holding this slot's row (found on each use: a field for it costs 8 bytes a user) */
  get #chunk(): UserChunk {
    return this.table.chunkOf(this.row);
  }

  /** the row within its chunk */
  get #i(): number {
    return this.row & ROW_MASK;
  }

  /** a view of the user's credentials (made on each use, like `recent`) */
  get credentials(): CredentialSet {
    return CredentialSet.atRow(this.table.arena, this.#chunk, this.#i);
  }

  get firstSeenMs(): number {
    return this.#chunk.firstSeenMs[this.#i]!;
  }

  get idleSinceMs(): number {
    return this.#chunk.idleSinceMs[this.#i]!;
  }

  set idleSinceMs(ms: number) {
    this.#chunk.idleSinceMs[this.#i] = ms;
  }

  get lastActivity(): RequestNote | undefined {
    return this.table.lastActivity(this.row);
  }

  set lastActivity(note: RequestNote | undefined) {
    this.table.setLastActivity(this.row, note);
  }

  get loggedOutAtMs(): number | undefined {
    return present(this.#chunk.loggedOutAtMs[this.#i]!);
  }

  set loggedOutAtMs(ms: number | undefined) {
    this.#chunk.loggedOutAtMs[this.#i] = ms ?? NaN;
  }

  get scheduledAtMs(): number | undefined {
    return present(this.#chunk.scheduledAtMs[this.#i]!);
  }

  set scheduledAtMs(ms: number | undefined) {
    this.#chunk.scheduledAtMs[this.#i] = ms ?? NaN;
  }

  get warnClaimMs(): number | undefined {
    return present(this.#chunk.warnClaimMs[this.#i]!);
  }

  set warnClaimMs(ms: number | undefined) {
    this.#chunk.warnClaimMs[this.#i] = ms ?? NaN;
  }

  get logoutClaimMs(): number | undefined {
    return present(this.#chunk.logoutClaimMs[this.#i]!);
  }

  set logoutClaimMs(ms: number | undefined) {
    this.#chunk.logoutClaimMs[this.#i] = ms ?? NaN;
  }

  /** a view of the user's notes (made on each use; the row is the store's to give back, in release) */
  get recent(): RecentNotes {
    return NoteRing.atRow(this.table.notes, this.row);
  }

  /** gives the slot's storage back (the slot must not be used afterwards) */
  release(): void {
    this.credentials.clear();
    this.table.release(this.row);
  }
}

/** Session state in this process's memory; one heap orders every user's next due time. */
export class MemorySessionStore implements SessionStore {
  /** each user's row in the table */
  readonly #rows = new Map<string, number>();
  readonly #heap = new TimeHeap<string>();
  /** every user's numbers and recent requests, packed */
  readonly #table = new UserTable();

  get size(): number {
    return this.#rows.size;
  }

  /** a view of the user's row, if they have one */
  #slot(user: string): Slot | undefined {
    const row = this.#rows.get(user);
    return row === undefined ? undefined : new Slot(user, row, this.#table);
  }

  /** What the packed storage holds (for tests and the bench): rows, credential bytes, paths. */
  storage(): StoreStorage {
    const { allocated, inUse } = this.#table.notes.rows;
    return { rowsAllocated: allocated, rowsInUse: inUse, credentialBytes: this.#table.arena.usedBytes, credentialBytesReserved: this.#table.arena.reservedBytes, paths: this.#table.notes.paths.size };
  }

  get(user: string): SessionRecord | undefined {
    return this.#slot(user);
  }

  ensure(user: string, nowMs: number): SessionRecord {
    let row = this.#rows.get(user);
    if (row === undefined) {
      row = this.#table.alloc(nowMs, nowMs);
      this.#rows.set(user, row);
    }
    return new Slot(user, row, this.#table);
  }

  recordActivity(user: string, note: RequestNote): SessionRecord {
    const record = this.ensure(user, note.atMs);
    if (note.atMs >= record.idleSinceMs) record.idleSinceMs = note.atMs;
    record.lastActivity = note;
    record.recent.push(note);
    return record;
  }

  delete(user: string): void {
    const slot = this.#slot(user);
    if (!slot) return;
    slot.release();
    this.#rows.delete(user);
  }

  all(): IterableIterator<SessionRecord> {
    return this.#views();
  }

  *#views(): IterableIterator<Slot> {
    for (const [user, row] of this.#rows) yield new Slot(user, row, this.#table);
  }

  schedule(user: string, atMs: number): void {
    const slot = this.#slot(user);
    if (!slot || slot.scheduledAtMs === atMs) return;
    slot.scheduledAtMs = atMs;
    this.#heap.push(atMs, user);
  }

  unschedule(user: string): void {
    const slot = this.#slot(user);
    if (slot) slot.scheduledAtMs = undefined;
  }

  scheduledAtMs(user: string): number | undefined {
    return this.#slot(user)?.scheduledAtMs;
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
      this.#slot(key)!.scheduledAtMs = undefined;
      due.push(key);
    }
    return due;
  }

  clearSchedule(): void {
    this.#heap.clear();
    for (const slot of this.#views()) slot.scheduledAtMs = undefined;
  }

  claim(user: string, action: ClaimAction, periodMs: number): boolean {
    const slot = this.#slot(user);
    if (!slot || this.claimed(user, action, periodMs)) return false;
    if (action === 'warn') slot.warnClaimMs = periodMs;
    else slot.logoutClaimMs = periodMs;
    return true;
  }

  claimed(user: string, action: ClaimAction, periodMs: number): boolean {
    const slot = this.#slot(user);
    if (!slot) return false;
    return (action === 'warn' ? slot.warnClaimMs : slot.logoutClaimMs) === periodMs;
  }

  exportSnapshots(): SessionSnapshot[] {
    const out: SessionSnapshot[] = [];
    for (const record of this.#views()) {
      out.push({
        user: record.user,
        firstSeenMs: record.firstSeenMs,
        idleSinceMs: record.idleSinceMs,
        lastActivity: record.lastActivity ?? null,
        loggedOutAtMs: record.loggedOutAtMs ?? null,
        warnClaimMs: record.warnClaimMs ?? null,
        logoutClaimMs: record.logoutClaimMs ?? null,
        credentials: [...record.credentials.values()],
        recent: record.recent.toArray(),
      });
    }
    return out;
  }

  importSnapshots(snapshots: readonly SessionSnapshot[]): void {
    for (const slot of this.#views()) slot.release();
    this.#rows.clear();
    this.#heap.clear();
    for (const s of snapshots) {
      const slot = new Slot(s.user, this.#table.alloc(s.firstSeenMs, s.idleSinceMs), this.#table);
      for (const c of s.credentials) slot.credentials.set(c.fingerprint, storedCredential(c, c.lastSeenMs));
      for (const note of s.recent) slot.recent.push(note);
      slot.lastActivity = s.lastActivity ?? undefined;
      slot.loggedOutAtMs = s.loggedOutAtMs ?? undefined;
      slot.warnClaimMs = s.warnClaimMs ?? undefined;
      slot.logoutClaimMs = s.logoutClaimMs ?? undefined;
      this.#rows.set(s.user, slot.row);
    }
  }

  /** Heap entries whose user is gone or was rescheduled to another time are skipped lazily. */
  #dropStale(): void {
    for (;;) {
      const atMs = this.#heap.peekAtMs();
      if (atMs === undefined) return;
      const slot = this.#slot(this.#heap.peekKey()!);
      if (slot && slot.scheduledAtMs === atMs) return;
      this.#heap.pop();
    }
  }
}
