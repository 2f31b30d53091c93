/**
 * A Map with a size bound. When full, the oldest insertion is dropped first (a Map iterates in
 * insertion order, so that is the first key). Optionally also bounded by a total weight, so a
 * cache keyed by long strings cannot grow without limit in bytes.
 */
export class BoundedCache<K, V> {
  readonly #map = new Map<K, V>();
  readonly #weights: Map<K, number> | undefined;
  #totalWeight = 0;

  constructor(
    readonly maxEntries: number,
    private readonly weigh?: (key: K, value: V) => number,
    readonly maxWeight = Infinity,
  ) {
    if (!(maxEntries >= 1)) throw new RangeError('BoundedCache needs maxEntries >= 1');
    this.#weights = weigh ? new Map() : undefined;
  }

  get size(): number {
    return this.#map.size;
  }

  get totalWeight(): number {
    return this.#totalWeight;
  }

  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  set(key: K, value: V): void {
    if (this.#map.has(key)) this.delete(key);
    this.#map.set(key, value);
    if (this.#weights && this.weigh) {
      const w = this.weigh(key, value);
      this.#weights.set(key, w);
      this.#totalWeight += w;
    }
    while (this.#map.size > this.maxEntries || (this.#totalWeight > this.maxWeight && this.#map.size > 1)) {
      const oldest = this.#map.keys().next().value as K;
      this.delete(oldest);
    }
  }

  delete(key: K): boolean {
    if (!this.#map.delete(key)) return false;
    if (this.#weights) {
      this.#totalWeight -= this.#weights.get(key) ?? 0;
      this.#weights.delete(key);
    }
    return true;
  }

  clear(): void {
    this.#map.clear();
    this.#weights?.clear();
    this.#totalWeight = 0;
  }
}
