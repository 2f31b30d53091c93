/**
 * Reading JWTs without trusting them: shape check, safe payload decode, expiry, user-name claim.
 * Nothing here throws on hostile input; anything odd is "undefined".
 */

/** Tokens longer than this are refused outright (real ones are a few hundred bytes). */
export const MAX_TOKEN_CHARS = 16 * 1024;

// header.payload.signature, base64url; an empty signature is allowed so that `alg: none`
// tokens are still recognised as JWTs (and then rejected) rather than treated as opaque
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export type JwtClaims = Readonly<Record<string, unknown>>;

/** Drops one pair of surrounding double quotes (a quoted cookie value). */
export function unquote(value: string): string {
  return value.length >= 2 && value.charCodeAt(0) === 0x22 && value.charCodeAt(value.length - 1) === 0x22
    ? value.slice(1, -1)
    : value;
}

/** True when the value has the three-part base64url shape of a compact JWS and is not oversized. */
export function isJwtLike(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_TOKEN_CHARS && JWT_SHAPE.test(value);
}

function decodeJsonObject(part: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
    return parsed as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** The JWT payload as an object, or undefined when the value is not a decodable JWT. */
export function decodeJwtClaims(value: unknown): JwtClaims | undefined {
  if (!isJwtLike(value)) return undefined;
  const first = value.indexOf('.');
  const second = value.indexOf('.', first + 1);
  if (decodeJsonObject(value.slice(0, first)) === undefined) return undefined;
  return decodeJsonObject(value.slice(first + 1, second));
}

/** `exp` of the claims in ms, when it is a finite number. */
export function claimsExpiryMs(claims: JwtClaims | undefined): number | undefined {
  const exp = claims?.['exp'];
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
}

/** `exp` of a JWT in ms, or undefined (not a JWT, no exp, exp not a number). */
export function jwtExpiryMs(value: unknown): number | undefined {
  return claimsExpiryMs(decodeJwtClaims(value));
}

/** The first claim of `names` that is a non-empty string (trimmed); non-string claims are skipped. */
export function usernameFromClaims(claims: JwtClaims | undefined, names: readonly string[]): string | undefined {
  if (!claims) return undefined;
  for (const name of names) {
    if (!Object.prototype.hasOwnProperty.call(claims, name)) continue;
    const v = claims[name];
    if (typeof v !== 'string') continue;
    const user = v.trim();
    if (user !== '') return user;
  }
  return undefined;
}

/** The token of an `Authorization: Bearer <token>` value, or undefined for other schemes. */
export function bearerToken(authorization: string): string | undefined {
  const m = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  return m ? m[1] : undefined;
}
