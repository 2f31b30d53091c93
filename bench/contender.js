/**
 * One proxy under test, in its own process.
 *
 *   node bench/contender.js bare   Fastify + @fastify/http-proxy with defaults
 *   node bench/contender.js ours   startProxy(): timeouts enabled, tokens verified (PROXY_TOKEN_SECRET),
 *                                  logging at info into /dev/null (a file destination, so the cost of
 *                                  every access-log line is included)
 *   node bench/contender.js ours-redis   the same with PROXY_STORE=redis on BENCH_REDIS_URL
 *
 * Commands (IPC): mem [gc], cpu, timers {…} (the engine timer-precision run, in this process),
 * sample (soak: RSS, heap, event-loop lag since the last sample), stats, stop.
 * Environment: BENCH_UPSTREAM, BENCH_TOKEN_SECRET, BENCH_WHOAMI_PATH, BENCH_PROPERTIES (a
 * properties file to watch instead of a fixed one), BENCH_NOTIFY_PATHS (PROXY_NOTIFY_PATHS; unset:
 * every socket is a notification socket, inspected).
 */
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { serve, failed } from './lib/ipc.js';
import { measureTimerPrecision } from './lib/timer-precision.js';

const kind = process.argv[2];
const upstream = process.env.BENCH_UPSTREAM;

async function startBare() {
  const { default: Fastify } = await import('fastify');
  const { default: httpProxy } = await import('@fastify/http-proxy');
  const app = Fastify();
  await app.register(httpProxy, { upstream });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { url: `http://127.0.0.1:${app.server.address().port}`, close: () => app.close() };
}

async function startOurs(extraEnv = {}) {
  const { loadDeploymentConfig } = await import('../dist/config/deployment.js');
  const { createLogger } = await import('../dist/log.js');
  const { startProxy } = await import('../dist/app.js');
  const dir = await mkdtemp(join(tmpdir(), 'stp-bench-'));
  const propertiesPath = process.env.BENCH_PROPERTIES ?? join(dir, 'Panopticon.properties');
  if (!process.env.BENCH_PROPERTIES) await writeFile(propertiesPath, [
    'timeout.session.enabled=true',
    'timeout.session.minutes=480',
    'timeout.session.notification.minutes=1',
    '',
  ].join('\n'));
  const config = loadDeploymentConfig({
    PROXY_UPSTREAM: upstream,
    PROXY_HOST: '127.0.0.1',
    PROXY_PORT: '0',
    PROXY_ADMIN_PORT: '0',
    PROXY_PROPERTIES: propertiesPath,
    PROXY_TOKEN_SECRET: process.env.BENCH_TOKEN_SECRET,
    ...(process.env.BENCH_WHOAMI_PATH ? { PROXY_WHOAMI_PATH: process.env.BENCH_WHOAMI_PATH } : {}),
    PROXY_LOG_LEVEL: 'info',
    ...(process.env.BENCH_NOTIFY_PATHS ? { PROXY_NOTIFY_PATHS: process.env.BENCH_NOTIFY_PATHS } : {}),
    ...extraEnv,
  });
  // the production destination (access lines batched, audit lines at once), but to /dev/null
  const { createLogDestination } = await import('../dist/log-destination.js');
  const destination = createLogDestination('/dev/null');
  const logger = createLogger({ level: 'info', destination });
  const proxy = await startProxy(config, { logger });
  return {
    url: proxy.url,
    proxy,
    close: async () => {
      await proxy.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

try {
  const redisEnv = { PROXY_STORE: 'redis', PROXY_REDIS_URL: process.env.BENCH_REDIS_URL, PROXY_STATE_KEY: 'bench-state-key-0123456789abcdefghijklmnopq' };
  const started = kind === 'bare' ? await startBare() : kind === 'ours' ? await startOurs() : kind === 'ours-redis' ? await startOurs(redisEnv) : undefined;
  if (!started) throw new Error(`unknown contender ${kind}`);
  serve(async (msg) => {
    switch (msg.cmd) {
      case 'mem':
        if (msg.gc && typeof globalThis.gc === 'function') {
          globalThis.gc();
          globalThis.gc();
        }
        return process.memoryUsage();
      case 'timers':
        return measureTimerPrecision(msg.options);
      case 'sample': { // soak: memory, event-loop lag since the last sample, what the proxy holds
        const m = process.memoryUsage();
        const lag = { p99Ms: loopDelay.percentile(99) / 1e6, maxMs: loopDelay.max / 1e6 };
        loopDelay.reset();
        const p = started.proxy;
        return { rss: m.rss, heapUsed: m.heapUsed, ...lag, usersTracked: p?.engine.userCount, openSockets: p?.registry.size, pendingLogouts: p?.queue.size };
      }
      case 'stats':
        return started.proxy ? { usersTracked: started.proxy.engine.userCount, openSockets: started.proxy.registry.size } : {};
      default:
        throw new Error(`unknown command ${msg.cmd}`);
    }
  }, { url: started.url, pid: process.pid }, () => started.close());
} catch (err) {
  failed(err);
}
