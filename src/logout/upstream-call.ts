/** One logout call to the upstream with a credential's own headers, classified for the queue. */
import { request, type Dispatcher } from 'undici';
import type { AttemptOutcome, LogoutJob } from './queue.js';

export interface UpstreamLogoutOptions {
  upstream: URL;
  method: string;
  path: string;
  timeoutMs: number;
  /** header that marks the call as background traffic, so it never counts as activity */
  backgroundHeader: { name: string; value: string };
  dispatcher?: Dispatcher;
}

export function createUpstreamLogout(opts: UpstreamLogoutOptions): (job: LogoutJob) => Promise<AttemptOutcome> {
  const url = new URL(opts.path, opts.upstream).toString();
  return async (job) => {
    try {
      const res = await request(url, {
        method: opts.method as Dispatcher.HttpMethod,
        headers: { ...job.replay, accept: 'application/json', [opts.backgroundHeader.name]: opts.backgroundHeader.value },
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
        signal: AbortSignal.timeout(opts.timeoutMs),
        dispatcher: opts.dispatcher,
      });
      await res.body.dump().catch(() => undefined);
      return classifyLogoutStatus(res.statusCode);
    } catch (err) {
      const e = err as Error & { code?: string };
      return { kind: 'retry', reason: e.code ?? e.name ?? 'error' };
    }
  };
}

/** 2xx/3xx: released; 401/403: the credential was already gone; anything else: try again. */
export function classifyLogoutStatus(status: number): AttemptOutcome {
  if (status >= 200 && status < 400) return { kind: 'released', status };
  if (status === 401 || status === 403) return { kind: 'already-gone', status };
  return { kind: 'retry', reason: `status ${status}`, status };
}
