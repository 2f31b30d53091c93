/**
 * Every user's numbers as columns of flat arrays, one row per user: the times a record carries,
 * the store's schedule and claims, the last counted request (packed as a note is: its time and
 * the id of its path and kind) and where their credentials are in the arena. A user's row is also
 * their row of recent notes in the NoteSlab. As JavaScript object fields these numbers were a
 * boxed double each and the last request an object of its own, about 230 bytes of heap per user;
 * here they are 68 bytes outside the heap. The columns grow a chunk of rows at a time, so at most
 * one chunk stands unused and nothing is copied as they grow. An absent time is NaN.
 */
import { ByteArena } from './byte-arena.js';
import { type CredentialRows, NONE } from './credential-set.js';
import { kindId, NoteSlab } from './note-ring.js';
import { NO_PATH } from './path-table.js';
import type { RequestNote } from './store.js';

const CHUNK_BITS = 10;
const CHUNK_ROWS = 1 << CHUNK_BITS;
/** a row's index within its chunk */
export const ROW_MASK = CHUNK_ROWS - 1;

/** The columns of CHUNK_ROWS rows. */
export class UserChunk implements CredentialRows {
  readonly firstSeenMs = new Float64Array(CHUNK_ROWS);
  readonly idleSinceMs = new Float64Array(CHUNK_ROWS);
  readonly loggedOutAtMs = new Float64Array(CHUNK_ROWS);
  readonly scheduledAtMs = new Float64Array(CHUNK_ROWS);
  readonly warnClaimMs = new Float64Array(CHUNK_ROWS);
  readonly logoutClaimMs = new Float64Array(CHUNK_ROWS);
  readonly lastAtMs = new Float64Array(CHUNK_ROWS);
  readonly lastPathId = new Uint32Array(CHUNK_ROWS);
  readonly credOne = new Int32Array(CHUNK_ROWS);
  readonly credTwo = new Int32Array(CHUNK_ROWS);
  readonly credMany = new Map<number, Map<string, number>>();
}

export class UserTable {
  readonly notes = new NoteSlab();
  /** every user's credentials, packed; the rows hold the handles (see CredentialSet) */
  readonly arena = new ByteArena();
  readonly #chunks: UserChunk[] = [];

  chunkOf(row: number): UserChunk {
    return this.#chunks[row >> CHUNK_BITS]!;
  }

  /** A new row: first seen and idle since as given, every other time absent, no credentials. */
  alloc(firstSeenMs: number, idleSinceMs: number): number {
    const row = this.notes.alloc();
    const c = (this.#chunks[row >> CHUNK_BITS] ??= new UserChunk());
    const i = row & ROW_MASK;
    c.firstSeenMs[i] = firstSeenMs;
    c.idleSinceMs[i] = idleSinceMs;
    c.loggedOutAtMs[i] = c.scheduledAtMs[i] = c.warnClaimMs[i] = c.logoutClaimMs[i] = c.lastAtMs[i] = NaN;
    c.lastPathId[i] = NO_PATH;
    c.credOne[i] = c.credTwo[i] = NONE;
    return row;
  }

  /** Gives the row (and its notes) back; the row's credentials must be cleared first. */
  release(row: number): void {
    const c = this.chunkOf(row);
    this.notes.paths.release(c.lastPathId[row & ROW_MASK]!);
    c.lastPathId[row & ROW_MASK] = NO_PATH;
    this.notes.release(row);
  }

  lastActivity(row: number): RequestNote | undefined {
    const c = this.chunkOf(row);
    const i = row & ROW_MASK;
    const atMs = c.lastAtMs[i]!;
    if (Number.isNaN(atMs)) return undefined;
    return this.notes.noteOf(c.lastPathId[i]!, atMs);
  }

  setLastActivity(row: number, note: RequestNote | undefined): void {
    const c = this.chunkOf(row);
    const i = row & ROW_MASK;
    const old = c.lastPathId[i]!;
    if (note === undefined) {
      c.lastAtMs[i] = NaN;
      c.lastPathId[i] = NO_PATH;
    } else {
      c.lastAtMs[i] = note.atMs;
      c.lastPathId[i] = this.notes.paths.acquire(note.path, kindId(note.method, note.counted, note.rule));
    }
    this.notes.paths.release(old); // after acquiring: the same path again keeps its entry
  }
}

/** NaN (absent) as undefined */
export function present(ms: number): number | undefined {
  return Number.isNaN(ms) ? undefined : ms;
}
