/**
 * The composition root: builds every part once and connects them so data flows one way —
 * request → identity → activity rules → session engine → notification or logout.
 */
import type pino from 'pino';
import type { FastifyInstance } from 'fastify';
import type { DeploymentConfig } from './config/deployment.js';
import { createLogger } from './log.js';
import { PropertiesWatcher } from './properties/watcher.js';
import type { SettingsSource } from './properties/settings.js';
import { SocketRegistry } from './notifications/registry.js';
import { Notifier } from './notifications/notifier.js';
import { FramingReport } from './notifications/framing/report.js';
import { RevokedCredentials } from './logout/revoked.js';
import { LogoutQueue } from './logout/queue.js';
import { createUpstreamLogout } from './logout/upstream-call.js';
import { CandidateBook, candidateLabel } from './logout/candidates.js';
import { createLogoutVerifier } from './logout/verify.js';
import { IdentityResolver } from './identity/resolver.js';
import { UpstreamWhoami } from './identity/whoami.js';
import { WhoamiHealth } from './identity/whoami-health.js';
import { ActivityRules } from './activity/rules.js';
import { PeriodicDetector, periodicOptions } from './activity/periodic.js';
import { systemClock, type Clock } from './sessions/clock.js';
import { MemorySessionStore } from './sessions/memory-store.js';
import type { SessionStore } from './sessions/store.js';
import { RedisLink } from './sessions/redis-link.js';
import { RedisSessionStore } from './sessions/redis-store.js';
import { ReplicaDirectory } from './sessions/replica-directory.js';
import { ClusterNotifier } from './notifications/cluster-notifier.js';
import { SharedRevocations } from './logout/shared-revoked.js';
import { SharedLogouts } from './logout/shared-jobs.js';
import { SessionEngine } from './sessions/engine.js';
import { createMetrics, type ProxyMetrics } from './admin/metrics.js';
import { buildAdminServer } from './admin/server.js';
import { createUpstreamProbe, registerHealthRoutes } from './admin/health.js';
import { createSessionActions } from './proxy/session-actions.js';
import { createActivityHooks } from './proxy/activity-hooks.js';
import { StaleCredentials } from './proxy/stale-credentials.js';
import { registerResetRoutes } from './proxy/reset-route.js';
import { buildProxyServer } from './proxy/server.js';
import { StateFile } from './sessions/state-file.js';
import { StatePersister } from './sessions/persister.js';
import { SecretBox } from './sessions/secret-box.js';
import { loadStateKey } from './config/state-key.js';

export interface StartOptions {
  logger?: pino.Logger;
  /** where the log lines go when no logger is given (stdout by default) */
  logDestination?: pino.DestinationStream;
  clock?: Clock;
  /** collect Node's default process metrics (off in tests that start many proxies) */
  defaultMetrics?: boolean;
}

export interface ProxyParts {
  readonly config: DeploymentConfig;
  readonly logger: pino.Logger;
  readonly clock: Clock;
  readonly settings: SettingsSource;
  readonly registry: SocketRegistry;
  /** what was learned about the notification sockets, per path (for /admin/upstream) */
  readonly framingReport: FramingReport;
  readonly engine: SessionEngine;
  readonly queue: LogoutQueue;
  readonly revoked: RevokedCredentials;
  readonly resolver: IdentityResolver;
  readonly metrics: ProxyMetrics;
  readonly proxy: FastifyInstance;
  readonly store: SessionStore;
  /** store=redis: the connection shared state goes through */
  readonly link: RedisLink | undefined;
}

export interface RunningProxy extends ProxyParts {
  /** http://host:port of the main listener */
  readonly url: string;
  /** http://host:port of the admin listener */
  readonly adminUrl: string;
  close(): Promise<void>;
}

export async function startProxy(config: DeploymentConfig, opts: StartOptions = {}): Promise<RunningProxy> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel, destination: opts.logDestination, redactHeaders: config.identityHeader ? [config.identityHeader] : [] });
  const clock = opts.clock ?? systemClock;
  const audit = logger.child({ audit: true });

  const watcher = await PropertiesWatcher.open({ path: config.propertiesPath, pollMs: config.propertiesPollMs, logger });
  const registry = new SocketRegistry();
  const framingReport = new FramingReport();
  const localNotifier = new Notifier({ registry, notifyPaths: config.notifyPaths, framing: config.notifyFraming, destinations: config.notifyDestinations, report: framingReport });
  const revoked = new RevokedCredentials(config.refuseMaxMs);
  const whoamiHealth = new WhoamiHealth(() => clock.now());
  const whoami = new UpstreamWhoami(config, undefined, whoamiHealth);
  const resolver = new IdentityResolver(config, logger, { nowMs: () => clock.now(), whoami: whoami.lookup });
  const logoutCandidates = new CandidateBook(config.logoutPath, () => clock.now());
  const rules = new ActivityRules(config);
  const stale = new StaleCredentials({ revoked, loginPath: config.loginPath, contextPath: config.contextPath, tokenCookie: config.tokenCookie, sessionCookie: config.sessionCookie });
  const stateKey = loadStateKey(config);
  const box = stateKey ? new SecretBox(stateKey) : undefined;
  const stateFile = config.stateDir ? new StateFile(config.stateDir, box) : undefined;
  const saved = stateFile ? await loadState(stateFile, clock, logger) : undefined;
  // store=redis: the replicas share sessions, notifications, refusals and logout jobs through Redis
  const link = config.store === 'redis' ? new RedisLink(config, logger) : undefined;
  const redisStore = link ? new RedisSessionStore({ link, box: box!, clock, flushMs: config.redisFlushMs, logger }) : undefined;
  const store: SessionStore = redisStore ?? new MemorySessionStore();
  const notifier = link ? new ClusterNotifier(localNotifier, link) : localNotifier;
  if (link) new SharedRevocations({ link, revoked, clock, forgetCredential: (fp) => resolver.invalidate(fp) });
  if (saved) {
    store.importSnapshots(saved.sessions);
    revoked.restore(saved.revoked, clock.now());
  }

  // eslint-disable-next-line prefer-const
  let queue: LogoutQueue;
  const metrics = createMetrics(
    { usersTracked: () => store.size, openSockets: () => registry.size, pendingLogouts: () => queue.size, storeDegraded: () => (link && !link.up ? 1 : 0) },
    { defaultMetrics: opts.defaultMetrics },
  );
  queue = new LogoutQueue({
    clock,
    concurrency: config.logoutConcurrency,
    retryMinMs: config.logoutRetryMinMs,
    retryMaxMs: config.logoutRetryMaxMs,
    giveUpMs: config.logoutGiveUpMs,
    attempt: createUpstreamLogout({
      upstream: config.upstream,
      candidates: logoutCandidates,
      timeoutMs: config.logoutTimeoutMs,
      backgroundHeader: config.backgroundHeader,
      csrf: { cookie: config.csrfCookie, header: config.csrfHeader },
      verify: config.logoutVerify ? createLogoutVerifier({ ask: (replay) => whoami.ask(replay), loginPath: config.loginPath }) : undefined,
      events: {
        unverified(job, candidate, status) {
          metrics.logouts.inc({ outcome: 'unverified' });
          audit.warn({ event: 'logout-unverified', user: job.user, credential: job.kind, candidate: candidateLabel(candidate), status }, 'logout answered but "who am I" still names the user');
        },
        skipped(job, candidate, result, status) {
          audit.info({ event: 'logout-candidate-skipped', user: job.user, credential: job.kind, candidate: candidateLabel(candidate), result, status }, 'logout candidate passed over');
        },
      },
    }),
    onRetry(job, outcome, delayMs) {
      metrics.logouts.inc({ outcome: 'retrying' });
      metrics.logoutAttempts.inc({ result: 'retry' });
      const reason = outcome.kind === 'retry' ? outcome.reason : outcome.kind;
      audit.warn({ event: 'logout-retry', user: job.user, credential: job.kind, attempts: job.attempts, error: reason, candidate: outcome.candidate, retryInMs: delayMs }, 'upstream logout failed; will retry');
    },
    onDone(job, outcome, durationMs, last) {
      sharedLogouts?.finished(job);
      metrics.logouts.inc({ outcome: outcome === 'already-gone' ? 'already_gone' : outcome });
      metrics.logoutAttempts.inc({ result: outcome === 'failed' ? 'retry' : outcome.replace('-', '_') });
      if (outcome !== 'failed') metrics.licenseReleaseSeconds.observe(durationMs / 1000);
      const line = { event: 'logout-result', user: job.user, credential: job.kind, outcome, candidate: last.candidate, attempts: job.attempts, durationMs, reason: job.reason };
      if (outcome === 'failed') audit.error({ ...line, error: job.lastError }, 'upstream logout gave up; the license may still be held');
      else audit.info(line, outcome === 'released' ? 'upstream logout released the session' : 'upstream session was already gone');
    },
  });

  if (saved) queue.restore(saved.pendingLogouts);
  const sharedLogouts = link ? new SharedLogouts({ link, box: box!, queue, leaseMs: config.logoutLeaseMs, logger: audit, nowMs: () => clock.now() }) : undefined;
  const replicas = link ? new ReplicaDirectory({ link, logger, settings: () => watcher.current, socketsByUser: () => registry.countsByUser() }) : undefined;

  const mode = config.mode;
  const engine = new SessionEngine({
    clock,
    store,
    settings: watcher.current,
    logger,
    actions: createSessionActions({ mode, clock, notifier, queue: sharedLogouts ?? queue, revoked, forgetCredential: (fp) => resolver.invalidate(fp), metrics, audit }),
  });
  watcher.onChange((next) => {
    metrics.settingsReloads.inc();
    engine.updateSettings(next);
  });
  watcher.onReloadError(() => metrics.settingsReloadErrors.inc());

  const persister = stateFile
    ? new StatePersister({
        file: stateFile,
        intervalMs: config.stateSaveMs,
        collect: () => ({ version: 1, savedAtMs: clock.now(), sessions: store.exportSnapshots(), pendingLogouts: queue.pending(), revoked: revoked.entries() }),
        onError: (err) => logger.error({ err, event: 'state-save-failed', path: stateFile.path }, 'could not save the session state'),
      })
    : undefined;
  persister?.start();

  const periodic = config.detectPeriodic ? new PeriodicDetector(periodicOptions(config, () => engine.settings.timeoutMs)) : undefined;
  const onHttpTransport = (user: string, transport: string) => registry.noteHttpTransport(user, transport, clock.now());
  const hooks = createActivityHooks({ mode, clock, resolver, rules, periodic, engine, stale, metrics, logger, csrfCookie: config.csrfCookie, onHttpTransport });
  const proxy = await buildProxyServer({ config, logger, registry, hooks, inspection: localNotifier });
  registerResetRoutes(proxy, { paths: config.resetPaths, resolver, engine, periodic, stale, clock, metrics, shadow: mode === 'shadow' });
  const storeDegraded = link ? () => !link.up : undefined;
  const health = { config, settingsLoaded: () => true, upstreamReachable: createUpstreamProbe(config.upstream), storeDegraded };
  registerHealthRoutes(proxy, config.internalPrefix, health);
  const upstream = {
    logout: () => ({
      verify: config.logoutVerify,
      csrf: { cookie: config.csrfCookie, header: config.csrfHeader },
      candidates: logoutCandidates.report(),
      verified: logoutCandidates.verified ? candidateLabel(logoutCandidates.verified) : null,
    }),
    whoami: () => whoamiHealth.report(),
    websocket: () => framingReport.snapshot(),
  };
  const admin = await buildAdminServer({ ...health, engine, periodic, registry, metrics, logger, audit, clock, upstream, replicas });
  // Start serving even when Redis is not reachable yet (degraded); give it a moment to join first.
  if (link && !(await link.waitUntilUp(REDIS_START_WAIT_MS))) logger.warn({ event: 'redis-down', replica: link.replicaId }, 'Redis not reachable at start: serving degraded until it is');

  await proxy.listen({ host: config.host, port: config.port });
  await admin.listen({ host: config.adminHost, port: config.adminPort }).catch(async (err: unknown) => {
    await proxy.close();
    throw err;
  });
  const url = listenerUrl(proxy, config.host);
  const adminUrl = listenerUrl(admin, config.adminHost);
  logger.info({ event: 'started', url, adminUrl, upstream: config.upstream.origin, mode, properties: config.propertiesPath, timeout: describeSettings(watcher.current) }, 'session-timeout-proxy listening');

  let closing: Promise<void> | undefined;
  return {
    config, logger, clock, settings: watcher, registry, framingReport, engine, queue, revoked, resolver, metrics, proxy, url, adminUrl, store, link,
    close() {
      closing ??= (async () => {
        // Save first: a supervisor that kills before the grace period is over loses nothing.
        await persister?.saveNow();
        // Stop accepting, tell browsers to reconnect later, let in-flight requests finish (bounded).
        for (const rec of registry.all()) closeGoingAway(rec.socket);
        // server.close() drops only the connections idle at that moment; a keep-alive connection
        // whose request finishes later would hold the close open for the whole grace period.
        const idleSweep = setInterval(() => proxy.server.closeIdleConnections?.(), IDLE_SWEEP_MS);
        try {
          await withTimeout(proxy.close(), config.shutdownGraceMs, () => {
            logger.warn({ event: 'shutdown-grace-expired', graceMs: config.shutdownGraceMs, sockets: registry.size }, 'shutdown grace period over; cutting the connections still open');
            proxy.server.closeAllConnections?.();
            // upgraded sockets are not the HTTP server's to close; one whose peer stopped reading
            // (or whose partner did, so it is paused) would never finish its closing handshake
            for (const rec of registry.all()) rec.socket.terminate();
          });
        } finally {
          clearInterval(idleSweep);
        }
        await admin.close();
        engine.close();
        await redisStore?.flush();
        redisStore?.close();
        sharedLogouts?.close();
        replicas?.close();
        await link?.close();
        persister?.stop();
        await persister?.saveNow();
        queue.close();
        await watcher.close();
        await resolver.close();
        await whoami.close();
      })();
      return closing;
    },
  };
}

/** how long the start waits for Redis before serving degraded */
const REDIS_START_WAIT_MS = 3000;

/** how often idle keep-alive connections are closed while the proxy waits for in-flight requests */
const IDLE_SWEEP_MS = 50;

function listenerUrl(app: FastifyInstance, configuredHost: string): string {
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const host = configuredHost === '0.0.0.0' || configuredHost === '::' ? '127.0.0.1' : configuredHost;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

async function loadState(file: StateFile, clock: Clock, logger: pino.Logger) {
  const result = await file.load(clock.now());
  if (result.kind === 'corrupt') {
    logger.error({ event: 'state-corrupt', path: file.path, error: result.error, movedTo: result.movedTo }, 'saved session state is unreadable; moved aside, starting empty');
    return undefined;
  }
  if (result.kind === 'missing') return undefined;
  const { state } = result;
  logger.info({ event: 'state-restored', path: file.path, sessions: state.sessions.length, pendingLogouts: state.pendingLogouts.length, savedAtMs: state.savedAtMs }, 'restored session state');
  return state;
}

function closeGoingAway(socket: { close(code: number, reason: string): void; terminate(): void; resume(): void }): void {
  try {
    // a socket paused by back-pressure would never read the peer's closing frame (or its end)
    socket.resume();
    socket.close(1001, 'proxy shutting down');
  } catch {
    socket.terminate();
  }
}

async function withTimeout(work: Promise<unknown>, ms: number, onTimeout: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)));
  const result = await Promise.race([work.then(() => 'done' as const), late]);
  clearTimeout(timer);
  if (result === 'late') {
    onTimeout();
    await work.catch(() => undefined);
  }
}

function describeSettings(s: SettingsSource['current']) {
  return { enabled: s.enabled, minutes: s.timeoutMinutes, notificationMinutes: s.notifyBeforeMinutes, exempt: s.exemptUsers.size };
}
