/**
 * The client's WebSocket handshake: checking it before anything is opened upstream, and the
 * headers the upstream handshake carries.
 *
 * Origin: when the browser's Origin is the proxy's own origin (as the client saw it), the
 * upstream receives its own origin instead. The upstream then sees what it would see without
 * the proxy (Host = itself, Origin = itself), so a same-origin check accepts it. Any other Origin
 * is passed unchanged: an upstream that refuses foreign pages still refuses them.
 */
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { setForwardedHeaders, UNTRUSTED_FORWARDING_HEADERS, type OutgoingHeaders } from '../forwarded.js';
import { clientOrigin } from '../location.js';

/** headers that belong to the client's handshake or hop, or are set by the proxy itself */
const NOT_FORWARDED = new Set([
  'host', 'connection', 'upgrade', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'content-length',
  'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol', 'origin',
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host',
]);
const PROTOCOL_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HANDSHAKE_KEY = /^[+/0-9A-Za-z]{22}==$/;

/** the sub-protocols the client offered, or undefined when the header is malformed */
export function offeredProtocols(header: string | undefined): string[] | undefined {
  if (header === undefined) return [];
  const out: string[] = [];
  for (const part of header.split(',')) {
    const token = part.trim();
    if (!PROTOCOL_TOKEN.test(token) || out.includes(token)) return undefined;
    out.push(token);
  }
  return out;
}

/**
 * True when the upstream will be asked for exactly this path. The upstream URL is built by WHATWG
 * URL rules, which resolve `.` and `..` segments (percent-encoded ones too) and read `\` as `/`,
 * so such a target would reach another path than the one the proxy checked and logged. Plain
 * HTTP requests with these targets are refused by @fastify/http-proxy; upgrades get the same rule.
 */
export function isPlainPath(path: string): boolean {
  if (path.includes('\\') || path.startsWith('//')) return false;
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return false;
  }
  for (const segment of decoded.split(/[\\/]/)) if (segment === '.' || segment === '..') return false;
  return true;
}

export function handshakeIsValid(req: IncomingMessage): boolean {
  const version = req.headers['sec-websocket-version'];
  return req.headers.upgrade?.toLowerCase() === 'websocket'
    && HANDSHAKE_KEY.test(req.headers['sec-websocket-key'] ?? '')
    && (version === '13' || version === '8');
}

/** Headers for the upstream handshake: the client's own (cookies, authorization, ...) minus
 * those of its handshake and hop, plus X-Forwarded-* and the Origin rule above. */
export function upstreamHandshakeHeaders(req: IncomingMessage, trustForwarded: boolean, upstreamOrigin: string): OutgoingHttpHeaders {
  const out: OutgoingHeaders = {};
  for (const name in req.headers) {
    if (NOT_FORWARDED.has(name)) continue;
    if (!trustForwarded && UNTRUSTED_FORWARDING_HEADERS.includes(name)) continue;
    const value = req.headers[name];
    if (value !== undefined) out[name] = value;
  }
  setForwardedHeaders(out, req, trustForwarded);
  // node:http refuses undefined header values
  if (out['x-forwarded-for'] === undefined) delete out['x-forwarded-for'];
  if (out['x-forwarded-host'] === undefined) delete out['x-forwarded-host'];
  const origin = req.headers.origin;
  if (origin !== undefined) {
    const own = clientOrigin(req, trustForwarded);
    out.origin = own !== undefined && origin.toLowerCase() === own.toLowerCase() ? upstreamOrigin : origin;
  }
  return out as OutgoingHttpHeaders;
}
