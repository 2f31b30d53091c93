/**
 * Which requests are something a person did. A request counts unless a rule says otherwise;
 * the first rule that matches decides, and its name is kept for "why was I (not) logged out?".
 */
import picomatch from 'picomatch';
import { transportVerdict } from './transports.js';

export interface Verdict {
  readonly counted: boolean;
  /** `counted`, `upstream-<status>`, `background-header`, `transport:<name>`, `passive:<rule as configured>` */
  readonly rule: string;
}

export interface ActivityRulesOptions {
  /** `[METHOD ]glob`, e.g. `GET /panopticon/server/rest/data/**` */
  passivePaths: readonly string[];
  backgroundHeader: { readonly name: string; readonly value: string };
}

interface PassiveRule {
  readonly method: string | undefined;
  readonly test: (path: string) => boolean;
  readonly verdict: Verdict;
}

const COUNTED: Verdict = Object.freeze({ counted: true, rule: 'counted' });
const BACKGROUND: Verdict = Object.freeze({ counted: false, rule: 'background-header' });
const METHOD_PREFIX = /^([A-Za-z]+)\s+(\/.*)$/;

export class ActivityRulesError extends Error {
  override name = 'ActivityRulesError';
}

export class ActivityRules {
  readonly #passive: readonly PassiveRule[];
  readonly #backgroundName: string;
  readonly #backgroundValue: string;
  readonly #rejected = new Map<number, Verdict>();

  constructor(opts: ActivityRulesOptions) {
    this.#passive = opts.passivePaths.map(compileRule);
    this.#backgroundName = opts.backgroundHeader.name.toLowerCase();
    this.#backgroundValue = opts.backgroundHeader.value.toLowerCase();
  }

  /**
   * Decides before the upstream answered (headers and path only). Returns the passive verdict, or
   * undefined when the request would count if the upstream accepts it.
   */
  passiveVerdict(method: string, path: string, headers: Readonly<Record<string, string | string[] | undefined>>): Verdict | undefined {
    const marker = headers[this.#backgroundName];
    if (marker !== undefined && headerHas(marker, this.#backgroundValue)) return BACKGROUND;
    const transport = transportVerdict(path);
    if (transport !== undefined) return transport;
    for (const rule of this.#passive) {
      if ((rule.method === undefined || rule.method === method) && rule.test(path)) return rule.verdict;
    }
    return undefined;
  }

  /** The full decision once the upstream status is known. */
  classify(method: string, path: string, headers: Readonly<Record<string, string | string[] | undefined>>, statusCode: number): Verdict {
    return this.passiveVerdict(method, path, headers) ?? this.statusVerdict(statusCode);
  }

  /** Only requests the upstream accepted count: a forged or expired credential keeps nobody alive. */
  statusVerdict(statusCode: number): Verdict {
    if (statusCode !== 401 && statusCode !== 403) return COUNTED;
    let v = this.#rejected.get(statusCode);
    if (!v) this.#rejected.set(statusCode, (v = Object.freeze({ counted: false, rule: `upstream-${statusCode}` })));
    return v;
  }
}

function compileRule(spec: string): PassiveRule {
  const trimmed = spec.trim();
  const m = METHOD_PREFIX.exec(trimmed);
  const method = m ? m[1]!.toUpperCase() : undefined;
  const glob = m ? m[2]! : trimmed;
  if (!glob.startsWith('/')) {
    throw new ActivityRulesError(`passive path rule ${JSON.stringify(spec)} is not valid: expected "[METHOD ]/glob", e.g. "GET /panopticon/server/rest/data/**"`);
  }
  const test = picomatch(glob, { dot: true });
  return { method, test, verdict: Object.freeze({ counted: false, rule: `passive:${trimmed}` }) };
}

function headerHas(value: string | string[], expected: string): boolean {
  if (Array.isArray(value)) return value.some((v) => v.trim().toLowerCase() === expected);
  return value.trim().toLowerCase() === expected;
}
