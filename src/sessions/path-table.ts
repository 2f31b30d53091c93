/**
 * The paths that request notes refer to, each kept once under a small number with a count of the
 * notes that use it: a note stores 4 bytes instead of an 8-byte reference, users who visit the
 * same pages share one string, and a path nobody's notes hold any more is forgotten (so the table
 * is bounded by the notes kept). Both operations are O(1).
 */
import { detached } from '../detached-string.js';

/** the id of "no path" (an empty note slot) */
export const NO_PATH = 0;

export class PathTable {
  readonly #ids = new Map<string, number>();
  /** by id; index NO_PATH stays empty */
  readonly #paths: Array<string | undefined> = [undefined];
  #refs = new Uint32Array(1024);
  readonly #free: number[] = [];

  /** The id of `path`, counted once more. */
  acquire(path: string): number {
    let id = this.#ids.get(path);
    if (id === undefined) {
      id = this.#free.pop() ?? this.#paths.length;
      // a request's path is a slice of its URL: keep the path's characters, not the whole URL
      const own = detached(path);
      this.#paths[id] = own;
      this.#ids.set(own, id);
      if (id >= this.#refs.length) this.#grow();
    }
    this.#refs[id]!++;
    return id;
  }

  /** One note less uses `id` (NO_PATH is ignored). */
  release(id: number): void {
    if (id === NO_PATH || --this.#refs[id]! > 0) return;
    this.#ids.delete(this.#paths[id]!);
    this.#paths[id] = undefined;
    this.#free.push(id);
  }

  path(id: number): string {
    return this.#paths[id]!;
  }

  /** distinct paths held */
  get size(): number {
    return this.#ids.size;
  }

  #grow(): void {
    const refs = new Uint32Array(this.#refs.length * 2);
    refs.set(this.#refs);
    this.#refs = refs;
  }
}
