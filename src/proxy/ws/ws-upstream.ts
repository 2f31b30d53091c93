/**
 * Opening the upstream half of a proxied WebSocket as a raw connection (for the byte relay),
 * before the client's handshake is answered: the proxy sends its own upgrade request with the
 * client's offered sub-protocols and (when passed) its permessage-deflate offer, checks the 101
 * (accept key, chosen sub-protocol, extensions), and hands over the paused socket plus any bytes
 * that came with the 101. Otherwise the client's handshake is answered with the upstream's own
 * refusal status, or 502/504 as for HTTP.
 */
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { SharedReads } from './shared-reads.js';
import { CONNECT_TIMEOUT_CODE, classifyUpstreamError, UPSTREAM_BAD_HANDSHAKE, UPSTREAM_TIMEOUT, type UpstreamFailure } from '../upstream-errors.js';

export interface RefusedUpgrade {
  readonly statusCode: number;
  readonly problem: string;
  readonly body: string;
  /** upstream headers worth passing on (Location still upstream-absolute) */
  readonly headers: Readonly<Record<string, string | string[]>>;
}

export interface UpstreamDialOptions {
  readonly connectTimeoutMs: number;
  /** no 101 (or refusal) within this time -> 504 */
  readonly answerTimeoutMs: number;
  readonly maxPayloadBytes: number;
}

/** upstream refusal headers a browser (or the hooks' login redirect logic) may need */
const PASSED_REFUSAL_HEADERS = ['www-authenticate', 'location', 'set-cookie', 'retry-after'];

function fromFailure(failure: UpstreamFailure): RefusedUpgrade {
  return { statusCode: failure.statusCode, problem: failure.problem, body: failure.body, headers: {} };
}

function refusal(statusCode: number, headers: IncomingHttpHeaders): RefusedUpgrade {
  const passed: Record<string, string | string[]> = {};
  for (const name of PASSED_REFUSAL_HEADERS) {
    const value = headers[name];
    if (value !== undefined) passed[name] = value;
  }
  const body = JSON.stringify({
    error: 'upstream_refused_upgrade',
    message: `The dashboard server refused the WebSocket connection (${statusCode}).`,
  });
  return { statusCode, problem: 'upstream_refused_upgrade', body, headers: passed };
}

/**
 * ws's default connectors, plus a timer that fails a connect that takes too long; a plain TCP
 * connection reads into `reads` (one reused buffer), a TLS one as usual.
 */
function connectorWithTimeout(connectTimeoutMs: number, secure: boolean, reads: SharedReads | undefined) {
  return (options: net.NetConnectOpts & tls.ConnectionOptions & { socketPath?: string }): net.Socket => {
    let socket: net.Socket;
    if (secure) {
      const host = (options as { host?: string }).host ?? '';
      socket = tls.connect({ ...options, path: undefined, servername: options.servername ?? (net.isIP(host) ? '' : host) } as tls.ConnectionOptions);
    } else {
      socket = reads!.connect({ ...options, path: options.socketPath } as net.NetConnectOpts);
    }
    const timer = setTimeout(() => {
      const err = Object.assign(new Error(`connect timed out after ${connectTimeoutMs} ms`), { code: CONNECT_TIMEOUT_CODE });
      socket.destroy(err);
    }, connectTimeoutMs);
    socket.once(secure ? 'secureConnect' : 'connect', () => clearTimeout(timer));
    socket.once('close', () => clearTimeout(timer));
    return socket;
  };
}

const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export interface RawUpstream {
  /** paused; resume once the relay listens */
  readonly socket: Socket;
  /** a plain TCP socket's reads (the relay sets the sink); undefined for TLS: read its 'data' events */
  readonly reads: SharedReads | undefined;
  /** bytes the upstream sent right behind its 101 */
  readonly head: Buffer;
  /** the sub-protocol the upstream chose ('' for none) */
  readonly protocol: string;
  /** the upstream's Sec-WebSocket-Extensions answer, passed to the client unchanged */
  readonly extensions: string | undefined;
  readonly setCookie: readonly string[] | undefined;
}

export type RawUpstreamAttempt =
  | { readonly ok: true; readonly upstream: RawUpstream }
  | { readonly ok: false; readonly refused: RefusedUpgrade };

function acceptFor(key: string): string {
  return createHash('sha1').update(key + ACCEPT_GUID).digest('base64');
}

/** true when the 101 answers this offer the way RFC 6455 requires */
function validAnswer(headers: IncomingHttpHeaders, key: string, protocols: readonly string[], offeredExtensions: string | undefined): string | undefined {
  if (headers['sec-websocket-accept'] !== acceptFor(key)) return undefined;
  if (headers.upgrade?.toLowerCase() !== 'websocket') return undefined;
  const chosen = headers['sec-websocket-protocol'] ?? '';
  // like browsers (and ws), a 101 without a sub-protocol is refused when protocols were offered
  if (protocols.length > 0 ? !protocols.includes(chosen) : chosen !== '') return undefined;
  if (headers['sec-websocket-extensions'] !== undefined && offeredExtensions === undefined) return undefined;
  return chosen;
}

export function dialRawUpstream(
  url: URL,
  protocols: readonly string[],
  headers: OutgoingHttpHeaders,
  extensionsOffer: string | undefined,
  opts: UpstreamDialOptions,
): Promise<RawUpstreamAttempt> {
  return new Promise((resolve) => {
    const secure = url.protocol === 'https:' || url.protocol === 'wss:';
    const key = randomBytes(16).toString('base64');
    const out: OutgoingHttpHeaders = {
      ...headers,
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-key': key,
    };
    if (protocols.length > 0) out['sec-websocket-protocol'] = protocols.join(', ');
    if (extensionsOffer !== undefined) out['sec-websocket-extensions'] = extensionsOffer;
    const request = secure ? httpsRequest : httpRequest;
    const reads = secure ? undefined : new SharedReads();
    const req = request({
      protocol: secure ? 'https:' : 'http:',
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port,
      path: url.pathname + url.search,
      method: 'GET',
      headers: out,
      // no agent: with one (even `agent: false`, a fresh Agent) node:http ignores createConnection
      createConnection: connectorWithTimeout(opts.connectTimeoutMs, secure, reads) as never,
    });
    let settled = false;
    const answerTimer = setTimeout(() => fail(fromFailure(UPSTREAM_TIMEOUT)), opts.answerTimeoutMs);
    function fail(refused: RefusedUpgrade): void {
      if (settled) return;
      settled = true;
      clearTimeout(answerTimer);
      req.destroy();
      resolve({ ok: false, refused });
    }
    req.on('error', (err) => fail(fromFailure(classifyUpstreamError(err))));
    req.on('response', (res) => {
      const refused = refusal(res.statusCode ?? 502, res.headers);
      res.resume();
      fail(refused);
    });
    req.on('upgrade', (res, socket: Socket, head: Buffer) => {
      const chosen = validAnswer(res.headers, key, protocols, extensionsOffer);
      if (chosen === undefined || settled) {
        socket.destroy();
        fail(fromFailure(UPSTREAM_BAD_HANDSHAKE));
        return;
      }
      settled = true;
      clearTimeout(answerTimer);
      socket.pause();
      socket.setTimeout(0);
      // errors before the relay takes over end in its 'close' (the relay listens for it)
      socket.on('error', () => undefined);
      const cookies = res.headers['set-cookie'];
      resolve({
        ok: true,
        upstream: { socket, reads, head, protocol: chosen, extensions: res.headers['sec-websocket-extensions'], setCookie: cookies !== undefined && cookies.length > 0 ? cookies : undefined },
      });
    });
    req.end();
  });
}
