/**
 * A user's credentials by fingerprint. Nearly every user has exactly one, so that one is kept in
 * a plain slot and a Map is made only for a second one: an empty Map alone costs more heap than
 * the rest of this object. Iteration keeps insertion order, like a Map.
 */
import type { StoredCredential } from './store.js';

/**
 * A credential as a record keeps it. A class, so every kept credential shares one hidden class
 * with its fields in the object itself, optional ones included (V8 leaves room for what the
 * constructor may add). A spread copy `{ ...input, lastSeenMs }` got a hidden class of its own per
 * user in V8, about 250 bytes each, and made every lastSeenMs update a slow property store.
 */
class KeptCredential implements StoredCredential {
  readonly fingerprint: string;
  readonly kind: string;
  readonly replay: Readonly<Record<string, string>>;
  declare readonly expiresAtMs?: number;
  declare readonly secretFingerprint?: string;
  declare csrf?: string;
  lastSeenMs: number;

  constructor(input: Omit<StoredCredential, 'lastSeenMs'>, lastSeenMs: number, csrf: string | undefined) {
    this.fingerprint = input.fingerprint;
    this.kind = input.kind;
    this.replay = input.replay;
    this.lastSeenMs = lastSeenMs;
    // absent stays absent (saved state and sealed copies look as before)
    if (input.expiresAtMs !== undefined) (this as { expiresAtMs?: number }).expiresAtMs = input.expiresAtMs;
    if (input.secretFingerprint !== undefined) (this as { secretFingerprint?: string }).secretFingerprint = input.secretFingerprint;
    if (csrf !== undefined) this.csrf = csrf;
  }
}

/** A credential as a record keeps it; `csrf` replaces the input's CSRF token when given. */
export function storedCredential(input: Omit<StoredCredential, 'lastSeenMs'>, lastSeenMs: number, csrf = input.csrf): StoredCredential {
  return new KeptCredential(input, lastSeenMs, csrf);
}

/** The part of a Map<fingerprint, credential> that records use (a Map satisfies it too). */
export interface Credentials {
  readonly size: number;
  has(fingerprint: string): boolean;
  get(fingerprint: string): StoredCredential | undefined;
  set(fingerprint: string, credential: StoredCredential): this;
  delete(fingerprint: string): boolean;
  clear(): void;
  keys(): IterableIterator<string>;
  values(): IterableIterator<StoredCredential>;
}

export class CredentialSet implements Credentials {
  /** the only credential, while there is at most one */
  #one: StoredCredential | undefined;
  /** every credential, once there were two at the same time */
  #many: Map<string, StoredCredential> | undefined;

  constructor(credentials: Iterable<StoredCredential> = []) {
    for (const c of credentials) this.set(c.fingerprint, c);
  }

  get size(): number {
    return this.#many ? this.#many.size : this.#one ? 1 : 0;
  }

  has(fingerprint: string): boolean {
    return this.get(fingerprint) !== undefined;
  }

  get(fingerprint: string): StoredCredential | undefined {
    if (this.#many) return this.#many.get(fingerprint);
    return this.#one?.fingerprint === fingerprint ? this.#one : undefined;
  }

  /** `fingerprint` must be `credential.fingerprint` (as every caller passes it). */
  set(fingerprint: string, credential: StoredCredential): this {
    if (this.#many) this.#many.set(fingerprint, credential);
    else if (!this.#one || this.#one.fingerprint === fingerprint) this.#one = credential;
    else {
      this.#many = new Map([[this.#one.fingerprint, this.#one], [fingerprint, credential]]);
      this.#one = undefined;
    }
    return this;
  }

  delete(fingerprint: string): boolean {
    if (!this.#many) {
      if (this.#one?.fingerprint !== fingerprint) return false;
      this.#one = undefined;
      return true;
    }
    const deleted = this.#many.delete(fingerprint);
    if (this.#many.size <= 1) {
      this.#one = this.#many.values().next().value;
      this.#many = undefined;
    }
    return deleted;
  }

  clear(): void {
    this.#one = undefined;
    this.#many = undefined;
  }

  *keys(): IterableIterator<string> {
    for (const c of this.values()) yield c.fingerprint;
  }

  *values(): IterableIterator<StoredCredential> {
    if (this.#many) yield* this.#many.values();
    else if (this.#one) yield this.#one;
  }
}
