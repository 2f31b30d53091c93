/**
 * Proof that a logout worked: "who am I" asked again with the same credential. The session is
 * gone when the upstream refuses it (401/403), redirects to the login page, or answers without
 * naming anyone; it is still there when the answer names a user. Anything else (no answer, 5xx,
 * 429, another redirect, 404) proves nothing either way.
 */
import type { WhoamiAnswer } from '../identity/whoami.js';

export type Verification =
  | { readonly verdict: 'gone'; readonly status: number }
  | { readonly verdict: 'still-signed-in'; readonly status: number }
  | { readonly verdict: 'unknown'; readonly reason: string; readonly status?: number };

export interface VerifierOptions {
  /** the who-am-I call with the given (secret) headers; rejects when no answer came */
  ask(replay: Readonly<Record<string, string>>): Promise<WhoamiAnswer>;
  /** the login page's path: a redirect there means "signed out" */
  loginPath: string;
}

export type LogoutVerifier = (replay: Readonly<Record<string, string>>) => Promise<Verification>;

export function createLogoutVerifier(opts: VerifierOptions): LogoutVerifier {
  return async (replay) => {
    let answer: WhoamiAnswer;
    try {
      answer = await opts.ask(replay);
    } catch (err) {
      return { verdict: 'unknown', reason: `who-am-I gave no answer (${(err as Error).message})` };
    }
    return judge(answer, opts.loginPath);
  };
}

export function judge(answer: WhoamiAnswer, loginPath: string): Verification {
  const { status } = answer;
  if (status === 401 || status === 403) return { verdict: 'gone', status };
  if (status >= 200 && status < 300) return answer.user === undefined ? { verdict: 'gone', status } : { verdict: 'still-signed-in', status };
  if (status >= 300 && status < 400 && answer.location !== undefined && pointsTo(answer.location, loginPath)) return { verdict: 'gone', status };
  return { verdict: 'unknown', reason: `who-am-I answered ${status}`, status };
}

function pointsTo(location: string, loginPath: string): boolean {
  try {
    return new URL(location, 'http://upstream.invalid').pathname === loginPath;
  } catch {
    return false;
  }
}
