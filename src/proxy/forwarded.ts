/**
 * X-Forwarded-For / -Proto / -Host for requests and upgrades sent upstream.
 *
 * With trustForwarded the proxy sits behind another proxy: the client address is appended to the
 * X-Forwarded-For chain and an existing X-Forwarded-Proto/-Host is kept. Without it, whatever
 * the client claimed is thrown away and the headers describe this hop only.
 */
import type { IncomingMessage } from 'node:http';
import { clientHost, clientProtocol } from './location.js';

export type OutgoingHeaders = Record<string, string | string[] | undefined>;

/** headers a client could use to lie about its address when nobody in front vouches for them */
export const UNTRUSTED_FORWARDING_HEADERS: readonly string[] = ['forwarded', 'x-real-ip', 'x-forwarded-port'];

export function setForwardedHeaders(out: OutgoingHeaders, req: IncomingMessage, trustForwarded: boolean): void {
  const remote = req.socket?.remoteAddress;
  if (trustForwarded) {
    const prior = req.headers['x-forwarded-for'];
    const chain = Array.isArray(prior) ? prior.join(', ') : prior;
    if (remote !== undefined) out['x-forwarded-for'] = chain ? `${chain}, ${remote}` : remote;
  } else {
    out['x-forwarded-for'] = remote;
  }
  out['x-forwarded-proto'] = clientProtocol(req, trustForwarded);
  out['x-forwarded-host'] = clientHost(req, trustForwarded);
}
