/**
 * Panopticon simulator: REST endpoints and WebSockets under <context>/server/.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parse as parseCookies, serialize } from 'cookie';
import { SESSION_COOKIE, TOKEN_COOKIE, presentedKinds } from './auth.js';
import { endLoginOf, noteIdentity, requireUser, type LogoutCall, type SimContext } from './context.js';
import { answerPings, startDataFeed, type SocketKind } from './sockets.js';

/** Status recorded for a logout call nobody is waiting for any more. */
export const ABANDONED_STATUS = 499;

function abandon(request: FastifyRequest, reply: FastifyReply): void {
  reply.hijack();
  request.raw.socket?.destroy();
}

function clientGone(request: FastifyRequest): boolean {
  const socket = request.raw.socket;
  return !socket || socket.destroyed;
}

async function handleLogout(sim: SimContext, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | void> {
  const identity = await sim.auth.identify(request.headers);
  noteIdentity(sim, request, identity);
  const call: LogoutCall = sim.logoutCalls.push({ user: identity?.user.username, status: 0, via: identity?.via ?? 'none', presented: presentedKinds(request.headers), atMs: Date.now() });

  const failStatus = sim.failures.takeLogoutFailure();
  if (failStatus !== undefined) {
    call.status = failStatus;
    sim.log.info({ user: call.user, status: failStatus }, 'simulator: logout failed on purpose');
    return reply.code(failStatus).send({ error: 'simulated failure' });
  }
  const callerLeft = new Promise<boolean>((resolve) => reply.raw.once('close', () => resolve(false)));
  const proceed = await Promise.race([sim.failures.waitWhileHung(), callerLeft]);
  if (!proceed || clientGone(request)) {
    call.status = ABANDONED_STATUS;
    return abandon(request, reply);
  }
  // the login may have ended while the call hung
  const current = identity && (await sim.auth.identify(request.headers));
  if (!current) {
    call.status = 401;
    return reply.code(401).send({ error: 'unauthorized', message: 'Unknown or expired credential' });
  }
  endLoginOf(sim, current);
  call.status = 200;
  const expired = { path: sim.contextPath === '' ? '/' : sim.contextPath, maxAge: 0 };
  return reply
    .header('set-cookie', [serialize(TOKEN_COOKIE, '', expired), serialize(SESSION_COOKIE, '', { ...expired, httpOnly: true })])
    .send({ loggedOut: true });
}

export function registerApiRoutes(app: FastifyInstance, sim: SimContext): void {
  const rest = `${sim.contextPath}/server/rest`;
  const ws = `${sim.contextPath}/server/ws`;

  app.get(`${rest}/licenses`, async () => ({ inUse: sim.logins.licensesInUse(), total: sim.logins.totalUnits() }));

  app.post(`${rest}/auth/logout`, async (request, reply) => handleLogout(sim, request, reply));

  app.register(async (scope) => {
    scope.addHook('onRequest', requireUser(sim, 'api'));
    const userOf = (request: FastifyRequest) => sim.identityOf.get(request)!.user;

    scope.get(`${rest}/server/myself`, async (request) => {
      const user = userOf(request);
      return { username: user.username, role: user.role };
    });

    // background polling endpoint (matches the proxy's default passive rule)
    scope.get(`${rest}/data/poll`, async () => ({
      tiles: [{ tile: 'sales', value: 1000 + Math.round(Math.random() * 200) }],
      at: new Date().toISOString(),
    }));

    // the dashboard's "Refresh dashboard" button: a user action
    scope.route({
      method: ['GET', 'POST'],
      url: `${rest}/dashboards/refresh`,
      handler: async (request) => ({ refreshed: true, dashboard: 'sales', by: userOf(request).username, at: new Date().toISOString() }),
    });

    // the dashboard page's auto-refresh timer (a path in no list)
    scope.get<{ Params: { id: string } }>(`${rest}/dashboards/:id/refresh`, async (request) => ({ refreshed: true, dashboard: request.params.id, auto: true, at: new Date().toISOString() }));

    // a client keeping its sign-in fresh: the answer only sets the token cookie again
    scope.get(`${rest}/auth/renew`, async (request, reply) => {
      const token = parseCookies(request.headers.cookie ?? '')[TOKEN_COOKIE];
      if (token) reply.header('set-cookie', serialize(TOKEN_COOKIE, token, { path: sim.contextPath === '' ? '/' : sim.contextPath, maxAge: 7 * 24 * 3600 }));
      return { renewed: token !== undefined };
    });

    // normally answered by the proxy; here too so that the page works without one
    scope.get(`${rest}/user/timeout/reset`, async () => ({}));

    const openSocket = (kind: SocketKind) => (socket: import('ws').WebSocket, request: FastifyRequest) => {
      const identity = sim.identityOf.get(request)!;
      sim.sockets.add(socket, { kind, username: identity.user.username, loginId: identity.login?.id });
      if (kind === 'data') startDataFeed(socket, sim.dataIntervalMs);
      else answerPings(socket);
    };
    scope.get(`${ws}/notifications`, { websocket: true }, openSocket('notifications'));
    scope.get(`${ws}/data`, { websocket: true }, openSocket('data'));
  });
}
