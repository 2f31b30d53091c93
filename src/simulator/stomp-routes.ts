/**
 * Panopticon simulator: the STOMP personalities' socket endpoints. The sockets are registered
 * inside the signed-in scope (an upgrade without a valid credential gets 401); SockJS's /info is
 * public, as Spring setups usually permit it (sockjs-client asks it before any socket opens).
 *
 *   stomp         <context>/server/ws/stomp                          STOMP 1.2 over a plain WebSocket
 *   sockjs-stomp  <context>/server/sockjs/info                       SockJS info
 *                 <context>/server/sockjs/<server>/<session>/websocket  STOMP inside SockJS framing
 *                 <context>/server/sockjs/websocket                  raw STOMP WebSocket (as Spring offers)
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { SimContext } from './context.js';
import { SOCKJS_HEARTBEAT_MS, SockJsSession, sockJsInfo, validSockJsIds } from './sockjs.js';
import { webSocketLink } from './sockets.js';
import { StompSession, type TextLink } from './stomp-session.js';

export type WsProtocol = 'json' | 'stomp' | 'sockjs-stomp';
export const WS_PROTOCOLS: readonly WsProtocol[] = ['json', 'stomp', 'sockjs-stomp'];

/** Destinations the simulator's dashboard subscribes to in the STOMP personalities. */
export const NOTIFICATION_DESTINATION = '/user/queue/notifications';
export const SALES_DESTINATION = '/topic/data/sales';

export function stompPath(contextPath: string): string {
  return `${contextPath}/server/ws/stomp`;
}

export function sockJsPrefix(contextPath: string): string {
  return `${contextPath}/server/sockjs`;
}

/** What the dashboard page's STOMP transport needs (undefined for json). */
export interface StompPageConfig {
  wsProtocol: Exclude<WsProtocol, 'json'>;
  stompPath: string;
  sockJsPrefix: string;
  notificationDestination: string;
  dataDestination: string;
  stompHeartBeatMs: number;
}

export function stompPageConfig(sim: Pick<SimContext, 'contextPath' | 'wsProtocol' | 'stompHeartBeatMs'>): StompPageConfig | undefined {
  if (sim.wsProtocol === 'json') return undefined;
  return {
    wsProtocol: sim.wsProtocol,
    stompPath: stompPath(sim.contextPath),
    sockJsPrefix: sockJsPrefix(sim.contextPath),
    notificationDestination: NOTIFICATION_DESTINATION,
    dataDestination: SALES_DESTINATION,
    stompHeartBeatMs: sim.stompHeartBeatMs,
  };
}

function startStomp(sim: SimContext, request: FastifyRequest, link: TextLink, socket: Parameters<SimContext['sockets']['add']>[0]): void {
  const identity = sim.identityOf.get(request)!;
  const username = identity.user.username;
  sim.sockets.add(socket, { kind: 'stomp', username, loginId: identity.login?.id });
  const onProtocolError = (reason: string) => {
    sim.protocolErrors.push({ user: username, reason, atMs: Date.now() });
    sim.log.info({ user: username, reason }, 'simulator: STOMP/SockJS protocol error');
  };
  new StompSession(link, { username, dataIntervalMs: sim.dataIntervalMs, heartBeatMs: sim.stompHeartBeatMs, onProtocolError });
}

/** SockJS's public /info (sockjs-stomp only). */
export function registerSockJsInfo(app: FastifyInstance, sim: SimContext): void {
  if (sim.wsProtocol !== 'sockjs-stomp') return;
  app.get(`${sockJsPrefix(sim.contextPath)}/info`, async (_request, reply) => reply.header('cache-control', 'no-store, no-cache, must-revalidate, max-age=0').send(sockJsInfo()));
}

/** Registers the socket endpoints of the configured STOMP personality (nothing for json). */
export function registerStompRoutes(scope: FastifyInstance, sim: SimContext): void {
  const ctx = sim.contextPath;
  const plainStomp = (socket: WebSocket, request: FastifyRequest) => startStomp(sim, request, webSocketLink(socket), socket);
  if (sim.wsProtocol === 'stomp') {
    scope.get(stompPath(ctx), { websocket: true }, plainStomp);
    return;
  }
  if (sim.wsProtocol !== 'sockjs-stomp') return;
  const prefix = sockJsPrefix(ctx);
  scope.get(`${prefix}/websocket`, { websocket: true }, plainStomp);
  scope.get<{ Params: { server: string; session: string } }>(`${prefix}/:server/:session/websocket`, { websocket: true }, (socket, request) => {
    if (!validSockJsIds(request.params.server, request.params.session)) {
      socket.close(1002, 'bad SockJS server or session id');
      return;
    }
    const session = new SockJsSession(socket, SOCKJS_HEARTBEAT_MS, (reason) => sim.protocolErrors.push({ user: sim.identityOf.get(request)?.user.username, reason, atMs: Date.now() }));
    startStomp(sim, request, session, session);
  });
}
