/**
 * WebSocket live-data throughput: echo (small text frames, a window in flight per client) and
 * server push (1 KiB text frames as fast as the client reads), direct to the upstream vs through
 * our proxy vs nginx (when installed), alternating rounds, medians.
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

/**
 * @param targets  [{ key, label, base: 'http://host:port' }]
 * @param loadgen  the load-generator child
 */
export async function measureWsThroughput({ targets, loadgen, cookie, rounds = 3, clients = 10, echoMessages = 5000, window = 32, liveMs = 3000 }) {
  const echo = Object.fromEntries(targets.map((t) => [t.key, []]));
  const live = Object.fromEntries(targets.map((t) => [t.key, []]));
  const ws = (t, path) => t.base.replace('http', 'ws') + path;
  for (const t of targets) await loadgen.call({ cmd: 'wsEcho', url: ws(t, '/ws/echo'), clients, messages: Math.ceil(echoMessages / 5), window, cookie }, 60_000);
  for (let round = 0; round < rounds; round++) {
    for (const t of targets) {
      echo[t.key].push((await loadgen.call({ cmd: 'wsEcho', url: ws(t, '/ws/echo'), clients, messages: echoMessages, window, cookie, timeoutMs: 30_000 }, 60_000)).msgsPerS);
      live[t.key].push((await loadgen.call({ cmd: 'wsLive', url: ws(t, `/ws/live?ms=${liveMs}`), clients, cookie, timeoutMs: liveMs + 20_000 }, 60_000)).msgsPerS);
    }
  }
  return Object.fromEntries(targets.map((t) => [t.key, { label: t.label, echo: median(echo[t.key]), live: median(live[t.key]) }]));
}

export function wsThroughputLines(r) {
  const lines = Object.values(r).map((v) => `${v.label}: echo ${fmt(v.echo)} msgs/s, push ${fmt(v.live)} msgs/s`);
  if (r.ours && r.direct) lines.push(`ours / direct: echo ${ratio(r.ours.echo, r.direct.echo)}, push ${ratio(r.ours.live, r.direct.live)}`);
  if (r.ours && r.nginx) lines.push(`ours / nginx: echo ${ratio(r.ours.echo, r.nginx.echo)}, push ${ratio(r.ours.live, r.nginx.live)}`);
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
    const loadgen = await child('loadgen.js');
    const targets = [
      { key: 'direct', label: 'direct to upstream', base: upstream.ready.url },
      { key: 'ours', label: 'session-timeout-proxy', base: ours.ready.url },
    ];
    const bin = nginxBinary();
    if (bin) {
      nginx = await startNginx(bin, upstream.ready.port);
      targets.push({ key: 'nginx', label: 'nginx (1 worker)', base: nginx.url });
    }
    const quick = process.env.BENCH_QUICK === '1';
    const r = await measureWsThroughput({ targets, loadgen, cookie, ...(quick ? { rounds: 1, echoMessages: 1000, liveMs: 1000 } : {}) });
    for (const line of wsThroughputLines(r)) console.log(line);
  } finally {
    await Promise.allSettled(children.map((c) => c.stop()));
    if (nginx) await nginx.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
