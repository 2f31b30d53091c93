/**
 * Where the client thinks it is talking to, and turning upstream-absolute URLs into that.
 *
 * The upstream only knows its own origin (config.upstream), so an absolute `Location` it sends
 * would lead the browser around the proxy. Such a URL is re-pointed at the origin the client
 * used; relative URLs and URLs of any other origin are left alone.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

const HOST_SYNTAX = /^[A-Za-z0-9._~\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;
/** `scheme://authority rest` or `//authority rest` (scheme-relative) */
const ABSOLUTE_URL = /^([A-Za-z][A-Za-z0-9+.\-]*:)?\/\/([^/?#]*)([\s\S]*)$/;

/** first entry of a comma-separated (or repeated) header, trimmed */
export function firstHeaderValue(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return undefined;
  const comma = text.indexOf(',');
  const first = (comma === -1 ? text : text.slice(0, comma)).trim();
  return first === '' ? undefined : first;
}

/** `http` or `https`: how the client reached this proxy */
export function clientProtocol(req: IncomingMessage, trustForwarded: boolean): string {
  if (trustForwarded) {
    const claimed = firstHeaderValue(req.headers['x-forwarded-proto'])?.toLowerCase();
    if (claimed === 'http' || claimed === 'https') return claimed;
  }
  // req.socket is null once a forwarded request body has been consumed and destroyed
  return (req.socket as TLSSocket | null)?.encrypted ? 'https' : 'http';
}

/** the Host the client addressed (host[:port]), or undefined when absent or malformed */
export function clientHost(req: IncomingMessage, trustForwarded: boolean): string | undefined {
  if (trustForwarded) {
    const claimed = firstHeaderValue(req.headers['x-forwarded-host']);
    if (claimed !== undefined && HOST_SYNTAX.test(claimed)) return claimed;
  }
  const host = req.headers.host;
  return host !== undefined && HOST_SYNTAX.test(host) ? host : undefined;
}

/** `proto://host` as seen by the client, or undefined when the request named no usable host */
export function clientOrigin(req: IncomingMessage, trustForwarded: boolean): string | undefined {
  const host = clientHost(req, trustForwarded);
  return host === undefined ? undefined : `${clientProtocol(req, trustForwarded)}://${host}`;
}

/**
 * If `location` is an absolute (or scheme-relative) URL on `upstream`'s origin, returns the same
 * URL on `origin`; otherwise undefined. Path, query and fragment are kept byte for byte.
 */
export function rewriteUpstreamUrl(location: string, upstream: URL, origin: string): string | undefined {
  const m = ABSOLUTE_URL.exec(location);
  if (m === null) return undefined;
  const scheme = (m[1] ?? upstream.protocol).toLowerCase();
  if (scheme !== 'http:' && scheme !== 'https:') return undefined;
  const authority = m[2]!;
  if (authority.includes('@')) return undefined; // credentials in the URL: not ours to touch
  let parsed: URL;
  try {
    parsed = new URL(`${scheme}//${authority}`);
  } catch {
    return undefined;
  }
  if (parsed.origin !== upstream.origin) return undefined;
  return origin + m[3]!;
}
