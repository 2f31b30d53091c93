/**
 * Liveness and readiness, shared by both listeners: the admin listener serves them at `/healthz`
 * and `/readyz`, the main listener under `config.internalPrefix`.
 *
 *   alive  = the process answers.
 *   ready  = the properties were loaded (from the file or defaults) and the upstream answers at all
 *            (any HTTP status counts; only "no answer" means not ready).
 *   degraded (store=redis) = Redis is unreachable: still ready (200), because proxying goes on;
 *            the answer says `degraded`.
 */
import http from 'node:http';
import https from 'node:https';
import type { FastifyInstance } from 'fastify';
import type { DeploymentConfig } from '../config/deployment.js';

export interface ReadinessDeps {
  config: Pick<DeploymentConfig, 'upstream' | 'upstreamConnectTimeoutMs'>;
  /** true once the properties were loaded (from the file or defaults) */
  settingsLoaded(): boolean;
  /** whether the upstream answers at all; defaults to a cached probe of config.upstream */
  upstreamReachable?(): Promise<boolean>;
  /** store=redis: true while Redis is unreachable (still ready: proxying does not need Redis) */
  storeDegraded?(): boolean;
}

export interface ReadinessReport {
  ready: boolean;
  degraded: boolean;
  checks: { settings: boolean; upstream: boolean; store?: boolean };
}

const PROBE_TIMEOUT_MS = 2_000;
const PROBE_CACHE_MS = 2_000;

export interface UpstreamProbeOptions {
  /** one probe gives up after this long (default 2 s, never more than the upstream connect timeout) */
  timeoutMs?: number;
  /** a result is reused for this long (default 2 s) */
  cacheMs?: number;
  nowMs?: () => number;
}

/**
 * A HEAD request to the upstream origin; any response at all counts as reachable. Results are
 * cached and concurrent callers share one probe, so frequent health checks cost one request.
 */
export function createUpstreamProbe(upstream: URL, opts: UpstreamProbeOptions = {}): () => Promise<boolean> {
  const timeoutMs = opts.timeoutMs ?? PROBE_TIMEOUT_MS;
  const cacheMs = opts.cacheMs ?? PROBE_CACHE_MS;
  const nowMs = opts.nowMs ?? Date.now;
  let cached: { atMs: number; reachable: boolean } | undefined;
  let inFlight: Promise<boolean> | undefined;

  return () => {
    if (cached && nowMs() - cached.atMs < cacheMs) return Promise.resolve(cached.reachable);
    inFlight ??= probeOnce(upstream, timeoutMs).then((reachable) => {
      cached = { atMs: nowMs(), reachable };
      inFlight = undefined;
      return reachable;
    });
    return inFlight;
  };
}

function probeOnce(upstream: URL, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const client = upstream.protocol === 'https:' ? https : http;
    let settled = false;
    const done = (reachable: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(reachable);
    };
    // agent:false: no pooled connection is left behind by a health check
    const req = client.request(new URL('/', upstream), { method: 'HEAD', agent: false }, (res) => {
      res.resume();
      done(true);
      req.destroy();
    });
    const timer = setTimeout(() => {
      done(false);
      req.destroy();
    }, timeoutMs);
    timer.unref();
    req.on('error', () => done(false));
    req.end();
  });
}

/** Default probes, one per config object, so both listeners share one cache. */
const defaultProbes = new WeakMap<object, () => Promise<boolean>>();

function upstreamCheck(deps: ReadinessDeps): () => Promise<boolean> {
  if (deps.upstreamReachable) return () => deps.upstreamReachable!();
  let probe = defaultProbes.get(deps.config);
  if (!probe) {
    probe = createUpstreamProbe(deps.config.upstream, { timeoutMs: Math.min(PROBE_TIMEOUT_MS, deps.config.upstreamConnectTimeoutMs) });
    defaultProbes.set(deps.config, probe);
  }
  return probe;
}

export async function checkReadiness(deps: ReadinessDeps): Promise<ReadinessReport> {
  const settings = safeBool(() => deps.settingsLoaded());
  let upstream: boolean;
  try {
    upstream = (await upstreamCheck(deps)()) === true;
  } catch {
    upstream = false;
  }
  if (!deps.storeDegraded) return { ready: settings && upstream, degraded: false, checks: { settings, upstream } };
  const degraded = safeBool(() => deps.storeDegraded!());
  return { ready: settings && upstream, degraded, checks: { settings, upstream, store: !degraded } };
}

function safeBool(fn: () => boolean): boolean {
  try {
    return fn() === true;
  } catch {
    return false;
  }
}

/** Registers `${prefix}/healthz` and `${prefix}/readyz` (no authentication; no data beyond the checks). */
export function registerHealthRoutes(
  app: FastifyInstance,
  prefix: string,
  deps: Pick<ReadinessDeps, 'settingsLoaded' | 'upstreamReachable' | 'config' | 'storeDegraded'>,
): void {
  const base = prefix.replace(/\/+$/, '');
  const check = upstreamCheck(deps);
  const readiness: ReadinessDeps = { config: deps.config, settingsLoaded: () => deps.settingsLoaded(), upstreamReachable: check, storeDegraded: deps.storeDegraded };

  app.get(`${base}/healthz`, async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    return { status: 'ok' };
  });

  app.get(`${base}/readyz`, async (_req, reply) => {
    const report = await checkReadiness(readiness);
    reply.header('cache-control', 'no-store');
    reply.code(report.ready ? 200 : 503);
    return { status: report.ready ? (report.degraded ? 'degraded' : 'ready') : 'not-ready', checks: report.checks };
  });
}

/** Paths (below the prefix) that never need authentication. */
export const HEALTH_PATHS: readonly string[] = ['/healthz', '/readyz'];
