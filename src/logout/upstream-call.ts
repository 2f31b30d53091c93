/**
 * One logout attempt for a queued credential: the candidates in the book's order, each called
 * with the credential's own headers (plus its CSRF token), each success checked with "who am I".
 *
 * Per candidate answer:
 *   404, 405, other 4xx     this path/method is not the logout: next candidate at once
 *   403 with a CSRF token   the token was refused (not "already gone"): next candidate
 *   2xx/3xx                 looks done: verify; gone = released, still named = unverified -> next
 *   401/403 (no CSRF)       looks gone already: verify; gone = already gone, named = unverified -> next
 *   5xx, 408, 429, network  the server is in trouble: the queue retries later with backoff
 * When no candidate ends the session, the queue retries the job with backoff. Credentials that are
 * not sessions (Basic, the trusted identity header) are not verified: any "who am I" with them
 * names the user again, so their logout is judged by its status alone.
 */
import { request, type Dispatcher } from 'undici';
import type { AttemptOutcome, LogoutJob } from './queue.js';
import { candidateLabel, type CandidateBook, type CandidateResult, type LogoutCandidate } from './candidates.js';
import { withCsrf, type CsrfNames } from './csrf.js';
import type { LogoutVerifier } from './verify.js';
import { isReusableCredential } from '../identity/credentials.js';

export interface LogoutEvents {
  /** a candidate answered like a success but "who am I" still names the user */
  unverified?(job: LogoutJob, candidate: LogoutCandidate, status: number): void;
  /** a candidate was passed over (not found, CSRF refused, ...) */
  skipped?(job: LogoutJob, candidate: LogoutCandidate, result: CandidateResult, status: number): void;
}

export interface UpstreamLogoutOptions {
  upstream: URL;
  candidates: CandidateBook;
  timeoutMs: number;
  /** header that marks the call as background traffic, so it never counts as activity */
  backgroundHeader: { name: string; value: string };
  csrf: CsrfNames;
  /** undefined: PROXY_LOGOUT_VERIFY=false, a success-looking answer is believed */
  verify: LogoutVerifier | undefined;
  events?: LogoutEvents;
  dispatcher?: Dispatcher;
}

/** What one candidate's call came to: a final outcome, "try the next one", or "retry later". */
type Step =
  | { readonly kind: 'final'; readonly outcome: AttemptOutcome }
  | { readonly kind: 'next'; readonly note: string }
  | { readonly kind: 'later'; readonly note: string; readonly status?: number };

export function createUpstreamLogout(opts: UpstreamLogoutOptions): (job: LogoutJob) => Promise<AttemptOutcome> {
  const { candidates: book, events } = opts;
  const background = { [opts.backgroundHeader.name]: opts.backgroundHeader.value };

  async function call(candidate: LogoutCandidate, headers: Record<string, string>): Promise<{ status: number } | { error: string }> {
    try {
      const res = await request(new URL(candidate.path, opts.upstream), {
        method: candidate.method as Dispatcher.HttpMethod,
        headers: { ...headers, accept: 'application/json', ...background },
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
        signal: AbortSignal.timeout(opts.timeoutMs),
        dispatcher: opts.dispatcher,
      });
      await res.body.dump().catch(() => undefined);
      return { status: res.statusCode };
    } catch (err) {
      const e = err as Error & { code?: string };
      return { error: e.code ?? e.name ?? 'error' };
    }
  }

  /** Verifies a success-looking answer; `kind` is what it counts as once verified. */
  async function confirm(job: LogoutJob, c: LogoutCandidate, status: number, kind: 'released' | 'already-gone', replay: Record<string, string>): Promise<Step> {
    const label = candidateLabel(c);
    // Basic and the trusted identity header are not sessions: "who am I" would sign them in again
    if (opts.verify === undefined || isReusableCredential(job)) {
      book.record(c, kind, status);
      return { kind: 'final', outcome: { kind, status, candidate: label } };
    }
    const check = await opts.verify(replay);
    if (check.verdict === 'gone') {
      book.record(c, kind, status);
      return { kind: 'final', outcome: { kind, status, candidate: label } };
    }
    if (check.verdict === 'still-signed-in') {
      book.record(c, 'unverified', status);
      events?.unverified?.(job, c, status);
      return { kind: 'next', note: `${label}: ${status} but the session is still signed in` };
    }
    book.record(c, 'error', status);
    return { kind: 'later', note: `${label}: ${status}, not verified: ${check.reason}`, status };
  }

  async function tryCandidate(job: LogoutJob, c: LogoutCandidate, replay: Record<string, string>): Promise<Step> {
    const label = candidateLabel(c);
    const answer = await call(c, replay);
    if ('error' in answer) {
      book.record(c, 'error', undefined);
      return { kind: 'later', note: `${label}: ${answer.error}` };
    }
    const { status } = answer;
    const skip = (result: CandidateResult, why: string): Step => {
      book.record(c, result, status);
      events?.skipped?.(job, c, result, status);
      return { kind: 'next', note: `${label}: ${status} ${why}` };
    };
    if (status >= 200 && status < 400) return confirm(job, c, status, 'released', replay);
    if (status === 403 && job.csrf !== undefined) return skip('csrf-rejected', 'CSRF token refused');
    if (status === 401 || status === 403) return confirm(job, c, status, 'already-gone', replay);
    if (status >= 500 || status === 408 || status === 429) {
      book.record(c, 'error', status);
      return { kind: 'later', note: `${label}: status ${status}`, status };
    }
    return skip('not-found', status === 404 || status === 405 ? 'no such logout' : 'refused');
  }

  return async (job) => {
    const replay = withCsrf(job.replay, job.csrf, opts.csrf);
    const notes: string[] = [];
    for (const candidate of book.order()) {
      const step = await tryCandidate(job, candidate, replay);
      if (step.kind === 'final') return step.outcome;
      notes.push(step.note);
      if (step.kind === 'later') return { kind: 'retry', reason: notes.join('; '), status: step.status, candidate: candidateLabel(candidate) };
    }
    return { kind: 'retry', reason: `no logout candidate ended the session: ${notes.join('; ')}` };
  };
}
