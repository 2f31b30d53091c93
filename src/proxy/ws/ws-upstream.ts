/**
 * Opening the upstream half of a proxied WebSocket, before the client's handshake is answered.
 *
 * The outcome is either an open upstream socket (paused, so nothing is lost while the client
 * side is being set up; anything already parsed is kept in `early`) or a failure the client's
 * handshake is answered with: the upstream's own refusal status, or 502/504 as for HTTP.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import WebSocket from 'ws';
import { CONNECT_TIMEOUT_CODE, classifyUpstreamError, UPSTREAM_BAD_HANDSHAKE, UPSTREAM_TIMEOUT, type UpstreamFailure } from '../upstream-errors.js';

export interface EarlyMessage { readonly data: Buffer; readonly isBinary: boolean }

export interface OpenUpstream {
  readonly socket: WebSocket;
  /** Set-Cookie headers of the upstream's 101 answer, passed on to the client */
  readonly setCookie: readonly string[] | undefined;
  /** Stops buffering; returns what arrived before the relay took over, and an early close. */
  takeOver(): { early: EarlyMessage[]; closed: { code: number; reason: Buffer } | undefined };
}

export interface RefusedUpgrade {
  readonly statusCode: number;
  readonly problem: string;
  readonly body: string;
  /** upstream headers worth passing on (Location still upstream-absolute) */
  readonly headers: Readonly<Record<string, string | string[]>>;
}

export type UpstreamAttempt =
  | { readonly ok: true; readonly upstream: OpenUpstream }
  | { readonly ok: false; readonly refused: RefusedUpgrade };

export interface UpstreamDialOptions {
  readonly connectTimeoutMs: number;
  /** no 101 (or refusal) within this time -> 504 */
  readonly answerTimeoutMs: number;
  readonly maxPayloadBytes: number;
}

/** upstream refusal headers a browser (or the hooks' login redirect logic) may need */
const PASSED_REFUSAL_HEADERS = ['www-authenticate', 'location', 'set-cookie', 'retry-after'];

export function fromFailure(failure: UpstreamFailure): RefusedUpgrade {
  return { statusCode: failure.statusCode, problem: failure.problem, body: failure.body, headers: {} };
}

export function refusal(statusCode: number, headers: IncomingHttpHeaders): RefusedUpgrade {
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

/** ws's default connectors, plus a timer that fails a connect that takes too long */
export function connectorWithTimeout(connectTimeoutMs: number, secure: boolean) {
  return (options: net.NetConnectOpts & tls.ConnectionOptions & { socketPath?: string }): net.Socket => {
    let socket: net.Socket;
    if (secure) {
      const host = (options as { host?: string }).host ?? '';
      socket = tls.connect({ ...options, path: undefined, servername: options.servername ?? (net.isIP(host) ? '' : host) } as tls.ConnectionOptions);
    } else {
      socket = net.connect({ ...options, path: options.socketPath } as net.NetConnectOpts);
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

/**
 * Connects to `url` offering `protocols`. Resolves once the upstream answered (or failed); never
 * rejects. On success the socket is paused and must be taken over with `takeOver()`.
 */
export function dialUpstream(
  url: string,
  protocols: readonly string[],
  headers: OutgoingHttpHeaders,
  opts: UpstreamDialOptions,
): Promise<UpstreamAttempt> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, [...protocols], {
      headers,
      maxPayload: opts.maxPayloadBytes,
      perMessageDeflate: false,
      followRedirects: false,
      createConnection: connectorWithTimeout(opts.connectTimeoutMs, url.startsWith('wss:')) as never,
    });
    let settled = false;
    let answered101 = false;
    let setCookie: string[] | undefined;
    const early: EarlyMessage[] = [];
    let closed: { code: number; reason: Buffer } | undefined;

    const answerTimer = setTimeout(() => fail(fromFailure(UPSTREAM_TIMEOUT)), opts.answerTimeoutMs);

    function fail(refused: RefusedUpgrade): void {
      if (settled) return;
      settled = true;
      clearTimeout(answerTimer);
      socket.terminate();
      resolve({ ok: false, refused });
    }

    const keepEarly = (data: Buffer, isBinary: boolean) => early.push({ data, isBinary });
    const keepClose = (code: number, reason: Buffer) => { closed = { code, reason }; };

    // errors after the outcome are handled by the relay (or are moot); never let one go unheard
    socket.on('error', (err) => fail(fromFailure(answered101 ? UPSTREAM_BAD_HANDSHAKE : classifyUpstreamError(err))));
    socket.on('upgrade', (res) => {
      // ws checks the 101 (accept key, sub-protocol) right after this event; an error that
      // follows means the upstream's answer was refused. Note: like browsers, ws refuses a 101
      // without a sub-protocol when protocols were offered.
      answered101 = true;
      const cookies = res.headers['set-cookie'];
      if (cookies !== undefined && cookies.length > 0) setCookie = cookies;
    });
    socket.on('unexpected-response', (req, res) => {
      const refused = refusal(res.statusCode ?? 502, res.headers);
      res.resume();
      req.destroy();
      fail(refused);
    });
    socket.once('open', () => {
      if (settled) return;
      settled = true;
      clearTimeout(answerTimer);
      socket.pause();
      socket.on('message', keepEarly);
      socket.on('close', keepClose);
      resolve({
        ok: true,
        upstream: {
          socket,
          setCookie,
          takeOver() {
            socket.off('message', keepEarly);
            socket.off('close', keepClose);
            return { early, closed };
          },
        },
      });
    });
  });
}
