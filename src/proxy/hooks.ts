/**
 * The seam between the proxy wiring (Fastify, @fastify/http-proxy, ws) and the rest of the
 * product (identity, activity rules, the session engine). The wiring calls these hooks; it knows
 * nothing about users or timeouts. With no hooks the proxy is a plain pass-through.
 */
import type { IncomingMessage } from 'node:http';
import type { RegisteredSocket } from '../notifications/registry.js';

/** An answer the proxy gives itself instead of forwarding. */
export interface Refusal {
  readonly statusCode: number;
  /** extra headers; an array value sends the header several times (e.g. set-cookie) */
  readonly headers?: Readonly<Record<string, string | string[]>>;
  /** JSON-serialisable body; omitted for redirects */
  readonly body?: unknown;
  /** short reason for the log line (never a secret) */
  readonly reason: string;
}

export interface HttpDecision {
  /** answer with this instead of forwarding */
  readonly refuse?: Refusal;
  /** user name, when already known, for the request log line */
  readonly user?: string;
  /** opaque value handed back to onHttpResponse */
  readonly context?: unknown;
}

export interface UpgradeDecision {
  readonly refuse?: Refusal;
  /** user the socket belongs to; may also arrive later through SocketRegistry.setUser */
  readonly user?: string;
}

/** An upstream answer's headers as the hooks see them (read-only). */
export type UpstreamHeaders = Readonly<Record<string, string | string[] | number | undefined>>;

export interface ProxyHooks {
  /**
   * Called for every HTTP request before it is forwarded. `req.headers` may be edited here (for
   * example to strip an untrusted identity header); the edited headers are what the upstream sees.
   */
  onHttpRequest?(req: IncomingMessage, path: string): HttpDecision | Promise<HttpDecision>;
  /**
   * Called once the upstream answered (status and headers known), with the context from
   * onHttpRequest. The headers are the upstream's and must not be edited here.
   */
  onHttpResponse?(req: IncomingMessage, path: string, statusCode: number, context: unknown, headers: UpstreamHeaders): void;
  /** Called for every WebSocket upgrade before the upstream connection is made. */
  onUpgrade?(req: IncomingMessage, path: string): UpgradeDecision | Promise<UpgradeDecision>;
  /** Called after a proxied socket pair is open and registered. */
  onSocketOpen?(rec: RegisteredSocket): void;
  /** Called after a proxied socket closed and was removed from the registry. */
  onSocketClose?(rec: RegisteredSocket): void;
}
