/**
 * WebSocket pass-through.
 *
 * Why not @fastify/http-proxy's `websocket: true`: its wsHooks never see the HTTP request, so
 * there is no way to run hooks.onUpgrade, refuse with a status, learn the user, or register the
 * client socket with its path and headers. Its relay also opens the upstream only after the
 * client's handshake is done, so the client can't get the sub-protocol the upstream picked, nor
 * the upstream's refusal status. Instead the upgrade goes through @fastify/websocket (which runs
 * upgrades through Fastify's router and hooks) and a `ws` client to the upstream:
 *
 *   1. preHandler `admitUpgrade`: validate the handshake, ask hooks.onUpgrade, then connect to the
 *      upstream (same path and query, the client's cookies/authorization, offered protocols).
 *      A refusal or failure answers the client's handshake with a status; no socket is made.
 *   2. @fastify/websocket completes the client's handshake; `handleProtocols` answers with the
 *      protocol the upstream chose, and the upstream's 101 Set-Cookie headers are copied over.
 *   3. wsHandler `relayUpgrade` wires the pair, registers the client socket, calls the hooks.
 *
 * Routing: the WebSocket routes carry a router constraint that only upgrade requests satisfy
 * (Node sets `req.upgrade`). Plain GETs never match them and go to http-proxy's catch-all, and
 * routes the caller registers on concrete paths still win over both.
 * (Headers and the Origin rule of the upstream handshake: ws-handshake.ts.)
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type WebSocket from 'ws';
import type { DeploymentConfig } from '../../config/deployment.js';
import { pathOf } from '../../log.js';
import type { NotificationTarget, RelayInspector } from '../../notifications/framing/inspector.js';
import type { RegisteredSocket, SocketRegistry } from '../../notifications/registry.js';
import type { AccessLog } from '../access-log.js';
import { isPromiseLike, sendBadRequest, sendProxyFailure, sendRefusal } from '../answers.js';
import type { ProxyHooks, UpgradeDecision } from '../hooks.js';
import { clientOrigin, rewriteUpstreamUrl } from '../location.js';
import { kOwnLine, kPath, kReason, kUser, type TrackedRequest } from '../request-state.js';
import { handshakeIsValid, isPlainPath, offeredProtocols, upstreamHandshakeHeaders } from './ws-handshake.js';
import { KeepAlive } from './ws-keepalive.js';
import { SocketPair } from './ws-relay.js';
import { dialUpstream, type OpenUpstream, type RefusedUpgrade, type UpstreamDialOptions } from './ws-upstream.js';

const kUpstream = Symbol('stp.upstreamSocket');
type UpgradeRequest = TrackedRequest & { [kUpstream]?: OpenUpstream };

/** name of the router constraint that separates upgrade requests from plain GETs */
export const UPGRADE_CONSTRAINT = 'stpUpgrade';
const UPGRADE_VALUE = 'websocket';

/** find-my-way constraint strategy: an upgrade request derives 'websocket' */
export const upgradeConstraintStrategy = {
  name: UPGRADE_CONSTRAINT,
  mustMatchWhenDerived: false,
  storage<T>() {
    const stores = new Map<string, T>();
    return {
      get: (value: string): T | null => stores.get(value) ?? null,
      set: (value: string, store: T): void => { stores.set(value, store); },
    };
  },
  // Node sets `upgrade` on requests it hands to the server's 'upgrade' listeners. A plain
  // request derives '' which no route is constrained to, so only unconstrained routes match it.
  // Among routes that match an upgrade, find-my-way picks the one added last: the WebSocket
  // routes are added after http-proxy's catch-all for that reason (a test guards it).
  deriveConstraint: (req: IncomingMessage): string => ((req as { upgrade?: boolean }).upgrade === true ? UPGRADE_VALUE : ''),
  validate() { /* only this module sets the value */ },
};

export interface WebSocketProxyOptions {
  readonly config: DeploymentConfig;
  readonly logger: Logger;
  readonly registry: SocketRegistry;
  readonly hooks: ProxyHooks | undefined;
  readonly accessLog: AccessLog;
  /**
   * The framing tracker of a socket that is under inspection (a notification socket), or
   * undefined to relay it uninspected; `protocol` is the upstream's chosen sub-protocol.
   */
  readonly framingFor: ((path: string, protocol: string) => (RelayInspector & NotificationTarget) | undefined) | undefined;
}

/** Options for registering @fastify/websocket on the root instance. */
export function webSocketPluginOptions(config: DeploymentConfig, logger: Logger) {
  return {
    options: {
      maxPayload: config.wsMaxMessageBytes,
      perMessageDeflate: false,
      clientTracking: true,
      handleProtocols(protocols: Set<string>, req: IncomingMessage): string | false {
        const chosen = (req as UpgradeRequest)[kUpstream]?.socket.protocol;
        return chosen && protocols.has(chosen) ? chosen : false;
      },
    },
    // the relay owns socket errors; ws closes a failing socket itself, so only note them
    errorHandler(err: Error) {
      logger.debug({ err }, 'websocket error');
    },
  };
}

/** Copies the upstream's 101 Set-Cookie headers into the client's 101. */
export function passUpstreamCookies(headers: string[], req: IncomingMessage): void {
  const cookies = (req as UpgradeRequest)[kUpstream]?.setCookie;
  if (cookies !== undefined) for (const c of cookies) headers.push(`Set-Cookie: ${c}`);
}

/** Adds the upgrade routes ('/' and '/*', upgrade requests only) to `app`. */
export function registerWebSocketRoutes(app: FastifyInstance, opts: WebSocketProxyOptions): void {
  const { config, logger, registry, hooks, accessLog, framingFor } = opts;
  const trustForwarded = config.trustForwarded;
  const wsBase = `${config.upstream.protocol === 'https:' ? 'wss:' : 'ws:'}//${config.upstream.host}`;
  const upstreamOrigin = config.upstream.origin;
  const onUpgrade = hooks?.onUpgrade?.bind(hooks);
  const dialOptions: UpstreamDialOptions = {
    connectTimeoutMs: config.upstreamConnectTimeoutMs,
    answerTimeoutMs: config.upstreamTimeoutMs,
    maxPayloadBytes: config.wsMaxMessageBytes,
  };
  const keepAlive = new KeepAlive<SocketPair>(config.wsPingMs);
  app.addHook('onClose', async () => keepAlive.stop());

  function refuseWithUpstreamAnswer(reply: FastifyReply, refused: RefusedUpgrade): void {
    const raw = reply.request.raw as TrackedRequest;
    raw[kReason] = refused.problem;
    const headers = { ...refused.headers };
    const location = headers.location;
    if (typeof location === 'string') {
      const origin = clientOrigin(raw, trustForwarded);
      const moved = origin === undefined ? undefined : rewriteUpstreamUrl(location, config.upstream, origin);
      if (moved !== undefined) headers.location = moved;
    }
    reply.code(refused.statusCode).headers(headers).header('content-type', 'application/json; charset=utf-8').send(refused.body);
  }

  async function admitUpgrade(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const raw = request.raw as UpgradeRequest;
    const url = raw.url ?? '';
    if (url.charCodeAt(0) !== 47 /* "/" */) {
      sendBadRequest(reply, 'bad_websocket_handshake', 'The request target must be a path.');
      return reply;
    }
    const path = pathOf(url)!;
    raw[kPath] = path;
    if (!isPlainPath(path)) {
      sendBadRequest(reply, 'bad_websocket_handshake', 'The request target must be a plain path, without "." or ".." segments or backslashes.');
      return reply;
    }
    const protocols = offeredProtocols(raw.headers['sec-websocket-protocol']);
    if (protocols === undefined || !handshakeIsValid(raw)) {
      sendBadRequest(reply, 'bad_websocket_handshake', 'The WebSocket handshake headers are invalid.');
      return reply;
    }

    if (onUpgrade !== undefined) {
      let decision: UpgradeDecision;
      try {
        const pending = onUpgrade(raw, path);
        decision = isPromiseLike(pending) ? await pending : pending;
      } catch (err) {
        logger.error({ err }, 'onUpgrade hook failed');
        sendProxyFailure(reply, 'hook_failed');
        return reply;
      }
      if (decision.user !== undefined) raw[kUser] = decision.user;
      if (decision.refuse !== undefined) {
        sendRefusal(reply, decision.refuse);
        return reply;
      }
    }

    const attempt = await dialUpstream(wsBase + url, protocols, upstreamHandshakeHeaders(raw, trustForwarded, upstreamOrigin), dialOptions);
    if (!attempt.ok) {
      refuseWithUpstreamAnswer(reply, attempt.refused);
      return reply;
    }
    const upstream = attempt.upstream;
    const clientSocket = raw.socket as typeof raw.socket | null;
    if (clientSocket === null || clientSocket.destroyed) {
      upstream.socket.terminate();
      raw[kReason] = 'client_gone';
      reply.hijack();
      return reply;
    }
    raw[kUpstream] = upstream;
    // if the client's handshake never completes, the upstream must not linger
    clientSocket.once('close', () => {
      if (raw[kUpstream] === upstream) {
        raw[kUpstream] = undefined;
        upstream.socket.terminate();
      }
    });
    return undefined;
  }

  function relayUpgrade(this: unknown, down: WebSocket, request: FastifyRequest): void {
    const raw = request.raw as UpgradeRequest;
    const upstream = raw[kUpstream];
    raw[kUpstream] = undefined;
    raw[kOwnLine] = true;
    if (upstream === undefined) {
      down.close(1011, 'upstream unavailable');
      accessLog.webSocketLine(raw, 1011, raw[kUser]);
      return;
    }
    const path = raw[kPath]!;
    const { early, closed } = upstream.takeOver();
    const framing = framingFor?.(path, upstream.socket.protocol);
    let rec: RegisteredSocket | undefined;
    const pair: SocketPair = new SocketPair(down, upstream.socket, config.wsMaxBufferedBytes, {
      onClosed(code) {
        keepAlive.delete(pair);
        if (rec !== undefined) {
          registry.remove(rec);
          if (hooks?.onSocketClose) callSafely(() => hooks.onSocketClose!(rec!), 'onSocketClose');
        }
        accessLog.webSocketLine(raw, code, rec?.user ?? raw[kUser]);
      },
      onError(side, err) {
        logger.debug({ err, side, path }, 'websocket relay error');
      },
      onUnresponsive(side) {
        logger.info({ event: 'websocket-unresponsive', side, path, user: rec?.user ?? raw[kUser] }, `websocket ${side} did not answer a ping within ${config.wsPingMs} ms; connection dropped`);
      },
    }, framing);
    pair.deliverEarly(early);
    if (closed !== undefined) {
      pair.upstreamClosedEarly(closed.code, closed.reason);
      return;
    }
    rec = registry.add({ socket: down, path, headers: raw.headers, user: raw[kUser], openedAtMs: Date.now(), framing });
    keepAlive.add(pair);
    if (hooks?.onSocketOpen) callSafely(() => hooks.onSocketOpen!(rec!), 'onSocketOpen');
    pair.resumeUpstream();
  }

  function callSafely(fn: () => void, name: string): void {
    try {
      fn();
    } catch (err) {
      logger.error({ err }, `${name} hook failed`);
    }
  }

  // never reached: the constraint admits upgrade requests only, which @fastify/websocket hands
  // to wsHandler; kept because a route needs a plain handler next to wsHandler
  function notAnUpgrade(_request: FastifyRequest, reply: FastifyReply): void {
    sendBadRequest(reply, 'not_an_upgrade', 'Expected a WebSocket upgrade.');
  }

  for (const url of ['/', '/*']) {
    app.route({
      method: 'GET',
      url,
      constraints: { [UPGRADE_CONSTRAINT]: UPGRADE_VALUE },
      exposeHeadRoute: false,
      preHandler: admitUpgrade,
      handler: notAnUpgrade,
      wsHandler: relayUpgrade,
    });
  }
}
