/**
 * What the engine's decisions do to the world: push the warning, or (at the timeout) push the
 * logout notification, close the user's sockets, refuse their credentials from now on and queue
 * one upstream logout per credential. In shadow mode every decision is only logged and counted.
 */
import type pino from 'pino';
import type { ProxyMode } from '../config/deployment.js';
import type { ProxyMetrics } from '../admin/metrics.js';
import type { LogoutQueue } from '../logout/queue.js';
import type { UserNotifications } from '../notifications/cluster-notifier.js';
import type { RevokedCredentials } from '../logout/revoked.js';
import type { Clock } from '../sessions/clock.js';
import type { LogoutReason, SessionActions } from '../sessions/engine.js';
import type { SessionRecord } from '../sessions/store.js';
import { isReusableCredential, otherSpellingOf } from '../identity/credentials.js';

export interface SessionActionsDeps {
  mode: ProxyMode;
  clock: Clock;
  /** this replica's sockets, or (several replicas) every replica's */
  notifier: UserNotifications;
  /** the local queue, or (several replicas) the shared jobs in front of it */
  queue: Pick<LogoutQueue, 'enqueue'>;
  revoked: RevokedCredentials;
  /** drops cached identity answers for a credential that was logged out */
  forgetCredential(fingerprint: string): void;
  metrics: ProxyMetrics;
  audit: pino.Logger;
}

export function createSessionActions(deps: SessionActionsDeps): SessionActions {
  const { mode, clock, notifier, queue, revoked, metrics, audit } = deps;
  const shadow = mode === 'shadow';
  return {
    warn(user, minutesUntilTimeout, record) {
      metrics.warningsSent.inc({ mode });
      const deadlineMs = record.idleSinceMs;
      if (shadow) {
        audit.info({ event: 'timeout-warning', user, minutesUntilTimeout, mode, idleSinceMs: deadlineMs }, 'would warn user of the coming timeout (shadow mode)');
        return;
      }
      const sockets = notifier.warn(user, minutesUntilTimeout);
      audit.info({ event: 'timeout-warning', user, minutesUntilTimeout, sockets, mode }, 'warned user of the coming timeout');
    },

    logout(user, record, reason) {
      const credentials = [...record.credentials.values()];
      const base = { event: reason === 'forced' ? 'forced-logout' : 'timeout-logout', user, reason: reasonText(reason), credentials: credentials.length, mode };
      if (shadow) {
        metrics.logouts.inc({ outcome: 'shadow' });
        audit.info({ ...base, lastActivity: lastActivityOf(record) }, 'would log user out (shadow mode)');
        return;
      }
      const nowMs = clock.now();
      for (const c of credentials) {
        const reusable = isReusableCredential(c);
        revoked.add(c.fingerprint, user, nowMs, c.expiresAtMs, reusable);
        // the same secret sent another way (quoted, as a Bearer header, ...) is refused too
        const other = otherSpellingOf(c);
        if (other !== undefined) revoked.add(other, user, nowMs, c.expiresAtMs, reusable);
        deps.forgetCredential(c.fingerprint);
      }
      notifier.logout(user).catch(() => undefined);
      const enqueue = () => {
        for (const c of credentials) queue.enqueue({ user, fingerprint: c.fingerprint, kind: c.kind, replay: c.replay, csrf: c.csrf, reason });
      };
      // Several replicas: the upstream logout (which may close the user's upstream sockets on any
      // replica) waits until the other replicas were handed the logout notification, so sockets
      // held elsewhere get it before the upstream cuts them.
      const announced = notifier.logoutAnnounced?.(user);
      if (announced) void announced.then(enqueue, enqueue);
      else enqueue();
      audit.info({ ...base, lastActivity: lastActivityOf(record) }, credentials.length > 0 ? 'logging user out upstream' : 'user timed out with no credential to log out');
    },
  };
}

function reasonText(reason: LogoutReason): string {
  return reason === 'forced' ? 'Logged out by an administrator' : 'Logged out due to session timeout';
}

function lastActivityOf(record: SessionRecord): { atMs: number; method: string; path: string } | undefined {
  const a = record.lastActivity;
  return a && { atMs: a.atMs, method: a.method, path: a.path };
}
