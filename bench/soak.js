/**
 * `npm run bench -- --soak 10m [--users 300]`: the proxy (its own process, real clock) in front of
 * the Panopticon simulator (this process) for a long while, with a few hundred users who sign in,
 * work, open and close sockets, go idle, are warned and logged out, and sign in again, while the
 * properties file is edited now and then. Every sample prints the proxy's RSS, JS heap and
 * event-loop lag; the end says whether they stayed flat. Prints figures, asserts nothing.
 *
 * Timeout 0.5 min with a warning 0.25 min before (edits move it between 0.5 and 0.6 min and the
 * exempt list), so every user goes through several full cycles even in a short soak.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { startChild } from './lib/ipc.js';
import { fmt, median, MiB } from './lib/stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const CTX = '/panopticon';
const NOTIFY = `${CTX}/server/ws/notifications`;
const DATA = `${CTX}/server/ws/data`;
const PAGES = [`${CTX}/`, `${CTX}/server/rest/dashboards/sales`, `${CTX}/server/rest/dashboards/ops`, `${CTX}/server/rest/workbooks`, `${CTX}/server/rest/licenses`];

/** `10m`, `90s`, `1h`, `2m30s` → ms */
export function parseDuration(text) {
  const re = /(\d+(?:\.\d+)?)(h|m|s|ms)/g;
  let ms = 0;
  let matched = '';
  for (const m of text.matchAll(re)) {
    ms += Number(m[1]) * { h: 3_600_000, m: 60_000, s: 1000, ms: 1 }[m[2]];
    matched += m[0];
  }
  if (matched !== text || ms <= 0) throw new Error(`--soak wants a duration such as 10m, 90s or 1h, got ${JSON.stringify(text)}`);
  return ms;
}

const props = (minutes, exempt) => `timeout.session.enabled=true\ntimeout.session.minutes=${minutes}\ntimeout.session.notification.minutes=0.25\ntimeout.session.exception.usernames=${exempt}\n`;
const rand = (a, b) => a + Math.random() * (b - a);

export async function soak({ durationMs, users: userCount = 300, log = (l) => process.stdout.write(`${l}\n`) }) {
  const { startSimulator } = await import('../dist/simulator/server.js');
  const users = Array.from({ length: userCount }, (_, i) => ({ username: `soak${i}`, password: `soak${i}`, role: i % 5 === 0 ? 'designer' : 'viewer' }));
  const sim = await startSimulator({ users, logger: false, dataIntervalMs: 1000 });
  const dir = await mkdtemp(join(tmpdir(), 'stp-soak-'));
  const propertiesPath = join(dir, 'Panopticon.properties');
  await writeFile(propertiesPath, props(0.5, ''));
  const proxy = await startChild(join(here, 'contender.js'), {
    args: ['ours'],
    name: 'our proxy (soak)',
    execArgv: ['--expose-gc'],
    env: { BENCH_UPSTREAM: sim.url, BENCH_TOKEN_SECRET: sim.tokenSecret, BENCH_PROPERTIES: propertiesPath },
  });
  const base = proxy.ready.url;
  const wsBase = base.replace('http', 'ws');
  const counts = { logins: 0, requests: 0, failed: 0, warnings: 0, loggedOut: 0, socketsOpened: 0, socketsClosed: 0, edits: 0 };
  const endAt = Date.now() + durationMs;
  let stopping = false;

  async function login(u) {
    const res = await fetch(`${base}${CTX}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: u.username, password: u.password }).toString(),
    });
    await res.arrayBuffer();
    if (res.status !== 302) throw new Error(`login answered ${res.status}`);
    counts.logins++;
    return res.headers.getSetCookie().map((c) => c.split(';', 1)[0]).join('; ');
  }

  function openSocket(path, cookie, onMessage) {
    return new Promise((resolve) => {
      const ws = new WebSocket(wsBase + path, { headers: { cookie } });
      ws.on('error', () => resolve(undefined));
      ws.on('message', (data) => onMessage?.(String(data)));
      ws.once('close', () => counts.socketsClosed++);
      ws.once('open', () => { counts.socketsOpened++; resolve(ws); });
    });
  }

  async function get(path, cookie) {
    try {
      const res = await fetch(base + path, { headers: { cookie, accept: path.endsWith('/') ? 'text/html' : 'application/json' } });
      await res.arrayBuffer();
      counts.requests++;
      return res.status;
    } catch {
      counts.failed++;
      return 0;
    }
  }

  /** sign in, work, (maybe) keep a socket open while idle until warned and logged out; again */
  async function life(u, startDelayMs) {
    await sleep(startDelayMs);
    while (!stopping && Date.now() < endAt) {
      let cookie;
      try {
        cookie = await login(u);
      } catch {
        counts.failed++;
        await sleep(1000);
        continue;
      }
      const notify = await openSocket(NOTIFY, cookie, (text) => { if (text.includes('TimeoutNotification')) counts.warnings++; });
      const data = Math.random() < 0.5 ? await openSocket(DATA, cookie) : undefined;
      const work = Math.floor(rand(3, 15));
      for (let i = 0; i < work && !stopping; i++) {
        await get(PAGES[Math.floor(Math.random() * PAGES.length)], cookie);
        await sleep(rand(200, 2000));
      }
      data?.close();
      if (Math.random() < 0.3) notify?.close(); // some leave the tab; the timeout still logs them out
      // idle: the proxy warns, then logs out (the upstream login ends, the socket is closed)
      const idleUntil = Date.now() + 90_000;
      while (!stopping && Date.now() < Math.min(idleUntil, endAt) && u.username in sim.licensesInUse()) await sleep(1000);
      if (Date.now() < endAt && !(u.username in sim.licensesInUse())) counts.loggedOut++;
      notify?.terminate();
      await sleep(rand(500, 3000));
    }
  }

  async function editor() {
    let n = 0;
    while (!stopping && Date.now() < endAt) {
      await sleep(Math.min(45_000, Math.max(5_000, durationMs / 8)));
      if (stopping) break;
      n++;
      await writeFile(propertiesPath, props(n % 2 === 0 ? 0.5 : 0.6, n % 3 === 0 ? 'soak0,soak1' : ''));
      counts.edits++;
    }
  }

  const samples = [];
  const sampleEveryMs = Math.min(30_000, Math.max(5_000, Math.round(durationMs / 30)));
  const started = Date.now();
  log(`soak: ${userCount} users for ${fmt(durationMs / 1000)} s; a sample every ${sampleEveryMs / 1000} s (proxy process: RSS, JS heap used, event-loop lag since the previous sample)`);
  log('   t s   RSS MiB  heap MiB  lag p99 ms  lag max ms  users  sockets  pending  logins  requests  warned  logged out  edits');
  async function sampler() {
    while (!stopping && Date.now() < endAt) {
      await sleep(sampleEveryMs);
      const s = await proxy.call({ cmd: 'sample' });
      const row = { t: (Date.now() - started) / 1000, rssMiB: s.rss / MiB, heapMiB: s.heapUsed / MiB, lagP99Ms: s.p99Ms, lagMaxMs: s.maxMs, users: s.usersTracked, sockets: s.openSockets, pending: s.pendingLogouts };
      samples.push(row);
      log(`${fmt(row.t).padStart(6)}  ${fmt(row.rssMiB, 1).padStart(8)}  ${fmt(row.heapMiB, 1).padStart(8)}  ${fmt(row.lagP99Ms, 1).padStart(10)}  ${fmt(row.lagMaxMs, 1).padStart(10)}  ${String(row.users).padStart(5)}  ${String(row.sockets).padStart(7)}  ${String(row.pending).padStart(7)}  ${String(counts.logins).padStart(6)}  ${String(counts.requests).padStart(8)}  ${String(counts.warnings).padStart(6)}  ${String(counts.loggedOut).padStart(10)}  ${String(counts.edits).padStart(5)}`);
    }
  }

  try {
    await Promise.all([
      sampler(),
      editor(),
      ...users.map((u, i) => life(u, (i * 10_000) / userCount)), // sign-ins spread over 10 s
    ]);
  } finally {
    stopping = true;
    await proxy.stop();
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  }
  return { samples, counts, summary: flatness(samples) };
}

/**
 * Flat or not: the median of the second quarter of the samples (after warm-up) against the median
 * of the last quarter. Growing by less than 10 % (RSS, heap) or 5 ms (lag p99) reads as flat.
 */
export function flatness(samples) {
  if (samples.length < 4) return { enough: false };
  const q = Math.floor(samples.length / 4);
  const early = samples.slice(q, 2 * q);
  const late = samples.slice(samples.length - q);
  const m = (rows, k) => median(rows.map((r) => r[k]));
  const measure = (k) => ({ early: m(early, k), late: m(late, k), change: m(late, k) - m(early, k) });
  const rss = measure('rssMiB');
  const heap = measure('heapMiB');
  const lag = measure('lagP99Ms');
  return {
    enough: true,
    rss, heap, lag,
    flat: { rss: rss.change < 0.1 * rss.early, heap: heap.change < 0.1 * heap.early, lag: lag.change < 5 },
  };
}

export function describeSoak({ samples, counts, summary }) {
  const lines = [];
  lines.push(`activity: ${counts.logins} sign-ins, ${counts.requests} requests (${counts.failed} failed), ${counts.socketsOpened} sockets opened / ${counts.socketsClosed} closed, ${counts.warnings} warnings received, ${counts.loggedOut} idle logouts seen, ${counts.edits} properties edits`);
  if (!summary.enough) {
    lines.push(`only ${samples.length} samples: too short to say whether memory stays flat`);
    return lines;
  }
  const word = (flat) => (flat ? 'flat' : 'NOT flat');
  const d = (x, unit, digits = 1) => `${fmt(x.early, digits)} → ${fmt(x.late, digits)} ${unit} (${x.change >= 0 ? '+' : ''}${fmt(x.change, digits)})`;
  lines.push(`second quarter → last quarter (medians): RSS ${d(summary.rss, 'MiB')} ${word(summary.flat.rss)}; JS heap ${d(summary.heap, 'MiB')} ${word(summary.flat.heap)}; event-loop lag p99 ${d(summary.lag, 'ms')} ${word(summary.flat.lag)}`);
  const peak = (k) => Math.max(...samples.map((r) => r[k]));
  lines.push(`peaks: RSS ${fmt(peak('rssMiB'), 1)} MiB, JS heap ${fmt(peak('heapMiB'), 1)} MiB, event-loop lag ${fmt(peak('lagMaxMs'), 1)} ms`);
  return lines;
}
