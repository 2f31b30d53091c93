/**
 * Users' recent requests, packed. Every user's history is a ring of RECENT_NOTES_MAX notes in
 * a slab of flat arrays shared by all users of a store: the time as a double, a 16-bit "kind", and
 * a 32-bit path id. The kind stands for the (method, counted, rule) triple, interned once per
 * process (few methods, few rules); the path id names a path in the slab's PathTable, which keeps
 * each distinct path once while some note refers to it. A user costs one small NoteRing object
 * plus RECENT_NOTES_MAX × 14 bytes in the slab, whatever their history holds.
 *
 * add() is O(1) and allocates nothing (the slab grows a chunk of rows at a time); notes become
 * objects again only when someone reads them (admin pages, saved state). A ring takes its slab
 * row at its first note and gives it back on release() (the store calls it when a user goes).
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
const kindIds = new Map<string, number>();

function kindId(method: string, counted: boolean, rule: string): number {
  const key = `${method} ${counted ? 1 : 0} ${rule}`;
  let id = kindIds.get(key);
  if (id === undefined) {
    // methods are the ones Node parses, rules come from the configuration: this stays small
    if (kinds.length >= KIND_MAX) throw new RangeError(`more than ${KIND_MAX} distinct (method, rule) pairs in request notes`);
    id = kinds.length;
    kinds.push({ method, counted, rule });
    kindIds.set(key, id);
  }
  return id;
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

/** Flat arrays for CHUNK_ROWS users' notes; a row's notes are at [row × N, row × N + N). */
class NoteChunk {
  readonly atMs = new Float64Array(CHUNK_ROWS * N);
  readonly kind = new Uint16Array(CHUNK_ROWS * N);
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
    this.#free.push(row);
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
    chunk.atMs[i] = atMs;
    chunk.kind[i] = kindId(method, counted, rule);
    const paths = this.#slab.paths;
    const old = chunk.pathId[i]!;
    chunk.pathId[i] = paths.acquire(path);
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
      const i = row * N + ((start + k) % N);
      const kind = kinds[chunk.kind[i]!]!;
      out.push({ atMs: chunk.atMs[i]!, method: kind.method, path: this.#slab.paths.path(chunk.pathId[i]!), counted: kind.counted, rule: kind.rule });
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
