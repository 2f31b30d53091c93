/**
 * Requests of HTTP transports that carry a socket's traffic when WebSocket is not available.
 * They are the browser's background machinery (long polls, streams, sends of subscription
 * frames), never something a person did, so they never count as activity. Recognised by the
 * protocols' own URL shapes, so there is no path list to maintain:
 *   - SockJS: `<prefix>/<server-id>/<session-id>/<transport>` with transport one of xhr,
 *     xhr_streaming, xhr_send, eventsource, htmlfile, jsonp, jsonp_send (ids are single
 *     segments without dots);
 *   - CometD long polling: a path ending in `/meta/connect`, or `.../connect` below a `cometd`
 *     segment (the CometD client appends the message type to its URL by default).
 */
import type { Verdict } from './rules.js';

const SOCKJS_TRANSPORTS = new Set(['xhr', 'xhr_streaming', 'xhr_send', 'eventsource', 'htmlfile', 'jsonp', 'jsonp_send']);
/** the two id segments before the transport name */
const SOCKJS_IDS = /\/[^/.]+\/[^/.]+$/;
const COMETD_CONNECT = /(?:\/meta\/connect|\/cometd(?:\/[^/]*)*\/connect)$/i;

const verdicts = new Map<string, Verdict>();

/** `sockjs-xhr_streaming`, `cometd-connect`, or undefined for any other request path. */
export function httpTransportOf(path: string): string | undefined {
  const slash = path.lastIndexOf('/');
  const last = path.slice(slash + 1);
  if (SOCKJS_TRANSPORTS.has(last) && SOCKJS_IDS.test(path.slice(0, slash))) return `sockjs-${last}`;
  return last.toLowerCase() === 'connect' && COMETD_CONNECT.test(path) ? 'cometd-connect' : undefined;
}

/** The passive verdict of an HTTP-transport request (`transport:<name>`), or undefined. */
export function transportVerdict(path: string): Verdict | undefined {
  const transport = httpTransportOf(path);
  if (transport === undefined) return undefined;
  let v = verdicts.get(transport);
  if (v === undefined) verdicts.set(transport, (v = Object.freeze({ counted: false, rule: `transport:${transport}` })));
  return v;
}

/** The transport named by a verdict's rule, or undefined when the verdict is not a transport's. */
export function transportOfVerdict(verdict: Verdict): string | undefined {
  return verdict.rule.startsWith('transport:') ? verdict.rule.slice('transport:'.length) : undefined;
}
