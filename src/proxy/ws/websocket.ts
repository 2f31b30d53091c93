/**
 * WebSocket pass-through.
 *
 * Why not @fastify/http-proxy's `websocket: true`: its wsHooks never see the HTTP request, so
 * there is no way to run hooks.onUpgrade, refuse with a status, learn the user, or register the
 * client socket with its path and headers. Its relay also opens the upstream only after the
 * client's handshake is done, so the client can't get the sub-protocol the upstream picked, nor
 * the upstream's refusal status. Instead the upgrade goes through @fastify/websocket (which runs
 * upgrades through Fastify's router and hooks) and the proxy's own upgrade request upstream:
 *
 *   1. preHandler `admitUpgrade`: validate the handshake, ask hooks.onUpgrade, then connect to the
 *      upstream (same path and query, the client's cookies/authorization, offered protocols, and
 *      its permessage-deflate offer unless the socket is inspected). A refusal or failure
 *      answers the client's handshake with a status; no socket is made.
 *   2. @fastify/websocket completes the client's handshake; `handleProtocols` answers with the
 *      protocol the upstream chose, and the upstream's 101 Set-Cookie and extension answer are
 *      copied over.
 *   3. wsHandler `relayUpgrade` takes both TCP sockets and relays them as bytes (ws-relay.ts),
 *      registers the client side, calls the hooks.
 *
 * Routing: the WebSocket routes carry a router constraint that only upgrade requests satisfy
 * (Node sets `req.upgrade`). Plain GETs never match them and go to http-proxy's catch-all, and
 * routes the caller registers on concrete paths still win over both.
 * (Headers and the Origin rule of the upstream handshake: ws-handshake.ts.)
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Socket } from 'node:net';
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
import { RawPair } from './ws-relay.js';
import { dialRawUpstream, type RawUpstream, type RefusedUpgrade, type UpstreamDialOptions } from './ws-upstream.js';

const kUpstream = Symbol('stp.upstreamSocket');
type UpgradeRequest = TrackedRequest & { [kUpstream]?: RawUpstream };

/** how long open pairs get at shutdown to finish their closing handshakes */
const SHUTDOWN_CLOSE_WAIT_MS = 300;

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
  /** which sockets are inspected (notification sockets) and their framing trackers; none = no inspection */
  readonly inspection: SocketInspection | undefined;
}

export interface SocketInspection {
  /** true for a socket under inspection (its permessage-deflate offer is not passed on) */
  inspects(path: string): boolean;
  /** the framing tracker of an inspected socket; `protocol` is the upstream's choice ('' for none) */
  trackerFor(path: string, protocol: string): (RelayInspector & NotificationTarget) | undefined;
}

/** Options for registering @fastify/websocket on the root instance. */
export function webSocketPluginOptions(config: DeploymentConfig, logger: Logger) {
  return {
    options: {
      maxPayload: config.wsMaxMessageBytes,
      perMessageDeflate: false,
      clientTracking: true,
      handleProtocols(protocols: Set<string>, req: IncomingMessage): string | false {
        const chosen = (req as UpgradeRequest)[kUpstream]?.protocol;
        return chosen && protocols.has(chosen) ? chosen : false;
      },
    },
    // the relay owns socket errors; ws closes a failing socket itself, so only note them
    errorHandler(err: Error) {
      logger.debug({ err }, 'websocket error');
    },
  };
}

/** Copies the upstream's 101 Set-Cookie and extension answer into the client's 101. */
export function passUpstreamCookies(headers: string[], req: IncomingMessage): void {
  const upstream = (req as UpgradeRequest)[kUpstream];
  if (upstream?.setCookie !== undefined) for (const c of upstream.setCookie) headers.push(`Set-Cookie: ${c}`);
  if (upstream?.extensions !== undefined) headers.push(`Sec-WebSocket-Extensions: ${upstream.extensions}`);
}

/** Adds the upgrade routes ('/' and '/*', upgrade requests only) to `app`. */
export function registerWebSocketRoutes(app: FastifyInstance, opts: WebSocketProxyOptions): void {
  const { config, logger, registry, hooks, accessLog, inspection } = opts;
  const trustForwarded = config.trustForwarded;
  const upstreamOrigin = config.upstream.origin;
  const onUpgrade = hooks?.onUpgrade?.bind(hooks);
  const dialOptions: UpstreamDialOptions = {
    connectTimeoutMs: config.upstreamConnectTimeoutMs,
    answerTimeoutMs: config.upstreamTimeoutMs,
    maxPayloadBytes: config.wsMaxMessageBytes,
  };
  const keepAlive = new KeepAlive<RawPair>(config.wsPingMs);
  const pairs = new Set<RawPair>();
  // before the server stops: upgraded connections are not the HTTP server's to close, and the
  // server's close waits for them. Each pair gets a closing handshake; one that cannot finish it
  // promptly (a peer that does not read) is cut.
  app.addHook('preClose', async () => {
    keepAlive.stop();
    for (const pair of pairs) pair.closeBoth(1001, 'proxy shutting down');
    const deadline = Date.now() + SHUTDOWN_CLOSE_WAIT_MS;
    while (pairs.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const pair of pairs) pair.terminate();
  });
  app.addHook('onClose', async () => {
    for (const pair of pairs) pair.terminate();
  });

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

    // permessage-deflate is negotiated end to end, except on inspected sockets (their small
    // control frames must stay readable without inflating the whole stream)
    const offer = inspection?.inspects(path) === true ? undefined : singleHeader(raw.headers['sec-websocket-extensions']);
    const attempt = await dialRawUpstream(new URL(url, config.upstream), protocols, upstreamHandshakeHeaders(raw, trustForwarded, upstreamOrigin), offer, dialOptions);
    if (!attempt.ok) {
      refuseWithUpstreamAnswer(reply, attempt.refused);
      return reply;
    }
    const upstream = attempt.upstream;
    const clientSocket = raw.socket as typeof raw.socket | null;
    if (clientSocket === null || clientSocket.destroyed) {
      upstream.socket.destroy();
      raw[kReason] = 'client_gone';
      reply.hijack();
      return reply;
    }
    raw[kUpstream] = upstream;
    // if the client's handshake never completes, the upstream must not linger
    clientSocket.once('close', () => {
      if (raw[kUpstream] === upstream) {
        raw[kUpstream] = undefined;
        upstream.socket.destroy();
      }
    });
    return undefined;
  }

  function relayUpgrade(this: unknown, down: WebSocket, request: FastifyRequest): void {
    const raw = request.raw as UpgradeRequest;
    const upstream = raw[kUpstream];
    raw[kUpstream] = undefined;
    raw[kOwnLine] = true;
    if (upstream === undefined || upstream.socket.destroyed) {
      upstream?.socket.destroy();
      down.close(1011, 'upstream unavailable');
      accessLog.webSocketLine(raw, 1011, raw[kUser]);
      return;
    }
    const path = raw[kPath]!;
    const downSocket = takeOver(down, app);
    const framing = inspection?.trackerFor(path, upstream.protocol);
    let rec: RegisteredSocket | undefined;
    const pair: RawPair = new RawPair(downSocket, upstream.socket, {
      maxMessageBytes: config.wsMaxMessageBytes,
      maxBufferedBytes: config.wsMaxBufferedBytes,
      deflate: upstream.extensions !== undefined && /permessage-deflate/i.test(upstream.extensions),
      inspector: framing,
      upstreamReads: upstream.reads,
    }, {
      onClosed(code) {
        keepAlive.delete(pair);
        pairs.delete(pair);
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
    });
    pairs.add(pair);
    rec = registry.add({ socket: pair.client, path, headers: raw.headers, user: raw[kUser], openedAtMs: Date.now(), framing });
    keepAlive.add(pair);
    if (hooks?.onSocketOpen) callSafely(() => hooks.onSocketOpen!(rec!), 'onSocketOpen');
    pair.start(upstream.head);
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

function singleHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * Takes the client's TCP socket away from the `ws` socket @fastify/websocket made for the
 * handshake. Called synchronously right after the handshake: `ws` has attached its listeners but
 * read nothing yet (bytes that came with the request are still in the socket's buffer).
 */
function takeOver(down: WebSocket, app: FastifyInstance): Socket {
  const socket = (down as unknown as { _socket: Socket })._socket;
  for (const event of ['data', 'end', 'close', 'error', 'drain', 'timeout']) socket.removeAllListeners(event);
  socket.pause();
  app.websocketServer.clients.delete(down);
  return socket;
}
