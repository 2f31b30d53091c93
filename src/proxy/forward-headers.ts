/**
 * Header rules of plain HTTP forwarding, shared by both forwarders (direct-forwarding.ts and
 * the @fastify/http-proxy path in http-forwarding.ts):
 *
 * - upstream request: X-Forwarded-* describe the client (forwarded.ts); headers that describe
 *   this hop only, or that a client could lie with when nobody in front vouches for it, go.
 * - client response: an absolute Location on the upstream's origin is re-pointed at the origin
 *   the client used; connection management stays per hop.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { setForwardedHeaders, UNTRUSTED_FORWARDING_HEADERS, type OutgoingHeaders } from './forwarded.js';
import { clientOrigin, rewriteUpstreamUrl } from './location.js';

/** request headers that describe this hop only; undici refuses most of them outright */
const HOP_REQUEST_HEADERS = ['keep-alive', 'upgrade', 'expect', 'proxy-connection', 'http2-settings'];

export interface HeaderRules {
  /** edits `headers` (a copy of the client's) into what the upstream gets */
  upstreamRequestHeaders(req: IncomingMessage, headers: OutgoingHeaders): OutgoingHeaders;
  /**
   * Edits the upstream's response headers into what the client gets. Runs inside undici's
   * response callback: it must not throw.
   */
  clientResponseHeaders(req: IncomingMessage | undefined, headers: OutgoingHeaders): OutgoingHeaders;
}

/** request headers the direct forwarder never copies (it sets host and X-Forwarded-* itself) */
const NOT_COPIED = new Set(['connection', 'transfer-encoding', 'host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', ...HOP_REQUEST_HEADERS]);
const NOT_COPIED_UNTRUSTED = new Set([...NOT_COPIED, ...UNTRUSTED_FORWARDING_HEADERS]);

/**
 * The direct forwarder's upstream request headers as undici's flat `[name, value, ...]` list,
 * built in one pass over the client's headers: the same rules as upstreamRequestHeaders plus
 * what @fastify/reply-from does itself (Connection and the names it lists dropped, Host set to
 * the upstream's, Transfer-Encoding left to undici).
 */
export function upstreamHeaderList(req: IncomingMessage, upstreamHost: string, trustForwarded: boolean): string[] {
  const skip = trustForwarded ? NOT_COPIED : NOT_COPIED_UNTRUSTED;
  const listed = connectionListed(req.headers.connection);
  const out: string[] = ['host', upstreamHost];
  const headers = req.headers;
  for (const name in headers) {
    if (skip.has(name) || (listed.length > 0 && listed.includes(name))) continue;
    const value = headers[name];
    if (typeof value === 'string') out.push(name, value);
    else if (value !== undefined) for (const item of value) out.push(name, item);
  }
  const forwarded: OutgoingHeaders = {};
  setForwardedHeaders(forwarded, req, trustForwarded);
  for (const name in forwarded) {
    const value = forwarded[name];
    if (typeof value === 'string') out.push(name, value);
  }
  return out;
}

export function createHeaderRules(upstream: URL, trustForwarded: boolean, logger: Logger): HeaderRules {
  return {
    upstreamRequestHeaders(req, headers) {
      setForwardedHeaders(headers, req, trustForwarded);
      if (!trustForwarded) {
        for (const name of UNTRUSTED_FORWARDING_HEADERS) if (headers[name] !== undefined) headers[name] = undefined;
      }
      for (const name of HOP_REQUEST_HEADERS) if (headers[name] !== undefined) headers[name] = undefined;
      return headers;
    },

    clientResponseHeaders(req, headers) {
      const location = headers.location;
      if (typeof location === 'string' && req !== undefined) {
        try {
          const origin = clientOrigin(req, trustForwarded);
          const moved = origin === undefined ? undefined : rewriteUpstreamUrl(location, upstream, origin);
          if (moved !== undefined) headers.location = moved;
        } catch (err) {
          logger.error({ err }, 'could not rewrite a Location header');
        }
      }
      if (headers.connection !== undefined) delete headers.connection;
      if (headers['keep-alive'] !== undefined) delete headers['keep-alive'];
      return headers;
    },
  };
}

/** Names listed in a Connection header (RFC 9110 §7.6.1): hop-by-hop, never forwarded. */
export function connectionListed(value: string | string[] | undefined): string[] {
  if (typeof value !== 'string') return [];
  const names: string[] = [];
  for (const part of value.toLowerCase().split(',')) {
    const name = part.trim();
    if (name !== '') names.push(name);
  }
  return names;
}
