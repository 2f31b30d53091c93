/**
 * CSRF for the upstream logout (Spring Security's cookie form): the browser holds the token in a
 * cookie (PROXY_CSRF_COOKIE, `XSRF-TOKEN`) and echoes it in a header (PROXY_CSRF_HEADER,
 * `X-XSRF-TOKEN`) on state-changing requests. The proxy remembers the freshest token a user's
 * credential came with — from the request's Cookie header or a Set-Cookie in the upstream's
 * answer — and replays both on the logout. Token values are SECRET: never logged or shown.
 */
import { pickCookies } from '../identity/cookies.js';

export interface CsrfNames {
  /** cookie name, e.g. XSRF-TOKEN */
  readonly cookie: string;
  /** header name, e.g. X-XSRF-TOKEN */
  readonly header: string;
}

/** The CSRF cookie's value in a Cookie header (exactly as sent), if present and non-empty. */
export function csrfCookieIn(cookieHeader: string | string[] | undefined, name: string): string | undefined {
  const text = Array.isArray(cookieHeader) ? cookieHeader.join('; ') : cookieHeader;
  if (text === undefined || !text.includes(name)) return undefined;
  const value = pickCookies(text, name, name).first;
  return value === undefined || value === '' ? undefined : value;
}

/**
 * The CSRF token an upstream answer sets (`Set-Cookie: XSRF-TOKEN=...`), if any: the freshest one
 * the browser will present next. A cookie being cleared (empty value) yields undefined.
 */
export function csrfSetBy(setCookie: string | string[] | undefined, name: string): string | undefined {
  if (setCookie === undefined) return undefined;
  let found: string | undefined;
  for (const line of Array.isArray(setCookie) ? setCookie : [setCookie]) {
    const semi = line.indexOf(';');
    const pair = semi === -1 ? line : line.slice(0, semi);
    const eq = pair.indexOf('=');
    if (eq <= 0 || pair.slice(0, eq).trim() !== name) continue;
    const value = pair.slice(eq + 1).trim();
    found = value === '' ? undefined : value;
  }
  return found;
}

/** The header carries the decoded value (as browser clients read it from document.cookie). */
function headerValue(cookieValue: string): string {
  const unquoted = cookieValue.length >= 2 && cookieValue.startsWith('"') && cookieValue.endsWith('"') ? cookieValue.slice(1, -1) : cookieValue;
  try {
    return decodeURIComponent(unquoted);
  } catch {
    return unquoted;
  }
}

/** The credential's replay headers plus the CSRF cookie and header (unchanged without a token). */
export function withCsrf(replay: Readonly<Record<string, string>>, token: string | undefined, names: CsrfNames): Record<string, string> {
  if (token === undefined) return { ...replay };
  const pair = `${names.cookie}=${token}`;
  const cookie = replay['cookie'];
  return { ...replay, cookie: cookie ? `${cookie}; ${pair}` : pair, [names.header.toLowerCase()]: headerValue(token) };
}
