/**
 * What the client gets when the proxy could not obtain an answer from the upstream.
 *
 *   upstream_unreachable     502  connection refused / no route / name not found
 *   upstream_connect_timeout 502  TCP (or TLS) connect took longer than upstreamConnectTimeoutMs
 *   upstream_timeout         504  no response headers within upstreamTimeoutMs
 *   upstream_error           502  the connection broke before a response arrived
 *   upstream_bad_handshake   502  a WebSocket upstream answered 101 in a way the client side may
 *                                 not accept (e.g. chose no sub-protocol although some were offered)
 *
 * A connect timeout is a 502 (as documented for PROXY_UPSTREAM_CONNECT_TIMEOUT_MS): the upstream
 * is not reachable at all, which is a different problem from a slow answer.
 * Bodies are serialised once here; the hot path only picks one.
 */

export type UpstreamProblem = 'upstream_unreachable' | 'upstream_connect_timeout' | 'upstream_timeout' | 'upstream_error' | 'upstream_bad_handshake';

export interface UpstreamFailure {
  readonly statusCode: 502 | 504;
  readonly problem: UpstreamProblem;
  /** pre-serialised JSON body */
  readonly body: string;
}

function failure(statusCode: 502 | 504, problem: UpstreamProblem, message: string): UpstreamFailure {
  return Object.freeze({ statusCode, problem, body: JSON.stringify({ error: problem, message }) });
}

export const UPSTREAM_UNREACHABLE = failure(502, 'upstream_unreachable', 'The dashboard server cannot be reached.');
export const UPSTREAM_CONNECT_TIMEOUT = failure(502, 'upstream_connect_timeout', 'Connecting to the dashboard server took too long.');
export const UPSTREAM_TIMEOUT = failure(504, 'upstream_timeout', 'The dashboard server did not answer in time.');
export const UPSTREAM_ERROR = failure(502, 'upstream_error', 'The connection to the dashboard server failed.');
export const UPSTREAM_BAD_HANDSHAKE = failure(502, 'upstream_bad_handshake', 'The dashboard server answered the WebSocket handshake in an unusable way.');

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN']);
const CONNECT_TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);
const HEADERS_TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'FST_REPLY_FROM_GATEWAY_TIMEOUT', 'FST_REPLY_FROM_TIMEOUT', 'FST_REPLY_FROM_HTTP_REQUEST_TIMEOUT']);

/** error code marking our own WebSocket connect timer (see websocket-upstream.ts) */
export const CONNECT_TIMEOUT_CODE = 'UND_ERR_CONNECT_TIMEOUT';

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Classifies an error from @fastify/reply-from (which wraps the undici error in `cause`) or from
 * a raw socket / ws client.
 */
export function classifyUpstreamError(err: unknown): UpstreamFailure {
  const cause = typeof err === 'object' && err !== null ? (err as { cause?: unknown }).cause : undefined;
  const inner = codeOf(cause);
  const outer = codeOf(err);
  for (const code of [inner, outer]) {
    if (code === undefined) continue;
    if (CONNECT_TIMEOUT_CODES.has(code)) return UPSTREAM_CONNECT_TIMEOUT;
    if (HEADERS_TIMEOUT_CODES.has(code)) return UPSTREAM_TIMEOUT;
    if (UNREACHABLE_CODES.has(code)) return UPSTREAM_UNREACHABLE;
  }
  const aggregate = (cause ?? err) as { errors?: unknown };
  if (Array.isArray(aggregate.errors)) {
    // happy-eyeballs (autoSelectFamily) reports every failed address; classify by the first
    return aggregate.errors.length > 0 ? classifyUpstreamError(aggregate.errors[0]) : UPSTREAM_UNREACHABLE;
  }
  return UPSTREAM_ERROR;
}
