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
import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { DeploymentConfig } from '../config/deployment.js';
import { sendProxyFailure, sendRefusal, sendUpstreamFailure } from './answers.js';
import { decideHttpRequest, type DecisionOutcome } from './http-decision.js';
import type { OutgoingHeaders } from './forwarded.js';
import { createHeaderRules } from './forward-headers.js';
import type { ProxyHooks } from './hooks.js';
import { kHookContext, kPath, type TrackedRequest } from './request-state.js';
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

export function createHttpForwarding(config: DeploymentConfig, logger: Logger, hooks: ProxyHooks | undefined): HttpForwarding {
  const rules = createHeaderRules(config.upstream, config.trustForwarded, logger);
  const onHttpRequest = hooks?.onHttpRequest?.bind(hooks);
  const onHttpResponse = hooks?.onHttpResponse?.bind(hooks);

  function rewriteRequestHeaders(request: FastifyRequest, headers: OutgoingHeaders): OutgoingHeaders {
    rules.upstreamRequestHeaders(request.raw, headers);
    // Fastify does not read a body on GET/HEAD/TRACE; do not announce one the upstream won't get
    if (request.body === undefined && headers['content-length'] !== undefined) headers['content-length'] = undefined;
    return headers;
  }

  // (Note: request.raw.socket is null by now when a request body was forwarded; undici destroys
  // the body stream it consumed.)
  function rewriteHeaders(headers: OutgoingHeaders, request?: FastifyRequest): OutgoingHeaders {
    return rules.clientResponseHeaders(request?.raw, headers);
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

  interface Target { reply: FastifyReply; options: unknown }

  const outcome: DecisionOutcome<Target> = {
    forward(raw, { reply, options }) {
      try {
        (reply as ReplyWithFrom).from(raw[kPath]!, options);
      } catch (err) {
        // reply.from throws synchronously for paths it will not forward (e.g. traversal)
        reply.send(err);
      }
    },
    refuse(_raw, { reply }, refusal) {
      sendRefusal(reply, refusal);
    },
    failed(_raw, { reply }, err) {
      logger.error({ err }, 'onHttpRequest hook failed');
      sendProxyFailure(reply, 'hook_failed');
    },
  };

  // `options` is replyOptions as wrapped by http-proxy (it adds header sanitising)
  function handler(request: FastifyRequest, reply: FastifyReply, dest: string, options: unknown): void {
    decideHttpRequest(request.raw as TrackedRequest, dest, { reply, options }, onHttpRequest, outcome);
  }

  return { handler, replyOptions };
}
