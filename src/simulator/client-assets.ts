/**
 * Panopticon simulator: the browser bundles of the real STOMP and SockJS client libraries, served
 * from node_modules under <context>/sim-assets/ (no CDN), for the STOMP personalities' dashboard.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { FastifyInstance } from 'fastify';

const require = createRequire(import.meta.url);

/** file name under sim-assets → resolvable module path of the browser bundle */
const BUNDLES: Readonly<Record<string, string>> = {
  // the package's "require" entry is its UMD browser bundle (global StompJs)
  'stomp.umd.js': '@stomp/stompjs',
  'sockjs.min.js': 'sockjs-client/dist/sockjs.min.js',
};

export function assetPath(contextPath: string, file: string): string {
  return `${contextPath}/sim-assets/${file}`;
}

export const STOMP_BUNDLE = 'stomp.umd.js';
export const SOCKJS_BUNDLE = 'sockjs.min.js';

export function registerClientAssets(app: FastifyInstance, contextPath: string): void {
  const cache = new Map<string, string>();
  for (const [file, modulePath] of Object.entries(BUNDLES)) {
    app.get(assetPath(contextPath, file), async (_request, reply) => {
      let text = cache.get(file);
      if (text === undefined) {
        text = readFileSync(require.resolve(modulePath), 'utf8');
        cache.set(file, text);
      }
      return reply.header('cache-control', 'public, max-age=3600').type('application/javascript; charset=utf-8').send(text);
    });
  }
}
