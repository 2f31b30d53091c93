/**
 * Every user's numbers as columns of flat arrays, one row per user: the times a record carries,
 * the store's schedule and claims, and the last counted request (as a note is packed: time, kind,
 * path id) and where their credentials are in the arena. A user's row is also their row of recent
 * notes in the NoteSlab. As JavaScript object
 * fields these numbers were a boxed double each and the last request an object of its own, about
 * 230 bytes of heap per user; here they are 70 bytes outside the heap. An absent time is NaN.
 */
import { ByteArena } from './byte-arena.js';
import { type CredentialRows, NONE } from './credential-set.js';
import { kindId, kindOf, NoteSlab } from './note-ring.js';
import { NO_PATH } from './path-table.js';
import type { RequestNote } from './store.js';

const INITIAL_ROWS = 1024;

export class UserTable implements CredentialRows {
  readonly notes = new NoteSlab();
  /** every user's credentials, packed; the rows hold the handles (see CredentialSet) */
  readonly arena = new ByteArena();
  readonly credMany = new Map<number, Map<string, number>>();
  firstSeenMs = new Float64Array(INITIAL_ROWS);
  idleSinceMs = new Float64Array(INITIAL_ROWS);
  loggedOutAtMs = new Float64Array(INITIAL_ROWS);
  scheduledAtMs = new Float64Array(INITIAL_ROWS);
  warnClaimMs = new Float64Array(INITIAL_ROWS);
  logoutClaimMs = new Float64Array(INITIAL_ROWS);
  lastAtMs = new Float64Array(INITIAL_ROWS);
  lastKind = new Uint16Array(INITIAL_ROWS);
  lastPathId = new Uint32Array(INITIAL_ROWS);
  credOne = new Int32Array(INITIAL_ROWS);
  credTwo = new Int32Array(INITIAL_ROWS);

  /** A new row: first seen and idle since as given, every other time absent. */
  alloc(firstSeenMs: number, idleSinceMs: number): number {
    const row = this.notes.alloc();
    if (row >= this.firstSeenMs.length) this.#grow(row + 1);
    this.firstSeenMs[row] = firstSeenMs;
    this.idleSinceMs[row] = idleSinceMs;
    this.loggedOutAtMs[row] = this.scheduledAtMs[row] = this.warnClaimMs[row] = this.logoutClaimMs[row] = this.lastAtMs[row] = NaN;
    this.lastPathId[row] = NO_PATH;
    this.credOne[row] = this.credTwo[row] = NONE;
    return row;
  }

  /** Gives the row (and its notes) back; the row's credentials must be cleared first. */
  release(row: number): void {
    this.notes.paths.release(this.lastPathId[row]!);
    this.lastPathId[row] = NO_PATH;
    this.notes.release(row);
  }

  lastActivity(row: number): RequestNote | undefined {
    const atMs = this.lastAtMs[row]!;
    if (Number.isNaN(atMs)) return undefined;
    const { method, counted, rule } = kindOf(this.lastKind[row]!);
    return { atMs, method, path: this.notes.paths.path(this.lastPathId[row]!), counted, rule };
  }

  setLastActivity(row: number, note: RequestNote | undefined): void {
    const old = this.lastPathId[row]!;
    if (note === undefined) {
      this.lastAtMs[row] = NaN;
      this.lastPathId[row] = NO_PATH;
    } else {
      this.lastAtMs[row] = note.atMs;
      this.lastKind[row] = kindId(note.method, note.counted, note.rule);
      this.lastPathId[row] = this.notes.paths.acquire(note.path);
    }
    this.notes.paths.release(old); // after acquiring: the same path again keeps its entry
  }

  #grow(rows: number): void {
    const size = Math.max(rows, this.firstSeenMs.length * 2);
    const grown = <T extends Float64Array | Uint16Array | Uint32Array | Int32Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(size);
      b.set(a);
      return b;
    };
    this.firstSeenMs = grown(this.firstSeenMs);
    this.idleSinceMs = grown(this.idleSinceMs);
    this.loggedOutAtMs = grown(this.loggedOutAtMs);
    this.scheduledAtMs = grown(this.scheduledAtMs);
    this.warnClaimMs = grown(this.warnClaimMs);
    this.logoutClaimMs = grown(this.logoutClaimMs);
    this.lastAtMs = grown(this.lastAtMs);
    this.lastKind = grown(this.lastKind);
    this.lastPathId = grown(this.lastPathId);
    this.credOne = grown(this.credOne);
    this.credTwo = grown(this.credTwo);
  }
}

/** NaN (absent) as undefined */
export function present(ms: number): number | undefined {
  return Number.isNaN(ms) ? undefined : ms;
}
