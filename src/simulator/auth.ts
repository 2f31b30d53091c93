/**
 * Panopticon simulator: token issuing and working out who sent a request.
 *
 * Accepted credentials, tried in this order, the first valid one wins:
 *   Authorization: Bearer <jwt>, Authorization: Basic <user:password>, the `ptoken` cookie (a JWT),
 *   the `SESSION` cookie (opaque). A JWT must carry a good HS256 signature, must not be expired, and
 *   its login (looked up by `jti`) must still exist: logging out "deletes the token file".
 */
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import { parse as parseCookies } from 'cookie';
import type { IncomingHttpHeaders } from 'node:http';
import type { Login, LoginRegistry } from './licenses.js';
import type { SimUser } from './users.js';

export const TOKEN_COOKIE = 'ptoken';
export const SESSION_COOKIE = 'SESSION';
export const TOKEN_LIFETIME_SEC = 7 * 24 * 60 * 60;

export type CredentialKind = 'bearer' | 'basic' | 'ptoken' | 'session';

export interface Identity {
  readonly user: SimUser;
  readonly via: CredentialKind;
  /** the login the credential belongs to; undefined for Basic, which is stateless */
  readonly login: Login | undefined;
}

export interface IssueTokenOptions {
  /** token lifetime; default 7 days */
  lifetimeSec?: number;
  /** `iat`; default now */
  issuedAtSec?: number;
  /** also create a SESSION id for the login */
  withSession?: boolean;
}

export interface IssuedLogin {
  token: string;
  sessionId: string | undefined;
  login: Login;
}

export function newSessionId(): string {
  return randomBytes(24).toString('base64url');
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function unquote(value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
}

/** Which kinds of credential a request carries, valid or not (for records; never the values). */
export function presentedKinds(headers: IncomingHttpHeaders): CredentialKind[] {
  const kinds: CredentialKind[] = [];
  const scheme = headers.authorization?.trim().split(/\s+/, 1)[0]?.toLowerCase();
  if (scheme === 'bearer' || scheme === 'basic') kinds.push(scheme);
  const cookies = headers.cookie ? parseCookies(headers.cookie) : {};
  if (cookies[TOKEN_COOKIE]) kinds.push('ptoken');
  if (cookies[SESSION_COOKIE]) kinds.push('session');
  return kinds;
}

export class Authenticator {
  private readonly key: Uint8Array;
  private readonly usersByName: ReadonlyMap<string, SimUser>;

  constructor(secret: string, users: readonly SimUser[], private readonly logins: LoginRegistry) {
    this.key = new TextEncoder().encode(secret);
    this.usersByName = new Map(users.map((u) => [u.username, u]));
  }

  user(username: string): SimUser | undefined {
    return this.usersByName.get(username);
  }

  /** The user when the password matches. */
  checkPassword(username: string, password: string): SimUser | undefined {
    const user = this.usersByName.get(username);
    return user && sameText(user.password, password) ? user : undefined;
  }

  /** Creates a login (checking out the user's units) and signs its token. */
  async createLogin(user: SimUser, opts: IssueTokenOptions = {}): Promise<IssuedLogin> {
    const nowMs = Date.now();
    const issuedAtSec = opts.issuedAtSec ?? Math.floor(nowMs / 1000);
    const jti = randomUUID();
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(user.username)
      .setIssuedAt(issuedAtSec)
      .setExpirationTime(issuedAtSec + (opts.lifetimeSec ?? TOKEN_LIFETIME_SEC))
      .setJti(jti)
      .sign(this.key);
    const sessionId = opts.withSession ? newSessionId() : undefined;
    const login: Login = { id: jti, username: user.username, role: user.role, sessionId, createdAtMs: nowMs };
    this.logins.add(login);
    return { token, sessionId, login };
  }

  /** The login behind a JWT, or undefined (bad signature, expired, unknown user, login deleted). */
  async loginOfToken(token: string): Promise<Login | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'] });
      if (typeof payload.jti !== 'string' || typeof payload.sub !== 'string') return undefined;
      const login = this.logins.get(payload.jti);
      return login && login.username === payload.sub ? login : undefined;
    } catch {
      return undefined;
    }
  }

  private fromLogin(login: Login | undefined, via: CredentialKind): Identity | undefined {
    const user = login && this.usersByName.get(login.username);
    return user ? { user, via, login } : undefined;
  }

  private fromBasic(encoded: string): Identity | undefined {
    const decoded = Buffer.from(encoded, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return undefined;
    const user = this.checkPassword(decoded.slice(0, colon), decoded.slice(colon + 1));
    return user ? { user, via: 'basic', login: undefined } : undefined;
  }

  /** Who sent these headers, or undefined. */
  async identify(headers: IncomingHttpHeaders): Promise<Identity | undefined> {
    const authorization = headers.authorization?.trim() ?? '';
    const space = authorization.indexOf(' ');
    const scheme = space > 0 ? authorization.slice(0, space).toLowerCase() : '';
    const value = space > 0 ? authorization.slice(space + 1).trim() : '';
    if (scheme === 'bearer') {
      const found = this.fromLogin(await this.loginOfToken(value), 'bearer');
      if (found) return found;
    } else if (scheme === 'basic') {
      const found = this.fromBasic(value);
      if (found) return found;
    }
    const cookies = headers.cookie ? parseCookies(headers.cookie) : {};
    const token = cookies[TOKEN_COOKIE];
    if (token) {
      const found = this.fromLogin(await this.loginOfToken(unquote(token)), 'ptoken');
      if (found) return found;
    }
    const session = cookies[SESSION_COOKIE];
    if (session) return this.fromLogin(this.logins.bySession(unquote(session)), 'session');
    return undefined;
  }
}
