/**
 * Section 6 of `npm run bench`: several replicas on Redis (store=redis).
 *   6a. req/s of the proxy with store=redis against store=memory (same load, alternating rounds):
 *       the request path must not wait for Redis (goal ≥ 0.9×).
 *   6b. scale: 100 000 users over three replicas, 10 000 of them expiring at the same moment;
 *       every logout exactly once, and how long until the last one was done (replica-scale.js).
 * Skipped when redis-server is not installed.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startRedisServer } from './replica-scale.js';
import { median, fmt, ratio, table } from './stats.js';


export function redisInstalled() {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * @param ctx {{ log, child, loadgen, ours, proxyEnv, cookies, path, P, quick }}
 */
export async function runReplicaSection(ctx) {
  const { log, child, loadgen, ours, proxyEnv, cookies, path, P, quick } = ctx;
  const redis = await startRedisServer();
  try {
    const oursRedis = await child('contender.js', { args: ['ours-redis'], env: { ...proxyEnv, BENCH_REDIS_URL: redis.url }, name: 'our proxy, store=redis' });
    const contenders = [
      { key: 'memory', label: 'store=memory', url: ours.ready.url },
      { key: 'redis', label: 'store=redis', url: oursRedis.ready.url },
    ];
    const runs = { memory: [], redis: [] };
    for (let round = 0; round < P.rounds; round++) {
      for (const c of contenders) {
        await loadgen.call({ cmd: 'http', url: c.url + path, connections: P.connections, durationS: P.warmS, cookies }, (P.warmS + 30) * 1000);
        const r = await loadgen.call({ cmd: 'http', url: c.url + path, connections: P.connections, durationS: P.measureS, cookies }, (P.measureS + 30) * 1000);
        runs[c.key].push(r);
        log(`  round ${round + 1} ${c.label.padEnd(14)} ${fmt(r.rps).padStart(7)} req/s  p99 ${fmt(r.p99Ms)} ms${r.errors + r.non2xx ? `  [${r.errors + r.non2xx} failed]` : ''}`);
      }
    }
    await oursRedis.stop();
    const rps = { memory: median(runs.memory.map((r) => r.rps)), redis: median(runs.redis.map((r) => r.rps)) };
    const p99 = { memory: median(runs.memory.map((r) => r.p99Ms)), redis: median(runs.redis.map((r) => r.p99Ms)) };
    log(`  medians: store=memory ${fmt(rps.memory)} req/s, store=redis ${fmt(rps.redis)} req/s; redis / memory = ${ratio(rps.redis, rps.memory)} (goal ≥ 0.90×)`);

    const scaleArgs = quick ? { users: 10_000, expiring: 1_000, replicas: 3 } : { users: 100_000, expiring: 10_000, replicas: 3 };
    log(`  scale: ${fmt(scaleArgs.users)} users over ${scaleArgs.replicas} replicas (one process), ${fmt(scaleArgs.expiring)} expiring at the same moment ...`);
    const scaler = await child(join('lib', 'replica-scale.js'), { name: 'replica scale' });
    const scale = await scaler.call({ cmd: 'scale', redisUrl: redis.url, ...scaleArgs }, 600_000);
    await scaler.stop();
    log(`  every user on every replica after ${fmt(scale.propagatedMs)} ms (RSS ${fmt(scale.rssMiB)} MiB for all three); logged out ${fmt(scale.loggedOut)} of ${fmt(scale.expiring)}, ` +
      `${scale.twice} twice, ${scale.early} not due, ${fmt(scale.claimedInRedis)} claims confirmed in Redis; the last logout ${fmt(scale.lastLogoutAfterDeadlineMs)} ms after the common deadline`);
    return { rps, p99, scale };
  } finally {
    redis.stop();
  }
}

export function replicaSummaryLines(r) {
  if (!r) return ['**Several replicas (store=redis)**: skipped (redis-server not installed).'];
  const s = r.scale;
  return [
    '**Several replicas (store=redis)**',
    '',
    table(['measure', 'value'], [
      ['req/s store=memory → store=redis (1 KiB JSON, same load)', `${fmt(r.rps.memory)} → ${fmt(r.rps.redis)} (${ratio(r.rps.redis, r.rps.memory)}; goal ≥ 0.90×)`],
      ['p99 ms store=memory → store=redis', `${fmt(r.p99.memory)} → ${fmt(r.p99.redis)}`],
      [`${fmt(s.users)} users over ${s.replicas} replicas: on every replica after`, `${fmt(s.propagatedMs)} ms (RSS ${fmt(s.rssMiB)} MiB, all three in one process)`],
      [`${fmt(s.expiring)} simultaneous expiries: logged out`, `${fmt(s.loggedOut)} (twice: ${s.twice}, not due: ${s.early}; claims in Redis: ${fmt(s.claimedInRedis)})`],
      ['last logout after the common deadline', `${fmt(s.lastLogoutAfterDeadlineMs)} ms`],
    ]),
  ];
}

