/**
 * A user's credentials by fingerprint, packed into a ByteArena the store owns. A credential kept
 * as JavaScript strings and objects took about 450 bytes of heap (a ~250-character token replay,
 * two fingerprints, the CSRF token, the replay object and the credential object itself); packed,
 * it is one block of bytes outside the heap, the fingerprints as their 32 SHA-256 bytes. Nearly
 * every user has one or two (a browser sends the token and the session cookie together), so
 * those are two handles in the set itself and a Map is made only for a third one.
 *
 * What comes out (get, values) is a copy: holding it is always safe, and changing it changes
 * nothing here. The request path uses refresh(), which reads and updates the block in place.
 * Iteration keeps insertion order, like a Map.
 */
import { ByteArena } from './byte-arena.js';
import { fingerprintOf, freeCredential, hasCsrf, hasFingerprint, isWritten, packCredential, setLastSeen, setWritten, stampOf, unpackCredential } from './packed-credential.js';
import type { StoredCredential } from './store.js';

/**
 * A credential as a plain value. A class, so every one shares a hidden class with its fields in
 * the object itself, optional ones included.
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

/** What records keep their credentials in. */
export interface Credentials {
  readonly size: number;
  has(fingerprint: string): boolean;
  /** a copy */
  get(fingerprint: string): StoredCredential | undefined;
  /** keeps a copy; `fingerprint` must be `credential.fingerprint` */
  set(fingerprint: string, credential: StoredCredential): this;
  delete(fingerprint: string): boolean;
  clear(): void;
  keys(): IterableIterator<string>;
  /** copies, in insertion order */
  values(): IterableIterator<StoredCredential>;
  /**
   * The credential was presented again at `nowMs`, with `csrf` if the request carried a CSRF
   * token: its last-seen time moves, and a different CSRF token replaces the kept one. Returns
   * undefined when the credential is not held, true when its CSRF token was replaced (a new
   * version a shared store must write), false otherwise. Makes no copy.
   */
  refresh(fingerprint: string, nowMs: number, csrf?: string): boolean | undefined;
  /**
   * Shared stores: copies of the credentials whose current version is not written yet, each with
   * its stamp (a number that changes with every new version), for markWritten once it is.
   */
  unwritten(): Array<{ readonly credential: StoredCredential; readonly stamp: number }>;
  /** Shared stores: the version `stamp` (any version when omitted) is written; a new version clears it. */
  markWritten(fingerprint: string, stamp?: number): void;
  /** Shared stores: no version is written (the shared copy was lost). */
  forgetWritten(): void;
}

/** no credential */
export const NONE = -1;
const sharedArena = new ByteArena();
const NO_CREDENTIALS: readonly StoredCredential[] = [];

/**
 * Where sets keep their blocks' handles, by row: the store's UserTable holds every user's (one
 * object per user less), a set made on its own holds its own single row.
 */
export interface CredentialRows {
  /** the first and second credential's block, while the row has at most two */
  readonly credOne: Int32Array;
  readonly credTwo: Int32Array;
  /** every credential's block by fingerprint, for rows that had three at the same time */
  readonly credMany: Map<number, Map<string, number>>;
}

export class CredentialSet implements Credentials {
  readonly #arena: ByteArena;
  readonly #rows: CredentialRows;
  readonly #row: number;

  /** `rows` and `row` name where the handles live; a set made without them holds its own row */
  constructor(credentials: Iterable<StoredCredential> = [], arena: ByteArena = sharedArena, rows?: CredentialRows, row = 0) {
    this.#arena = arena;
    this.#rows = rows ?? { credOne: Int32Array.of(NONE), credTwo: Int32Array.of(NONE), credMany: new Map() };
    this.#row = row;
    if (credentials !== NO_CREDENTIALS) for (const c of credentials) this.set(c.fingerprint, c);
  }

  /** The set of a row in `rows`: a view that keeps nothing itself. */
  static atRow(arena: ByteArena, rows: CredentialRows, row: number): CredentialSet {
    return new CredentialSet(NO_CREDENTIALS, arena, rows, row);
  }

  get #one(): number {
    return this.#rows.credOne[this.#row]!;
  }

  set #one(handle: number) {
    this.#rows.credOne[this.#row] = handle;
  }

  get #two(): number {
    return this.#rows.credTwo[this.#row]!;
  }

  set #two(handle: number) {
    this.#rows.credTwo[this.#row] = handle;
  }

  get #many(): Map<string, number> | undefined {
    return this.#rows.credMany.get(this.#row);
  }

  set #many(many: Map<string, number> | undefined) {
    if (many) this.#rows.credMany.set(this.#row, many);
    else this.#rows.credMany.delete(this.#row);
  }

  get size(): number {
    if (this.#many) return this.#many.size;
    return this.#two !== NONE ? 2 : this.#one !== NONE ? 1 : 0;
  }

  has(fingerprint: string): boolean {
    return this.#find(fingerprint) !== NONE;
  }

  get(fingerprint: string): StoredCredential | undefined {
    const handle = this.#find(fingerprint);
    return handle === NONE ? undefined : unpackCredential(this.#arena, handle);
  }

  set(fingerprint: string, credential: StoredCredential): this {
    const handle = packCredential(this.#arena, credential);
    const old = this.#find(fingerprint);
    if (old !== NONE) freeCredential(this.#arena, old);
    if (this.#many) this.#many.set(fingerprint, handle);
    else if (old !== NONE) {
      if (this.#one === old) this.#one = handle;
      else this.#two = handle;
    } else if (this.#one === NONE) this.#one = handle;
    else if (this.#two === NONE) this.#two = handle;
    else {
      const arena = this.#arena;
      this.#many = new Map([[fingerprintOf(arena, this.#one), this.#one], [fingerprintOf(arena, this.#two), this.#two], [fingerprint, handle]]);
      this.#one = this.#two = NONE;
    }
    return this;
  }

  delete(fingerprint: string): boolean {
    const handle = this.#find(fingerprint);
    if (handle === NONE) return false;
    freeCredential(this.#arena, handle);
    if (this.#many) {
      this.#many.delete(fingerprint);
      if (this.#many.size <= 2) {
        const [one = NONE, two = NONE] = this.#many.values();
        this.#many = undefined;
        this.#one = one;
        this.#two = two;
      }
    } else {
      if (this.#one === handle) this.#one = this.#two;
      this.#two = NONE;
    }
    return true;
  }

  clear(): void {
    for (const handle of this.#handles()) freeCredential(this.#arena, handle);
    this.#one = this.#two = NONE;
    this.#many = undefined;
  }

  *keys(): IterableIterator<string> {
    for (const handle of this.#handles()) yield fingerprintOf(this.#arena, handle);
  }

  *values(): IterableIterator<StoredCredential> {
    for (const handle of this.#handles()) yield unpackCredential(this.#arena, handle);
  }

  refresh(fingerprint: string, nowMs: number, csrf?: string): boolean | undefined {
    const handle = this.#find(fingerprint);
    if (handle === NONE) return undefined;
    setLastSeen(this.#arena, handle, nowMs);
    if (csrf === undefined || hasCsrf(this.#arena, handle, csrf)) return false;
    const kept = unpackCredential(this.#arena, handle);
    this.set(fingerprint, storedCredential(kept, kept.lastSeenMs, csrf));
    return true;
  }

  unwritten(): Array<{ readonly credential: StoredCredential; readonly stamp: number }> {
    const out: Array<{ credential: StoredCredential; stamp: number }> = [];
    for (const handle of this.#handles()) {
      if (!isWritten(this.#arena, handle)) out.push({ credential: unpackCredential(this.#arena, handle), stamp: stampOf(this.#arena, handle) });
    }
    return out;
  }

  /** the current version's stamp (see unwritten) */
  stampOf(fingerprint: string): number | undefined {
    const handle = this.#find(fingerprint);
    return handle === NONE ? undefined : stampOf(this.#arena, handle);
  }

  markWritten(fingerprint: string, stamp?: number): void {
    const handle = this.#find(fingerprint);
    if (handle !== NONE && (stamp === undefined || stampOf(this.#arena, handle) === stamp)) setWritten(this.#arena, handle, true);
  }

  isWritten(fingerprint: string): boolean {
    const handle = this.#find(fingerprint);
    return handle !== NONE && isWritten(this.#arena, handle);
  }

  forgetWritten(): void {
    for (const handle of this.#handles()) setWritten(this.#arena, handle, false);
  }

  #find(fingerprint: string): number {
    if (this.#many) return this.#many.get(fingerprint) ?? NONE;
    if (this.#one !== NONE && hasFingerprint(this.#arena, this.#one, fingerprint)) return this.#one;
    return this.#two !== NONE && hasFingerprint(this.#arena, this.#two, fingerprint) ? this.#two : NONE;
  }

  *#handles(): IterableIterator<number> {
    if (this.#many) yield* [...this.#many.values()];
    else {
      if (this.#one !== NONE) yield this.#one;
      if (this.#two !== NONE) yield this.#two;
    }
  }
}
