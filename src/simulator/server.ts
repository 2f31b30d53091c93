/**
 * Panopticon simulator: a small stand-in for an Altair Panopticon dashboard server, used by the
 * tests, the demo, the compose file and the browser tests. It is NOT Panopticon; it imitates the
 * parts the session-timeout proxy relies on (form login, ptoken/SESSION/Bearer/Basic credentials,
 * "who am I", logout that returns license units, the notification and data WebSockets) and has
 * switches that make it fail on purpose.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import { pino, type Logger } from 'pino';
import { registerApiRoutes } from './api-routes.js';
import { Authenticator, type IssueTokenOptions } from './auth.js';
import { Ring, pathOf, type LogoutCall, type LogoutStyle, type RequestRecord, type SimContext } from './context.js';
import { CsrfGuard } from './csrf.js';
import { CONTROL_PREFIX, registerControlRoutes } from './control-routes.js';
import { FailureControl, type FailureSwitches } from './failures.js';
import { LoginRegistry, type LoginSummary } from './licenses.js';
import { registerPageRoutes } from './page-routes.js';
import { SocketRegistry } from './sockets.js';
import { WS_PROTOCOLS, type WsProtocol } from './stomp-routes.js';
import { defaultUsers, parseUsers, type SimUser } from './users.js';

export type { SimUser } from './users.js';
export type { FailureSwitches } from './failures.js';
export type { IssueTokenOptions } from './auth.js';
export type { WsProtocol } from './stomp-routes.js';

export interface SimulatorOptions {
  /** listen address; default 127.0.0.1 */
  host?: string;
  /** default 0 (any free port) */
  port?: number;
  /** default /panopticon */
  contextPath?: string;
  /** default: config/simulator-users.json */
  users?: SimUser[];
  /** HS256 secret for tokens; default a random one per simulator */
  tokenSecret?: string;
  /** also set a SESSION cookie at login (Panopticon 2024.1+); default false */
  issueSessionCookie?: boolean;
  /** what the notification/data sockets speak: json (two plain sockets, default), stomp, sockjs-stomp */
  wsProtocol?: WsProtocol;
  /** the STOMP server's heart-beat offer (ms); default 10000 */
  stompHeartBeatMs?: number;
  /** how logout works (SIM_LOGOUT); default rest */
  logoutStyle?: LogoutStyle;
  /** Spring-style cookie CSRF protection (SIM_CSRF); default false */
  csrf?: boolean;
  /** live-data push interval; default 1000 */
  dataIntervalMs?: number;
  /** the dashboard page's background polling interval; default 5000 */
  pollIntervalMs?: number;
  /** the dashboard page's auto-refresh timer (a path in no list); default 0 = off */
  autoRefreshMs?: number;
  /** origin used in the absolute login redirect; default the simulator's own `url` */
  publicOrigin?: string;
  /** default: a pino logger at info level; false for silence */
  logger?: Logger | false;
}

export interface Simulator {
  /** http://127.0.0.1:PORT (loopback when listening on every address) */
  readonly url: string;
  readonly port: number;
  readonly tokenSecret: string;
  close(): Promise<void>;
  /** units checked out per logged-in user */
  licensesInUse(): Record<string, number>;
  /** every call of the logout endpoint, oldest first (status 0 while hung, 499 if abandoned) */
  readonly logoutCalls: ReadonlyArray<{ user: string | undefined; path: string; status: number; via: string; presented: readonly string[]; atMs: number }>;
  /** the most recent requests (bounded), oldest first */
  readonly requests: ReadonlyArray<{ method: string; path: string; user?: string; atMs: number; status?: number }>;
  /** STOMP ERROR frames sent and SockJS sessions closed for broken framing, oldest first */
  readonly protocolErrors: ReadonlyArray<{ user: string | undefined; reason: string; atMs: number }>;
  failures: FailureSwitches;
  /** Creates a login for the user (checking out units) and returns its token. */
  issueToken(username: string, opts?: IssueTokenOptions): Promise<string>;
  /** Like issueToken, also giving a SESSION id for the same login. */
  issueLogin(username: string, opts?: IssueTokenOptions): Promise<{ token: string; sessionId: string }>;
  /** Ends every login of a user, as an administrator would; returns how many ended. */
  logOutUser(username: string): number;
  logins(): LoginSummary[];
}

const REQUESTS_KEPT = 1000;
const LOGOUT_CALLS_KEPT = 10_000;
const SHUTDOWN_CLOSE_WAIT_MS = 1000;
const PROTOCOL_ERRORS_KEPT = 1000;

function wsProtocolOf(raw: string | undefined): WsProtocol {
  const value = raw ?? 'json';
  if (!(WS_PROTOCOLS as readonly string[]).includes(value)) throw new Error(`wsProtocol must be one of ${WS_PROTOCOLS.join(', ')}, got ${JSON.stringify(raw)}`);
  return value as WsProtocol;
}

function normaliseContextPath(raw: string): string {
  const trimmed = raw.replace(/\/+$/, '');
  if (trimmed !== '' && !trimmed.startsWith('/')) throw new Error(`contextPath must start with "/": ${JSON.stringify(raw)}`);
  return trimmed;
}

function loopbackFor(host: string): string {
  if (host === '0.0.0.0' || host === 'localhost' || host === '') return '127.0.0.1';
  if (host === '::' || host === '::1') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a whole number >= 1, got ${value}`);
  return value;
}

function addHooks(app: FastifyInstance, sim: SimContext, shutdown: AbortSignal): void {
  const isControl = (url: string) => url.startsWith(`${CONTROL_PREFIX}/`);

  app.addHook('onRequest', async (request, reply) => {
    const record: RequestRecord = { method: request.method, path: pathOf(request.url), atMs: Date.now() };
    sim.requests.push(record);
    sim.recordOf.set(request, record);
    if (isControl(request.url)) return;
    if (sim.failures.down) {
      reply.hijack();
      request.raw.socket?.destroy();
      return;
    }
    if (sim.failures.delayMs > 0) {
      try {
        await sleep(sim.failures.delayMs, undefined, { signal: shutdown });
      } catch {
        reply.hijack();
        request.raw.socket?.destroy();
      }
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    const record = sim.recordOf.get(request);
    if (record) record.status = reply.statusCode;
    sim.log.debug({ method: request.method, path: record?.path, user: record?.user, status: reply.statusCode }, 'simulator: request');
  });
}

export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const host = opts.host ?? '127.0.0.1';
  const contextPath = normaliseContextPath(opts.contextPath ?? '/panopticon');
  const users = opts.users ? parseUsers(opts.users, 'options.users') : defaultUsers();
  const tokenSecret = opts.tokenSecret ?? randomBytes(32).toString('base64url');
  const log: Logger = opts.logger === false
    ? pino({ level: 'silent' })
    : (opts.logger ?? pino({ name: 'panopticon-simulator' }));

  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
    bodyLimit: 64 * 1024,
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  const logins = new LoginRegistry();
  const failures = new FailureControl();
  const sockets = new SocketRegistry();
  const sim: SimContext = {
    contextPath,
    origin: '',
    issueSessionCookie: opts.issueSessionCookie ?? false,
    wsProtocol: wsProtocolOf(opts.wsProtocol),
    stompHeartBeatMs: positive('stompHeartBeatMs', opts.stompHeartBeatMs ?? 10_000),
    logoutStyle: opts.logoutStyle ?? 'rest',
    csrf: opts.csrf ? new CsrfGuard(contextPath === '' ? '/' : contextPath) : undefined,
    dataIntervalMs: positive('dataIntervalMs', opts.dataIntervalMs ?? 1000),
    pollIntervalMs: positive('pollIntervalMs', opts.pollIntervalMs ?? 5000),
    autoRefreshMs: opts.autoRefreshMs ?? 0,
    auth: new Authenticator(tokenSecret, users, logins),
    logins,
    failures,
    sockets,
    logoutCalls: new Ring<LogoutCall>(LOGOUT_CALLS_KEPT),
    requests: new Ring<RequestRecord>(REQUESTS_KEPT),
    protocolErrors: new Ring(PROTOCOL_ERRORS_KEPT),
    log: app.log,
    recordOf: new WeakMap(),
    identityOf: new WeakMap(),
  };

  // "down": drop open sockets and idle keep-alive connections; new requests are dropped by the hook
  failures.onDown = () => {
    sockets.terminateAll();
    app.server.closeIdleConnections();
  };

  const shutdown = new AbortController();
  await app.register(websocket, {
    options: { handleProtocols: (offered: Set<string>) => offered.values().next().value ?? false },
    preClose: (done) => {
      sockets.closeAll(1001, 'simulator closing', SHUTDOWN_CLOSE_WAIT_MS);
      app.websocketServer.close(() => done());
    },
  });
  addHooks(app, sim, shutdown.signal);
  if (sim.csrf) {
    const isControl = (request: { url: string }) => request.url.startsWith(`${CONTROL_PREFIX}/`);
    const isSignIn = (request: { method: string; url: string }) => request.method === 'POST' && pathOf(request.url) === `${contextPath}/login`;
    app.addHook('preHandler', sim.csrf.check((request) => isControl(request) || isSignIn(request)));
    app.addHook('onSend', sim.csrf.offer(isControl));
  }
  registerPageRoutes(app, sim);
  registerApiRoutes(app, sim);
  registerControlRoutes(app, sim);

  await app.listen({ host, port: opts.port ?? 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (opts.port ?? 0);
  const url = `http://${loopbackFor(host)}:${port}`;
  sim.origin = (opts.publicOrigin ?? url).replace(/\/+$/, '');
  log.info({ url, contextPath, publicOrigin: sim.origin, wsProtocol: sim.wsProtocol }, 'Panopticon simulator listening');

  const issueLogin = async (username: string, issueOpts?: IssueTokenOptions) => {
    const user = sim.auth.user(username);
    if (!user) throw new Error(`simulator: unknown user ${JSON.stringify(username)}`);
    const issued = await sim.auth.createLogin(user, { ...issueOpts, withSession: true });
    return { token: issued.token, sessionId: issued.sessionId! };
  };

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    tokenSecret,
    failures,
    close: () => {
      closing ??= (async () => {
        failures.dispose();
        shutdown.abort();
        await app.close();
      })();
      return closing;
    },
    licensesInUse: () => logins.licensesInUse(),
    get logoutCalls() { return sim.logoutCalls.items; },
    get requests() { return sim.requests.items; },
    get protocolErrors() { return sim.protocolErrors.items; },
    issueToken: async (username, issueOpts) => (await issueLogin(username, issueOpts)).token,
    issueLogin,
    logOutUser: (username) => {
      const ended = logins.removeAllOf(username);
      sockets.closeUser(username);
      return ended.length;
    },
    logins: () => logins.summaries(),
  };
}
