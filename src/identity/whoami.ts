/**
 * "Who am I": asks the upstream which user a credential belongs to, by replaying the credential
 * to the who-am-I endpoint. The call carries the background marker so it never counts as
 * activity, and never follows redirects (a redirect to the login page means "nobody").
 */
import { performance } from 'node:perf_hooks';
import { Agent, request, type Dispatcher } from 'undici';
import type { Credential, IdentityConfig, WhoamiFn } from './types.js';

/** Larger who-am-I bodies are not read (the answer is a small JSON object). */
const MAX_BODY_BYTES = 256 * 1024;

/** Thrown for answers worth retrying sooner than a definite one (network, timeout, 5xx, 429). */
export class WhoamiUnavailableError extends Error {
  override name = 'WhoamiUnavailableError';
}

/** The user name in a who-am-I JSON body: `username`, else `name`; non-empty strings only. */
export function userFromWhoamiBody(body: unknown): string | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const rec = body as Record<string, unknown>;
  for (const key of ['username', 'name']) {
    const v = rec[key];
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
  }
  return undefined;
}

export type WhoamiConfig = Pick<IdentityConfig, 'upstream' | 'whoamiPath' | 'upstreamTimeoutMs' | 'upstreamConnectTimeoutMs' | 'backgroundHeader'>;

/** One "who am I" answer: the status, the user it names (2xx JSON), where a redirect points. */
export interface WhoamiAnswer {
  readonly status: number;
  readonly user: string | undefined;
  readonly location: string | undefined;
}

/** Told about every who-am-I call (for the admin view's health); never sees a credential. */
export interface WhoamiObserver {
  answered(status: number, latencyMs: number): void;
  failed(error: string, latencyMs: number): void;
}

export class UpstreamWhoami {
  readonly url: string;
  readonly #timeoutMs: number;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #marker: { readonly name: string; readonly value: string };
  readonly #observer: WhoamiObserver | undefined;

  constructor(config: WhoamiConfig, dispatcher?: Dispatcher, observer?: WhoamiObserver) {
    this.url = new URL(config.whoamiPath, config.upstream).toString();
    this.#timeoutMs = config.upstreamTimeoutMs;
    this.#marker = config.backgroundHeader ?? { name: 'x-background-request', value: 'true' };
    this.#observer = observer;
    this.#ownsDispatcher = dispatcher === undefined;
    this.#dispatcher = dispatcher ?? new Agent({
      connections: 64,
      keepAliveTimeout: 10_000,
      connect: { timeout: config.upstreamConnectTimeoutMs ?? 5_000 },
    });
  }

  readonly lookup: WhoamiFn = async (credential: Credential) => {
    const answer = await this.ask(credential.replay);
    if (answer.status >= 500 || answer.status === 429) throw new WhoamiUnavailableError(`who-am-I answered ${answer.status}`);
    return answer.user;
  };

  /**
   * Asks with these (secret) headers. Rejects with WhoamiUnavailableError when no answer came
   * (network, timeout, unreadable body); any status is an answer.
   */
  async ask(replay: Readonly<Record<string, string>>): Promise<WhoamiAnswer> {
    const headers: Record<string, string> = { ...replay, accept: 'application/json', [this.#marker.name]: this.#marker.value };
    const startedMs = performance.now();
    try {
      const answer = await this.#ask(headers);
      this.#observer?.answered(answer.status, performance.now() - startedMs);
      return answer;
    } catch (err) {
      this.#observer?.failed((err as Error).message, performance.now() - startedMs);
      throw err;
    }
  }

  async #ask(headers: Record<string, string>): Promise<WhoamiAnswer> {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(this.url, {
        method: 'GET',
        headers,
        dispatcher: this.#dispatcher,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      throw new WhoamiUnavailableError(`who-am-I request failed: ${describe(err)}`);
    }
    const status = res.statusCode;
    const location = typeof res.headers['location'] === 'string' ? res.headers['location'] : undefined;
    if (status < 200 || status > 299) {
      await res.body.dump().catch(() => undefined);
      return { status, user: undefined, location };
    }
    const text = await readLimited(res.body);
    let user: string | undefined;
    try {
      user = text === undefined ? undefined : userFromWhoamiBody(JSON.parse(text));
    } catch {
      user = undefined;
    }
    return { status, user, location };
  }

  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }
}

async function readLimited(body: Dispatcher.ResponseData['body']): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  try {
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      bytes += buf.length;
      if (bytes > MAX_BODY_BYTES) {
        body.destroy();
        return undefined;
      }
      chunks.push(buf);
    }
  } catch (err) {
    throw new WhoamiUnavailableError(`who-am-I body failed: ${describe(err)}`);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${code} ${err.message}` : err.message;
  }
  return String(err);
}
