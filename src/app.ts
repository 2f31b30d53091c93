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
import { IdentityResolver } from './identity/resolver.js';
import { ActivityRules } from './activity/rules.js';
import { systemClock, type Clock } from './sessions/clock.js';
import { MemorySessionStore } from './sessions/memory-store.js';
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

export interface StartOptions {
  logger?: pino.Logger;
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
}

export interface RunningProxy extends ProxyParts {
  /** http://host:port of the main listener */
  readonly url: string;
  /** http://host:port of the admin listener */
  readonly adminUrl: string;
  close(): Promise<void>;
}

export async function startProxy(config: DeploymentConfig, opts: StartOptions = {}): Promise<RunningProxy> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel, redactHeaders: config.identityHeader ? [config.identityHeader] : [] });
  const clock = opts.clock ?? systemClock;
  const audit = logger.child({ audit: true });

  const watcher = await PropertiesWatcher.open({ path: config.propertiesPath, pollMs: config.propertiesPollMs, logger });
  const registry = new SocketRegistry();
  const framingReport = new FramingReport();
  const notifier = new Notifier({ registry, notifyPaths: config.notifyPaths, framing: config.notifyFraming, destinations: config.notifyDestinations, report: framingReport });
  const revoked = new RevokedCredentials(config.refuseMaxMs);
  const resolver = new IdentityResolver(config, logger, { nowMs: () => clock.now() });
  const rules = new ActivityRules(config);
  const stale = new StaleCredentials({ revoked, loginPath: config.loginPath, contextPath: config.contextPath, tokenCookie: config.tokenCookie, sessionCookie: config.sessionCookie });
  const store = new MemorySessionStore();
  const stateFile = config.stateDir ? new StateFile(config.stateDir) : undefined;
  const saved = stateFile ? await loadState(stateFile, clock, logger) : undefined;
  if (saved) {
    store.importSnapshots(saved.sessions);
    revoked.restore(saved.revoked, clock.now());
  }

  // eslint-disable-next-line prefer-const
  let queue: LogoutQueue;
  const metrics = createMetrics(
    { usersTracked: () => store.size, openSockets: () => registry.size, pendingLogouts: () => queue.size },
    { defaultMetrics: opts.defaultMetrics },
  );
  queue = new LogoutQueue({
    clock,
    concurrency: config.logoutConcurrency,
    retryMinMs: config.logoutRetryMinMs,
    retryMaxMs: config.logoutRetryMaxMs,
    giveUpMs: config.logoutGiveUpMs,
    attempt: createUpstreamLogout({ upstream: config.upstream, method: config.logoutMethod, path: config.logoutPath, timeoutMs: config.logoutTimeoutMs, backgroundHeader: config.backgroundHeader }),
    onRetry(job, outcome, delayMs) {
      metrics.logouts.inc({ outcome: 'retrying' });
      metrics.logoutAttempts.inc({ result: 'retry' });
      const reason = outcome.kind === 'retry' ? outcome.reason : outcome.kind;
      audit.warn({ event: 'logout-retry', user: job.user, credential: job.kind, attempts: job.attempts, error: reason, retryInMs: delayMs }, 'upstream logout failed; will retry');
    },
    onDone(job, outcome, durationMs) {
      metrics.logouts.inc({ outcome: outcome === 'already-gone' ? 'already_gone' : outcome });
      metrics.logoutAttempts.inc({ result: outcome === 'failed' ? 'retry' : outcome.replace('-', '_') });
      if (outcome !== 'failed') metrics.licenseReleaseSeconds.observe(durationMs / 1000);
      const line = { event: 'logout-result', user: job.user, credential: job.kind, outcome, attempts: job.attempts, durationMs, reason: job.reason };
      if (outcome === 'failed') audit.error({ ...line, error: job.lastError }, 'upstream logout gave up; the license may still be held');
      else audit.info(line, outcome === 'released' ? 'upstream logout released the session' : 'upstream session was already gone');
    },
  });

  if (saved) queue.restore(saved.pendingLogouts);

  const mode = config.mode;
  const engine = new SessionEngine({
    clock,
    store,
    settings: watcher.current,
    logger,
    actions: createSessionActions({ mode, clock, notifier, queue, revoked, forgetCredential: (fp) => resolver.invalidate(fp), metrics, audit }),
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

  const onHttpTransport = (user: string, transport: string) => registry.noteHttpTransport(user, transport, clock.now());
  const hooks = createActivityHooks({ mode, clock, resolver, rules, engine, stale, metrics, logger, onHttpTransport });
  const proxy = await buildProxyServer({ config, logger, registry, hooks, inspection: notifier });
  registerResetRoutes(proxy, { paths: config.resetPaths, resolver, engine, stale, clock, metrics, shadow: mode === 'shadow' });
  const health = { config, settingsLoaded: () => true, upstreamReachable: createUpstreamProbe(config.upstream) };
  registerHealthRoutes(proxy, config.internalPrefix, health);
  const admin = await buildAdminServer({ ...health, engine, registry, metrics, logger, audit, clock });

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
    config, logger, clock, settings: watcher, registry, framingReport, engine, queue, revoked, resolver, metrics, proxy, url, adminUrl,
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
        persister?.stop();
        await persister?.saveNow();
        queue.close();
        await watcher.close();
        await resolver.close();
      })();
      return closing;
    },
  };
}

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

function closeGoingAway(socket: { close(code: number, reason: string): void; terminate(): void }): void {
  try {
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
