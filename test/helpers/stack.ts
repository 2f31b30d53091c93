/**
 * A real stack for integration tests: the Panopticon simulator, and the proxy in front of it on
 * real sockets, with a properties file in a temp dir and the log captured as JSON objects.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { request } from 'undici';
import WebSocket from 'ws';
import type { Test } from 'tap';
import { loadDeploymentConfig } from '../../src/config/deployment.js';
import { startProxy, type RunningProxy } from '../../src/app.js';
import { createLogger } from '../../src/log.js';
import type { Clock } from '../../src/sessions/clock.js';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator/server.js';

export interface StackOptions {
  properties: string;
  env?: Record<string, string>;
  clock?: Clock;
  simulator?: SimulatorOptions;
}

export interface Stack {
  sim: Simulator;
  proxy: RunningProxy;
  propertiesPath: string;
  /** every log line of the proxy, parsed */
  logs: Array<Record<string, unknown>>;
  /** raw log text (to search for secrets) */
  logText(): string;
  /** logs in through the proxy's login form; returns the Cookie header value to send */
  login(user: string, password?: string): Promise<string>;
  get(path: string, headers?: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>;
  openSocket(path: string, cookie: string): Promise<RecordingSocket>;
}

export interface RecordingSocket {
  ws: WebSocket;
  messages: string[];
  closed: Promise<{ code: number; reason: string }>;
  /** resolves with the first message matching the predicate (already received or future) */
  next(match?: (m: string) => boolean, timeoutMs?: number): Promise<string>;
}

export function props(over: Record<string, string | number | boolean>): string {
  return Object.entries(over).map(([k, v]) => `timeout.session.${k}=${v}`).join('\n') + '\n';
}

export async function startStack(t: Test, opts: StackOptions): Promise<Stack> {
  const dir = await mkdtemp(join(tmpdir(), 'stp-stack-'));
  const propertiesPath = join(dir, 'Panopticon.properties');
  await writeFile(propertiesPath, opts.properties);
  const sim = await startSimulator({ logger: false, dataIntervalMs: 100, ...opts.simulator });
  const lines: string[] = [];
  const destination = new Writable({ write(chunk, _enc, cb) { lines.push(...String(chunk).split('\n').filter(Boolean)); cb(); } });
  const logger = createLogger({ level: 'debug', destination });
  const config = loadDeploymentConfig({
    PROXY_UPSTREAM: sim.url,
    PROXY_HOST: '127.0.0.1',
    PROXY_PORT: '0',
    PROXY_ADMIN_PORT: '0',
    PROXY_PROPERTIES: propertiesPath,
    PROXY_PROPERTIES_POLL_MS: '100',
    PROXY_LOGOUT_RETRY_MIN_MS: '1000',
    PROXY_LOGOUT_RETRY_MAX_MS: '4000',
    // tokens verified locally: identity is known synchronously (tests override with '' to exercise "who am I")
    PROXY_TOKEN_SECRET: sim.tokenSecret,
    ...opts.env,
  });
  const proxy = await startProxy(config, { logger, clock: opts.clock, defaultMetrics: false });
  t.teardown(async () => {
    await proxy.close();
    await sim.close();
  });

  const get: Stack['get'] = async (path, headers = {}) => {
    const res = await request(proxy.url + path, { headers, maxRedirections: 0 } as Parameters<typeof request>[1]);
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
  };

  return {
    sim,
    proxy,
    propertiesPath,
    get logs() {
      return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    logText: () => lines.join('\n'),
    login: (user, password) => loginAt(proxy.url, user, password),
    get,
    openSocket: (path, cookie) => openRecordingSocket(t, proxy.url, path, cookie),
  };
}

/** Logs in through the login form at `baseUrl`; returns the Cookie header value to send. */
export async function loginAt(baseUrl: string, user: string, password = user): Promise<string> {
  const res = await request(`${baseUrl}/panopticon/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: user, password }).toString(),
  });
  await res.body.dump();
  if (res.statusCode !== 302) throw new Error(`login of ${user} answered ${res.statusCode}`);
  const setCookie = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
  return setCookie.map((c) => c.split(';', 1)[0]).join('; ');
}

/** Opens a WebSocket to `baseUrl` + `path` with the cookie and records what it receives. */
export async function openRecordingSocket(t: Test, baseUrl: string, path: string, cookie: string): Promise<RecordingSocket> {
  const ws = new WebSocket(baseUrl.replace('http', 'ws') + path, { headers: { cookie } });
  const messages: string[] = [];
  const waiters: Array<{ match: (m: string) => boolean; resolve: (m: string) => void }> = [];
  ws.on('message', (data) => {
    const text = String(data);
    messages.push(text);
    for (const w of [...waiters]) if (w.match(text)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(text); }
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`))); });
  t.teardown(() => ws.terminate());
  return {
    ws, messages, closed,
    next(match = () => true, timeoutMs = 5000) {
      const found = messages.find(match);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(messages.slice(-5))}`)), timeoutMs);
        waiters.push({ match, resolve: (m) => { clearTimeout(timer); resolve(m); } });
      });
    },
  };
}

/** Waits until the predicate holds, polling every 20 ms (for effects on real sockets). */
export async function eventually(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!(await predicate())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Upgrade attempt that reports the HTTP status of a refused handshake. */
export function upgradeStatus(url: string, cookie: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { cookie } });
    ws.once('open', () => { ws.terminate(); resolve(101); });
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); res.resume(); ws.terminate(); });
    ws.once('error', (err) => reject(err));
  });
}
