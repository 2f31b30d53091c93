/**
 * What request notes refer to: a path together with the note's kind (see note-ring.ts), each pair
 * kept once under a small number with a count of the notes that use it. A note stores one 4-byte
 * number for both instead of an 8-byte reference and a kind, users who visit the same pages share
 * one string, and a pair nobody's notes hold any more is forgotten (so the table is bounded by the
 * notes kept). The pairs of one path (a page loaded and polled, say) share its string and are
 * chained from it; a path has as many as the kinds of request that named it, a handful at most.
 * Both operations are O(1) in the number of pairs.
 */
import { detached } from '../detached-string.js';

/** the id of "no path" (an empty note slot) */
export const NO_PATH = 0;

export class PathTable {
  /** a path's most recent pair */
  readonly #heads = new Map<string, number>();
  /** by id; index NO_PATH stays empty */
  readonly #paths: Array<string | undefined> = [undefined];
  #kinds = new Uint16Array(1024);
  /** the path's next pair (of another kind), or NO_PATH */
  #next = new Uint32Array(1024);
  #refs = new Uint32Array(1024);
  readonly #free: number[] = [];

  /** The id of the pair (`path`, `kind`), counted once more. */
  acquire(path: string, kind: number): number {
    const head = this.#heads.get(path) ?? NO_PATH;
    let id = head;
    while (id !== NO_PATH && this.#kinds[id] !== kind) id = this.#next[id]!;
    if (id === NO_PATH) {
      id = this.#free.pop() ?? this.#paths.length;
      if (id >= this.#refs.length) this.#grow();
      // a request's path is a slice of its URL: keep the path's characters, not the whole URL
      const own = head === NO_PATH ? detached(path) : this.#paths[head]!;
      this.#paths[id] = own;
      this.#kinds[id] = kind;
      this.#next[id] = head;
      this.#heads.set(own, id);
    }
    this.#refs[id]!++;
    return id;
  }

  /** One note less uses `id` (NO_PATH is ignored). */
  release(id: number): void {
    if (id === NO_PATH || --this.#refs[id]! > 0) return;
    const path = this.#paths[id]!;
    const head = this.#heads.get(path)!;
    if (head === id) {
      if (this.#next[id] === NO_PATH) this.#heads.delete(path);
      else this.#heads.set(path, this.#next[id]!);
    } else {
      let before = head;
      while (this.#next[before] !== id) before = this.#next[before]!;
      this.#next[before] = this.#next[id]!;
    }
    this.#paths[id] = undefined;
    this.#free.push(id);
  }

  path(id: number): string {
    return this.#paths[id]!;
  }

  kind(id: number): number {
    return this.#kinds[id]!;
  }

  /** distinct paths held */
  get size(): number {
    return this.#heads.size;
  }

  /** distinct (path, kind) pairs held */
  get pairs(): number {
    return this.#paths.length - 1 - this.#free.length;
  }

  #grow(): void {
    this.#kinds = doubled(this.#kinds);
    this.#next = doubled(this.#next);
    this.#refs = doubled(this.#refs);
  }
}

/** a copy of `column` twice as long */
function doubled<T extends Uint16Array | Uint32Array>(column: T): T {
  const next = new (column.constructor as new (length: number) => T)(column.length * 2);
  next.set(column);
  return next;
}
