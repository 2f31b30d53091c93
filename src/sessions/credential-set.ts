/**
 * A user's credentials by fingerprint. Nearly every user has one or two (a browser sends the
 * token and the session cookie together), so those are kept in plain slots and a Map is made
 * only for a third one: a Map holding two entries costs more heap than the rest of this object.
 * Iteration keeps insertion order, like a Map.
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
  /** the first and second credential, while there are at most two (a sign-in usually brings a
   * token and a session cookie) */
  #one: StoredCredential | undefined;
  #two: StoredCredential | undefined;
  /** every credential, once there were three at the same time */
  #many: Map<string, StoredCredential> | undefined;

  constructor(credentials: Iterable<StoredCredential> = []) {
    for (const c of credentials) this.set(c.fingerprint, c);
  }

  get size(): number {
    if (this.#many) return this.#many.size;
    return this.#two ? 2 : this.#one ? 1 : 0;
  }

  has(fingerprint: string): boolean {
    return this.get(fingerprint) !== undefined;
  }

  get(fingerprint: string): StoredCredential | undefined {
    if (this.#many) return this.#many.get(fingerprint);
    if (this.#one?.fingerprint === fingerprint) return this.#one;
    return this.#two?.fingerprint === fingerprint ? this.#two : undefined;
  }

  /** `fingerprint` must be `credential.fingerprint` (as every caller passes it). */
  set(fingerprint: string, credential: StoredCredential): this {
    if (this.#many) this.#many.set(fingerprint, credential);
    else if (!this.#one || this.#one.fingerprint === fingerprint) this.#one = credential;
    else if (!this.#two || this.#two.fingerprint === fingerprint) this.#two = credential;
    else {
      this.#many = new Map([[this.#one.fingerprint, this.#one], [this.#two.fingerprint, this.#two], [fingerprint, credential]]);
      this.#one = this.#two = undefined;
    }
    return this;
  }

  delete(fingerprint: string): boolean {
    if (this.#many) {
      const deleted = this.#many.delete(fingerprint);
      if (this.#many.size <= 2) {
        const [one, two] = this.#many.values();
        this.#many = undefined;
        this.#one = one;
        this.#two = two;
      }
      return deleted;
    }
    if (this.#one?.fingerprint === fingerprint) this.#one = this.#two;
    else if (this.#two?.fingerprint !== fingerprint) return false;
    this.#two = undefined;
    return true;
  }

  clear(): void {
    this.#one = this.#two = undefined;
    this.#many = undefined;
  }

  *keys(): IterableIterator<string> {
    for (const c of this.values()) yield c.fingerprint;
  }

  *values(): IterableIterator<StoredCredential> {
    if (this.#many) yield* this.#many.values();
    else {
      if (this.#one) yield this.#one;
      if (this.#two) yield this.#two;
    }
  }
}
