/**
 * Who may use the admin listener.
 *
 * With PROXY_ADMIN_TOKEN set, every request except the public ones must carry
 * `Authorization: Bearer <token>`; tokens are compared as SHA-256 digests in constant time, so
 * neither content nor length leaks through timing. Without a token the listener may only bind to a
 * loopback address (assertAdminBindingSafe); then the Host header must name a loopback host too,
 * so a web page cannot reach the API through DNS rebinding.
 *
 * Independent of the token, a state-changing request sent by a browser from another origin is
 * refused (the admin page itself is same-origin).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DeploymentConfig } from '../config/deployment.js';

export const AUTH_REALM = 'session-timeout-proxy';

/** 127.0.0.0/8, ::1 (also written out or IPv4-mapped) and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h === 'localhost' || h === 'localhost.' || h.endsWith('.localhost')) return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  if (mapped) h = mapped[1]!;
  switch (isIP(h)) {
    case 4:
      return h.split('.')[0] === '127';
    case 6:
      return /^(0{0,4}:){2,7}0{0,3}1$/.test(h) || h === '::1';
    default:
      return false;
  }
}

/** Throws when the admin listener would be reachable from other machines without a token. */
export function assertAdminBindingSafe(config: Pick<DeploymentConfig, 'adminHost' | 'adminToken'>): void {
  if (config.adminToken) return;
  if (isLoopbackHost(config.adminHost)) return;
  throw new Error(
    `refusing to start the admin API on ${config.adminHost || '(all interfaces)'} without PROXY_ADMIN_TOKEN: ` +
      'set PROXY_ADMIN_TOKEN, or bind the admin listener to loopback (PROXY_ADMIN_HOST=127.0.0.1)',
  );
}

export type BearerVerdict = 'ok' | 'missing' | 'wrong';

/** Compares the Authorization header with the configured token in constant time. */
export function createBearerCheck(token: string): (authorization: string | undefined) => BearerVerdict {
  const expected = digest(token);
  return (authorization) => {
    const match = authorization === undefined ? null : /^bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (!match) return 'missing';
    return timingSafeEqual(digest(match[1]!), expected) ? 'ok' : 'wrong';
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

export interface AdminAuthOptions {
  /** undefined: no token configured (only allowed on loopback) */
  token: string | undefined;
  /** exact paths served without authentication */
  publicPaths: ReadonlySet<string>;
}

const UNAUTHORIZED = { error: 'unauthorized', message: 'send Authorization: Bearer <PROXY_ADMIN_TOKEN>' };

/** Adds the authentication hook to the admin app. */
export function registerAdminAuth(app: FastifyInstance, opts: AdminAuthOptions): void {
  const check = opts.token ? createBearerCheck(opts.token) : undefined;

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (crossSiteWrite(req)) {
      return reply.code(403).send({ error: 'forbidden', message: 'cross-origin requests may not change sessions' });
    }
    if (opts.publicPaths.has(pathOf(req.url))) return;
    if (!check) {
      if (!isLoopbackHost(hostnameOf(req.headers.host))) {
        return reply.code(403).send({ error: 'forbidden', message: 'without PROXY_ADMIN_TOKEN the admin API only answers requests addressed to a loopback host' });
      }
      return;
    }
    if (check(req.headers.authorization) !== 'ok') {
      // Missing and wrong tokens get the same answer.
      return reply.code(401).header('www-authenticate', `Bearer realm="${AUTH_REALM}"`).send(UNAUTHORIZED);
    }
  });
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** `localhost:9090` -> `localhost`, `[::1]:9090` -> `::1` */
function hostnameOf(host: string | undefined): string {
  if (!host) return '';
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']') === -1 ? undefined : host.indexOf(']'));
  const colon = host.lastIndexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** A browser sending a state-changing request from a page of another origin. */
function crossSiteWrite(req: FastifyRequest): boolean {
  if (SAFE_METHODS.has(req.method)) return false;
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true; // "null" and other opaque origins
  }
}
