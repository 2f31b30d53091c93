/**
 * WebSocket live-data throughput: echo (small text frames, a window in flight per client) and
 * server push (1 KiB text frames as fast as the client reads), direct to the upstream vs through
 * our proxy (its sockets inspected as notification sockets — the default PROXY_NOTIFY_PATHS — and
 * not inspected) vs a bare Node TCP relay (bench/node-relay.js: the floor for a relay in Node) vs
 * nginx (when installed), alternating rounds, medians. The clients are spread
 * over BENCH_WS_LOADGENS load-generator processes (default 2) so one load generator's event loop
 * is not the limit; beside msgs/s each target's serving process reports CPU µs per message.
 *
 *   node bench/lib/ws-throughput.js      (after npm run build) runs it alone, with its own children
 *   measureWsThroughput(...)             the same inside bench/run.js, with its children
 */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { startChild } from './ipc.js';
import { median, fmt, ratio } from './stats.js';
import { nginxBinary, startNginx } from './nginx.js';

const here = dirname(fileURLToPath(import.meta.url));

/** PROXY_NOTIFY_PATHS of the proxy whose bench sockets are not notification sockets (not inspected) */
export const UNINSPECTED_NOTIFY_PATHS = '/notifications/**';

export const NODE_RELAY_LABEL = 'bare Node TCP relay';

/** how many load-generator processes share the WebSocket clients (BENCH_WS_LOADGENS, default 2) */
export function wsLoadgenCount() {
  const n = Number(process.env.BENCH_WS_LOADGENS ?? 2);
  return Number.isInteger(n) && n >= 1 ? n : 2;
}

/**
 * One load run spread over every load-generator process (clients split evenly, all started
 * together): messages summed, over the longest run's seconds; plus the CPU the target's serving
 * process spent per message and how busy the load generators were (1.0 = a full core each).
 */
async function spread(loadgens, msg, clients, target, timeoutMs) {
  const per = loadgens.map((_, i) => Math.floor(clients / loadgens.length) + (i < clients % loadgens.length ? 1 : 0));
  const cpu0 = target.cpu ? await target.cpu() : NaN;
  const gen0 = await Promise.all(loadgens.map((g) => g.call({ cmd: 'cpu' })));
  const parts = await Promise.all(loadgens.map((g, i) => (per[i] > 0 ? g.call({ ...msg, clients: per[i] }, timeoutMs) : { messages: 0, seconds: 0 })));
  const gen1 = await Promise.all(loadgens.map((g) => g.call({ cmd: 'cpu' })));
  const cpu1 = target.cpu ? await target.cpu() : NaN;
  const messages = parts.reduce((a, r) => a + r.messages, 0);
  const seconds = Math.max(...parts.map((r) => r.seconds));
  const genBusy = Math.max(...gen1.map((u, i) => (u.user + u.system - gen0[i].user - gen0[i].system) / 1e6 / seconds));
  return { messages, seconds, msgsPerS: messages / seconds, cpuUsPerMsg: ((cpu1 - cpu0) * 1e6) / messages, loadgenBusy: genBusy, timedOut: parts.some((r) => r.timedOut) };
}

/**
 * @param targets   [{ key, label, base: 'http://host:port', cpu?: () => Promise<CPU seconds of the serving process> }]
 * @param loadgens  the load-generator children (one or more: clients are spread over them)
 */
export async function measureWsThroughput({ targets, loadgens, cookie, rounds = 3, clients = 10, echoMessages = 5000, window = 32, liveMs = 3000, log }) {
  const echo = Object.fromEntries(targets.map((t) => [t.key, []]));
  const live = Object.fromEntries(targets.map((t) => [t.key, []]));
  const ws = (t, path) => t.base.replace('http', 'ws') + path;
  for (const t of targets) await spread(loadgens, { cmd: 'wsEcho', url: ws(t, '/ws/echo'), messages: Math.ceil(echoMessages / 5), window, cookie }, clients, {}, 60_000);
  for (let round = 0; round < rounds; round++) {
    for (const t of targets) {
      const e = await spread(loadgens, { cmd: 'wsEcho', url: ws(t, '/ws/echo'), messages: echoMessages, window, cookie, timeoutMs: 60_000 }, clients, t, 90_000);
      const l = await spread(loadgens, { cmd: 'wsLive', url: ws(t, `/ws/live?ms=${liveMs}`), cookie, timeoutMs: liveMs + 20_000 }, clients, t, liveMs + 40_000);
      echo[t.key].push(e);
      live[t.key].push(l);
      log?.(`round ${round + 1} ${t.label.padEnd(34)} echo ${fmt(e.msgsPerS).padStart(7)} msgs/s ${fmt(e.cpuUsPerMsg, 1).padStart(5)} µs CPU/msg (load gen. ${fmt(e.loadgenBusy * 100)}% busy)` +
        ` · push ${fmt(l.msgsPerS).padStart(7)} msgs/s ${fmt(l.cpuUsPerMsg, 1).padStart(5)} µs CPU/msg (load gen. ${fmt(l.loadgenBusy * 100)}% busy)${e.timedOut || l.timedOut ? ' TIMED OUT' : ''}`);
    }
  }
  const med = (runs, k) => median(runs.map((r) => r[k]));
  return Object.fromEntries(targets.map((t) => [t.key, {
    label: t.label,
    echo: med(echo[t.key], 'msgsPerS'),
    live: med(live[t.key], 'msgsPerS'),
    echoCpuUs: med(echo[t.key], 'cpuUsPerMsg'),
    liveCpuUs: med(live[t.key], 'cpuUsPerMsg'),
  }]));
}

export function wsThroughputLines(r) {
  const cpu = (v) => (Number.isFinite(v) ? ` (${fmt(v, 1)} µs CPU/msg)` : '');
  const lines = Object.values(r).map((v) => `${v.label}: echo ${fmt(v.echo)} msgs/s${cpu(v.echoCpuUs)}, push ${fmt(v.live)} msgs/s${cpu(v.liveCpuUs)}`);
  const ratios = (a, b, name) => {
    if (!r[a] || !r[b]) return;
    lines.push(`${name}: echo ${ratio(r[a].echo, r[b].echo)}, push ${ratio(r[a].live, r[b].live)} msgs/s` +
      (Number.isFinite(r[a].echoCpuUs) && Number.isFinite(r[b].echoCpuUs) ? `; CPU per message ${ratio(r[a].echoCpuUs, r[b].echoCpuUs)} (echo), ${ratio(r[a].liveCpuUs, r[b].liveCpuUs)} (push)` : ''));
  };
  for (const k of ['ours', 'oursUninspected']) {
    ratios(k, 'direct', `${r[k]?.label} / direct`);
    ratios(k, 'nginx', `${r[k]?.label} / nginx`);
    ratios(k, 'nodeRelay', `${r[k]?.label} / ${NODE_RELAY_LABEL}`);
  }
  ratios('nodeRelay', 'direct', `${NODE_RELAY_LABEL} / direct`);
  return lines;
}

async function main() {
  const secret = randomBytes(32).toString('base64url');
  const cookie = `ptoken=${await new SignJWT({ sub: 'ws-bench' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('2h').sign(new TextEncoder().encode(secret))}`;
  const children = [];
  const child = async (file, opts) => {
    const c = await startChild(join(here, '..', file), { name: file, ...opts });
    children.push(c);
    return c;
  };
  let nginx;
  try {
    const upstream = await child('upstream.js', { env: { BENCH_WHOAMI_PATH: '/whoami' } });
    const ours = await child('contender.js', { args: ['ours'], env: { BENCH_UPSTREAM: upstream.ready.url, BENCH_TOKEN_SECRET: secret, BENCH_WHOAMI_PATH: '/whoami' } });
    const uninspected = await child('contender.js', { args: ['ours'], env: { BENCH_UPSTREAM: upstream.ready.url, BENCH_TOKEN_SECRET: secret, BENCH_WHOAMI_PATH: '/whoami', BENCH_NOTIFY_PATHS: UNINSPECTED_NOTIFY_PATHS } });
    const nodeRelay = await child('node-relay.js', { env: { BENCH_UPSTREAM: upstream.ready.url } });
    const loadgens = [];
    for (let i = 0; i < wsLoadgenCount(); i++) loadgens.push(await child('loadgen.js'));
    const cpuOf = (c) => () => c.call({ cmd: 'cpu' }).then((u) => (u.user + u.system) / 1e6);
    const targets = [
      { key: 'direct', label: 'direct to upstream', base: upstream.ready.url, cpu: cpuOf(upstream) },
      { key: 'ours', label: 'ours, inspected', base: ours.ready.url, cpu: cpuOf(ours) },
      { key: 'oursUninspected', label: 'ours, not inspected', base: uninspected.ready.url, cpu: cpuOf(uninspected) },
      { key: 'nodeRelay', label: NODE_RELAY_LABEL, base: nodeRelay.ready.url, cpu: cpuOf(nodeRelay) },
    ];
    const bin = nginxBinary();
    if (bin) {
      nginx = await startNginx(bin, upstream.ready.port);
      targets.push({ key: 'nginx', label: 'nginx (1 worker)', base: nginx.url, cpu: () => nginx.cpuSeconds() });
    }
    const quick = process.env.BENCH_QUICK === '1';
    const r = await measureWsThroughput({ targets, loadgens, cookie, log: (l) => console.log(l), ...(quick ? { rounds: 1, echoMessages: 1000, liveMs: 1000 } : {}) });
    for (const line of wsThroughputLines(r)) console.log(line);
  } finally {
    await Promise.allSettled(children.map((c) => c.stop()));
    if (nginx) await nginx.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
