/**
 * The admin listener: health, readiness, Prometheus metrics, the sessions API and the admin page.
 * Built here, not listening: the caller listens on config.adminHost:config.adminPort.
 *
 * Session views carry counts only (credentials, sockets); credential values never leave the engine.
 */
import { randomBytes } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance, type FastifyReply } from 'fastify';
import type pino from 'pino';
import type { DeploymentConfig } from '../config/deployment.js';
import type { SessionEngine, SessionView } from '../sessions/engine.js';
import type { RequestNote } from '../sessions/store.js';
import { RECENT_NOTES_MAX } from '../sessions/store.js';
import type { SocketRegistry, UserReachability } from '../notifications/registry.js';
import { systemClock } from '../sessions/clock.js';
import type { ProxyMetrics } from './metrics.js';
import type { PatternView, PeriodicDetector } from '../activity/periodic.js';
import { intervalText } from '../activity/periodic.js';
import { assertAdminBindingSafe, registerAdminAuth } from './auth.js';
import { HEALTH_PATHS, registerHealthRoutes } from './health.js';
import { ActivityHistory, registerHistoryRoute } from './history.js';
import { adminPageCsp, adminPageHtml } from './page.js';
import { upstreamJson, type UpstreamProviders } from './upstream.js';

export interface AdminDeps {
  config: DeploymentConfig;
  engine: SessionEngine;
  /** the timers recognised per user (undefined when periodic detection is off) */
  periodic?: Pick<PeriodicDetector, 'describe' | 'noteGenuine'>;
  registry: SocketRegistry;
  metrics: ProxyMetrics;
  logger: pino.Logger;
  /** true once the properties were loaded (from the file or defaults) */
  settingsLoaded(): boolean;
  /** checks the upstream answers at all (any HTTP status counts); default: a HEAD to config.upstream, cached ~2 s */
  upstreamReachable?(): Promise<boolean>;
  /** audit logger for forced logouts / extends */
  audit: pino.Logger;
  /** the engine's clock, for "now" and countdowns (default: the system clock) */
  clock?: { now(): number };
  /** store=redis: open sockets of a user on every replica */
  replicas?: { socketsByReplica(user: string): Record<string, number> };
  /** store=redis: true while Redis is unreachable */
  storeDegraded?(): boolean;
  /** what the proxy found out about the upstream (GET /admin/upstream); absent: 404 */
  upstream?: UpstreamProviders;
}

/** One user's session as the admin API shows it. */
export interface AdminSessionJson {
  user: string;
  state: SessionView['state'];
  exempt: boolean;
  lastActivity: { atMs: number; iso: string; method: string; path: string } | null;
  idleSinceMs: number;
  deadlineMs: number | null;
  deadlineIso: string | null;
  msUntilTimeout: number | null;
  warned: boolean;
  warnAtMs: number | null;
  loggedOutAtMs: number | null;
  openSockets: number;
  /** store=redis: open sockets per replica id */
  socketsByReplica?: Record<string, number>;
  /** whether the user can be warned: notification sockets that can / cannot carry a warning, HTTP transport seen */
  reachability: UserReachability;
  credentials: number;
}

/** A request pattern of a user as the admin API shows it. */
export interface AdminPatternJson {
  method: string;
  shape: string;
  state: PatternView['state'];
  intervalMs: number | null;
  interval: string | null;
  timerSinceMs: number | null;
  timerSinceIso: string | null;
  seen: number;
  timerRequests: number;
  lastSeenMs: number;
}

export interface AdminNoteJson {
  atMs: number;
  iso: string;
  method: string;
  path: string;
  counted: boolean;
  rule: string;
}

const PUBLIC_PATHS = new Set([...HEALTH_PATHS, '/admin', '/']);

export async function buildAdminServer(deps: AdminDeps): Promise<FastifyInstance> {
  const { config, engine, metrics, audit } = deps;
  // reachability describes this replica's sockets of the user (store=redis: the others' are counted, not described)
  const reachability = (user: string) => deps.registry.reachability(user);
  const sockets: SocketCounts = deps.replicas
    ? { count: (user) => sum(deps.replicas!.socketsByReplica(user)), byReplica: (user) => deps.replicas!.socketsByReplica(user), reachability }
    : { count: (user) => deps.registry.countByUser(user), reachability };
  assertAdminBindingSafe(config);
  const nowMs = () => (deps.clock ?? systemClock).now();

  const app = Fastify({
    loggerInstance: deps.logger.child({ listener: 'admin' }),
    // scrapes and page refreshes every few seconds would drown the log
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: 1024 },
    return503OnClosing: true,
    // malformed URLs and the like, before any route: the same JSON shape as other errors
    frameworkErrors: (err, _req, reply) => {
      void (reply as unknown as FastifyReply).code(400).send({ error: 'bad request', message: err.message });
    },
  }) as unknown as FastifyInstance;

  app.addHook('onSend', async (_req, reply, payload) => {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    reply.header('x-content-type-options', 'nosniff');
    return payload;
  });
  registerAdminAuth(app, { token: config.adminToken || undefined, publicPaths: PUBLIC_PATHS });
  registerHealthRoutes(app, '', deps);

  app.get('/metrics', async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.get('/', async (_req, reply) => reply.redirect('/admin'));

  registerHistoryRoute(app, new ActivityHistory({ metrics, nowMs }));

  app.get('/admin', async (_req, reply) => {
    const nonce = randomBytes(16).toString('base64');
    reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', adminPageCsp(nonce))
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY');
    return adminPageHtml(nonce);
  });

  const upstream = deps.upstream;
  if (upstream) app.get('/admin/upstream', async () => upstreamJson(upstream, nowMs()));

  app.get('/admin/sessions', async () => {
    const now = nowMs();
    const s = engine.settings;
    const sessions = engine.list().sort(byDeadline).map((v) => sessionJson(v, sockets, now));
    return {
      now,
      settings: {
        enabled: s.enabled,
        timeoutMinutes: s.timeoutMinutes,
        notifyBeforeMinutes: s.notifyBeforeMinutes,
        exemptUsers: [...s.exemptUsers].sort(),
      },
      mode: config.mode,
      sessions,
    };
  });

  app.get<{ Params: { user: string } }>('/admin/sessions/:user', async (req, reply) => {
    const view = engine.describe(req.params.user);
    if (!view) return unknownUser(reply, req.params.user);
    const now = nowMs();
    return {
      ...sessionJson(view, sockets, now),
      recent: view.recent.map(noteJson),
      patterns: (deps.periodic?.describe(view.user, now) ?? []).map(patternJson),
      explanation: explain(view, now, config.mode),
    };
  });

  app.post<{ Params: { user: string } }>('/admin/sessions/:user/logout', async (req, reply) => {
    const { user } = req.params;
    const view = engine.describe(user);
    if (!view) return unknownUser(reply, user);
    if (view.state === 'logged-out' || !(await engine.forceLogout(user))) {
      return reply.code(409).send({ error: 'conflict', message: `${user} is already logged out` });
    }
    audit.info({ event: 'admin-force-logout', user, mode: config.mode, from: req.ip }, 'admin forced a logout');
    return reply.code(202).send({ loggedOut: true });
  });

  app.post<{ Params: { user: string } }>('/admin/sessions/:user/extend', async (req, reply) => {
    const { user } = req.params;
    const before = engine.describe(user);
    if (!before) return unknownUser(reply, user);
    if (before.state === 'logged-out') {
      // Extending would start a brand-new session without credentials; the user must sign in again.
      return reply.code(409).send({ error: 'conflict', message: `${user} is already logged out; nothing to extend` });
    }
    engine.extend(user);
    const after = engine.describe(user)!;
    if (after.lastActivity) deps.periodic?.noteGenuine(user, after.lastActivity);
    audit.info(
      { event: 'admin-extend', user, from: req.ip, previousDeadlineMs: before.deadlineMs ?? null, deadlineMs: after.deadlineMs ?? null },
      'admin extended a session',
    );
    return sessionJson(after, sockets, nowMs());
  });

  app.setNotFoundHandler(async (req, reply) => reply.code(404).send({ error: 'not found', message: `no admin endpoint ${req.method} ${pathOnly(req.url)}` }));

  app.setErrorHandler(async (err: { statusCode?: number; message?: string }, req, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'admin request failed');
    return reply.code(status).send({ error: status >= 500 ? 'internal error' : 'bad request', message: status >= 500 ? 'see the proxy log' : err.message });
  });

  return app;
}

// ---- views -------------------------------------------------------------------------------

interface SocketCounts {
  count(user: string): number;
  reachability(user: string): UserReachability;
  byReplica?(user: string): Record<string, number>;
}

function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

function sessionJson(v: SessionView, sockets: SocketCounts, nowMs: number): AdminSessionJson {
  const last = v.lastActivity;
  const json: AdminSessionJson = {
    user: v.user,
    state: v.state,
    exempt: v.exempt,
    lastActivity: last ? { atMs: last.atMs, iso: iso(last.atMs), method: last.method, path: last.path } : null,
    idleSinceMs: v.idleSinceMs,
    deadlineMs: v.deadlineMs ?? null,
    deadlineIso: v.deadlineMs === undefined ? null : iso(v.deadlineMs),
    msUntilTimeout: v.deadlineMs === undefined ? null : Math.max(0, v.deadlineMs - nowMs),
    warned: v.warned,
    warnAtMs: v.warnAtMs ?? null,
    loggedOutAtMs: v.loggedOutAtMs ?? null,
    openSockets: sockets.count(v.user),
    reachability: sockets.reachability(v.user),
    credentials: v.credentials,
  };
  if (sockets.byReplica) json.socketsByReplica = sockets.byReplica(v.user);
  return json;
}

function noteJson(n: RequestNote): AdminNoteJson {
  return { atMs: n.atMs, iso: iso(n.atMs), method: n.method, path: n.path, counted: n.counted, rule: n.rule };
}

function patternJson(p: PatternView): AdminPatternJson {
  return {
    method: p.method,
    shape: p.shape,
    state: p.state,
    intervalMs: p.intervalMs === undefined ? null : Math.round(p.intervalMs),
    interval: p.intervalMs === undefined ? null : intervalText(p.intervalMs),
    timerSinceMs: p.timerSinceMs ?? null,
    timerSinceIso: p.timerSinceMs === undefined ? null : iso(p.timerSinceMs),
    seen: p.seen,
    timerRequests: p.timerRequests,
    lastSeenMs: p.lastSeenMs,
  };
}

/** Earliest deadline first; users without a deadline last, by name. */
function byDeadline(a: SessionView, b: SessionView): number {
  const da = a.deadlineMs ?? Number.POSITIVE_INFINITY;
  const db = b.deadlineMs ?? Number.POSITIVE_INFINITY;
  if (da !== db) return da < db ? -1 : 1;
  return a.user < b.user ? -1 : a.user > b.user ? 1 : 0;
}

function unknownUser(reply: FastifyReply, user: string) {
  return reply.code(404).send({ error: 'not found', message: `no session for user ${JSON.stringify(user)}` });
}

function pathOnly(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

// ---- "why?" in plain English ---------------------------------------------------------------

/** `14:05:00Z` on the same UTC day as now, else `2024-01-02 14:05:00Z`. */
export function clockText(ms: number, nowMs: number): string {
  const at = iso(ms);
  const day = at.slice(0, 10);
  const time = at.slice(11, 19) + 'Z';
  return day === iso(nowMs).slice(0, 10) ? time : `${day} ${time}`;
}

/** `3m 12s`, `2h 5m 0s`, `45s` */
export function durationText(ms: number): string {
  const totalS = Math.max(0, Math.round(ms / 1000));
  const d = Math.floor(totalS / 86_400);
  const h = Math.floor((totalS % 86_400) / 3600);
  const m = Math.floor((totalS % 3600) / 60);
  const s = totalS % 60;
  const parts: string[] = [];
  if (d) parts.push(`${d}d`);
  if (d || h) parts.push(`${h}h`);
  if (d || h || m) parts.push(`${m}m`);
  parts.push(`${s}s`);
  return parts.join(' ');
}

export function explain(v: SessionView, nowMs: number, mode: DeploymentConfig['mode']): string {
  const at = (ms: number) => clockText(ms, nowMs);
  const last = v.lastActivity;
  const because = last
    ? `the last counted request was ${last.method} ${last.path} at ${at(last.atMs)}`
    : `nothing counted as activity since timing began at ${at(v.idleSinceMs)}`;
  const since = ignoredSince(v, last ? last.atMs : v.idleSinceMs);

  switch (v.state) {
    case 'logged-out':
      return `${v.user} was logged out at ${at(v.loggedOutAtMs!)} (${durationText(nowMs - v.loggedOutAtMs!)} ago)` +
        `${mode === 'shadow' ? ' (shadow mode: recorded only, the upstream session was left alone)' : ''}; ` +
        'signing in again starts a new session.';
    case 'exempt':
      return `${v.user} is exempt (timeout.session.exception.usernames) and is never logged out for inactivity; ${because}${since}.`;
    case 'untimed':
      return `the timeout is disabled (timeout.session.enabled=false), so ${v.user} is not logged out; ${because}${since}.`;
    default: {
      const deadlineMs = v.deadlineMs!;
      const verb = mode === 'shadow' ? 'would be logged out (shadow mode)' : 'will be logged out';
      const when = deadlineMs > nowMs
        ? `${verb} at ${at(deadlineMs)} (in ${durationText(deadlineMs - nowMs)})`
        : `${mode === 'shadow' ? 'would be' : 'is being'} logged out: the deadline ${at(deadlineMs)} has passed`;
      let warning = '';
      if (v.warned) warning = '; the timeout warning was sent';
      else if (v.warnAtMs !== undefined && v.warnAtMs > nowMs) warning = `; the warning is due at ${at(v.warnAtMs)}`;
      return `${v.user} ${when} because ${because}${since}${warning}.`;
    }
  }
}

/** `; 4 requests since then did not count (passive:GET /x/**)` or '' when none. */
function ignoredSince(v: SessionView, sinceMs: number): string {
  const byRule = new Map<string, number>();
  let count = 0;
  for (const n of v.recent) {
    if (n.counted || n.atMs < sinceMs) continue;
    count++;
    byRule.set(n.rule, (byRule.get(n.rule) ?? 0) + 1);
  }
  if (count === 0) return '';
  // The note buffer is bounded: when it is full of ignored requests, older ones fell out.
  const oldest = v.recent[0];
  const atLeast = v.recent.length >= RECENT_NOTES_MAX && oldest !== undefined && !oldest.counted && oldest.atMs >= sinceMs ? 'at least ' : '';
  const rules = byRule.size === 1 ? [...byRule.keys()][0]! : [...byRule].map(([rule, n]) => `${rule}: ${n}`).join(', ');
  return `; ${atLeast}${count} request${count === 1 && !atLeast ? '' : 's'} since then did not count (${rules})`;
}
