/**
 * Panopticon simulator: Spring Security's cookie CSRF protection (SIM_CSRF=true). The server sets
 * an `XSRF-TOKEN` cookie; every state-changing request (POST, PUT, PATCH, DELETE) must echo it in
 * the `X-XSRF-TOKEN` header (or a `_csrf` form field), else 403. Tokens are ones this simulator
 * issued; a sign-in issues a fresh one (Spring rotates the token at authentication).
 * The form sign-in itself and the /__simulator control routes are exempt.
 */
import { randomBytes } from 'node:crypto';
import { parse as parseCookies, serialize } from 'cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';

export const CSRF_COOKIE = 'XSRF-TOKEN';
export const CSRF_HEADER = 'x-xsrf-token';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);
/** issued tokens remembered (oldest forgotten first) */
const TOKENS_KEPT = 100_000;

export class CsrfGuard {
  readonly #issued = new Set<string>();
  /** requests whose answer already carries a fresh token */
  readonly #given = new WeakSet<FastifyRequest>();

  constructor(private readonly cookiePath: string) {}

  /** Gives the browser a new token with this answer (a cookie scripts can read, as Spring's). */
  issueFor(request: FastifyRequest, reply: FastifyReply): string {
    const token = randomBytes(18).toString('base64url');
    this.#issued.add(token);
    if (this.#issued.size > TOKENS_KEPT) this.#issued.delete(this.#issued.values().next().value!);
    this.#given.add(request);
    // Fastify appends set-cookie values rather than replacing them
    reply.header('set-cookie', serialize(CSRF_COOKIE, token, { path: this.cookiePath, sameSite: 'lax' }));
    return token;
  }

  /** The token the request's cookie carries, when it is one this simulator issued. */
  presented(request: FastifyRequest): string | undefined {
    const raw = request.headers.cookie ? parseCookies(request.headers.cookie)[CSRF_COOKIE] : undefined;
    return raw !== undefined && this.#issued.has(raw) ? raw : undefined;
  }

  /** preHandler: refuses a state-changing request whose header (or form field) does not match the cookie. */
  check(exempt: (request: FastifyRequest) => boolean) {
    return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
      if (SAFE_METHODS.has(request.method) || exempt(request)) return undefined;
      const token = this.presented(request);
      const header = request.headers[CSRF_HEADER];
      const field = (request.body as Record<string, unknown> | undefined)?.['_csrf'];
      const echoed = typeof header === 'string' ? header : typeof field === 'string' ? field : undefined;
      if (token !== undefined && echoed === token) return undefined;
      return reply.code(403).send({ error: 'forbidden', message: token === undefined ? 'CSRF token missing' : 'Invalid CSRF token' });
    };
  }

  /** onSend: a browser without a valid token gets one (as Spring's cookie repository does). */
  offer(skip: (request: FastifyRequest) => boolean) {
    return async (request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> => {
      if (!skip(request) && this.presented(request) === undefined && !this.#given.has(request)) this.issueFor(request, reply);
      return payload;
    };
  }
}
