/**
 * Deployment settings: every knob that is not one of the five `timeout.session.*` keys.
 *
 * Each setting has exactly one row in SETTINGS below. The same row drives the environment
 * variable, the CLI flag (`PROXY_FOO_BAR` <-> `--foo-bar`), the default, the validation and the
 * README table (test/config.test.ts checks that the README documents every row).
 */
import { FRAMING_SETTINGS, type FramingSetting } from '../notifications/framing/inspector.js';

import { parseLogoutCandidates, parseLogoutMethod, resolveCandidates, type LogoutCandidate, type LogoutCandidateSpec } from '../logout/candidates.js';

import { loadStateKey } from './state-key.js';

export type ProxyMode = 'enforce' | 'shadow';

export interface DeploymentConfig {
  readonly upstream: URL;
  readonly host: string;
  readonly port: number;
  readonly propertiesPath: string;
  readonly propertiesPollMs: number;
  readonly contextPath: string;
  readonly logLevel: string;
  readonly upstreamConnectTimeoutMs: number;
  readonly upstreamTimeoutMs: number;
  readonly trustForwarded: boolean;
  // identity
  readonly identityHeader: string | undefined;
  readonly trustedSources: readonly string[];
  readonly tokenCookie: string;
  readonly sessionCookie: string;
  readonly usernameClaims: readonly string[];
  readonly tokenSecret: string | undefined;
  readonly tokenSecretFile: string | undefined;
  readonly whoamiPath: string;
  readonly whoamiCacheMs: number;
  // activity
  readonly passivePaths: readonly string[];
  readonly backgroundHeader: { readonly name: string; readonly value: string };
  readonly notifyPaths: readonly string[];
  readonly notifyFraming: FramingSetting;
  readonly notifyDestinations: readonly string[];
  readonly resetPaths: readonly string[];
  readonly activePaths: readonly string[];
  readonly detectPeriodic: boolean;
  readonly periodicRepeats: number;
  readonly periodicTolerancePercent: number;
  readonly periodicMinIntervalMs: number;
  readonly periodicMaxInterval: PeriodicMaxInterval;
  readonly periodicForgetAfterMs: number;
  // logout
  readonly logoutMethod: string;
  /** ordered logout candidates, methods filled in from logoutMethod */
  readonly logoutPath: readonly LogoutCandidate[];
  readonly logoutVerify: boolean;
  readonly csrfCookie: string;
  readonly csrfHeader: string;
  readonly logoutTimeoutMs: number;
  readonly logoutRetryMinMs: number;
  readonly logoutRetryMaxMs: number;
  readonly logoutGiveUpMs: number;
  readonly logoutConcurrency: number;
  readonly loginPath: string;
  readonly refuseMaxMs: number;
  // operations
  readonly mode: ProxyMode;
  readonly adminHost: string;
  readonly adminPort: number;
  readonly adminToken: string | undefined;
  readonly internalPrefix: string;
  readonly stateDir: string | undefined;
  readonly stateSaveMs: number;
  readonly shutdownGraceMs: number;
  // several replicas
  readonly store: 'memory' | 'redis';
  readonly httpForwarder: 'direct' | 'http-proxy';
  readonly redisUrl: URL;
  readonly redisPrefix: string;
  readonly redisFlushMs: number;
  readonly redisSentinels: readonly HostPort[];
  readonly redisSentinelName: string | undefined;
  readonly redisClusterNodes: readonly HostPort[];
  readonly logoutLeaseMs: number;
  readonly stateKey: string | undefined;
  readonly stateKeyFile: string | undefined;
  // limits
  readonly wsMaxMessageBytes: number;
  readonly wsMaxBufferedBytes: number;
  readonly wsPingMs: number;
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** The longest interval of a timer that is recognised: a share of the session timeout, or fixed. */
export type PeriodicMaxInterval = { readonly percentOfTimeout: number } | { readonly ms: number };

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Raw = string | undefined;
type Ctx = { contextPath: string };

interface SettingRow {
  /** environment variable name */
  env: string;
  /** property on DeploymentConfig */
  key: keyof DeploymentConfig;
  /** default as documented (a string, may mention `<context>`); undefined = no default */
  doc: string;
  meaning: string;
  parse: (raw: Raw, ctx: Ctx) => unknown;
}

const MS = (name: string, def: number, min = 0) => (raw: Raw) => {
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || !Number.isInteger(n) || n < min) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not valid: expected a whole number >= ${min}`);
  }
  return n;
};

const PORT = (name: string, def: number) => (raw: Raw) => {
  const n = MS(name, def, 0)(raw);
  if (n > 65535) throw new ConfigError(`${name}=${JSON.stringify(raw)} is not valid: a port is 0..65535`);
  return n;
};

const STR = (def: string | undefined) => (raw: Raw) => (raw === undefined || raw === '' ? def : raw);

const LIST = (def: (ctx: Ctx) => string[]) => (raw: Raw, ctx: Ctx) =>
  raw === undefined ? def(ctx) : raw.split(',').map((s) => s.trim()).filter((s) => s !== '');

const BOOL = (name: string, def: boolean) => (raw: Raw) => {
  if (raw === undefined || raw === '') return def;
  const v = raw.trim().toLowerCase();
  if (v === 'true' || v === '1' || v === 'yes') return true;
  if (v === 'false' || v === '0' || v === 'no') return false;
  throw new ConfigError(`${name}=${JSON.stringify(raw)} is not valid: expected true or false`);
};

const PERCENT = (name: string, def: number, min: number, max: number) => (raw: Raw) => {
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new ConfigError(`${name}=${JSON.stringify(raw)} is not valid: expected a number of percent from ${min} to ${max}`);
  return n;
};

const MAX_INTERVAL = (name: string, def: PeriodicMaxInterval) => (raw: Raw): PeriodicMaxInterval => {
  if (raw === undefined || raw === '') return def;
  const v = raw.trim();
  if (v.endsWith('%')) {
    const pct = Number(v.slice(0, -1));
    if (v.length > 1 && Number.isFinite(pct) && pct > 0 && pct <= 100) return { percentOfTimeout: pct };
  } else if (/^\d+$/.test(v) && Number(v) >= 1) {
    return { ms: Number(v) };
  }
  throw new ConfigError(`${name}=${JSON.stringify(raw)} is not valid: expected a share of the session timeout such as "50%" (above 0, at most 100) or a whole number of milliseconds`);
};

/** A cookie or header name: an HTTP token. */
const TOKEN = (name: string, def: string) => (raw: Raw) => {
  const v = raw === undefined || raw.trim() === '' ? def : raw.trim();
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(v)) throw new ConfigError(`${name}=${JSON.stringify(raw)} is not a valid cookie/header name`);
  return v;
};

/** Runs a parser that throws plain Errors, as a ConfigError. */
function configError<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

const PATH = (name: string, def: (ctx: Ctx) => string) => (raw: Raw, ctx: Ctx) => {
  const v = raw === undefined || raw === '' ? def(ctx) : raw;
  if (!v.startsWith('/')) throw new ConfigError(`${name}=${JSON.stringify(raw)} is not valid: a path must start with "/"`);
  return v;
};

const HOST_PORTS = (name: string) => (raw: Raw): HostPort[] => {
  if (raw === undefined || raw.trim() === '') return [];
  return raw.split(',').map((s) => s.trim()).filter((s) => s !== '').map((item) => {
    const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(item);
    const port = m ? Number(m[2]) : NaN;
    if (!m || port < 1 || port > 65535) throw new ConfigError(`${name}: ${JSON.stringify(item)} is not host:port`);
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
  });
};

const REDIS_URL = (raw: Raw): URL => {
  const v = raw === undefined || raw === '' ? 'redis://127.0.0.1:6379' : raw;
  let url: URL;
  try { url = new URL(v); } catch { throw new ConfigError(`PROXY_REDIS_URL is not a valid URL (value not shown: it may hold a password)`); }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new ConfigError(`PROXY_REDIS_URL must start with redis:// or rediss:// (got ${url.protocol}//)`);
  if (!/^\/?(\d+)?$/.test(url.pathname)) throw new ConfigError(`PROXY_REDIS_URL: the path must be a database number such as /0 (got ${JSON.stringify(url.pathname)})`);
  return url;
};

export const SETTINGS: readonly SettingRow[] = [
  {
    env: 'PROXY_UPSTREAM', key: 'upstream', doc: '(required)',
    meaning: 'Upstream base URL, e.g. `http://panopticon:8080`',
    parse: (raw) => {
      if (raw === undefined || raw === '') throw new ConfigError('PROXY_UPSTREAM (or --upstream) is required: the base URL of the Panopticon server, e.g. http://panopticon:8080');
      let url: URL;
      try { url = new URL(raw); } catch { throw new ConfigError(`PROXY_UPSTREAM=${JSON.stringify(raw)} is not a valid URL`); }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`PROXY_UPSTREAM=${JSON.stringify(raw)} must be an http:// or https:// URL`);
      if (url.pathname !== '/' || url.search || url.hash) throw new ConfigError(`PROXY_UPSTREAM=${JSON.stringify(raw)} must be an origin without a path (the context path is PROXY_CONTEXT_PATH)`);
      return url;
    },
  },
  { env: 'PROXY_HOST', key: 'host', doc: '`0.0.0.0`', meaning: 'Address the proxy listens on', parse: STR('0.0.0.0') },
  { env: 'PROXY_PORT', key: 'port', doc: '`3000`', meaning: 'Port the proxy listens on', parse: PORT('PROXY_PORT', 3000) },
  { env: 'PROXY_PROPERTIES', key: 'propertiesPath', doc: '`config/Panopticon.properties`', meaning: 'The Panopticon.properties file to read and watch', parse: STR('config/Panopticon.properties') },
  { env: 'PROXY_PROPERTIES_POLL_MS', key: 'propertiesPollMs', doc: '`500`', meaning: 'How often the properties file is also checked by polling (besides file-system events), ms', parse: MS('PROXY_PROPERTIES_POLL_MS', 500, 50) },
  {
    env: 'PROXY_CONTEXT_PATH', key: 'contextPath', doc: '`/panopticon`',
    meaning: "The upstream's context path; the default paths below derive from it",
    parse: (raw) => {
      const v = raw === undefined ? '/panopticon' : raw.replace(/\/+$/, '');
      if (v !== '' && !v.startsWith('/')) throw new ConfigError(`PROXY_CONTEXT_PATH=${JSON.stringify(raw)} must start with "/" (or be empty for the root)`);
      return v;
    },
  },
  {
    env: 'PROXY_LOG_LEVEL', key: 'logLevel', doc: '`info`', meaning: 'pino log level (`fatal`, `error`, `warn`, `info`, `debug`, `trace`, `silent`)',
    parse: (raw) => {
      const v = raw === undefined || raw === '' ? 'info' : raw;
      if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(v)) throw new ConfigError(`PROXY_LOG_LEVEL=${JSON.stringify(raw)} is not a pino level`);
      return v;
    },
  },
  { env: 'PROXY_UPSTREAM_CONNECT_TIMEOUT_MS', key: 'upstreamConnectTimeoutMs', doc: '`5000`', meaning: 'Connecting to the upstream longer than this answers `502`', parse: MS('PROXY_UPSTREAM_CONNECT_TIMEOUT_MS', 5000, 1) },
  { env: 'PROXY_UPSTREAM_TIMEOUT_MS', key: 'upstreamTimeoutMs', doc: '`30000`', meaning: 'Upstream response headers later than this answer `504`', parse: MS('PROXY_UPSTREAM_TIMEOUT_MS', 30000, 1) },
  {
    env: 'PROXY_HTTP_FORWARDER', key: 'httpForwarder', doc: '`direct`', meaning: 'How plain HTTP requests are forwarded: `direct` (straight from Node onto an undici pool; the fast path) or `http-proxy` (through Fastify and @fastify/http-proxy); both run the same rules and hooks, and unusual requests always take `http-proxy`',
    parse: (raw) => {
      const v = raw === undefined || raw === '' ? 'direct' : raw.toLowerCase();
      if (v !== 'direct' && v !== 'http-proxy') throw new ConfigError(`PROXY_HTTP_FORWARDER=${JSON.stringify(raw)} must be "direct" or "http-proxy"`);
      return v;
    },
  },
  { env: 'PROXY_TRUST_FORWARDED', key: 'trustForwarded', doc: '`false`', meaning: 'Trust `X-Forwarded-*` headers from the client (set when another proxy sits in front)', parse: BOOL('PROXY_TRUST_FORWARDED', false) },
  { env: 'PROXY_IDENTITY_HEADER', key: 'identityHeader', doc: '(unset)', meaning: 'Trusted user-name header (Panopticon HEADER mode, e.g. `X-User`); ignored when unset', parse: (raw) => (raw ? raw.toLowerCase() : undefined) },
  { env: 'PROXY_TRUSTED_SOURCES', key: 'trustedSources', doc: '(any)', meaning: 'Comma-separated IPs/CIDRs allowed to send the identity header; from elsewhere it is stripped', parse: LIST(() => []) },
  { env: 'PROXY_TOKEN_COOKIE', key: 'tokenCookie', doc: '`ptoken`', meaning: 'Name of the JWT token cookie', parse: STR('ptoken') },
  { env: 'PROXY_SESSION_COOKIE', key: 'sessionCookie', doc: '`SESSION`', meaning: 'Name of the server session cookie', parse: STR('SESSION') },
  { env: 'PROXY_USERNAME_CLAIMS', key: 'usernameClaims', doc: '`sub,username,preferred_username,name`', meaning: 'JWT claims tried in order for the user name', parse: LIST(() => ['sub', 'username', 'preferred_username', 'name']) },
  { env: 'PROXY_TOKEN_SECRET', key: 'tokenSecret', doc: '(unset)', meaning: "The server's token secret (HS256); when set, token signatures are verified", parse: STR(undefined) },
  { env: 'PROXY_TOKEN_SECRET_FILE', key: 'tokenSecretFile', doc: '(unset)', meaning: 'File holding the token secret (alternative to `PROXY_TOKEN_SECRET`)', parse: STR(undefined) },
  { env: 'PROXY_WHOAMI_PATH', key: 'whoamiPath', doc: '`<context>/server/rest/server/myself`', meaning: '"Who am I" endpoint asked for opaque credentials', parse: PATH('PROXY_WHOAMI_PATH', (c) => `${c.contextPath}/server/rest/server/myself`) },
  { env: 'PROXY_WHOAMI_CACHE_MS', key: 'whoamiCacheMs', doc: '`60000`', meaning: 'How long a "who am I" answer is cached per credential', parse: MS('PROXY_WHOAMI_CACHE_MS', 60000) },
  { env: 'PROXY_PASSIVE_PATHS', key: 'passivePaths', doc: '`GET <context>/server/rest/data/**`', meaning: 'Comma-separated globs (optionally `METHOD ` prefixed) of requests that never count as activity', parse: LIST((c) => [`GET ${c.contextPath}/server/rest/data/**`]) },
  {
    env: 'PROXY_BACKGROUND_HEADER', key: 'backgroundHeader', doc: '`x-background-request: true`', meaning: 'A request carrying this header and value never counts as activity',
    parse: (raw) => {
      const v = raw === undefined || raw === '' ? 'x-background-request: true' : raw;
      const i = v.indexOf(':');
      if (i <= 0) throw new ConfigError(`PROXY_BACKGROUND_HEADER=${JSON.stringify(raw)} must look like "name: value"`);
      return { name: v.slice(0, i).trim().toLowerCase(), value: v.slice(i + 1).trim() };
    },
  },
  { env: 'PROXY_NOTIFY_PATHS', key: 'notifyPaths', doc: '(every proxied socket)', meaning: 'Comma-separated globs of WebSocket paths that receive the notifications', parse: LIST(() => []) },
  {
    env: 'PROXY_NOTIFY_FRAMING', key: 'notifyFraming', doc: '`auto`',
    meaning: 'How notifications are framed on a notification socket: `auto` (detected per socket), `json`, `stomp`, `sockjs-json` or `sockjs-stomp`',
    parse: (raw) => {
      const v = raw === undefined || raw === '' ? 'auto' : raw.trim().toLowerCase();
      if (!(FRAMING_SETTINGS as readonly string[]).includes(v)) throw new ConfigError(`PROXY_NOTIFY_FRAMING=${JSON.stringify(raw)} is not valid: expected one of ${FRAMING_SETTINGS.join(', ')}`);
      return v;
    },
  },
  { env: 'PROXY_NOTIFY_DESTINATIONS', key: 'notifyDestinations', doc: '(any destination containing `notification`, any case)', meaning: 'Comma-separated globs of STOMP destinations that are notification subscriptions (only those get warnings)', parse: LIST(() => []) },
  { env: 'PROXY_RESET_PATHS', key: 'resetPaths', doc: '`/rest/user/timeout/reset,<context>/server/rest/user/timeout/reset`', meaning: 'Paths of the timeout reset service, answered by the proxy', parse: LIST((c) => ['/rest/user/timeout/reset', `${c.contextPath}/server/rest/user/timeout/reset`]) },
  { env: 'PROXY_ACTIVE_PATHS', key: 'activePaths', doc: '(none)', meaning: 'Comma-separated globs (optionally `METHOD ` prefixed) of requests that always count as activity; they win over passive paths and periodic detection', parse: LIST(() => []) },
  { env: 'PROXY_DETECT_PERIODIC', key: 'detectPeriodic', doc: '`true`', meaning: 'Recognise timers (requests of one shape at a steady interval) per user and stop counting them', parse: BOOL('PROXY_DETECT_PERIODIC', true) },
  { env: 'PROXY_PERIODIC_REPEATS', key: 'periodicRepeats', doc: '`5`', meaning: 'Steady gaps in a row that make a request shape a timer (so the 6th request at that interval is the first not counted)', parse: MS('PROXY_PERIODIC_REPEATS', 5, 2) },
  { env: 'PROXY_PERIODIC_TOLERANCE_PERCENT', key: 'periodicTolerancePercent', doc: '`11`', meaning: "How far a gap may be from the timer's mean interval, in percent (11 covers timers with ±5 % jitter)", parse: PERCENT('PROXY_PERIODIC_TOLERANCE_PERCENT', 11, 1, 50) },
  { env: 'PROXY_PERIODIC_MIN_INTERVAL_MS', key: 'periodicMinIntervalMs', doc: '`500`', meaning: 'Gaps shorter than this never make a timer (a person clicking quickly)', parse: MS('PROXY_PERIODIC_MIN_INTERVAL_MS', 500, 1) },
  { env: 'PROXY_PERIODIC_MAX_INTERVAL', key: 'periodicMaxInterval', doc: '`50%` (of the session timeout)', meaning: 'Longest timer interval recognised: a share of `timeout.session.minutes` (`50%`) or milliseconds (`3600000`)', parse: MAX_INTERVAL('PROXY_PERIODIC_MAX_INTERVAL', { percentOfTimeout: 50 }) },
  { env: 'PROXY_PERIODIC_FORGET_AFTER_MS', key: 'periodicForgetAfterMs', doc: '`600000` (10 min)', meaning: "A request shape not seen for this long (or twice its interval, if longer) is forgotten", parse: MS('PROXY_PERIODIC_FORGET_AFTER_MS', 600_000, 1) },
  { env: 'PROXY_LOGOUT_METHOD', key: 'logoutMethod', doc: '`POST`', meaning: 'HTTP method of every logout candidate written without one (the default list included)', parse: (raw) => configError(() => parseLogoutMethod(raw)) },
  {
    env: 'PROXY_LOGOUT_PATH', key: 'logoutPath', doc: '`POST <context>/server/rest/auth/logout, POST <context>/logout`',
    meaning: 'Ordered, comma-separated `[METHOD ]path` logout candidates, called with each credential of a timed-out user (see "The logout that gives licenses back")',
    // methods are filled in from PROXY_LOGOUT_METHOD once every row is read
    parse: (raw, c): LogoutCandidateSpec[] => raw === undefined || raw.trim() === ''
      ? [{ method: undefined, path: `${c.contextPath}/server/rest/auth/logout` }, { method: undefined, path: `${c.contextPath}/logout` }]
      : configError(() => parseLogoutCandidates(raw)),
  },
  { env: 'PROXY_LOGOUT_VERIFY', key: 'logoutVerify', doc: '`true`', meaning: 'Ask "who am I" after a logout answer that looks successful; only a session proven gone counts as released', parse: BOOL('PROXY_LOGOUT_VERIFY', true) },
  { env: 'PROXY_CSRF_COOKIE', key: 'csrfCookie', doc: '`XSRF-TOKEN`', meaning: "Cookie holding the server's CSRF token; when a user presented it, the logout replays it", parse: TOKEN('PROXY_CSRF_COOKIE', 'XSRF-TOKEN') },
  { env: 'PROXY_CSRF_HEADER', key: 'csrfHeader', doc: '`X-XSRF-TOKEN`', meaning: 'Header the logout sends the CSRF token in', parse: TOKEN('PROXY_CSRF_HEADER', 'X-XSRF-TOKEN') },
  { env: 'PROXY_LOGOUT_TIMEOUT_MS', key: 'logoutTimeoutMs', doc: '`10000`', meaning: 'One logout attempt taking longer than this is retried', parse: MS('PROXY_LOGOUT_TIMEOUT_MS', 10000, 1) },
  { env: 'PROXY_LOGOUT_RETRY_MIN_MS', key: 'logoutRetryMinMs', doc: '`1000`', meaning: 'First retry delay of a failed logout (doubles, with jitter)', parse: MS('PROXY_LOGOUT_RETRY_MIN_MS', 1000, 1) },
  { env: 'PROXY_LOGOUT_RETRY_MAX_MS', key: 'logoutRetryMaxMs', doc: '`60000`', meaning: 'Longest delay between logout retries', parse: MS('PROXY_LOGOUT_RETRY_MAX_MS', 60000, 1) },
  { env: 'PROXY_LOGOUT_GIVE_UP_MS', key: 'logoutGiveUpMs', doc: '`86400000` (24 h)', meaning: 'Retries stop (outcome `failed`, logged as an error) only after this long', parse: MS('PROXY_LOGOUT_GIVE_UP_MS', 86_400_000, 1) },
  { env: 'PROXY_LOGOUT_CONCURRENCY', key: 'logoutConcurrency', doc: '`16`', meaning: 'Upstream logout calls in flight at most', parse: MS('PROXY_LOGOUT_CONCURRENCY', 16, 1) },
  { env: 'PROXY_LOGIN_PATH', key: 'loginPath', doc: '`<context>/login`', meaning: 'Where a browser presenting a logged-out credential is redirected', parse: PATH('PROXY_LOGIN_PATH', (c) => `${c.contextPath}/login`) },
  { env: 'PROXY_REFUSE_MAX_MS', key: 'refuseMaxMs', doc: '`604800000` (7 days)', meaning: 'Longest time a logged-out credential is refused (shorter when the JWT `exp` comes first)', parse: MS('PROXY_REFUSE_MAX_MS', 604_800_000, 1) },
  {
    env: 'PROXY_MODE', key: 'mode', doc: '`enforce`', meaning: '`enforce`, or `shadow`: compute and log everything, but inject nothing, log nobody out, refuse nothing',
    parse: (raw) => {
      const v = raw === undefined || raw === '' ? 'enforce' : raw.toLowerCase();
      if (v !== 'enforce' && v !== 'shadow') throw new ConfigError(`PROXY_MODE=${JSON.stringify(raw)} must be "enforce" or "shadow"`);
      return v;
    },
  },
  { env: 'PROXY_ADMIN_HOST', key: 'adminHost', doc: '`127.0.0.1`', meaning: 'Address of the admin listener (health, metrics, admin API)', parse: STR('127.0.0.1') },
  { env: 'PROXY_ADMIN_PORT', key: 'adminPort', doc: '`9090`', meaning: 'Port of the admin listener', parse: PORT('PROXY_ADMIN_PORT', 9090) },
  { env: 'PROXY_ADMIN_TOKEN', key: 'adminToken', doc: '(unset)', meaning: 'Bearer token for the admin API; required when the admin host is not loopback', parse: STR(undefined) },
  { env: 'PROXY_INTERNAL_PREFIX', key: 'internalPrefix', doc: '`/_session-timeout-proxy`', meaning: "Prefix on the main listener for the proxy's own health endpoints", parse: PATH('PROXY_INTERNAL_PREFIX', () => '/_session-timeout-proxy') },
  { env: 'PROXY_STATE_DIR', key: 'stateDir', doc: '(unset: state in memory only)', meaning: 'Directory where session state is saved so timers survive restarts', parse: STR(undefined) },
  { env: 'PROXY_STATE_SAVE_MS', key: 'stateSaveMs', doc: '`5000`', meaning: 'How often the state is saved', parse: MS('PROXY_STATE_SAVE_MS', 5000, 100) },
  {
    env: 'PROXY_STORE', key: 'store', doc: '`memory`', meaning: 'Where session state lives: `memory` (this process only) or `redis` (shared by several replicas; see "Running several replicas")',
    parse: (raw) => {
      const v = raw === undefined || raw === '' ? 'memory' : raw.toLowerCase();
      if (v !== 'memory' && v !== 'redis') throw new ConfigError(`PROXY_STORE=${JSON.stringify(raw)} must be "memory" or "redis"`);
      return v;
    },
  },
  { env: 'PROXY_REDIS_URL', key: 'redisUrl', doc: '`redis://127.0.0.1:6379`', meaning: 'Redis to share state through (`redis://` or `rediss://` for TLS; `user:password@` and `/db` allowed)', parse: REDIS_URL },
  { env: 'PROXY_REDIS_PREFIX', key: 'redisPrefix', doc: '`stp:`', meaning: 'Prefix of every Redis key and channel, so several deployments can share one Redis', parse: STR('stp:') },
  { env: 'PROXY_REDIS_FLUSH_MS', key: 'redisFlushMs', doc: '`250`', meaning: 'Activity is written to Redis in one pipeline this often (per user, the latest wins); requests never wait for Redis', parse: MS('PROXY_REDIS_FLUSH_MS', 250, 10) },
  { env: 'PROXY_REDIS_SENTINELS', key: 'redisSentinels', doc: '(unset)', meaning: 'Comma-separated `host:port` of Redis Sentinels; when set, the master named by `PROXY_REDIS_SENTINEL_NAME` is used (credentials and db from `PROXY_REDIS_URL`)', parse: HOST_PORTS('PROXY_REDIS_SENTINELS') },
  { env: 'PROXY_REDIS_SENTINEL_NAME', key: 'redisSentinelName', doc: '`mymaster`', meaning: 'Master name the Sentinels know', parse: STR('mymaster') },
  { env: 'PROXY_REDIS_CLUSTER_NODES', key: 'redisClusterNodes', doc: '(unset)', meaning: 'Comma-separated `host:port` of Redis Cluster nodes; when set, Redis is used as a cluster (credentials from `PROXY_REDIS_URL`)', parse: HOST_PORTS('PROXY_REDIS_CLUSTER_NODES') },
  { env: 'PROXY_LOGOUT_LEASE_MS', key: 'logoutLeaseMs', doc: '`15000`', meaning: 'With store=redis: a logout held by a replica that stopped renewing it is taken over by another replica after this long', parse: MS('PROXY_LOGOUT_LEASE_MS', 15000, 200) },
  { env: 'PROXY_STATE_KEY', key: 'stateKey', doc: '(unset)', meaning: 'Key (at least 32 characters, e.g. `openssl rand -base64 32`) that encrypts stored credentials (AES-256-GCM) in Redis and in the state file; required for store=redis', parse: STR(undefined) },
  { env: 'PROXY_STATE_KEY_FILE', key: 'stateKeyFile', doc: '(unset)', meaning: 'File holding the state key (alternative to `PROXY_STATE_KEY`)', parse: STR(undefined) },
  { env: 'PROXY_SHUTDOWN_GRACE_MS', key: 'shutdownGraceMs', doc: '`10000`', meaning: 'How long in-flight requests may take to finish on SIGTERM', parse: MS('PROXY_SHUTDOWN_GRACE_MS', 10000) },
  { env: 'PROXY_WS_MAX_MESSAGE_BYTES', key: 'wsMaxMessageBytes', doc: '`16777216` (16 MiB)', meaning: 'Largest WebSocket message relayed; larger closes the socket with 1009', parse: MS('PROXY_WS_MAX_MESSAGE_BYTES', 16 * 1024 * 1024, 1) },
  { env: 'PROXY_WS_MAX_BUFFERED_BYTES', key: 'wsMaxBufferedBytes', doc: '`4194304` (4 MiB)', meaning: 'When a WebSocket peer does not read and this much is queued, the other side is paused', parse: MS('PROXY_WS_MAX_BUFFERED_BYTES', 4 * 1024 * 1024, 1024) },
  { env: 'PROXY_WS_PING_MS', key: 'wsPingMs', doc: '`30000`', meaning: 'Keep-alive: every relayed WebSocket side is pinged this often and dropped when it has not answered (nor sent anything) by the next ping; `0` = off', parse: MS('PROXY_WS_PING_MS', 30000) },
];

/** `PROXY_FOO_BAR` -> `--foo-bar` */
export function flagOf(env: string): string {
  return '--' + env.replace(/^PROXY_/, '').toLowerCase().replace(/_/g, '-');
}

/** Parses `--flag value` and `--flag=value` pairs into env-style names; unknown flags are errors. */
export function parseArgv(argv: readonly string[]): Record<string, string> {
  const byFlag = new Map(SETTINGS.map((s) => [flagOf(s.env), s.env]));
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const env = byFlag.get(flag);
    if (!env) throw new ConfigError(`unknown option ${JSON.stringify(flag)}; known options: ${[...byFlag.keys()].join(' ')}`);
    let value: string | undefined = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new ConfigError(`option ${flag} needs a value`);
    out[env] = value;
  }
  return out;
}

/** Builds the deployment config from the environment and CLI flags (flags win). Throws ConfigError. */
export function loadDeploymentConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
  argv: readonly string[] = [],
): DeploymentConfig {
  const merged: Record<string, string | undefined> = { ...env, ...parseArgv(argv) };
  const ctxRow = SETTINGS.find((s) => s.key === 'contextPath')!;
  const ctx: Ctx = { contextPath: ctxRow.parse(merged[ctxRow.env], { contextPath: '' }) as string };
  const out: Record<string, unknown> = {};
  const errors: string[] = [];
  for (const row of SETTINGS) {
    try {
      out[row.key] = row.parse(merged[row.env], ctx);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (errors.length > 0) throw new ConfigError(errors.join('\n'));
  out['logoutPath'] = resolveCandidates(out['logoutPath'] as LogoutCandidateSpec[], out['logoutMethod'] as string);
  const cfg = out as unknown as DeploymentConfig;
  if (cfg.tokenSecret && cfg.tokenSecretFile) throw new ConfigError('set PROXY_TOKEN_SECRET or PROXY_TOKEN_SECRET_FILE, not both');
  if (cfg.redisSentinels.length > 0 && cfg.redisClusterNodes.length > 0) throw new ConfigError('set PROXY_REDIS_SENTINELS or PROXY_REDIS_CLUSTER_NODES, not both');
  // the key is read and checked now, so a bad one stops the start with a clear message
  const stateKey = loadStateKey(cfg);
  if (cfg.store === 'redis' && !stateKey) {
    throw new ConfigError('PROXY_STORE=redis needs PROXY_STATE_KEY or PROXY_STATE_KEY_FILE: the credentials kept in Redis for the logout call are encrypted with it (every replica needs the same key)');
  }
  if (cfg.periodicMaxInterval && 'ms' in cfg.periodicMaxInterval && cfg.periodicMaxInterval.ms < cfg.periodicMinIntervalMs) {
    throw new ConfigError(`PROXY_PERIODIC_MAX_INTERVAL (${cfg.periodicMaxInterval.ms}) must not be below PROXY_PERIODIC_MIN_INTERVAL_MS (${cfg.periodicMinIntervalMs})`);
  }
  if (cfg.logoutRetryMinMs > cfg.logoutRetryMaxMs) throw new ConfigError(`PROXY_LOGOUT_RETRY_MIN_MS (${cfg.logoutRetryMinMs}) must not exceed PROXY_LOGOUT_RETRY_MAX_MS (${cfg.logoutRetryMaxMs})`);
  return Object.freeze(cfg);
}

/** Environment variable names the proxy understands (used by the compose-file test). */
export const KNOWN_ENV: ReadonlySet<string> = new Set(SETTINGS.map((s) => s.env));
