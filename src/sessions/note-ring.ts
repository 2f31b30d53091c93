/**
 * Users' recent requests, packed. Every user's history is a ring of RECENT_NOTES_MAX notes in
 * a slab of flat arrays shared by all users of a store: the time in 32 bits (see EXACT) and a
 * 32-bit id of the note's path and "kind". The kind stands for the (method, counted, rule) triple,
 * interned once per process (few methods, few rules); the id names the (path, kind) pair in the
 * slab's PathTable, which keeps each pair once while some note refers to it. A user costs
 * RECENT_NOTES_MAX × 8 bytes in the slab, whatever their history holds.
 *
 * add() is O(1) and allocates nothing (the slab grows a chunk of rows at a time); notes become
 * objects again only when someone reads them (admin pages, saved state). The memory store takes
 * a row per user from the slab (UserTable) and reads it through NoteRing.atRow views; a ring made
 * on its own takes its row at its first note and gives it back on release().
 */
import { detached } from '../detached-string.js';
import { NO_PATH, PathTable } from './path-table.js';
import { RECENT_NOTES_MAX, type RecentNotes, type RequestNote } from './store.js';

interface NoteKind {
  readonly method: string;
  readonly counted: boolean;
  readonly rule: string;
}

const KIND_MAX = 0xffff;
const kinds: NoteKind[] = [];
/** method → rule → [id when not counted, id when counted] (no string is built per note) */
const kindIds = new Map<string, Map<string, [number, number]>>();

/** The number standing for a (method, counted, rule) triple. */
export function kindId(method: string, counted: boolean, rule: string): number {
  let byRule = kindIds.get(method);
  if (byRule === undefined) kindIds.set(method, (byRule = new Map()));
  let ids = byRule.get(rule);
  if (ids === undefined) {
    // methods are the ones Node parses, rules come from the configuration: this stays small
    if (kinds.length + 2 > KIND_MAX) throw new RangeError(`more than ${KIND_MAX} distinct (method, rule) pairs in request notes`);
    ids = [kinds.length, kinds.length + 1];
    kinds.push({ method, counted: false, rule }, { method, counted: true, rule });
    byRule.set(rule, ids);
  }
  return ids[counted ? 1 : 0];
}

/** Distinct paths shared between users at most; further new paths are kept as they come. */
export const PATH_INTERN_MAX = 20_000;
const paths = new Map<string, string>();

/**
 * The one shared copy of `path` (while fewer than PATH_INTERN_MAX are kept), else a copy of its
 * own: a request's path is a slice of its URL, which a kept note would otherwise keep alive.
 */
export function internPath(path: string): string {
  const known = paths.get(path);
  if (known !== undefined) return known;
  const own = detached(path);
  if (paths.size < PATH_INTERN_MAX) paths.set(own, own);
  return own;
}

const N = RECENT_NOTES_MAX;
/** 2^CHUNK_BITS rows per chunk: the slab grows a chunk at a time, so at most one stands unused */
const CHUNK_BITS = 10;
const CHUNK_ROWS = 1 << CHUNK_BITS;
const ROW_MASK = CHUNK_ROWS - 1;

/**
 * A note's time is kept as whole milliseconds after the slab's epoch in 32 bits (about 49 days of
 * range, the epoch set 24 days before the first note and moved on when time runs past the end).
 * A time that does not fit (a fraction of a millisecond from an injected clock, a note older than
 * the range) is kept exactly in a Map instead, its slot marked EXACT.
 */
const EXACT = 0xffffffff;
const HALF_RANGE_MS = 2 ** 31;

/** Flat arrays for CHUNK_ROWS users' notes; a row's notes are at [row × N, row × N + N). */
class NoteChunk {
  readonly atOffset = new Uint32Array(CHUNK_ROWS * N);
  /** the note's (path, kind) pair in the slab's PathTable */
  readonly pathId = new Uint32Array(CHUNK_ROWS * N);
  /** per row: notes held, and where the oldest one is once the row is full */
  readonly length = new Uint8Array(CHUNK_ROWS);
  readonly head = new Uint8Array(CHUNK_ROWS);
}

/** One row of N notes per user, in chunks; rows are reused after release. A store owns one. */
export class NoteSlab {
  readonly paths = new PathTable();
  readonly #chunks: NoteChunk[] = [];
  #used = 0;
  readonly #free: number[] = [];
  #epochMs = NaN;
  /** times the 32-bit offsets cannot hold, by note number (row × N + slot) */
  readonly #exact = new Map<number, number>();

  /** A free row, emptied. Rows are numbered across chunks. */
  alloc(): number {
    const row = this.#free.pop() ?? this.#used++;
    this.#chunks[row >> CHUNK_BITS] ??= new NoteChunk();
    const chunk = this.chunkOf(row);
    chunk.length[row & ROW_MASK] = 0;
    chunk.head[row & ROW_MASK] = 0;
    return row;
  }

  chunkOf(row: number): NoteChunk {
    return this.#chunks[row >> CHUNK_BITS]!;
  }

  release(row: number): void {
    const chunk = this.chunkOf(row);
    const at = (row & ROW_MASK) * N;
    for (let i = at; i < at + N; i++) this.paths.release(chunk.pathId[i]!);
    chunk.pathId.fill(NO_PATH, at, at + N);
    for (let k = 0; k < N; k++) this.#exact.delete(row * N + k);
    chunk.length[row & ROW_MASK] = 0;
    this.#free.push(row);
  }

  /** Sets the time of slot k of the row. */
  setTime(row: number, k: number, atMs: number): void {
    if (Number.isNaN(this.#epochMs) && Number.isSafeInteger(atMs)) this.#epochMs = atMs - HALF_RANGE_MS;
    let offset = atMs - this.#epochMs;
    if (Number.isSafeInteger(atMs) && offset >= EXACT) {
      this.#rebase(atMs - HALF_RANGE_MS);
      offset = atMs - this.#epochMs;
    }
    const chunk = this.chunkOf(row);
    const i = (row & ROW_MASK) * N + k;
    if (chunk.atOffset[i] === EXACT) this.#exact.delete(row * N + k);
    if (Number.isInteger(offset) && offset >= 0 && offset < EXACT) chunk.atOffset[i] = offset;
    else {
      chunk.atOffset[i] = EXACT;
      this.#exact.set(row * N + k, atMs);
    }
  }

  /** The time of slot k of the row. */
  time(row: number, k: number): number {
    const offset = this.chunkOf(row).atOffset[(row & ROW_MASK) * N + k]!;
    return offset === EXACT ? this.#exact.get(row * N + k)! : this.#epochMs + offset;
  }

  /** The note at `atMs` whose (path, kind) pair is `pathId`. */
  noteOf(pathId: number, atMs: number): RequestNote {
    const { method, counted, rule } = kinds[this.paths.kind(pathId)]!;
    return { atMs, method, path: this.paths.path(pathId), counted, rule };
  }

  /** rows ever handed out (the slab's size), and rows in use */
  get rows(): { readonly allocated: number; readonly inUse: number } {
    return { allocated: this.#used, inUse: this.#used - this.#free.length };
  }

  /** notes kept exactly (for tests) */
  get exactTimes(): number {
    return this.#exact.size;
  }

  /** Moves the epoch (time went past the range): every held note's offset is written anew. */
  #rebase(epochMs: number): void {
    const old = this.#epochMs;
    this.#epochMs = epochMs;
    for (let row = 0; row < this.#used; row++) {
      const chunk = this.chunkOf(row);
      const at = (row & ROW_MASK) * N;
      for (let k = 0; k < chunk.length[row & ROW_MASK]!; k++) {
        const offset = chunk.atOffset[at + k]!;
        if (offset === EXACT) continue;
        const moved = offset + old - epochMs;
        if (moved >= 0) chunk.atOffset[at + k] = moved;
        else {
          chunk.atOffset[at + k] = EXACT;
          this.#exact.set(row * N + k, old + offset);
        }
      }
    }
  }
}

const sharedSlab = new NoteSlab();

export class NoteRing implements RecentNotes, Iterable<RequestNote> {
  readonly #slab: NoteSlab;
  /** the slab row holding this ring's notes, once it has any */
  #row = -1;

  constructor(slab: NoteSlab = sharedSlab) {
    this.#slab = slab;
  }

  /** The ring of a row the caller took from the slab (and gives back itself). */
  static atRow(slab: NoteSlab, row: number): NoteRing {
    const ring = new NoteRing(slab);
    ring.#row = row;
    return ring;
  }

  static from(notes: Iterable<RequestNote>, slab?: NoteSlab): NoteRing {
    const ring = new NoteRing(slab);
    for (const n of notes) ring.push(n);
    return ring;
  }

  get length(): number {
    return this.#row < 0 ? 0 : this.#slab.chunkOf(this.#row).length[this.#row & ROW_MASK]!;
  }

  push(note: RequestNote): void {
    this.add(note.atMs, note.method, note.path, note.counted, note.rule);
  }

  /** Same as push, without a note object. */
  add(atMs: number, method: string, path: string, counted: boolean, rule: string): void {
    if (this.#row < 0) this.#row = this.#slab.alloc();
    const chunk = this.#slab.chunkOf(this.#row);
    const row = this.#row & ROW_MASK;
    const n = chunk.length[row]!;
    let i: number;
    if (n < N) {
      i = row * N + n;
      chunk.length[row] = n + 1;
    } else {
      const h = chunk.head[row]!;
      i = row * N + h;
      chunk.head[row] = h + 1 === N ? 0 : h + 1;
    }
    this.#slab.setTime(this.#row, i - row * N, atMs);
    const paths = this.#slab.paths;
    const old = chunk.pathId[i]!;
    chunk.pathId[i] = paths.acquire(path, kindId(method, counted, rule));
    paths.release(old); // after acquiring: the same path again keeps its entry
  }

  /** Oldest first. */
  toArray(): RequestNote[] {
    const out: RequestNote[] = [];
    if (this.#row < 0) return out;
    const chunk = this.#slab.chunkOf(this.#row);
    const row = this.#row & ROW_MASK;
    const n = chunk.length[row]!;
    const start = n < N ? 0 : chunk.head[row]!;
    for (let k = 0; k < n; k++) {
      const slot = (start + k) % N;
      const i = row * N + slot;
      out.push(this.#slab.noteOf(chunk.pathId[i]!, this.#slab.time(this.#row, slot)));
    }
    return out;
  }

  /** Forgets the notes and gives the storage back (the ring can be used again afterwards). */
  release(): void {
    if (this.#row < 0) return;
    this.#slab.release(this.#row);
    this.#row = -1;
  }

  [Symbol.iterator](): IterableIterator<RequestNote> {
    return this.toArray()[Symbol.iterator]();
  }
}
