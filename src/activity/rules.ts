/**
 * Which requests are something a person did. A request counts unless a rule says otherwise;
 * the first rule that matches decides, and its name is kept for "why was I (not) logged out?".
 *
 * Order: `sec-fetch-user` and `active:<glob>` (always count) → `background-header`,
 * `transport:<name>` and `passive:<glob>` (never count) → once answered: `upstream-401/403` → `credential-renewal`
 * (not for navigations) → periodic (see periodic.ts, applied by the caller) → `navigate` / `counted`.
 */
import picomatch from 'picomatch';
import { transportVerdict } from './transports.js';

type Headers = Readonly<Record<string, string | string[] | undefined>>;
/** an upstream answer's headers (content-length may be a number) */
type AnswerHeaders = Readonly<Record<string, string | string[] | number | undefined>>;

export interface Verdict {
  readonly counted: boolean;
  /**
   * `counted`, `navigate`, `sec-fetch-user`, `active:<rule>`, `upstream-<status>`,
   * `background-header`, `transport:<name>`, `passive:<rule as configured>`, `credential-renewal`,
   * `periodic:<shape>@<interval>`
   */
  readonly rule: string;
}

export interface ActivityRulesOptions {
  /** `[METHOD ]glob`, e.g. `GET /panopticon/server/rest/data/**` */
  passivePaths: readonly string[];
  backgroundHeader: { readonly name: string; readonly value: string };
  /** `[METHOD ]glob` of requests that always count (they override passive and periodic) */
  activePaths?: readonly string[];
  /** cookies whose renewal alone is not activity */
  tokenCookie?: string;
  sessionCookie?: string;
  /** the login itself sets the credential and is activity */
  loginPath?: string;
}

interface PathRule {
  readonly method: string | undefined;
  readonly test: (path: string) => boolean;
  readonly verdict: Verdict;
}

const COUNTED: Verdict = Object.freeze({ counted: true, rule: 'counted' });
const NAVIGATE: Verdict = Object.freeze({ counted: true, rule: 'navigate' });
const SEC_FETCH_USER: Verdict = Object.freeze({ counted: true, rule: 'sec-fetch-user' });
const CREDENTIAL_RENEWAL: Verdict = Object.freeze({ counted: false, rule: 'credential-renewal' });
const BACKGROUND: Verdict = Object.freeze({ counted: false, rule: 'background-header' });
/** `Max-Age=0` (or negative) or an Expires in 1970: the server removes the cookie, it does not renew it */
const DELETES_COOKIE = /;\s*(max-age\s*=\s*(0|-\d+)\s*(;|$)|expires\s*=[^;]*\b1970\b)/i;
const METHOD_PREFIX = /^([A-Za-z]+)\s+(\/.*)$/;

export class ActivityRulesError extends Error {
  override name = 'ActivityRulesError';
}

export class ActivityRules {
  readonly #passive: readonly PathRule[];
  readonly #active: readonly PathRule[];
  readonly #backgroundName: string;
  readonly #backgroundValue: string;
  readonly #credentialCookies: ReadonlySet<string>;
  readonly #loginPath: string | undefined;
  readonly #rejected = new Map<number, Verdict>();

  constructor(opts: ActivityRulesOptions) {
    this.#passive = opts.passivePaths.map((spec) => compileRule(spec, 'passive', false));
    this.#active = (opts.activePaths ?? []).map((spec) => compileRule(spec, 'active', true));
    this.#backgroundName = opts.backgroundHeader.name.toLowerCase();
    this.#backgroundValue = opts.backgroundHeader.value.toLowerCase();
    this.#credentialCookies = new Set([opts.tokenCookie, opts.sessionCookie].filter((c): c is string => !!c));
    this.#loginPath = opts.loginPath;
  }

  /**
   * Requests that always count, decided before the upstream answered: a navigation the user
   * triggered (`Sec-Fetch-User: ?1`) or a path pinned as activity. Undefined otherwise.
   */
  forcedVerdict(method: string, path: string, headers: Headers): Verdict | undefined {
    if (headerIs(headers['sec-fetch-user'], '?1')) return SEC_FETCH_USER;
    return matchRule(this.#active, method, path);
  }

  /**
   * Decides before the upstream answered (headers and path only). Returns the passive verdict, or
   * undefined when the request would count if the upstream accepts it.
   */
  passiveVerdict(method: string, path: string, headers: Headers): Verdict | undefined {
    const marker = headers[this.#backgroundName];
    if (marker !== undefined && headerIs(marker, this.#backgroundValue)) return BACKGROUND;
    return transportVerdict(path) ?? matchRule(this.#passive, method, path);
  }

  /**
   * An accepted answer that only renews the credential (sets the token or session cookie) to a
   * request that is neither the login nor a page navigation; undefined otherwise.
   */
  answerVerdict(path: string, requestHeaders: Headers, responseHeaders: AnswerHeaders | undefined): Verdict | undefined {
    if (responseHeaders === undefined || this.isNavigation(requestHeaders) || pathOnly(path) === this.#loginPath) return undefined;
    return this.#renewsCredential(responseHeaders['set-cookie']) ? CREDENTIAL_RENEWAL : undefined;
  }

  /** The verdict of a request no rule stopped and that is not periodic. */
  countedVerdict(requestHeaders: Headers): Verdict {
    return this.isNavigation(requestHeaders) ? NAVIGATE : COUNTED;
  }

  /** `Sec-Fetch-Mode: navigate`: a page load (by hand, or by an auto-refreshing page). */
  isNavigation(headers: Headers): boolean {
    return headerIs(headers['sec-fetch-mode'], 'navigate');
  }

  /** A Set-Cookie that gives the token or session cookie a value (not one that deletes it). */
  #renewsCredential(setCookie: string | string[] | number | undefined): boolean {
    if (setCookie === undefined || typeof setCookie === 'number' || this.#credentialCookies.size === 0) return false;
    for (const line of Array.isArray(setCookie) ? setCookie : [setCookie]) {
      const eq = line.indexOf('=');
      if (eq <= 0 || !this.#credentialCookies.has(line.slice(0, eq).trim())) continue;
      const semi = line.indexOf(';', eq);
      const value = (semi === -1 ? line.slice(eq + 1) : line.slice(eq + 1, semi)).trim();
      if (value !== '' && value !== '""' && !DELETES_COOKIE.test(line)) return true;
    }
    return false;
  }

  /**
   * The decision once the upstream answered, given what was decided before (`pre`: forced or
   * passive). Undefined when no rule applies: the request counts unless it is a timer's.
   */
  settle(pre: Verdict | undefined, path: string, requestHeaders: Headers, statusCode: number, responseHeaders: AnswerHeaders | undefined): Verdict | undefined {
    if (pre && !pre.counted) return pre;
    const status = this.statusVerdict(statusCode);
    if (!status.counted) return status;
    return pre ?? this.answerVerdict(path, requestHeaders, responseHeaders);
  }

  /** The full decision once the upstream answered, periodic detection aside. */
  classify(method: string, path: string, headers: Headers, statusCode: number, responseHeaders?: AnswerHeaders): Verdict {
    const pre = this.forcedVerdict(method, path, headers) ?? this.passiveVerdict(method, path, headers);
    return this.settle(pre, path, headers, statusCode, responseHeaders) ?? this.countedVerdict(headers);
  }

  /** Only requests the upstream accepted count: a forged or expired credential keeps nobody alive. */
  statusVerdict(statusCode: number): Verdict {
    if (statusCode !== 401 && statusCode !== 403) return COUNTED;
    let v = this.#rejected.get(statusCode);
    if (!v) this.#rejected.set(statusCode, (v = Object.freeze({ counted: false, rule: `upstream-${statusCode}` })));
    return v;
  }
}

/** The metrics label of a rule: periodic rules carry the path shape, the label only their kind. */
export function ruleLabel(rule: string): string {
  return rule.startsWith('periodic:') ? 'periodic' : rule;
}

function compileRule(spec: string, kind: 'passive' | 'active', counted: boolean): PathRule {
  const trimmed = spec.trim();
  const m = METHOD_PREFIX.exec(trimmed);
  const method = m ? m[1]!.toUpperCase() : undefined;
  const glob = m ? m[2]! : trimmed;
  if (!glob.startsWith('/')) {
    throw new ActivityRulesError(`${kind} path rule ${JSON.stringify(spec)} is not valid: expected "[METHOD ]/glob", e.g. "GET /panopticon/server/rest/data/**"`);
  }
  const test = picomatch(glob, { dot: true });
  return { method, test, verdict: Object.freeze({ counted, rule: `${kind}:${trimmed}` }) };
}

function matchRule(rules: readonly PathRule[], method: string, path: string): Verdict | undefined {
  for (const rule of rules) {
    if ((rule.method === undefined || rule.method === method) && rule.test(path)) return rule.verdict;
  }
  return undefined;
}

function headerIs(value: string | string[] | undefined, expected: string): boolean {
  if (value === undefined) return false;
  if (Array.isArray(value)) return value.some((v) => v.trim().toLowerCase() === expected);
  return value.trim().toLowerCase() === expected;
}

function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}
