/**
 * Panopticon simulator: the state shared by the route modules, and the records tests read.
 * Records never hold secrets: no passwords, tokens, cookies or session ids.
 */
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticator, Identity } from './auth.js';
import type { CsrfGuard } from './csrf.js';
import type { FailureControl } from './failures.js';
import type { LoginRegistry } from './licenses.js';
import type { SocketRegistry } from './sockets.js';
import type { WsProtocol } from './stomp-routes.js';

/**
 * How the simulated server logs out (SIM_LOGOUT):
 *   rest    POST <context>/server/rest/auth/logout answers 200 JSON and ends the login
 *   spring  only POST <context>/logout (Spring Security's default): ends the login, 302 to the
 *           login page; the REST path does not exist (404)
 *   fake    both paths answer 200 but the login goes on (and keeps its license)
 */
export type LogoutStyle = 'rest' | 'spring' | 'fake';

export interface LogoutCall {
  user: string | undefined;
  /** the logout path called */
  path: string;
  /** answer status; 0 while the call hangs, 499 when abandoned (client gone or simulator closed) */
  status: number;
  /** the credential used: bearer, basic, ptoken, session, or none */
  via: string;
  /** the kinds of credential the call carried, valid or not */
  presented: string[];
  atMs: number;
}

export interface RequestRecord {
  method: string;
  /** path without the query string */
  path: string;
  user?: string;
  atMs: number;
  /** answer status once known */
  status?: number;
}

/** An ERROR frame the STOMP server sent, or a SockJS session closed for broken framing. */
export interface ProtocolErrorRecord {
  user: string | undefined;
  reason: string;
  atMs: number;
}

/** Keeps the newest `capacity` entries. */
export class Ring<T> {
  readonly items: T[] = [];
  constructor(private readonly capacity: number) {}
  push(item: T): T {
    this.items.push(item);
    if (this.items.length > this.capacity) this.items.splice(0, this.items.length - this.capacity);
    return item;
  }
  clear(): void {
    this.items.length = 0;
  }
}

export interface SimContext {
  readonly contextPath: string;
  /** origin used in absolute redirects, e.g. http://127.0.0.1:8080 */
  origin: string;
  readonly issueSessionCookie: boolean;
  /** what the notification/data sockets speak */
  readonly wsProtocol: WsProtocol;
  /** the STOMP server's heart-beat offer */
  readonly stompHeartBeatMs: number;
  readonly logoutStyle: LogoutStyle;
  /** SIM_CSRF: Spring's cookie CSRF protection; undefined when off */
  readonly csrf: CsrfGuard | undefined;
  readonly dataIntervalMs: number;
  readonly pollIntervalMs: number;
  /** the dashboard page's auto-refresh interval, 0 = off */
  readonly autoRefreshMs: number;
  readonly auth: Authenticator;
  readonly logins: LoginRegistry;
  readonly failures: FailureControl;
  readonly sockets: SocketRegistry;
  readonly logoutCalls: Ring<LogoutCall>;
  readonly requests: Ring<RequestRecord>;
  readonly protocolErrors: Ring<ProtocolErrorRecord>;
  readonly log: FastifyBaseLogger;
  /** the request's record in `requests` (set by the first hook) */
  readonly recordOf: WeakMap<FastifyRequest, RequestRecord>;
  readonly identityOf: WeakMap<FastifyRequest, Identity>;
}

export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** Remembers who sent the request (for the request record and the handlers). */
export function noteIdentity(sim: SimContext, request: FastifyRequest, identity: Identity | undefined): void {
  if (!identity) return;
  sim.identityOf.set(request, identity);
  noteUser(sim, request, identity.user.username);
}

/** Puts the user name on the request's record. */
export function noteUser(sim: SimContext, request: FastifyRequest, username: string): void {
  const record = sim.recordOf.get(request);
  if (record) record.user = username;
}

/** Ends one login, or all of a user's logins for Basic, and closes their sockets. */
export function endLoginOf(sim: SimContext, identity: Identity): void {
  if (identity.login) {
    sim.logins.remove(identity.login.id);
    sim.sockets.closeLogin(identity.login.id);
  } else {
    sim.logins.removeAllOf(identity.user.username);
    sim.sockets.closeUser(identity.user.username);
  }
  sim.log.info({ user: identity.user.username, via: identity.via, licenses: sim.logins.licensesInUse() }, 'simulator: logged out');
}

/** Hook factory: only signed-in requests pass; others get 401 JSON or, for pages, a login redirect. */
export function requireUser(sim: SimContext, kind: 'api' | 'page') {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const identity = await sim.auth.identify(request.headers);
    if (identity) {
      noteIdentity(sim, request, identity);
      return undefined;
    }
    if (kind === 'page') return reply.redirect(`${sim.contextPath}/login`, 302);
    return reply.code(401).send({ error: 'unauthorized', message: 'Authentication required' });
  };
}
