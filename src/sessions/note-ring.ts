/**
 * Users' recent requests, packed. Every user's history is a ring of RECENT_NOTES_MAX notes in
 * a slab of flat arrays shared by all users of a store: the time as a double, a 16-bit "kind", and the path.
 * The kind stands for the (method, counted, rule) triple, interned once per process (few
 * methods, few rules); paths are interned up to PATH_INTERN_MAX distinct ones, so users who visit
 * the same pages share one string per path. A user costs one small NoteRing object plus
 * RECENT_NOTES_MAX × 18 bytes in the slab, whatever their history holds.
 *
 * add() is O(1) and allocates nothing (the slab grows by doubling now and then); notes become
 * objects again only when someone reads them (admin pages, saved state). A ring takes its slab
 * row at its first note and gives it back on release() (the store calls it when a user goes).
 */
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

/** The one shared copy of `path` (while fewer than PATH_INTERN_MAX are kept), else `path`. */
export function internPath(path: string): string {
  const known = paths.get(path);
  if (known !== undefined) return known;
  if (paths.size < PATH_INTERN_MAX) paths.set(path, path);
  return path;
}

const N = RECENT_NOTES_MAX;

/** One row of N notes per user; rows are reused after release. A store owns one. */
export class NoteSlab {
  atMs = new Float64Array(0);
  kind = new Uint16Array(0);
  path: Array<string | undefined> = [];
  /** per row: notes held, and where the oldest one is once the row is full */
  length = new Uint8Array(0);
  head = new Uint8Array(0);
  #rows = 0;
  #used = 0;
  readonly #free: number[] = [];

  alloc(): number {
    const row = this.#free.pop() ?? this.#used++;
    if (row >= this.#rows) this.#grow(Math.max(64, this.#rows * 2));
    this.length[row] = 0;
    this.head[row] = 0;
    return row;
  }

  release(row: number): void {
    this.path.fill(undefined, row * N, row * N + N); // let unshared path strings go
    this.#free.push(row);
  }

  #grow(rows: number): void {
    const atMs = new Float64Array(rows * N);
    atMs.set(this.atMs);
    const kind = new Uint16Array(rows * N);
    kind.set(this.kind);
    const length = new Uint8Array(rows);
    length.set(this.length);
    const head = new Uint8Array(rows);
    head.set(this.head);
    const path = new Array<string | undefined>(rows * N).fill(undefined);
    for (let i = 0; i < this.path.length; i++) path[i] = this.path[i];
    Object.assign(this, { atMs, kind, length, head, path });
    this.#rows = rows;
  }
}

const sharedSlab = new NoteSlab();

export class NoteRing implements RecentNotes, Iterable<RequestNote> {
  readonly #slab: NoteSlab;
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
    return this.#row < 0 ? 0 : this.#slab.length[this.#row]!;
  }

  push(note: RequestNote): void {
    this.add(note.atMs, note.method, note.path, note.counted, note.rule);
  }

  /** Same as push, without a note object. */
  add(atMs: number, method: string, path: string, counted: boolean, rule: string): void {
    const slab = this.#slab;
    if (this.#row < 0) this.#row = slab.alloc();
    const row = this.#row;
    const n = slab.length[row]!;
    let i: number;
    if (n < N) {
      i = row * N + n;
      slab.length[row] = n + 1;
    } else {
      const h = slab.head[row]!;
      i = row * N + h;
      slab.head[row] = h + 1 === N ? 0 : h + 1;
    }
    slab.atMs[i] = atMs;
    slab.kind[i] = kindId(method, counted, rule);
    slab.path[i] = internPath(path);
  }

  /** Oldest first. */
  toArray(): RequestNote[] {
    const out: RequestNote[] = [];
    const slab = this.#slab;
    const row = this.#row;
    if (row < 0) return out;
    const n = slab.length[row]!;
    const start = n < N ? 0 : slab.head[row]!;
    for (let k = 0; k < n; k++) {
      const i = row * N + ((start + k) % N);
      const kind = kinds[slab.kind[i]!]!;
      out.push({ atMs: slab.atMs[i]!, method: kind.method, path: slab.path[i]!, counted: kind.counted, rule: kind.rule });
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
