/**
 * Panopticon simulator: REST endpoints and WebSockets under <context>/server/.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parse as parseCookies, serialize } from 'cookie';
import { TOKEN_COOKIE } from './auth.js';
import { requireUser, type SimContext } from './context.js';
import { handleLogout } from './logout.js';
import { answerPings, startDataFeed, type SocketKind } from './sockets.js';
import { registerSockJsInfo, registerStompRoutes } from './stomp-routes.js';

export function registerApiRoutes(app: FastifyInstance, sim: SimContext): void {
  const rest = `${sim.contextPath}/server/rest`;
  const ws = `${sim.contextPath}/server/ws`;

  app.get(`${rest}/licenses`, async () => ({ inUse: sim.logins.licensesInUse(), total: sim.logins.totalUnits() }));
  registerSockJsInfo(app, sim);

  // Spring Security's server has no REST logout: that path answers 404 there
  if (sim.logoutStyle !== 'spring') app.post(`${rest}/auth/logout`, async (request, reply) => handleLogout(sim, request, reply, 'json'));

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
    if (sim.wsProtocol === 'json') {
      scope.get(`${ws}/notifications`, { websocket: true }, openSocket('notifications'));
      scope.get(`${ws}/data`, { websocket: true }, openSocket('data'));
    }
    registerStompRoutes(scope, sim);
  });
}
