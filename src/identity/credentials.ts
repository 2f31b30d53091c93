/**
 * Finding the credentials a request carries. This runs for every request and every WebSocket
 * upgrade, so it parses the Cookie header once and hands back memoised Credential objects: a
 * credential seen before costs a map lookup, not a hash.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { BoundedCache } from './cache.js';
import { detached } from '../detached-string.js';
import { pickCookies } from './cookies.js';
import { bearerToken, decodeJwtClaims, claimsExpiryMs, isJwtLike, unquote, MAX_TOKEN_CHARS } from './jwt.js';
import { trustedSourceChecker } from './trusted-sources.js';
import type { Credential, CredentialKind, IdentityConfig } from './types.js';

/** base64url SHA-256 of kind + raw value: the credential's stable, loggable name. */
export function fingerprintOf(kind: CredentialKind, raw: string): string {
  return createHash('sha256').update(kind).update('\0').update(raw).digest('base64url');
}

/**
 * The fingerprint of the credential's secret when it differs from the credential's own (the same
 * secret sent in another spelling), else undefined: a logged-out credential is recorded and
 * looked up under both.
 */
export function otherSpellingOf(c: { readonly fingerprint: string; readonly secretFingerprint?: string }): string | undefined {
  return c.secretFingerprint !== c.fingerprint ? c.secretFingerprint : undefined;
}

/**
 * Credentials a client sends again unchanged after a new sign-in (Basic, the trusted identity
 * header), as opposed to session credentials that a new login replaces.
 */
export function isReusableCredential(c: { readonly kind: string; readonly replay: Readonly<Record<string, string>> }): boolean {
  if (c.kind === 'identity-header') return true;
  return c.kind === 'authorization' && /^basic\s/i.test(c.replay['authorization'] ?? '');
}

/**
 * Memo keys are the last MEMO_KEY_CHARS characters of the raw value (for a JWT: its signature).
 * Hashing a short key is much cheaper than hashing a whole token on every request; the stored
 * raw value is compared in full on a hit, so a shared suffix only costs a miss, never a mix-up.
 */
const MEMO_KEY_CHARS = 48;
const memoKey = (raw: string) => (raw.length > MEMO_KEY_CHARS ? raw.slice(-MEMO_KEY_CHARS) : raw);

interface MemoEntry {
  readonly raw: string;
  readonly credential: Credential;
}

export interface CredentialExtractorOptions {
  /** memoised credentials per kind (default 50 000) */
  readonly maxEntries?: number;
  /** total characters of memoised raw values per kind (default 16 M) */
  readonly maxChars?: number;
}

export type ExtractorConfig = Pick<IdentityConfig, 'identityHeader' | 'trustedSources' | 'tokenCookie' | 'sessionCookie'>;

export class CredentialExtractor {
  readonly identityHeader: string | undefined;
  readonly isTrustedSource: (remoteAddress: string | undefined) => boolean;
  readonly #restricted: boolean;
  readonly #tokenCookie: string;
  readonly #sessionCookie: string;
  readonly #memo: Record<CredentialKind, BoundedCache<string, MemoEntry>>;

  constructor(config: ExtractorConfig, options: CredentialExtractorOptions = {}) {
    this.identityHeader = config.identityHeader ? config.identityHeader.toLowerCase() : undefined;
    this.isTrustedSource = trustedSourceChecker(config.trustedSources);
    this.#restricted = config.trustedSources.length > 0;
    this.#tokenCookie = config.tokenCookie;
    this.#sessionCookie = config.sessionCookie;
    const maxEntries = options.maxEntries ?? 50_000;
    const maxChars = options.maxChars ?? 16 * 1024 * 1024;
    const make = () => new BoundedCache<string, MemoEntry>(maxEntries, (_key, entry) => entry.raw.length, maxChars);
    this.#memo = { 'identity-header': make(), 'token-cookie': make(), 'session-cookie': make(), authorization: make() };
  }

  /**
   * The credentials of a request, most specific first: trusted identity header, token cookie,
   * Authorization header, session cookie. Never throws.
   */
  readonly extractCredentials = (headers: IncomingHttpHeaders, remoteAddress: string | undefined): Credential[] => {
    const out: Credential[] = [];
    const idName = this.identityHeader;
    if (idName !== undefined) {
      const v = headers[idName];
      if (typeof v === 'string' && v.trim() !== '' && this.isTrustedSource(remoteAddress)) {
        out.push(this.#credential('identity-header', v));
      }
    }
    const cookieHeader = headerText(headers['cookie'], '; ');
    const cookies = cookieHeader === undefined ? undefined : pickCookies(cookieHeader, this.#tokenCookie, this.#sessionCookie);
    const token = cookies?.first;
    if (token) out.push(this.#credential('token-cookie', token));
    const authorization = firstHeader(headers['authorization']);
    if (authorization !== undefined && authorization.trim() !== '') {
      out.push(this.#credential('authorization', authorization.trim()));
    }
    const session = cookies?.second;
    if (session) out.push(this.#credential('session-cookie', session));
    return out;
  };

  /**
   * Deletes the identity header from a request whose peer is outside the trusted sources, so the
   * upstream never sees a spoofed one. Returns true when something was removed.
   */
  readonly stripUntrustedIdentityHeader = (headers: IncomingHttpHeaders, remoteAddress: string | undefined): boolean => {
    const idName = this.identityHeader;
    if (idName === undefined || !this.#restricted) return false;
    if (headers[idName] === undefined || this.isTrustedSource(remoteAddress)) return false;
    delete headers[idName];
    return true;
  };

  /** Number of memoised credentials (all kinds). */
  memoSize(): number {
    let n = 0;
    for (const c of Object.values(this.#memo)) n += c.size;
    return n;
  }

  #credential(kind: CredentialKind, raw: string): Credential {
    const memo = this.#memo[kind];
    const hit = memo.get(memoKey(raw));
    if (hit !== undefined && hit.raw === raw) return hit.credential;
    const made = this.#build(kind, raw);
    // an oversized value is hashed but not remembered; a remembered one is cut from the credential's
    // own replay header (flat), not from the request's header
    if (raw.length <= MAX_TOKEN_CHARS) {
      const own = ownRaw(made, raw);
      memo.set(memoKey(own), { raw: own, credential: made });
    }
    return made;
  }

  #build(kind: CredentialKind, raw: string): Credential {
    const fingerprint = fingerprintOf(kind, raw);
    let replay: Record<string, string>;
    let jwt: string | undefined;
    switch (kind) {
      // replay values are detached from the request's header: the engine keeps them for hours
      case 'identity-header':
        replay = { [this.identityHeader!]: detached(raw) };
        break;
      case 'token-cookie':
        replay = { cookie: detached(`${this.#tokenCookie}=${raw}`) };
        jwt = unquote(raw);
        break;
      case 'session-cookie':
        replay = { cookie: detached(`${this.#sessionCookie}=${raw}`) };
        break;
      case 'authorization':
        replay = { authorization: detached(raw) };
        jwt = bearerToken(raw);
        break;
    }
    const expiresAtMs = jwt !== undefined && isJwtLike(jwt) ? claimsExpiryMs(decodeJwtClaims(jwt)) : undefined;
    const secret = secretOf(kind, raw, jwt);
    const secretFingerprint = secret.kind === kind && secret.value === raw ? fingerprint : fingerprintOf(secret.kind, secret.value);
    const cred: Credential = expiresAtMs === undefined
      ? { kind, fingerprint, replay: Object.freeze(replay), secretFingerprint }
      : { kind, fingerprint, replay: Object.freeze(replay), expiresAtMs, secretFingerprint };
    return Object.freeze(cred);
  }
}

/** `raw` as the tail of the credential's own replay value (which holds it last), else `raw`. */
function ownRaw(credential: Credential, raw: string): string {
  for (const value of Object.values(credential.replay)) {
    if (value.endsWith(raw)) return value.slice(value.length - raw.length);
  }
  return raw;
}

/**
 * The secret a credential carries, in one spelling for all the ways a client may send it (the
 * upstream reads them all alike): a JWT is the same token as a cookie or a Bearer header, quoted
 * or not; a session id may be quoted; an Authorization scheme is case-insensitive.
 */
function secretOf(kind: CredentialKind, raw: string, jwt: string | undefined): { kind: CredentialKind; value: string } {
  if (jwt !== undefined && isJwtLike(jwt)) return { kind: 'token-cookie', value: jwt };
  if (kind === 'session-cookie' || kind === 'token-cookie') return { kind, value: unquote(raw) };
  if (kind === 'authorization') {
    const space = raw.search(/[ \t]/);
    if (space !== -1) return { kind, value: `${raw.slice(0, space).toLowerCase()} ${raw.slice(space).trim()}` };
  }
  return { kind, value: raw };
}

/** The first value of a header that must appear once (Node itself keeps the first duplicate). */
function firstHeader(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && typeof value[0] === 'string') return value[0];
  return undefined;
}

/** A header as one string: arrays (a header sent twice) are joined; anything else is ignored. */
function headerText(value: unknown, joiner: string): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const parts = value.filter((v): v is string => typeof v === 'string');
    return parts.length > 0 ? parts.join(joiner) : undefined;
  }
  return undefined;
}
