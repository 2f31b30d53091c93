/**
 * Refusing credentials the proxy logged out. A browser page navigation is sent to the login page,
 * anything else gets a 401 JSON answer; both drop the dead cookies so the next request is clean.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { otherSpellingOf } from '../identity/credentials.js';
import type { Credential } from '../identity/types.js';
import type { RevokedCredentials, RevokedEntry } from '../logout/revoked.js';
import { LOGOUT_REASON_TIMEOUT } from '../notifications/messages.js';
import type { Refusal } from './hooks.js';

export interface StaleCredentialOptions {
  revoked: RevokedCredentials;
  loginPath: string;
  contextPath: string;
  tokenCookie: string;
  sessionCookie: string;
}

export class StaleCredentials {
  readonly #revoked: RevokedCredentials;
  readonly #loginPath: string;
  readonly #redirect: Refusal;
  readonly #unauthorized: Refusal;

  constructor(opts: StaleCredentialOptions) {
    this.#revoked = opts.revoked;
    this.#loginPath = opts.loginPath;
    const cookiePath = opts.contextPath || '/';
    const clear = [opts.tokenCookie, opts.sessionCookie]
      .map((name) => `${name}=; Path=${cookiePath}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT`);
    this.#redirect = Object.freeze({
      statusCode: 302,
      headers: { location: `${opts.loginPath}?reason=${encodeURIComponent(LOGOUT_REASON_TIMEOUT)}`, 'set-cookie': clear, 'cache-control': 'no-store' },
      reason: 'stale-credential',
    });
    this.#unauthorized = Object.freeze({
      statusCode: 401,
      headers: { 'set-cookie': clear, 'cache-control': 'no-store' },
      body: { error: 'session_timed_out', message: LOGOUT_REASON_TIMEOUT, loginPath: opts.loginPath },
      reason: 'stale-credential',
    });
  }

  /** The first presented credential that was logged out (in any spelling of its secret), if any. */
  find(creds: readonly Credential[], nowMs: number): { credential: Credential; entry: RevokedEntry } | undefined {
    if (this.#revoked.size === 0) return undefined;
    for (const credential of creds) {
      const other = otherSpellingOf(credential);
      const entry = this.#revoked.lookup(credential.fingerprint, nowMs) ?? (other !== undefined ? this.#revoked.lookup(other, nowMs) : undefined);
      if (entry) return { credential, entry };
    }
    return undefined;
  }

  /**
   * The logged-out credential a request must be refused for, or undefined to let it through.
   * A reusable credential (Basic, identity header) is let through — and forgiven — when the
   * request is something a person did (`counts`), which starts their new session.
   */
  refusable(creds: readonly Credential[], nowMs: number, counts: boolean): { credential: Credential; entry: RevokedEntry } | undefined {
    const hit = this.find(creds, nowMs);
    if (!hit || !hit.entry.reusable || !counts) return hit;
    this.#revoked.delete(hit.credential.fingerprint);
    const other = otherSpellingOf(hit.credential);
    if (other !== undefined) this.#revoked.delete(other);
    return this.refusable(creds, nowMs, counts);
  }

  /** The login page itself (and its form post) must load even with a dead cookie, or browsers loop. */
  isLoginPath(path: string): boolean {
    return path === this.#loginPath;
  }

  refusalFor(method: string, headers: IncomingHttpHeaders): Refusal {
    return isPageNavigation(method, headers) ? this.#redirect : this.#unauthorized;
  }

  /** Refusal for a WebSocket upgrade. */
  get upgradeRefusal(): Refusal {
    return this.#unauthorized;
  }
}

/** A browser loading a page (not an XHR/fetch for data). */
export function isPageNavigation(method: string, headers: IncomingHttpHeaders): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  const mode = headers['sec-fetch-mode'];
  if (mode !== undefined) return mode === 'navigate';
  if (headers['x-requested-with'] !== undefined) return false;
  const accept = headers['accept'];
  return typeof accept === 'string' && accept.includes('text/html');
}
