/**
 * Builds the proxy's Fastify instance (not listening yet).
 *
 * Layout:
 *   node:http    with httpForwarder 'direct' (the default), ordinary requests are forwarded
 *                straight from Node's request event (direct-forwarding.ts); the rest reach Fastify
 *   root         every HTTP method known to Node, @fastify/websocket, the access-log hook;
 *                the caller adds its own routes here after this returns (they win: they are
 *                concrete paths, the proxy only owns the '/' and '/*' catch-alls)
 *   └ proxy      (encapsulated, log level 'error' so library chatter does not add lines)
 *       one catch-all content-type parser that passes the raw stream on unread
 *       @fastify/http-proxy on '/' and '/*' for every method (plain requests)
 *       GET '/' and '/*' for upgrade requests only (router constraint) -> WebSocket relay
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerFactory } from 'fastify';
import fastifyHttpProxy from '@fastify/http-proxy';
import fastifyWebsocket from '@fastify/websocket';
import type { Logger } from 'pino';
import type { DeploymentConfig } from '../config/deployment.js';
import type { SocketRegistry } from '../notifications/registry.js';
import type { WebSocketProxyOptions } from './ws/websocket.js';
import { createAccessLog, type AccessLog } from './access-log.js';
import { sendBadRequest } from './answers.js';
import { ProxyLogController, sharedRequestLoggers } from './fastify-logging.js';
import type { ProxyHooks } from './hooks.js';
import { createDirectForwarding, type DirectForwarding } from './direct-forwarding.js';
import { createHttpForwarding } from './http-forwarding.js';
import { OwnRoutes } from './own-routes.js';
import { enableEveryMethod } from './methods.js';
import {
  passUpstreamCookies,
  registerWebSocketRoutes,
  upgradeConstraintStrategy,
  webSocketPluginOptions,
} from './ws/websocket.js';

export interface ProxyServerOptions {
  config: DeploymentConfig;
  logger: Logger;
  registry: SocketRegistry;
  hooks?: ProxyHooks;
  /** which sockets are inspected and their framing trackers (the notifier); none = no inspection */
  inspection?: WebSocketProxyOptions['inspection'];
}

function passThroughBody(_req: unknown, payload: unknown, done: (err: Error | null, body?: unknown) => void): void {
  done(null, payload);
}

interface ProxyPluginOptions {
  config: DeploymentConfig;
  logger: Logger;
  registry: SocketRegistry;
  hooks: ProxyHooks | undefined;
  accessLog: AccessLog;
  methods: string[];
  inspection: WebSocketProxyOptions['inspection'];
}

async function proxyPlugin(app: FastifyInstance, opts: ProxyPluginOptions): Promise<void> {
  const { config, logger, hooks } = opts;
  // bodies of proxied requests are never parsed, whatever their type
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', passThroughBody);

  const forwarding = createHttpForwarding(config, logger, hooks);
  await app.register(fastifyHttpProxy, {
    upstream: config.upstream.origin,
    httpMethods: opts.methods,
    proxyPayloads: false, // the parser above already passes bodies through
    internalRewriteLocationHeader: false, // Location is handled by rewriteHeaders
    disableRequestLogging: true,
    destroyAgent: true,
    handler: forwarding.handler,
    replyOptions: forwarding.replyOptions as never,
    undici: {
      connectTimeout: config.upstreamConnectTimeoutMs,
      headersTimeout: config.upstreamTimeoutMs,
      // a body may legitimately pause for long (streams, long polls); the client's own
      // disconnect tears the upstream request down
      bodyTimeout: 0,
      // reply-from caps the pool at 128 connections; requests beyond would wait behind long polls
      connections: null,
      // @fastify/reply-from turns certificate checks off (its `tls.rejectUnauthorized` default);
      // undici applies `connect` after `tls`, so this puts the check back: an https upstream's
      // certificate is checked on every path, like the proxy's own logout and "who am I" calls
      connect: { rejectUnauthorized: true },
    },
  });

  registerWebSocketRoutes(app, opts);
}

/**
 * Requests Fastify cannot route at all (a path with broken percent-encoding) are answered before
 * any hook runs. For an upgrade request that also skips the onResponse hook in which
 * @fastify/websocket ends the socket Node handed over: the connection would stay open with nobody
 * reading it, one leaked socket per request, and server.close() would never finish. So the socket
 * is ended here once the answer is out; the request gets its access-log line like any other.
 */
function answerUnroutable(accessLog: AccessLog) {
  return (err: Error & { statusCode?: number }, request: FastifyRequest, reply: FastifyReply): void => {
    accessLog.onRequest(request, reply, () => undefined);
    const raw = request.raw as typeof request.raw & { upgrade?: boolean };
    if (raw.upgrade === true) {
      const socket = raw.socket;
      reply.raw.once('finish', () => socket.destroy());
    }
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
    sendBadRequest(reply, 'bad_request_target', 'The request target is not a valid URL path.', status);
  };
}

/**
 * Fastify's serverFactory: Node's server with the direct forwarder in front of Fastify's handler,
 * and the same timeouts Fastify would give a server it made itself.
 */
function serverWithDirectForwarding(direct: DirectForwarding): FastifyServerFactory {
  return (fastifyHandler, options) => {
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (!direct.take(req, res)) fastifyHandler(req, res);
    });
    // Fastify has filled in its defaults by now (72 s keep-alive, no request or socket timeout)
    const timeouts = options as { keepAliveTimeout: number; requestTimeout: number; connectionTimeout: number };
    server.keepAliveTimeout = timeouts.keepAliveTimeout;
    server.requestTimeout = timeouts.requestTimeout;
    server.setTimeout(timeouts.connectionTimeout);
    return server;
  };
}

export async function buildProxyServer(opts: ProxyServerOptions): Promise<FastifyInstance> {
  const { config, logger, registry, hooks, inspection } = opts;
  const accessLog = createAccessLog(logger);
  const ownRoutes = new OwnRoutes();
  const direct = config.httpForwarder === 'direct'
    ? createDirectForwarding({ config, logger, hooks, accessLog, isOwnPath: (path) => ownRoutes.has(path) })
    : undefined;
  const app = Fastify({
    ...(direct ? { serverFactory: serverWithDirectForwarding(direct) } : {}),
    loggerInstance: logger,
    logController: new ProxyLogController(),
    childLoggerFactory: sharedRequestLoggers(),
    trustProxy: config.trustForwarded,
    routerOptions: { constraints: { [upgradeConstraintStrategy.name]: upgradeConstraintStrategy } },
    frameworkErrors: answerUnroutable(accessLog),
  }) as unknown as FastifyInstance;

  const methods = enableEveryMethod(app);
  app.addHook('onRoute', ownRoutes.onRoute);
  app.addHook('onRequest', accessLog.onRequest);
  if (direct) app.addHook('onClose', () => direct.close());

  await app.register(fastifyWebsocket, webSocketPluginOptions(config, logger));
  app.websocketServer.on('headers', passUpstreamCookies);

  await app.register(proxyPlugin, { config, logger, registry, hooks, accessLog, methods, inspection, logLevel: 'error' });
  return app;
}
