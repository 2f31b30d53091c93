/**
 * GET /admin/upstream: what the proxy found out about the upstream server — each logout
 * candidate's last result and which one verified, how "who am I" answers, and (when plugged in)
 * the WebSocket framing seen per path. Built from providers so each concern reports its own
 * state; nothing secret (paths, statuses, counts and cookie/header names only).
 */
import type { CandidateReport } from '../logout/candidates.js';
import type { WhoamiReport } from '../identity/whoami-health.js';

export interface LogoutReport {
  /** PROXY_LOGOUT_VERIFY */
  readonly verify: boolean;
  /** names only, never values */
  readonly csrf: { readonly cookie: string; readonly header: string };
  /** in the order they are tried now */
  readonly candidates: readonly CandidateReport[];
  /** `METHOD path` of the candidate that released a session (verified), or null */
  readonly verified: string | null;
}

export interface UpstreamProviders {
  logout(): LogoutReport;
  whoami(): WhoamiReport;
  /** per-path WebSocket framing rows (src/notifications/framing/report.ts), when available */
  websocket?(): unknown;
}

export interface UpstreamJson {
  now: number;
  logout: LogoutReport;
  whoami: WhoamiReport;
  /** null: not available in this build/wiring */
  websocket: unknown;
}

export function upstreamJson(providers: UpstreamProviders, nowMs: number): UpstreamJson {
  return {
    now: nowMs,
    logout: providers.logout(),
    whoami: providers.whoami(),
    websocket: providers.websocket ? providers.websocket() ?? null : null,
  };
}
