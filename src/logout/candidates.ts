/**
 * Logout candidates: the ordered `[METHOD ]path` list of PROXY_LOGOUT_PATH, and the book that
 * remembers what each one last did. The candidate that released a session (verified) is tried
 * first from then on; the rest keep their configured order.
 */

export interface LogoutCandidateSpec {
  /** undefined: written without a method (PROXY_LOGOUT_METHOD applies) */
  readonly method: string | undefined;
  readonly path: string;
}

export interface LogoutCandidate {
  readonly method: string;
  readonly path: string;
}

/** What a candidate's last call came to. */
export type CandidateResult =
  | 'released'
  | 'already-gone'
  | 'unverified'
  | 'not-found'
  | 'csrf-rejected'
  | 'error';

export interface CandidateReport {
  readonly method: string;
  readonly path: string;
  /** the candidate that released a session (verified); tried first */
  readonly verified: boolean;
  readonly lastResult: CandidateResult | null;
  readonly lastStatus: number | null;
  readonly lastAtMs: number | null;
  readonly calls: number;
  readonly released: number;
  readonly unverified: number;
}

const METHODS = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH']);

/** `POST /a/logout` -> `POST /a/logout` (for logs and the admin view; never secret). */
export const candidateLabel = (c: LogoutCandidate): string => `${c.method} ${c.path}`;

/**
 * Parses `[METHOD ]path, [METHOD ]path, ...`. Throws an Error naming the bad entry: an unknown
 * method, a path not starting with "/", a path with spaces, a duplicate, or an empty list.
 */
export function parseLogoutCandidates(raw: string, setting = 'PROXY_LOGOUT_PATH'): LogoutCandidateSpec[] {
  const entries = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (entries.length === 0) throw new Error(`${setting}=${JSON.stringify(raw)} lists no logout path`);
  const seen = new Set<string>();
  return entries.map((entry) => {
    const parts = entry.split(/\s+/);
    if (parts.length > 2) throw new Error(`${setting}: ${JSON.stringify(entry)} is not "[METHOD ]path" (a path cannot contain spaces)`);
    const path = parts[parts.length - 1]!;
    const method = parts.length === 2 ? parts[0]!.toUpperCase() : undefined;
    if (method !== undefined && !METHODS.has(method)) {
      throw new Error(`${setting}: ${JSON.stringify(entry)} has an unknown method ${JSON.stringify(parts[0])}; use one of ${[...METHODS].join(', ')}`);
    }
    if (!path.startsWith('/')) throw new Error(`${setting}: ${JSON.stringify(entry)} is not valid: a path must start with "/"`);
    const key = `${method ?? '*'} ${path}`;
    if (seen.has(key)) throw new Error(`${setting}: ${JSON.stringify(entry)} is listed twice`);
    seen.add(key);
    return { method, path };
  });
}

/** Checks a method for candidates written without one (PROXY_LOGOUT_METHOD). */
export function parseLogoutMethod(raw: string | undefined, setting = 'PROXY_LOGOUT_METHOD'): string {
  const method = raw === undefined || raw.trim() === '' ? 'POST' : raw.trim().toUpperCase();
  if (!METHODS.has(method)) throw new Error(`${setting}=${JSON.stringify(raw)} is not one of ${[...METHODS].join(', ')}`);
  return method;
}

/** Fills in the default method. */
export function resolveCandidates(specs: readonly LogoutCandidateSpec[], defaultMethod: string): LogoutCandidate[] {
  return specs.map((s) => ({ method: s.method ?? defaultMethod, path: s.path }));
}

interface Entry {
  readonly candidate: LogoutCandidate;
  lastResult: CandidateResult | null;
  lastStatus: number | null;
  lastAtMs: number | null;
  calls: number;
  released: number;
  unverified: number;
}

export class CandidateBook {
  readonly #entries: Entry[];
  #verified: Entry | undefined;
  readonly #nowMs: () => number;

  constructor(candidates: readonly LogoutCandidate[], nowMs: () => number) {
    if (candidates.length === 0) throw new Error('at least one logout candidate is needed');
    this.#entries = candidates.map((candidate) => ({ candidate, lastResult: null, lastStatus: null, lastAtMs: null, calls: 0, released: 0, unverified: 0 }));
    this.#nowMs = nowMs;
  }

  /** Candidates in the order to try: the verified one first, then the configured order. */
  order(): LogoutCandidate[] {
    const v = this.#verified;
    const rest = this.#entries.filter((e) => e !== v).map((e) => e.candidate);
    return v ? [v.candidate, ...rest] : rest;
  }

  /** The candidate that released a session, if any did. */
  get verified(): LogoutCandidate | undefined {
    return this.#verified?.candidate;
  }

  record(candidate: LogoutCandidate, result: CandidateResult, status: number | undefined): void {
    const e = this.#entries.find((x) => x.candidate === candidate);
    if (!e) return;
    e.calls++;
    e.lastResult = result;
    e.lastStatus = status ?? null;
    e.lastAtMs = this.#nowMs();
    if (result === 'released') {
      e.released++;
      this.#verified = e;
    } else if (result === 'unverified') {
      e.unverified++;
      // a candidate that stopped ending sessions loses its place at the front
      if (this.#verified === e) this.#verified = undefined;
    }
  }

  report(): CandidateReport[] {
    return this.order().map((c) => {
      const e = this.#entries.find((x) => x.candidate === c)!;
      return {
        method: c.method, path: c.path, verified: e === this.#verified,
        lastResult: e.lastResult, lastStatus: e.lastStatus, lastAtMs: e.lastAtMs,
        calls: e.calls, released: e.released, unverified: e.unverified,
      };
    });
  }
}
