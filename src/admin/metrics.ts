/** Prometheus metrics (prom-client), one registry per proxy instance so tests stay independent. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ProxyMetrics {
  readonly registry: Registry;
  readonly usersTracked: Gauge;
  readonly requests: Counter<'counted' | 'rule'>;
  readonly warningsSent: Counter<'mode'>;
  readonly logouts: Counter<'outcome'>;
  readonly logoutAttempts: Counter<'result'>;
  readonly licenseReleaseSeconds: Histogram;
  readonly refusedStale: Counter<'kind' | 'mode'>;
  readonly openSockets: Gauge;
  readonly settingsReloads: Counter;
  readonly settingsReloadErrors: Counter;
  readonly pendingLogouts: Gauge;
  readonly storeDegraded: Gauge;
}

export interface MetricsSources {
  usersTracked(): number;
  openSockets(): number;
  pendingLogouts(): number;
  /** 1 while the shared store (Redis) is unreachable; always 0 with store=memory */
  storeDegraded?(): number;
}

export function createMetrics(sources: MetricsSources, opts: { defaultMetrics?: boolean } = {}): ProxyMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const p = 'session_timeout_proxy_';
  return {
    registry,
    usersTracked: new Gauge({ name: `${p}users_tracked`, help: 'Users with a session the proxy tracks', registers: [registry], collect() { this.set(sources.usersTracked()); } }),
    requests: new Counter({ name: `${p}requests_total`, help: 'Proxied requests of identified users, by whether they counted as activity and the rule that decided', labelNames: ['counted', 'rule'], registers: [registry] }),
    warningsSent: new Counter({ name: `${p}warnings_total`, help: 'Timeout warnings (mode=shadow: would have been sent)', labelNames: ['mode'], registers: [registry] }),
    logouts: new Counter({ name: `${p}logouts_total`, help: 'Upstream logouts by outcome: released and already_gone (verified when PROXY_LOGOUT_VERIFY is on), unverified (a logout answer that left the session signed in), retrying (attempts to be retried), failed, shadow', labelNames: ['outcome'], registers: [registry] }),
    logoutAttempts: new Counter({ name: `${p}logout_attempts_total`, help: 'Upstream logout calls by result', labelNames: ['result'], registers: [registry] }),
    licenseReleaseSeconds: new Histogram({ name: `${p}license_release_seconds`, help: 'From the timeout to the upstream confirming the logout', buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800, 3600], registers: [registry] }),
    refusedStale: new Counter({ name: `${p}refused_stale_credentials_total`, help: 'Requests refused because they presented a logged-out credential (mode=shadow: would have been refused)', labelNames: ['kind', 'mode'], registers: [registry] }),
    openSockets: new Gauge({ name: `${p}open_sockets`, help: 'Proxied WebSockets currently open', registers: [registry], collect() { this.set(sources.openSockets()); } }),
    settingsReloads: new Counter({ name: `${p}settings_reloads_total`, help: 'Properties file changes applied', registers: [registry] }),
    settingsReloadErrors: new Counter({ name: `${p}settings_reload_errors_total`, help: 'Properties file loads rejected (last good settings kept)', registers: [registry] }),
    storeDegraded: new Gauge({ name: `${p}store_degraded`, help: '1 while Redis (store=redis) is unreachable: proxying goes on, warnings and logouts wait', registers: [registry], collect() { this.set(sources.storeDegraded?.() ?? 0); } }),
    pendingLogouts: new Gauge({ name: `${p}pending_logouts`, help: 'Upstream logouts not confirmed yet', registers: [registry], collect() { this.set(sources.pendingLogouts()); } }),
  };
}
