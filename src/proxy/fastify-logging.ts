/**
 * How Fastify itself logs inside the proxy: the access log (access-log.ts) is the only
 * per-request line, so Fastify's own request lines are off, while failures of the server itself
 * (a 5xx from the error handler) still reach the log at error level.
 */
import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';

export class ProxyLogController extends LogController {
  override incomingRequest(): void { /* the access log covers it */ }
  override requestCompleted(): void { /* the access log covers it */ }
  override routeNotFound(): void { /* every path is proxied */ }
  override streamError(): void { /* the access line says aborted */ }
  override defaultErrorLog(error: Error, _request: FastifyRequest, reply: FastifyReply): void {
    if (reply.statusCode >= 500) reply.log.error({ err: error }, error.message);
  }
}

/**
 * Fastify would create a pino child per request (for the request id binding). The proxy logs its
 * own single line per request, so request loggers are the root logger itself, or one child per
 * distinct route log level, made once.
 */
export function sharedRequestLoggers() {
  const byLevel = new Map<string, FastifyBaseLogger>();
  return function childLoggerFactory(logger: FastifyBaseLogger, _bindings: unknown, opts: { level?: string }): FastifyBaseLogger {
    const level = opts.level;
    if (!level) return logger;
    let child = byLevel.get(level);
    if (child === undefined) {
      const values = (logger as unknown as Logger).levels.values;
      // a route level may make a plugin quieter, never louder than the process level
      const stricter = (values[level] ?? 0) >= (values[logger.level] ?? Infinity) ? level : logger.level;
      child = logger.child({}, { level: stricter });
      byLevel.set(level, child);
    }
    return child;
  };
}
