/**
 * Plain HTTP forwarding straight from Node's request event onto an undici Agent, without Fastify
 * routing or @fastify/reply-from in between: the proxy's hot path (PROXY_HTTP_FORWARDER=direct).
 *
 * It takes an ordinary request only; anything unusual is left to Fastify, where
 * @fastify/http-proxy forwards it with the same hooks and header rules:
 *   - a path the proxy answers itself (reset service, health; see own-routes.ts);
 *   - a path that is not plain: percent-encoded bytes, dot segments, backslashes, a leading `//`,
 *     an absolute-form target (Fastify/http-proxy validate and normalise those);
 *   - a GET or HEAD that carries a body (Fastify drops such bodies; so must the upstream request).
 *
 * Same behaviour as the Fastify path, checked by the same tests (test/proxy-http.test.ts runs
 * against both): hooks.onHttpRequest before, hooks.onHttpResponse once the upstream status is
 * known, bodies streamed both ways with back-pressure, the query string byte for byte, the same
 * 502/504 answers, a client that leaves aborts the upstream request, one access-log line.
 *
 * Per request: one header list (what is sent upstream) and one Exchange (undici's handler);
 * every function is created once per server.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { DeploymentConfig } from '../config/deployment.js';
import type { AccessLog } from './access-log.js';
import { announcesBody, writeProxyFailure, writeRefusal, writeUpstreamFailure } from './answers.js';
import { createHeaderRules, upstreamHeaderList, type HeaderRules } from './forward-headers.js';
import type { OutgoingHeaders } from './forwarded.js';
import { decideHttpRequest, type DecisionOutcome } from './http-decision.js';
import type { ProxyHooks } from './hooks.js';
import { kHookContext, kPath, type TrackedRequest } from './request-state.js';
import { classifyUpstreamError } from './upstream-errors.js';

export interface DirectForwardingOptions {
  config: DeploymentConfig;
  logger: Logger;
  hooks: ProxyHooks | undefined;
  accessLog: AccessLog;
  /** true for a path the proxy answers itself (those go to Fastify) */
  isOwnPath(path: string): boolean;
}

export interface DirectForwarding {
  /** Forwards the request and returns true, or returns false to leave it to Fastify. */
  take(req: IncomingMessage, res: ServerResponse): boolean;
  /** Closes the upstream connections. */
  close(): Promise<void>;
}

/** a path made of unreserved and sub-delim characters only, not starting with `//` */
const PLAIN_PATH = /^\/(?!\/)[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/;
/** characters http-proxy's sanitiser strips from upstream header values */
const INVALID_HEADER_CHARS = /[^\t\x20-\x7E\x80-\xFF]/g;

const kExchange = Symbol('stp.exchange');
type TrackedResponse = ServerResponse & { [kExchange]?: Exchange };

function sanitised(headers: OutgoingHeaders): OutgoingHeaders {
  for (const name in headers) {
    const value = headers[name];
    if (typeof value === 'string') headers[name] = value.replace(INVALID_HEADER_CHARS, '');
    else if (Array.isArray(value)) headers[name] = value.map((v) => v.replace(INVALID_HEADER_CHARS, ''));
  }
  return headers;
}

/** What every Exchange shares: made once per server. */
interface Shared {
  rules: HeaderRules;
  logger: Logger;
  onHttpResponse: ProxyHooks['onHttpResponse'];
}

/** One forwarded request, as undici's dispatch handler. */
class Exchange implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private ended = false;
  private waitingForDrain = false;

  constructor(
    private readonly req: TrackedRequest,
    private readonly res: TrackedResponse,
    private readonly shared: Shared,
    private readonly bodySent: boolean,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.res.destroyed) controller.abort(new Error('the client left'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, upstreamHeaders: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return; // informational (103 Early Hints): not passed on
    const { req, res, shared } = this;
    if (res.destroyed) {
      this.ended = true;
      controller.abort(new Error('the client left'));
      return;
    }
    if (shared.onHttpResponse !== undefined) {
      try {
        shared.onHttpResponse(req, req[kPath]!, statusCode, req[kHookContext], upstreamHeaders);
      } catch (err) {
        shared.logger.error({ err }, 'onHttpResponse hook failed');
      }
    }
    const headers = shared.rules.clientResponseHeaders(req, upstreamHeaders as OutgoingHeaders);
    // framing is per hop: Node chunks or sets the length for the client itself
    if (headers['transfer-encoding'] !== undefined) delete headers['transfer-encoding'];
    // an HTTP/1 connection cannot be reused before its request body was read to the end
    if (this.bodySent && !req.complete) headers.connection = 'close';
    try {
      res.writeHead(statusCode, headers);
    } catch {
      // an upstream header value Node refuses to send (control characters): strip them, as
      // @fastify/http-proxy does, rather than fail the request
      res.writeHead(statusCode, sanitised(headers));
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.res.write(chunk)) return;
    controller.pause();
    if (!this.waitingForDrain) {
      this.waitingForDrain = true;
      this.res.on('drain', () => this.controller?.resume());
    }
  }

  onResponseEnd(): void {
    this.ended = true;
    this.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.ended = true;
    const { req, res, shared } = this;
    if (res.headersSent) {
      res.destroy(err); // the body broke mid-way: the client must not take it for complete
      return;
    }
    // nobody to answer (the response's socket: undici may have destroyed the request stream it consumed)
    if (res.destroyed || res.socket === null || res.socket.destroyed) return;
    const failure = classifyUpstreamError(err);
    shared.logger.debug({ err, problem: failure.problem }, 'upstream request failed');
    writeUpstreamFailure(req, res, failure);
  }

  /** the client's connection closed: stop the upstream request if it is still running */
  clientClosed(): void {
    if (!this.ended) this.controller?.abort(new Error('the client left'));
  }
}

function onClientClose(this: TrackedResponse): void {
  this[kExchange]?.clientClosed();
}

export function createDirectForwarding(opts: DirectForwardingOptions): DirectForwarding {
  const { config, logger, hooks, accessLog, isOwnPath } = opts;
  const origin = config.upstream.origin;
  const upstreamHost = config.upstream.host;
  const trustForwarded = config.trustForwarded;
  const shared: Shared = {
    rules: createHeaderRules(config.upstream, config.trustForwarded, logger),
    logger,
    onHttpResponse: hooks?.onHttpResponse?.bind(hooks),
  };
  const onHttpRequest = hooks?.onHttpRequest?.bind(hooks);
  const agent = new Agent({
    connectTimeout: config.upstreamConnectTimeoutMs,
    headersTimeout: config.upstreamTimeoutMs,
    // a body may legitimately pause for long (streams, long polls); the client's own
    // disconnect tears the upstream request down
    bodyTimeout: 0,
    // no cap: a capped pool would queue every request behind the long polls and streams that
    // hold its connections (one per browser tab); the upstream sees what the clients send
    connections: null,
    pipelining: 1,
  });

  function forward(req: TrackedRequest, res: TrackedResponse): void {
    const headers = upstreamHeaderList(req, upstreamHost, trustForwarded);
    const bodySent = announcesBody(req);
    const exchange = new Exchange(req, res, shared, bodySent);
    res[kExchange] = exchange;
    res.on('close', onClientClose);
    agent.dispatch({ origin, path: req.url!, method: req.method!, headers, body: bodySent ? req : null }, exchange);
  }

  const outcome: DecisionOutcome<TrackedResponse> = {
    forward,
    refuse(req, res, refusal) {
      writeRefusal(req, res, refusal);
    },
    failed(req, res, err) {
      logger.error({ err }, 'onHttpRequest hook failed');
      writeProxyFailure(req, res, 'hook_failed');
    },
  };

  return {
    take(req, res) {
      const url = req.url;
      if (url === undefined) return false;
      const query = url.indexOf('?');
      const path = query === -1 ? url : url.slice(0, query);
      if (!PLAIN_PATH.test(path) || path.includes('/.') || isOwnPath(path)) return false;
      const method = req.method;
      if ((method === 'GET' || method === 'HEAD') && announcesBody(req)) return false;
      accessLog.track(req, res);
      try {
        decideHttpRequest(req as TrackedRequest, path, res as TrackedResponse, onHttpRequest, outcome);
      } catch (err) {
        // never let an exception escape Node's request event: it would end the process
        logger.error({ err }, 'forwarding a request failed');
        writeProxyFailure(req, res, 'proxy_error');
      }
      return true;
    },
    close() {
      return agent.destroy();
    },
  };
}
