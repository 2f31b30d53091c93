/**
 * One JSON line per request, written when the response is over (finished or aborted):
 *   {"method","path","status","durationMs","user"?,"activity"?,"reason"?,"aborted"?, "msg":"request"}
 * (`activity`: the rule that decided whether the request counted, when known by then)
 * The path never includes the query string. Fastify's own request logging is switched off.
 *
 * The onRequest hook and the 'close' listener are created once; per request the proxy only
 * stores a start time on the raw request and attaches that shared listener. A proxied
 * WebSocket is logged by the relay when the socket pair ends (status 101, its lifetime and the
 * close code), so the listener skips requests marked with kOwnLine.
 */
import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { Logger } from 'pino';
import { pathOf } from '../log.js';
import { kActivity, kOwnLine, kPath, kReason, kStartMs, kUser, type TrackedRequest } from './request-state.js';

const INFO_LEVEL = 30;

function elapsedMs(req: TrackedRequest): number | undefined {
  const start = req[kStartMs];
  return start === undefined ? undefined : Math.round((performance.now() - start) * 100) / 100;
}

export interface AccessLog {
  /** root onRequest hook: starts the clock and arranges for the line */
  onRequest(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void;
  /** the same for a request served outside Fastify (the direct forwarder) */
  track(req: TrackedRequest, res: ServerResponse): void;
  /** the line of a proxied WebSocket */
  webSocketLine(req: TrackedRequest, closeCode: number, user: string | undefined): void;
}

export function createAccessLog(logger: Logger): AccessLog {
  function onResponseClosed(this: ServerResponse): void {
    const req = this.req as TrackedRequest;
    if (req[kOwnLine] === true || logger.levelVal > INFO_LEVEL) return;
    logger.info({
      method: req.method,
      path: req[kPath] ?? pathOf(req.url),
      status: this.statusCode,
      durationMs: elapsedMs(req),
      user: req[kUser],
      activity: req[kActivity],
      reason: req[kReason],
      aborted: this.writableFinished ? undefined : true,
    }, 'request');
  }

  function track(req: TrackedRequest, res: ServerResponse): void {
    req[kStartMs] = performance.now();
    res.on('close', onResponseClosed);
  }

  return {
    onRequest(request, reply, done) {
      track(request.raw, reply.raw);
      done();
    },
    track,
    webSocketLine(req, closeCode, user) {
      if (logger.levelVal > INFO_LEVEL) return;
      logger.info({
        method: req.method,
        path: req[kPath] ?? pathOf(req.url),
        status: 101,
        durationMs: elapsedMs(req),
        user,
        closeCode,
      }, 'request');
    },
  };
}
