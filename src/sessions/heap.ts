/** A binary min-heap of (atMs, key) pairs. Duplicate keys are allowed; callers skip stale ones. */
export class TimeHeap<K> {
  #at: number[] = [];
  #keys: K[] = [];

  get size(): number {
    return this.#at.length;
  }

  peekAtMs(): number | undefined {
    return this.#at[0];
  }

  peekKey(): K | undefined {
    return this.#keys[0];
  }

  push(atMs: number, key: K): void {
    this.#at.push(atMs);
    this.#keys.push(key);
    this.#up(this.#at.length - 1);
  }

  /** Removes and returns the earliest entry. */
  pop(): { atMs: number; key: K } | undefined {
    const n = this.#at.length;
    if (n === 0) return undefined;
    const atMs = this.#at[0]!;
    const key = this.#keys[0]!;
    const lastAt = this.#at.pop()!;
    const lastKey = this.#keys.pop()!;
    if (n > 1) {
      this.#at[0] = lastAt;
      this.#keys[0] = lastKey;
      this.#down(0);
    }
    return { atMs, key };
  }

  clear(): void {
    this.#at = [];
    this.#keys = [];
  }

  #up(i: number): void {
    const at = this.#at;
    const keys = this.#keys;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (at[parent]! <= at[i]!) break;
      this.#swap(i, parent, at, keys);
      i = parent;
    }
  }

  #down(i: number): void {
    const at = this.#at;
    const keys = this.#keys;
    const n = at.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && at[l]! < at[m]!) m = l;
      if (r < n && at[r]! < at[m]!) m = r;
      if (m === i) return;
      this.#swap(i, m, at, keys);
      i = m;
    }
  }

  #swap(a: number, b: number, at: number[], keys: K[]): void {
    const t = at[a]!;
    at[a] = at[b]!;
    at[b] = t;
    const k = keys[a]!;
    keys[a] = keys[b]!;
    keys[b] = k;
  }
}
