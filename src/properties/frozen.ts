import type { TimeoutSettings } from './settings.js';

/**
 * A read-only set of strings. Unlike `Object.freeze(new Set())`, which still accepts `add()`,
 * this has no mutating methods at all, and the backing Set is private.
 */
export class FrozenStringSet implements ReadonlySet<string> {
  readonly #items: Set<string>;

  constructor(items: Iterable<string>) {
    this.#items = new Set(items);
    Object.freeze(this);
  }

  get size(): number {
    return this.#items.size;
  }

  has(value: string): boolean {
    return this.#items.has(value);
  }

  forEach(callback: (value: string, value2: string, set: ReadonlySet<string>) => void, thisArg?: unknown): void {
    for (const v of this.#items) callback.call(thisArg, v, v, this);
  }

  entries() {
    return this.#items.entries();
  }

  keys() {
    return this.#items.keys();
  }

  values() {
    return this.#items.values();
  }

  [Symbol.iterator]() {
    return this.#items.values();
  }

  get [Symbol.toStringTag](): string {
    return 'FrozenStringSet';
  }

  toJSON(): string[] {
    return [...this.#items];
  }
}

/** A deeply immutable copy of the settings (returns the argument when it already is one). */
export function freezeSettings(s: TimeoutSettings): TimeoutSettings {
  if (Object.isFrozen(s) && s.exemptUsers instanceof FrozenStringSet) return s;
  return Object.freeze({
    enabled: s.enabled,
    timeoutMs: s.timeoutMs,
    timeoutMinutes: s.timeoutMinutes,
    notifyBeforeMs: s.notifyBeforeMs,
    notifyBeforeMinutes: s.notifyBeforeMinutes,
    exemptDelimiter: s.exemptDelimiter,
    exemptUsers: new FrozenStringSet(s.exemptUsers),
  });
}
