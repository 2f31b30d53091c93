/**
 * Fastify only routes a handful of methods out of the box; the proxy must forward every method
 * Node's HTTP parser accepts (WebDAV's PROPFIND, LOCK, ... included). CONNECT is the exception:
 * Node hands it to the 'connect' event, and tunnelling is not this proxy's job.
 */
import { METHODS } from 'node:http';
import type { FastifyInstance } from 'fastify';

/** Teaches `app` every method it does not know yet (as methods that may carry a body). */
export function enableEveryMethod(app: FastifyInstance): string[] {
  const known = new Set(app.supportedMethods);
  for (const method of METHODS) {
    if (method === 'CONNECT' || known.has(method)) continue;
    app.addHttpMethod(method, { hasBody: true });
  }
  return app.supportedMethods.filter((m) => m !== 'CONNECT');
}
