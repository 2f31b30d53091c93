/**
 * Panopticon simulator: options from SIM_* environment variables (for main.ts, compose, the demo).
 */
import type { SimulatorOptions } from './server.js';
import { WS_PROTOCOLS, type WsProtocol } from './stomp-routes.js';
import { loadUsersFile } from './users.js';

/**
 * Token secret used when SIM_TOKEN_SECRET is unset. DEMO ONLY: it is public, so anyone can forge
 * tokens for a simulator running with it. Give the proxy the same value (PROXY_TOKEN_SECRET) to
 * let it verify the simulator's tokens.
 */
export const DEMO_TOKEN_SECRET = 'panopticon-simulator-demo-secret-do-not-use-in-production';

/** Every variable the simulator reads, with its meaning (printed by `--help`). */
export const SIM_ENV_DOC: ReadonlyArray<readonly [name: string, meaning: string]> = [
  ['SIM_HOST', 'listen address (default 0.0.0.0)'],
  ['SIM_PORT', 'listen port (default 8080)'],
  ['SIM_CONTEXT_PATH', 'context path (default /panopticon)'],
  ['SIM_TOKEN_SECRET', 'HS256 token secret (default: a fixed, public demo secret)'],
  ['SIM_USERS_FILE', 'JSON users file (default config/simulator-users.json)'],
  ['SIM_ISSUE_SESSION_COOKIE', 'true: also set a SESSION cookie at login (default false)'],
  ['SIM_WS_PROTOCOL', 'json (two plain sockets), stomp (STOMP 1.2 over WebSocket) or sockjs-stomp (STOMP inside SockJS); default json'],
  ['SIM_DATA_INTERVAL_MS', 'live-data push interval (default 1000)'],
  ['SIM_POLL_INTERVAL_MS', 'dashboard background polling interval (default 5000)'],
  ['SIM_AUTO_REFRESH_MS', 'dashboard auto-refresh timer, GET <context>/server/rest/dashboards/7/refresh (default 5000; 0 = off)'],
  ['SIM_PUBLIC_ORIGIN', 'origin for the absolute login redirect (default http://127.0.0.1:PORT)'],
  ['SIM_LOG_LEVEL', 'pino level (default info)'],
  ['SIM_LOGOUT', 'rest (REST logout path), spring (only POST <context>/logout, redirect answer) or fake (answers 200, ends nothing); default rest'],
  ['SIM_CSRF', 'true: Spring-style CSRF (XSRF-TOKEN cookie, X-XSRF-TOKEN header required on POST/PUT/PATCH/DELETE); default false'],
];

type Env = Readonly<Record<string, string | undefined>>;

function wholeNumber(env: Env, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name}=${JSON.stringify(raw)}: expected a whole number from ${min} to ${max}`);
  return n;
}

function flag(env: Env, name: string): boolean | undefined {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return undefined;
  if (['true', '1', 'yes'].includes(raw)) return true;
  if (['false', '0', 'no'].includes(raw)) return false;
  throw new Error(`${name}=${JSON.stringify(env[name])}: expected true or false`);
}

function set(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw === '' ? undefined : raw;
}

/** Simulator options (without the logger) from the environment; throws a readable Error. */
export function optionsFromEnv(env: Env): SimulatorOptions {
  const opts: SimulatorOptions = {
    host: set(env, 'SIM_HOST') ?? '0.0.0.0',
    port: wholeNumber(env, 'SIM_PORT', 0, 65535) ?? 8080,
    tokenSecret: set(env, 'SIM_TOKEN_SECRET') ?? DEMO_TOKEN_SECRET,
  };
  if (env['SIM_CONTEXT_PATH'] !== undefined) opts.contextPath = env['SIM_CONTEXT_PATH'];
  const usersFile = set(env, 'SIM_USERS_FILE');
  if (usersFile) opts.users = loadUsersFile(usersFile);
  const session = flag(env, 'SIM_ISSUE_SESSION_COOKIE');
  if (session !== undefined) opts.issueSessionCookie = session;
  const wsProtocol = set(env, 'SIM_WS_PROTOCOL')?.trim().toLowerCase();
  if (wsProtocol !== undefined) {
    if (!(WS_PROTOCOLS as readonly string[]).includes(wsProtocol)) throw new Error(`SIM_WS_PROTOCOL=${JSON.stringify(env['SIM_WS_PROTOCOL'])}: expected one of ${WS_PROTOCOLS.join(', ')}`);
    opts.wsProtocol = wsProtocol as WsProtocol;
  }
  const dataMs = wholeNumber(env, 'SIM_DATA_INTERVAL_MS', 1);
  if (dataMs !== undefined) opts.dataIntervalMs = dataMs;
  const pollMs = wholeNumber(env, 'SIM_POLL_INTERVAL_MS', 1);
  if (pollMs !== undefined) opts.pollIntervalMs = pollMs;
  opts.autoRefreshMs = wholeNumber(env, 'SIM_AUTO_REFRESH_MS', 0) ?? 5000;
  const logout = set(env, 'SIM_LOGOUT')?.trim().toLowerCase();
  if (logout !== undefined) {
    if (logout !== 'rest' && logout !== 'spring' && logout !== 'fake') throw new Error(`SIM_LOGOUT=${JSON.stringify(env['SIM_LOGOUT'])}: expected rest, spring or fake`);
    opts.logoutStyle = logout;
  }
  const csrf = flag(env, 'SIM_CSRF');
  if (csrf !== undefined) opts.csrf = csrf;
  const origin = set(env, 'SIM_PUBLIC_ORIGIN');
  if (origin) opts.publicOrigin = new URL(origin).origin;
  return opts;
}
