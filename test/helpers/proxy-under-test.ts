/**
 * Starts the proxy for a test: real listener on 127.0.0.1, log lines captured in memory.
 */
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { loadDeploymentConfig, type DeploymentConfig } from '../../src/config/deployment.js';
import { createLogger } from '../../src/log.js';
import { SocketRegistry } from '../../src/notifications/registry.js';
import type { ProxyHooks } from '../../src/proxy/hooks.js';
import { buildProxyServer, type ProxyServerOptions } from '../../src/proxy/server.js';

export interface ProxyUnderTest {
  readonly url: string;
  readonly port: number;
  readonly app: FastifyInstance;
  readonly config: DeploymentConfig;
  readonly registry: SocketRegistry;
  /** every log line written so far, as text */
  logText(): string;
  /** every log line written so far, parsed */
  logLines(): Array<Record<string, unknown>>;
  /** the access-log lines ("msg":"request") */
  requestLines(): Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string>;
  hooks?: ProxyHooks;
  /** add routes before listening (as the caller of buildProxyServer does) */
  addRoutes?: (app: FastifyInstance) => void;
  /** which sockets are inspected (notification sockets); none = no inspection */
  inspection?: ProxyServerOptions['inspection'];
}

export async function startProxy(upstreamUrl: string, opts: StartOptions = {}): Promise<ProxyUnderTest> {
  const config = loadDeploymentConfig({ PROXY_UPSTREAM: upstreamUrl, ...opts.env });
  const lines: string[] = [];
  const logger = createLogger({ level: config.logLevel, destination: { write: (s: string) => { lines.push(s); } } });
  const registry = new SocketRegistry();
  const app = await buildProxyServer({ config, logger, registry, ...(opts.hooks ? { hooks: opts.hooks } : {}), ...(opts.inspection ? { inspection: opts.inspection } : {}) });
  opts.addRoutes?.(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  const parsed = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    app,
    config,
    registry,
    logText: () => lines.join(''),
    logLines: parsed,
    requestLines: () => parsed().filter((l) => l.msg === 'request'),
    close: () => app.close(),
  };
}

/** waits until `check` is true (polling), failing after `timeoutMs` */
export async function waitFor(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface SimpleResponse {
  status: number;
  headers: import('node:http').IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

/** one HTTP/1.1 request with node:http (no redirects followed, no decompression) */
export function send(
  url: string,
  opts: { method?: string; headers?: Record<string, string | string[]>; body?: string | Buffer } = {},
): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const headers = { ...opts.headers };
    // Node would send a DELETE/OPTIONS body without framing; say how long it is
    if (opts.body !== undefined && headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) {
      headers['content-length'] = String(Buffer.byteLength(opts.body));
    }
    const req = httpRequest(url, { method: opts.method ?? 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}
