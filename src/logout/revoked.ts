/**
 * Credentials the proxy logged out. Requests presenting them are refused at the edge until the
 * credential would have expired anyway (JWT exp) or `refuseMaxMs` passed.
 *
 * A *reusable* credential (Basic, the trusted identity header) is not a session: the browser
 * sends the same value again after any new sign-in. It is refused only for background traffic,
 * so a person's next real request signs them in again instead of locking them out for days.
 */
export interface RevokedEntry {
  readonly fingerprint: string;
  readonly user: string;
  readonly untilMs: number;
  readonly reusable?: boolean;
}

/** Told about refusals decided here (not about ones restored or applied from elsewhere). */
export interface RevokedObserver {
  added(entry: RevokedEntry): void;
  deleted(fingerprint: string): void;
}

export class RevokedCredentials {
  readonly #byFingerprint = new Map<string, RevokedEntry>();
  readonly #refuseMaxMs: number;
  #sweptAtMs = 0;
  #observer: RevokedObserver | undefined;

  constructor(refuseMaxMs: number) {
    this.#refuseMaxMs = refuseMaxMs;
  }

  /** Registers the one observer (several replicas share refusals through it). */
  observe(observer: RevokedObserver): void {
    this.#observer = observer;
  }

  add(fingerprint: string, user: string, nowMs: number, expiresAtMs?: number, reusable = false): void {
    const capMs = nowMs + this.#refuseMaxMs;
    const untilMs = expiresAtMs !== undefined ? Math.min(expiresAtMs, capMs) : capMs;
    if (untilMs <= nowMs) return;
    const entry: RevokedEntry = reusable ? { fingerprint, user, untilMs, reusable } : { fingerprint, user, untilMs };
    this.#byFingerprint.set(fingerprint, entry);
    this.#observer?.added(entry);
  }

  delete(fingerprint: string): void {
    if (this.#byFingerprint.delete(fingerprint)) this.#observer?.deleted(fingerprint);
  }

  /** Drops a refusal that was lifted elsewhere (no observer call). */
  forget(fingerprint: string): void {
    this.#byFingerprint.delete(fingerprint);
  }

  /** The entry when the credential is refused now. */
  lookup(fingerprint: string, nowMs: number): RevokedEntry | undefined {
    const entry = this.#byFingerprint.get(fingerprint);
    if (!entry) return undefined;
    if (entry.untilMs <= nowMs) {
      this.#byFingerprint.delete(fingerprint);
      return undefined;
    }
    return entry;
  }

  /** Drops expired entries; cheap to call often (sweeps at most once a minute). */
  sweep(nowMs: number): void {
    if (nowMs - this.#sweptAtMs < 60_000) return;
    this.#sweptAtMs = nowMs;
    for (const [fp, entry] of this.#byFingerprint) if (entry.untilMs <= nowMs) this.#byFingerprint.delete(fp);
  }

  entries(): RevokedEntry[] {
    return [...this.#byFingerprint.values()];
  }

  restore(entries: readonly RevokedEntry[], nowMs: number): void {
    for (const e of entries) if (e.untilMs > nowMs) this.#byFingerprint.set(e.fingerprint, e);
  }

  get size(): number {
    return this.#byFingerprint.size;
  }
}
