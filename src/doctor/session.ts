/**
 * The doctor's throwaway session: signs in (form login, a given Cookie header, or a bearer token),
 * keeps the cookies the server sets, and builds the headers that replay the credential.
 * Values are SECRET: only cookie NAMES ever reach the output.
 */
import type { DoctorArgs } from './args.js';

export class CookieJar {
  readonly #cookies = new Map<string, string>();

  constructor(header?: string) {
    for (const pair of (header ?? '').split(';')) {
      const eq = pair.indexOf('=');
      if (eq > 0) this.#cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
  }

  /** Applies Set-Cookie lines (an empty value or Max-Age=0 removes the cookie). */
  update(setCookies: readonly string[]): void {
    for (const line of setCookies) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a));
      if (value === '' || expired) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  get(name: string): string | undefined {
    return this.#cookies.get(name);
  }

  names(): string[] {
    return [...this.#cookies.keys()];
  }

  entries(): Array<[string, string]> {
    return [...this.#cookies.entries()];
  }

  /** The Cookie header, leaving out the named cookies. */
  header(except: readonly string[] = []): string {
    return this.entries().filter(([n]) => !except.includes(n)).map(([n, v]) => `${n}=${v}`).join('; ');
  }
}

export class DoctorSession {
  readonly jar: CookieJar;
  readonly #bearer: string | undefined;

  constructor(readonly base: URL, args: Pick<DoctorArgs, 'cookie' | 'token'>) {
    this.jar = new CookieJar(args.cookie);
    this.#bearer = args.token;
  }

  /** SECRET: headers that replay the credential, optionally without some cookies. */
  replay(exceptCookies: readonly string[] = []): Record<string, string> {
    const out: Record<string, string> = {};
    const cookie = this.jar.header(exceptCookies);
    if (cookie) out['cookie'] = cookie;
    if (this.#bearer) out['authorization'] = `Bearer ${this.#bearer}`;
    return out;
  }

  /** A request with the credential; Set-Cookie answers update the jar. Redirects are not followed. */
  async fetch(path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Response> {
    const res = await fetch(new URL(path, this.base), {
      method: init.method ?? 'GET',
      headers: { ...this.replay(), ...init.headers },
      body: init.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(15_000),
    });
    this.jar.update(res.headers.getSetCookie());
    return res;
  }

  /**
   * Form login at loginPath. Loads the login page first (a Spring server sets its CSRF cookie
   * there and puts a hidden `_csrf` field in the form) and sends the token back. Returns a
   * plain problem description, or undefined on success (judged later by "who am I").
   */
  async formLogin(loginPath: string, user: string, password: string, csrf: { cookie: string; header: string }): Promise<string | undefined> {
    let page: string;
    try {
      const res = await this.fetch(loginPath);
      page = await res.text();
      if (res.status >= 400) return `the login page ${loginPath} answered ${res.status}`;
    } catch (err) {
      return `cannot reach ${new URL(loginPath, this.base).origin}: ${(err as Error).message}`;
    }
    const form = new URLSearchParams({ username: user, password });
    const hidden = /name=["']_csrf["'][^>]*value=["']([^"']+)["']|value=["']([^"']+)["'][^>]*name=["']_csrf["']/.exec(page);
    const token = hidden?.[1] ?? hidden?.[2];
    if (token) form.set('_csrf', token);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    const cookieToken = this.jar.get(csrf.cookie);
    if (cookieToken) headers[csrf.header.toLowerCase()] = decodeURIComponent(cookieToken);
    const res = await this.fetch(loginPath, { method: 'POST', headers, body: form.toString() });
    await res.body?.cancel();
    if (res.status === 401 || res.status === 403) return `the sign-in was refused (${res.status}): check the user name and password`;
    if (res.status >= 400) return `the sign-in answered ${res.status}`;
    return undefined;
  }
}
