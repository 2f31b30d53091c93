/**
 * Scale of the shared store (store=redis), in its own process: `replicas` session engines with
 * their RedisSessionStores on one real Redis (one process, so the replicas share one event loop:
 * a pessimistic setting), `users` users spread over them, then `expiring` of them made due at the
 * same moment. Reports how long the users took to reach every replica, whether every expired user
 * was logged out exactly once (counted in-process and checked against the claims in Redis), and
 * how long after the common deadline the last logout was done.
 *
 * IPC command: scale {redisUrl, users, expiring, replicas}
 */
import { spawn } from 'node:child_process';
import { createServer, createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { serve, failed } from './ipc.js';

const MINUTE_MS = 60_000;

async function scale({ redisUrl, users, expiring, replicas }) {
  const { loadDeploymentConfig } = await import('../../dist/config/deployment.js');
  const { stateKeyBytes } = await import('../../dist/config/state-key.js');
  const { RedisLink } = await import('../../dist/sessions/redis-link.js');
  const { RedisSessionStore } = await import('../../dist/sessions/redis-store.js');
  const { SessionEngine } = await import('../../dist/sessions/engine.js');
  const { SecretBox } = await import('../../dist/sessions/secret-box.js');
  const { systemClock } = await import('../../dist/sessions/clock.js');
  const { DEFAULT_SETTINGS } = await import('../../dist/properties/settings.js');
  const { default: pino } = await import('pino');
  const logger = pino({ level: 'silent' });
  const config = loadDeploymentConfig({ PROXY_UPSTREAM: 'http://bench.invalid:1', PROXY_REDIS_URL: redisUrl, PROXY_REDIS_FLUSH_MS: '250', PROXY_REDIS_PREFIX: 'stp-scale:' });
  const box = new SecretBox(stateKeyBytes('bench-state-key-0123456789abcdefghijklmnopq'));
  const settingsFor = (timeoutMs) => Object.freeze({ ...DEFAULT_SETTINGS, enabled: true, timeoutMs, timeoutMinutes: timeoutMs / MINUTE_MS, notifyBeforeMs: 0, notifyBeforeMinutes: 0 });

  const logouts = new Map();
  let lastLogoutAtMs = 0;
  const parts = [];
  for (let r = 0; r < replicas; r++) {
    const link = new RedisLink(config, logger, `bench-replica-${r}`);
    const store = new RedisSessionStore({ link, box, clock: systemClock, flushMs: config.redisFlushMs, logger });
    const engine = new SessionEngine({
      clock: systemClock, store, settings: settingsFor(480 * MINUTE_MS), logger,
      actions: { warn() {}, logout(user) { logouts.set(user, (logouts.get(user) ?? 0) + 1); lastLogoutAtMs = Date.now(); } },
    });
    parts.push({ link, store, engine });
  }
  for (const p of parts) if (!(await p.link.waitUntilUp(10_000))) throw new Error('Redis not reachable');

  // every user is active on one replica (round-robin); the expiring ones an hour ago, all at the same ms
  // (so the others fall due an hour after them, well outside the measurement)
  const t0 = Date.now();
  const pastMs = t0 - 60 * MINUTE_MS;
  const cred = (i) => ({ fingerprint: `fp-${i}`, kind: 'token-cookie', replay: { cookie: `ptoken=bench-${i}` }, lastSeenMs: t0 });
  for (let i = 0; i < users; i++) {
    const { store } = parts[i % replicas];
    const atMs = i < expiring ? pastMs : t0;
    const record = store.recordActivity(`u${i}`, { atMs, method: 'GET', path: '/bench', counted: true, rule: 'counted' });
    record.credentials.set(`fp-${i}`, cred(i));
    store.noteChanged(`u${i}`);
  }
  for (const p of parts) p.engine.rescheduleAll();
  while (parts.some((p) => p.store.size < users)) {
    if (Date.now() - t0 > 120_000) throw new Error(`users did not reach every replica: ${parts.map((p) => p.store.size).join(', ')}`);
    await sleep(50);
  }
  const propagatedMs = Date.now() - t0;
  const rss = process.memoryUsage().rss;

  // the expiring users' common deadline: 2 s from now (the others' lies an hour later)
  const deadlineAtMs = Date.now() + 2000;
  const timeoutMs = deadlineAtMs - pastMs;
  for (const p of parts) p.engine.updateSettings(settingsFor(timeoutMs));
  while (logouts.size < expiring && Date.now() - deadlineAtMs < 120_000) await sleep(50);
  await sleep(2000); // anything done twice would show up now
  const lastMs = lastLogoutAtMs - deadlineAtMs;

  // verify against Redis: every expiring user's logout claim is for their idle period
  const redis = parts[0].link.cmd;
  let claimed = 0;
  for (let i = 0; i < expiring; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, expiring - i) }, (_, j) => `u${i + j}`);
    const values = await Promise.all(batch.map((u) => redis.hget(`${config.redisPrefix}u:{${u}}`, 'logout')));
    claimed += values.filter((v) => Number(v) === pastMs).length;
  }
  const counts = [...logouts.values()];
  const result = {
    users, expiring, replicas, propagatedMs, rssMiB: rss / 1024 / 1024,
    loggedOut: logouts.size,
    twice: counts.filter((n) => n > 1).length,
    early: [...logouts.keys()].filter((u) => Number(u.slice(1)) >= expiring).length,
    claimedInRedis: claimed,
    lastLogoutAfterDeadlineMs: lastMs,
  };
  for (const p of parts) {
    p.engine.close();
    p.store.close();
    await p.link.close();
  }
  return result;
}

/** A redis-server on a free loopback port, without persistence. */
export async function startRedisServer() {
  const port = await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const deadline = Date.now() + 5000;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = createConnection({ port, host: '127.0.0.1' });
      s.once('connect', () => { s.end(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error('redis-server did not start'); }
    await sleep(50);
  }
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') };
}

if (process.send) {
  try {
    serve(async (msg) => {
      if (msg.cmd === 'scale') return scale(msg);
      throw new Error(`unknown command ${msg.cmd}`);
    }, { pid: process.pid }, async () => {});
  } catch (err) {
    failed(err);
  }
}
