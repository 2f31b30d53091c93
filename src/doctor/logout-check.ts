/**
 * Tries the logout candidates on the doctor's throwaway session with the proxy's own logout code
 * (candidate order, CSRF replay, "who am I" verification), and reports what each candidate did.
 */
import type { DeploymentConfig } from '../config/deployment.js';
import type { UpstreamWhoami } from '../identity/whoami.js';
import { CandidateBook, type CandidateReport } from '../logout/candidates.js';
import type { AttemptOutcome } from '../logout/queue.js';
import { createUpstreamLogout } from '../logout/upstream-call.js';
import { createLogoutVerifier } from '../logout/verify.js';
import type { DoctorSession } from './session.js';

export interface LogoutCheck {
  outcome: AttemptOutcome;
  /** per candidate tried, in the order tried */
  candidates: CandidateReport[];
  /** a CSRF token was replayed (its value is never shown) */
  csrfReplayed: boolean;
}

export async function checkLogout(config: DeploymentConfig, session: DoctorSession, whoami: UpstreamWhoami, user: string): Promise<LogoutCheck> {
  const book = new CandidateBook(config.logoutPath, () => Date.now());
  const csrf = session.jar.get(config.csrfCookie);
  const attempt = createUpstreamLogout({
    upstream: config.upstream,
    candidates: book,
    timeoutMs: config.logoutTimeoutMs,
    backgroundHeader: config.backgroundHeader,
    csrf: { cookie: config.csrfCookie, header: config.csrfHeader },
    verify: createLogoutVerifier({ ask: (replay) => whoami.ask(replay), loginPath: config.loginPath }),
  });
  const outcome = await attempt({
    user,
    fingerprint: 'doctor',
    kind: 'doctor',
    replay: session.replay([config.csrfCookie]),
    csrf,
    reason: 'session-timeout-proxy doctor',
    enqueuedAtMs: Date.now(),
    attempts: 0,
    nextAttemptAtMs: 0,
    lastError: undefined,
  });
  return { outcome, candidates: book.report().filter((c) => c.calls > 0), csrfReplayed: csrf !== undefined };
}
