/**
 * The timeout reset service (`GET /rest/user/timeout/reset`). Panopticon documents it as a
 * service that does nothing itself: the layers in front count the call as activity. Here the
 * proxy is that layer, so it answers the call itself and never forwards it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IdentityResolver } from '../identity/resolver.js';
import type { SessionEngine } from '../sessions/engine.js';
import type { Clock } from '../sessions/clock.js';
import type { StaleCredentials } from './stale-credentials.js';
import type { ProxyMetrics } from '../admin/metrics.js';
import type { PeriodicDetector } from '../activity/periodic.js';

export interface ResetRouteDeps {
  paths: readonly string[];
  resolver: IdentityResolver;
  engine: SessionEngine;
  /** told about the reset, so that taking back a timer's activity never undoes it */
  periodic?: Pick<PeriodicDetector, 'noteGenuine'>;
  stale: StaleCredentials;
  clock: Clock;
  metrics: ProxyMetrics;
  shadow: boolean;
}

const UNAUTHENTICATED = { error: 'unauthenticated', message: 'The reset service needs a credential the server has accepted' };

export function registerResetRoutes(app: FastifyInstance, deps: ResetRouteDeps): void {
  const { resolver, engine, stale, clock } = deps;

  async function reset(request: FastifyRequest, reply: FastifyReply) {
    const raw = request.raw;
    resolver.stripUntrustedIdentityHeader(raw.headers, raw.socket.remoteAddress);
    const creds = resolver.extractCredentials(raw.headers, raw.socket.remoteAddress);
    if (!deps.shadow && stale.refusable(creds, clock.now(), true)) {
      const refusal = stale.refusalFor('POST', raw.headers); // always the 401 form: this is an API call
      return reply.code(refusal.statusCode).headers(refusal.headers ?? {}).header('cache-control', 'no-store').send(refusal.body);
    }
    const identity = creds.length > 0 ? await resolver.resolve(creds) : undefined;
    if (!identity) return reply.code(401).header('cache-control', 'no-store').send(UNAUTHENTICATED);
    const path = request.url.split('?', 1)[0]!;
    const record = engine.recordActivity(identity.user, 'GET', path, identity.credential, 'reset-service');
    if (record.lastActivity) deps.periodic?.noteGenuine(identity.user, record.lastActivity);
    deps.metrics.requests.inc({ counted: 'true', rule: 'reset-service' });
    const { enabled, timeoutMinutes } = engine.settings;
    const minutesUntilTimeout = enabled && !engine.isExempt(identity.user) ? timeoutMinutes : null;
    return reply.header('cache-control', 'no-store').send({ minutesUntilTimeout });
  }

  function notAllowed(_request: FastifyRequest, reply: FastifyReply) {
    return reply.code(405).header('allow', 'GET').send({ error: 'method_not_allowed', message: 'The timeout reset service only answers GET' });
  }

  for (const url of deps.paths) {
    app.route({ method: 'GET', url, handler: reset, exposeHeadRoute: false });
    app.route({ method: ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'], url, handler: notAllowed });
  }
}
