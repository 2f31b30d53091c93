/**
 * Who a request belongs to. Tries the request's credentials in order (trusted identity header,
 * token cookie, Authorization, session cookie) and returns the first that names a user.
 *
 * - identity header: the header value, as sent by a trusted fronting proxy;
 * - JWT (token cookie or Bearer JWT): with a secret, a verified token's user-name claim; without
 *   one, the claim only counts once the upstream's who-am-I agrees with it;
 * - anything else: the upstream's who-am-I answer.
 *
 * Every answer (positive or negative) is cached per credential fingerprint, and concurrent
 * lookups of one credential share one in-flight call. A cached answer is returned synchronously.
 */
import { BoundedCache } from './cache.js';
import { pickCookies } from './cookies.js';
import { CredentialExtractor } from './credentials.js';
import { bearerToken, decodeJwtClaims, isJwtLike, unquote, usernameFromClaims, MAX_TOKEN_CHARS } from './jwt.js';
import { loadTokenSecret, verifyToken } from './verify.js';
import { UpstreamWhoami } from './whoami.js';
import type { Credential, Identity, IdentityConfig, IdentityLogger, WhoamiFn } from './types.js';

export interface IdentityResolverOptions {
  /** asks the upstream who owns a credential; default: GET upstream + whoamiPath via undici */
  readonly whoami?: WhoamiFn;
  /** clock in ms; default Date.now */
  readonly nowMs?: () => number;
  /** bound of each cache (default 50 000) */
  readonly maxEntries?: number;
  /** how long a transient who-am-I failure is cached (default 5 000, never above whoamiCacheMs) */
  readonly failureCacheMs?: number;
}

export interface IdentityStats {
  readonly credentials: number;
  readonly answers: number;
  readonly tokens: number;
  readonly inflight: number;
  readonly whoamiCalls: number;
  readonly whoamiFailures: number;
}

interface Answer {
  readonly identity: Identity | undefined;
  readonly expiresAtMs: number;
}

/** What a token's payload says, decoded once per fingerprint. */
interface TokenInfo {
  readonly decodable: boolean;
  readonly claimUser: string | undefined;
}

const WARN_EVERY_MS = 10_000;

export class IdentityResolver {
  readonly extractor: CredentialExtractor;
  readonly extractCredentials: CredentialExtractor['extractCredentials'];
  readonly stripUntrustedIdentityHeader: CredentialExtractor['stripUntrustedIdentityHeader'];

  readonly #config: IdentityConfig;
  readonly #log: IdentityLogger;
  readonly #nowMs: () => number;
  readonly #whoami: WhoamiFn;
  readonly #ownWhoami: UpstreamWhoami | undefined;
  readonly #secret: Uint8Array | undefined;
  readonly #cacheMs: number;
  readonly #failureCacheMs: number;
  readonly #answers: BoundedCache<string, Answer>;
  readonly #tokens: BoundedCache<string, TokenInfo>;
  readonly #inflight = new Map<string, Promise<Answer>>();
  #whoamiCalls = 0;
  #whoamiFailures = 0;
  #lastWarnMs = -Infinity;
  #suppressedWarnings = 0;

  constructor(config: IdentityConfig, logger: IdentityLogger, options: IdentityResolverOptions = {}) {
    this.#config = config;
    this.#log = logger;
    this.#nowMs = options.nowMs ?? Date.now;
    this.#secret = loadTokenSecret(config);
    const maxEntries = options.maxEntries ?? 50_000;
    this.extractor = new CredentialExtractor(config, { maxEntries });
    this.extractCredentials = this.extractor.extractCredentials;
    this.stripUntrustedIdentityHeader = this.extractor.stripUntrustedIdentityHeader;
    this.#answers = new BoundedCache(maxEntries);
    this.#tokens = new BoundedCache(maxEntries);
    this.#cacheMs = config.whoamiCacheMs;
    this.#failureCacheMs = Math.min(options.failureCacheMs ?? 5_000, config.whoamiCacheMs);
    if (options.whoami) {
      this.#whoami = options.whoami;
    } else {
      this.#ownWhoami = new UpstreamWhoami(config);
      this.#whoami = this.#ownWhoami.lookup;
    }
  }

  /** True when token signatures are checked against a configured secret. */
  get verifiesTokens(): boolean {
    return this.#secret !== undefined;
  }

  /**
   * The user of a request, or undefined when unknown. Synchronous when every credential that
   * had to be consulted is cached; a promise otherwise. Never throws or rejects.
   */
  resolve(creds: readonly Credential[]): Identity | undefined | Promise<Identity | undefined> {
    const now = this.#nowMs();
    for (let i = 0; i < creds.length; i++) {
      const a = this.#answer(creds[i]!, now);
      if (a instanceof Promise) return this.#resolveRest(creds, i, a);
      if (a.identity !== undefined) return a.identity;
    }
    return undefined;
  }

  /** Forgets everything cached about a credential (for example after it was logged out). */
  invalidate(fingerprint: string): void {
    this.#answers.delete(fingerprint);
    this.#tokens.delete(fingerprint);
    this.#inflight.delete(fingerprint);
  }

  stats(): IdentityStats {
    return {
      credentials: this.extractor.memoSize(),
      answers: this.#answers.size,
      tokens: this.#tokens.size,
      inflight: this.#inflight.size,
      whoamiCalls: this.#whoamiCalls,
      whoamiFailures: this.#whoamiFailures,
    };
  }

  /** Closes the connection pool of the built-in who-am-I client (not an injected one). */
  async close(): Promise<void> {
    await this.#ownWhoami?.close();
  }

  async #resolveRest(creds: readonly Credential[], index: number, pending: Promise<Answer>): Promise<Identity | undefined> {
    const first = await pending;
    if (first.identity !== undefined) return first.identity;
    for (let i = index + 1; i < creds.length; i++) {
      const next = this.#answer(creds[i]!, this.#nowMs());
      const a = next instanceof Promise ? await next : next;
      if (a.identity !== undefined) return a.identity;
    }
    return undefined;
  }

  #answer(cred: Credential, now: number): Answer | Promise<Answer> {
    const fp = cred.fingerprint;
    const hit = this.#answers.get(fp);
    if (hit !== undefined && hit.expiresAtMs > now) return hit;
    const pending = this.#inflight.get(fp);
    if (pending !== undefined) return pending;
    let computed: Answer | Promise<Answer>;
    try {
      computed = this.#compute(cred, now);
    } catch (err) {
      this.#log.warn({ fingerprint: fp, err: String(err) }, 'identity: unexpected error, credential treated as unknown');
      computed = unknown(now + this.#cacheMs);
    }
    if (!(computed instanceof Promise)) {
      this.#store(fp, computed, now);
      return computed;
    }
    const shared: Promise<Answer> = computed
      .catch((err: unknown) => {
        this.#log.warn({ fingerprint: fp, err: String(err) }, 'identity: unexpected error, credential treated as unknown');
        return unknown(this.#nowMs() + this.#failureCacheMs);
      })
      .then((a) => {
        if (this.#inflight.get(fp) === shared) {
          this.#inflight.delete(fp);
          this.#store(fp, a, this.#nowMs());
        }
        return a;
      });
    this.#inflight.set(fp, shared);
    return shared;
  }

  #store(fingerprint: string, answer: Answer, now: number): void {
    if (answer.expiresAtMs > now) this.#answers.set(fingerprint, answer);
  }

  #compute(cred: Credential, now: number): Answer | Promise<Answer> {
    const replay = cred.replay;
    switch (cred.kind) {
      case 'identity-header': {
        const name = this.extractor.identityHeader;
        const user = name === undefined ? undefined : replay[name]?.trim();
        return user ? known({ user, via: 'identity-header', credential: cred }, Infinity) : unknown(Infinity);
      }
      case 'token-cookie':
        return this.#fromToken(cred, this.#cookieToken(replay['cookie']), now);
      case 'authorization': {
        const auth = replay['authorization'];
        if (auth === undefined || auth.length > MAX_TOKEN_CHARS) return unknown(now + this.#cacheMs);
        const bearer = bearerToken(auth);
        if (bearer !== undefined && isJwtLike(bearer)) return this.#fromToken(cred, bearer, now);
        return this.#fromWhoami(cred, undefined);
      }
      case 'session-cookie': {
        const cookie = replay['cookie'];
        if (cookie === undefined || cookie.length > MAX_TOKEN_CHARS) return unknown(now + this.#cacheMs);
        return this.#fromWhoami(cred, undefined);
      }
      default:
        return unknown(now + this.#cacheMs);
    }
  }

  #cookieToken(cookieHeader: string | undefined): string | undefined {
    if (cookieHeader === undefined || cookieHeader.length > MAX_TOKEN_CHARS + 256) return undefined;
    const value = pickCookies(cookieHeader, this.#config.tokenCookie, this.#config.sessionCookie).first;
    return value === undefined ? undefined : unquote(value);
  }

  #fromToken(cred: Credential, token: string | undefined, now: number): Answer | Promise<Answer> {
    if (token === undefined || token.length > MAX_TOKEN_CHARS) return unknown(now + this.#cacheMs);
    const fp = cred.fingerprint;
    let info = this.#tokens.get(fp);
    if (info === undefined) {
      const claims = decodeJwtClaims(token);
      info = { decodable: claims !== undefined, claimUser: usernameFromClaims(claims, this.#config.usernameClaims) };
      this.#tokens.set(fp, info);
    }
    if (!info.decodable) return unknown(now + this.#cacheMs);
    if (this.#secret !== undefined) return this.#fromVerifiedToken(cred, token, this.#secret);
    // no secret: the claim is only a claim until the upstream confirms it
    return this.#fromWhoami(cred, info.claimUser);
  }

  async #fromVerifiedToken(cred: Credential, token: string, secret: Uint8Array): Promise<Answer> {
    const outcome = await verifyToken(token, secret, this.#nowMs());
    if (!outcome.ok) {
      this.#log.debug({ fingerprint: cred.fingerprint, reason: outcome.reason }, 'identity: token refused');
      return unknown(this.#nowMs() + this.#cacheMs);
    }
    const user = usernameFromClaims(outcome.payload, this.#config.usernameClaims);
    // a genuine token without a usable claim: the upstream can still say whose it is
    if (user === undefined) return this.#fromWhoami(cred, undefined);
    const exp = outcome.payload.exp;
    const expiresAtMs = typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : Infinity;
    return known({ user, via: 'verified-token', credential: cred }, expiresAtMs);
  }

  /** Asks who-am-I; with a claim, the answer only counts when it names the claimed user. */
  async #fromWhoami(cred: Credential, claim: string | undefined): Promise<Answer> {
    this.#whoamiCalls++;
    let answer: unknown;
    try {
      answer = await this.#whoami(cred);
    } catch (err) {
      this.#whoamiFailures++;
      this.#warn({ fingerprint: cred.fingerprint, err: err instanceof Error ? err.message : String(err) }, 'identity: who-am-I unavailable');
      return unknown(this.#nowMs() + this.#failureCacheMs);
    }
    const expiresAtMs = this.#nowMs() + this.#cacheMs;
    const user = typeof answer === 'string' ? answer.trim() : '';
    if (user === '') return unknown(expiresAtMs);
    if (claim === undefined) return known({ user, via: 'whoami', credential: cred }, expiresAtMs);
    if (user !== claim) {
      this.#warn({ fingerprint: cred.fingerprint, claim, whoami: user }, 'identity: token claim and who-am-I disagree; check PROXY_USERNAME_CLAIMS');
      return unknown(expiresAtMs);
    }
    return known({ user, via: 'token-claim', credential: cred }, expiresAtMs);
  }

  /** warn, at most once per WARN_EVERY_MS, counting what was held back */
  #warn(obj: Record<string, unknown>, msg: string): void {
    const now = this.#nowMs();
    if (now - this.#lastWarnMs < WARN_EVERY_MS) {
      this.#suppressedWarnings++;
      this.#log.debug(obj, msg);
      return;
    }
    this.#lastWarnMs = now;
    const suppressed = this.#suppressedWarnings;
    this.#suppressedWarnings = 0;
    this.#log.warn(suppressed > 0 ? { ...obj, suppressed } : obj, msg);
  }
}

function known(identity: Identity, expiresAtMs: number): Answer {
  return { identity: Object.freeze(identity), expiresAtMs };
}

function unknown(expiresAtMs: number): Answer {
  return { identity: undefined, expiresAtMs };
}
