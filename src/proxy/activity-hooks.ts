/**
 * The product's data flow for proxied traffic, as ProxyHooks:
 *   request → credentials → (refuse a logged-out one) → identity → forward →
 *   upstream answer → activity verdict (rules, then periodic detection) → session engine.
 * Identity lookups that need the upstream run while the request is being forwarded, so they
 * add no latency; the verdict is applied once both are known.
 */
import type { IncomingMessage } from 'node:http';
import type pino from 'pino';
import type { ProxyMode } from '../config/deployment.js';
import type { ProxyMetrics } from '../admin/metrics.js';
import { ruleLabel, type ActivityRules, type Verdict } from '../activity/rules.js';
import type { PeriodicDetector, PeriodicHit } from '../activity/periodic.js';
import { transportOfVerdict } from '../activity/transports.js';
import type { IdentityResolver } from '../identity/resolver.js';
import type { Credential, Identity } from '../identity/types.js';
import type { Clock } from '../sessions/clock.js';
import type { SessionEngine } from '../sessions/engine.js';
import type { HttpDecision, ProxyHooks, UpgradeDecision, UpstreamHeaders } from './hooks.js';
import type { StaleCredentials } from './stale-credentials.js';
import { kActivity, type TrackedRequest } from './request-state.js';
import { csrfCookieIn, csrfSetBy } from '../logout/csrf.js';

export interface ActivityHooksDeps {
  mode: ProxyMode;
  clock: Clock;
  resolver: IdentityResolver;
  rules: ActivityRules;
  /** undefined when periodic detection is off */
  periodic: PeriodicDetector | undefined;
  engine: SessionEngine;
  stale: StaleCredentials;
  metrics: ProxyMetrics;
  logger: pino.Logger;
  /** the CSRF cookie's name: its freshest value is kept with the credentials for their logout */
  csrfCookie: string;
  /** a known user sent a request of an HTTP socket transport (SockJS xhr..., CometD long poll) */
  onHttpTransport?: (user: string, transport: string) => void;
}

interface RequestContext {
  readonly identity: Identity | undefined | Promise<Identity | undefined>;
  /** decided before the upstream answered: always counts (forced) or never (passive) */
  readonly pre: Verdict | undefined;
  readonly creds: readonly Credential[];
  /** SECRET: the CSRF token the request presented */
  readonly csrf: string | undefined;
}

const NO_DECISION: HttpDecision = Object.freeze({});

export function createActivityHooks(deps: ActivityHooksDeps): ProxyHooks {
  const { resolver, rules, periodic, engine, stale, metrics, clock, logger } = deps;
  const shadow = deps.mode === 'shadow';
  /** the credential that identified an upgrade, keyed by its request headers (as registered) */
  const upgradeCredential = new WeakMap<object, Credential>();

  /** Credentials of a request, after dropping an identity header that came from an untrusted source. */
  function credentialsOf(req: IncomingMessage): Credential[] {
    const remote = req.socket.remoteAddress;
    resolver.stripUntrustedIdentityHeader(req.headers, remote);
    return resolver.extractCredentials(req.headers, remote);
  }

  /** The refusal for a logged-out credential, or undefined to let the request through. */
  function staleCheck(req: IncomingMessage, path: string, creds: readonly Credential[], upgrade: boolean, passive: Verdict | undefined) {
    if (creds.length === 0) return undefined;
    const hit = stale.refusable(creds, clock.now(), !upgrade && passive === undefined);
    if (!hit || (!upgrade && stale.isLoginPath(path))) return undefined;
    metrics.refusedStale.inc({ kind: hit.credential.kind, mode: deps.mode });
    if (shadow) {
      deps.logger.info({ event: 'stale-credential', user: hit.entry.user, path, mode: deps.mode }, 'would refuse a logged-out credential (shadow mode)');
      return undefined;
    }
    return upgrade ? stale.upgradeRefusal : stale.refusalFor(req.method ?? 'GET', req.headers);
  }

  /** The rule that decides, once the upstream answered; periodic detection last (it remembers what it sees). */
  function decide(req: IncomingMessage, path: string, user: string, statusCode: number, pre: Verdict | undefined, responseHeaders: UpstreamHeaders): { verdict: Verdict; hit?: PeriodicHit } {
    const settled = rules.settle(pre, path, req.headers, statusCode, responseHeaders);
    if (settled) return { verdict: settled };
    const hit = periodic?.observe(user, req.method ?? 'GET', path, clock.now());
    return hit ? { verdict: { counted: false, rule: hit.rule }, hit } : { verdict: rules.countedVerdict(req.headers) };
  }

  function apply(req: IncomingMessage, path: string, statusCode: number, ctx: RequestContext, identity: Identity | undefined, csrf: string | undefined, responseHeaders: UpstreamHeaders): void {
    const { pre, creds } = ctx;
    if (!identity) return;
    const method = req.method ?? 'GET';
    const { user, credential } = identity;
    const { verdict, hit } = decide(req, path, user, statusCode, pre, responseHeaders);
    metrics.requests.inc({ counted: verdict.counted ? 'true' : 'false', rule: ruleLabel(verdict.rule) });
    (req as TrackedRequest)[kActivity] = verdict.rule;
    const keep = (c: Credential) => (csrf === undefined ? c : { ...c, csrf });
    if (statusCode === 401 || statusCode === 403) {
      // The upstream did not accept the credential: remember the request, not the credential.
      engine.recordIgnored(user, method, path, rules.statusVerdict(statusCode).rule);
      return;
    }
    if (!shadow && stale.find([credential], clock.now())) return; // answered after its logout
    if (verdict.counted) {
      const record = engine.recordActivity(user, method, path, keep(credential), verdict.rule);
      if (verdict === pre && record.lastActivity) periodic?.noteGenuine(user, record.lastActivity);
    } else {
      engine.seen(user, keep(credential));
      engine.recordIgnored(user, method, path, verdict.rule);
    }
    if (hit) timerFound(user, hit);
    // The request's other credentials (say a SESSION cookie beside the token) belong to the same
    // sign-in: keep them too, so the timeout logs out and refuses every one of them.
    for (const other of creds) if (other !== credential) engine.seen(user, keep(other));
  }

  function noteTransport(identity: RequestContext['identity'], transport: string, note: (user: string, transport: string) => void): void {
    if (!(identity instanceof Promise)) {
      if (identity !== undefined) note(identity.user, transport);
      return;
    }
    identity.then((id) => id !== undefined && note(id.user, transport), () => undefined);
  }

  function timerFound(user: string, hit: PeriodicHit): void {
    if (hit.newlyRecognised) {
      logger.info({ event: 'periodic-recognised', user, rule: hit.rule, intervalMs: Math.round(hit.intervalMs), mode: deps.mode }, 'recognised a timer: these requests no longer count as activity');
    }
    if (hit.retractTo && engine.retractActivity(user, hit.retractTo)) {
      logger.info({ event: 'activity-retracted', user, rule: hit.rule, idleSinceMs: hit.retractTo.atMs, lastRealRequest: `${hit.retractTo.method} ${hit.retractTo.path}`, mode: deps.mode }, "requests counted while a timer was learned are taken back: idle since the last request that was not the timer's");
    }
  }

  return {
    onHttpRequest(req, path) {
      const creds = credentialsOf(req);
      if (creds.length === 0) return NO_DECISION;
      const method = req.method ?? 'GET';
      const forced = rules.forcedVerdict(method, path, req.headers);
      const passive = forced ? undefined : rules.passiveVerdict(method, path, req.headers);
      const refuse = staleCheck(req, path, creds, false, passive);
      if (refuse) return { refuse };
      const identity = resolver.resolve(creds);
      const transport = passive === undefined ? undefined : transportOfVerdict(passive);
      if (transport !== undefined && deps.onHttpTransport !== undefined) noteTransport(identity, transport, deps.onHttpTransport);
      const context: RequestContext = { identity, pre: forced ?? passive, creds, csrf: csrfCookieIn(req.headers.cookie, deps.csrfCookie) };
      return { user: identity instanceof Promise ? undefined : identity?.user, context };
    },

    onHttpResponse(req, path, statusCode, context, headers) {
      const ctx = context as RequestContext | undefined;
      if (!ctx) return;
      const { identity } = ctx;
      // a token the upstream just set is the one the browser presents next: the freshest
      const setCookie = headers['set-cookie'];
      const csrf = (typeof setCookie === 'number' ? undefined : csrfSetBy(setCookie, deps.csrfCookie)) ?? ctx.csrf;
      if (identity instanceof Promise) {
        identity.then(
          (id) => apply(req, path, statusCode, ctx, id, csrf, headers),
          (err: unknown) => deps.logger.error({ err }, 'identity resolution failed'),
        );
      } else {
        apply(req, path, statusCode, ctx, identity, csrf, headers);
      }
    },

    async onUpgrade(req, path): Promise<UpgradeDecision> {
      const creds = credentialsOf(req);
      const refuse = staleCheck(req, path, creds, true, undefined);
      if (refuse) return { refuse };
      if (creds.length === 0) return {};
      const identity = await resolver.resolve(creds);
      if (identity) upgradeCredential.set(req.headers, identity.credential);
      return { user: identity?.user };
    },

    onSocketOpen(rec) {
      // An open socket is not activity, but it shows the user holds a session with this credential.
      if (rec.user === undefined) return;
      engine.seen(rec.user, upgradeCredential.get(rec.headers));
    },
  };
}
