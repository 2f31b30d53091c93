/**
 * Plain HTTP forwarding through @fastify/http-proxy (which drives @fastify/reply-from + undici).
 *
 * - Bodies stream both ways: the encapsulating plugin installs a single catch-all content-type
 *   parser that hands the raw request stream on unread, so JSON, forms and anything else are
 *   piped to undici; the upstream response stream is piped to the client. Nothing is buffered.
 * - The query string reaches the upstream byte for byte (reply-from copies it from the raw URL).
 * - hooks.onHttpRequest runs before forwarding; a plain (non-promise) result is used at once.
 * - hooks.onHttpResponse runs once the upstream status is known, never for the proxy's own 5xx.
 * - An absolute Location on the upstream's origin is re-pointed at the origin the client used.
 *
 * Every function below is created once per server; per request only the values travel.
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { DeploymentConfig } from '../config/deployment.js';
import { isPromiseLike, sendProxyFailure, sendRefusal, sendUpstreamFailure } from './answers.js';
import { setForwardedHeaders, UNTRUSTED_FORWARDING_HEADERS, type OutgoingHeaders } from './forwarded.js';
import type { HttpDecision, ProxyHooks } from './hooks.js';
import { clientOrigin, rewriteUpstreamUrl } from './location.js';
import { kHookContext, kPath, kUser, type TrackedRequest } from './request-state.js';
import { classifyUpstreamError } from './upstream-errors.js';

/** The subset of reply-from's per-request options the proxy uses. */
export interface ForwardOptions {
  retryDelay: () => null;
  rewriteRequestHeaders: (request: FastifyRequest, headers: OutgoingHeaders) => OutgoingHeaders;
  rewriteHeaders: (headers: OutgoingHeaders, request?: FastifyRequest) => OutgoingHeaders;
  onError: (reply: FastifyReply, error: { error: Error }) => void;
  onResponse?: (request: FastifyRequest, reply: FastifyReply, res: UpstreamResponse) => void;
}

interface UpstreamResponse { statusCode: number; headers: OutgoingHeaders; stream: Readable }

type ReplyWithFrom = FastifyReply & { from(source: string, options: unknown): FastifyReply };

/** http-proxy's `handler` option: (request, reply, path without query, reply-from options) */
export type ForwardHandler = (request: FastifyRequest, reply: FastifyReply, dest: string, options: unknown) => void;

export interface HttpForwarding {
  handler: ForwardHandler;
  replyOptions: ForwardOptions;
}

function neverRetry(): null {
  return null;
}

/** request headers that describe this hop only; undici refuses most of them outright */
const HOP_REQUEST_HEADERS = ['keep-alive', 'upgrade', 'expect', 'proxy-connection', 'http2-settings'];

export function createHttpForwarding(config: DeploymentConfig, logger: Logger, hooks: ProxyHooks | undefined): HttpForwarding {
  const trustForwarded = config.trustForwarded;
  const upstream = config.upstream;
  const onHttpRequest = hooks?.onHttpRequest?.bind(hooks);
  const onHttpResponse = hooks?.onHttpResponse?.bind(hooks);

  function rewriteRequestHeaders(request: FastifyRequest, headers: OutgoingHeaders): OutgoingHeaders {
    setForwardedHeaders(headers, request.raw, trustForwarded);
    if (!trustForwarded) {
      for (const name of UNTRUSTED_FORWARDING_HEADERS) if (headers[name] !== undefined) headers[name] = undefined;
    }
    for (const name of HOP_REQUEST_HEADERS) if (headers[name] !== undefined) headers[name] = undefined;
    // Fastify does not read a body on GET/HEAD/TRACE; do not announce one the upstream won't get
    if (request.body === undefined && headers['content-length'] !== undefined) headers['content-length'] = undefined;
    return headers;
  }

  // Runs inside undici's response callback: an exception here would escape as an uncaught
  // exception, so this must not throw. (Note: request.raw.socket is null by now when a request
  // body was forwarded; undici destroys the body stream it consumed.)
  function rewriteHeaders(headers: OutgoingHeaders, request?: FastifyRequest): OutgoingHeaders {
    const location = headers.location;
    if (typeof location === 'string' && request !== undefined) {
      try {
        const origin = clientOrigin(request.raw, trustForwarded);
        const moved = origin === undefined ? undefined : rewriteUpstreamUrl(location, upstream, origin);
        if (moved !== undefined) headers.location = moved;
      } catch (err) {
        logger.error({ err }, 'could not rewrite a Location header');
      }
    }
    // connection management is per hop: the client connection follows its own rules
    if (headers.connection !== undefined) delete headers.connection;
    if (headers['keep-alive'] !== undefined) delete headers['keep-alive'];
    return headers;
  }

  function onError(reply: FastifyReply, { error }: { error: Error }): void {
    const clientSocket = reply.raw.socket;
    if (clientSocket === null || clientSocket.destroyed) return; // the client left; nobody to answer
    const failure = classifyUpstreamError(error);
    logger.debug({ err: error, problem: failure.problem }, 'upstream request failed');
    sendUpstreamFailure(reply, failure);
  }

  function onResponse(request: FastifyRequest, reply: FastifyReply, res: UpstreamResponse): void {
    const raw = request.raw as TrackedRequest;
    try {
      onHttpResponse!(raw, raw[kPath]!, res.statusCode, raw[kHookContext], res.headers);
    } catch (err) {
      logger.error({ err }, 'onHttpResponse hook failed');
    }
    reply.send(res.stream);
  }

  const replyOptions: ForwardOptions = {
    // reply-from would retry a GET answered 503 up to ten times; the client decides, not us
    retryDelay: neverRetry,
    rewriteRequestHeaders,
    rewriteHeaders,
    onError,
    ...(onHttpResponse ? { onResponse } : {}),
  };

  function hookFailed(reply: FastifyReply, err: unknown): void {
    logger.error({ err }, 'onHttpRequest hook failed');
    sendProxyFailure(reply, 'hook_failed');
  }

  function proceed(request: FastifyRequest, reply: FastifyReply, dest: string, options: unknown, decision: HttpDecision): void {
    const raw = request.raw as TrackedRequest;
    if (decision.user !== undefined) raw[kUser] = decision.user;
    if (decision.refuse !== undefined) {
      sendRefusal(reply, decision.refuse);
      return;
    }
    if (decision.context !== undefined) raw[kHookContext] = decision.context;
    (reply as ReplyWithFrom).from(dest, options);
  }

  // `options` is replyOptions as wrapped by http-proxy (it adds header sanitising)
  function handler(request: FastifyRequest, reply: FastifyReply, dest: string, options: unknown): void {
    const raw = request.raw as TrackedRequest;
    raw[kPath] = dest;
    if (onHttpRequest === undefined) {
      (reply as ReplyWithFrom).from(dest, options);
      return;
    }
    let decision: HttpDecision | Promise<HttpDecision>;
    try {
      decision = onHttpRequest(raw as IncomingMessage, dest);
    } catch (err) {
      hookFailed(reply, err);
      return;
    }
    if (!isPromiseLike(decision)) {
      proceed(request, reply, dest, options, decision);
      return;
    }
    decision.then(
      (settled) => {
        try {
          proceed(request, reply, dest, options, settled);
        } catch (err) {
          // reply.from throws synchronously for paths it will not forward (e.g. traversal)
          reply.send(err);
        }
      },
      (err: unknown) => hookFailed(reply, err),
    );
  }

  return { handler, replyOptions };
}
