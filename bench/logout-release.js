/**
 * Logout: time from a user's deadline to the verified release of their license, against the
 * simulator in each logout/CSRF personality (SIM_LOGOUT, SIM_CSRF). Simulator and proxy (from
 * dist/) run in this process on loopback with the real clock; the timeout is 1.2 s. The deadline is
 * the user's last counted request + the timeout (from the proxy's audit line); the release is the
 * `logout-result` audit line, written after "who am I" confirmed the session is gone.
 *
 * Run alone: `npm run build && node bench/logout-release.js` (BENCH_QUICK=1 for fewer users).
 */
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSimulator } from '../dist/simulator/server.js';
import { startProxy } from '../dist/app.js';
import { loadDeploymentConfig } from '../dist/config/deployment.js';
import { createLogger } from '../dist/log.js';
import { median, fmt } from './lib/stats.js';

const TIMEOUT_MINUTES = 0.02;
const TIMEOUT_MS = TIMEOUT_MINUTES * 60_000;
const USERS = ['alice', 'bob', 'carol', 'kiosk', 'dave', 'erin'];

export const PERSONALITIES = [
  ['SIM_LOGOUT=rest', { logoutStyle: 'rest' }],
  ['SIM_LOGOUT=rest SIM_CSRF=true', { logoutStyle: 'rest', csrf: true }],
  ['SIM_LOGOUT=spring', { logoutStyle: 'spring' }],
  ['SIM_LOGOUT=spring SIM_CSRF=true', { logoutStyle: 'spring', csrf: true }],
  ['SIM_LOGOUT=fake', { logoutStyle: 'fake' }],
];

async function signIn(proxyUrl, user) {
  const res = await fetch(`${proxyUrl}/panopticon/login`, {
    method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: user, password: user }).toString(),
  });
  const cookie = res.headers.getSetCookie().map((c) => c.split(';', 1)[0]).join('; ');
  await (await fetch(`${proxyUrl}/panopticon/`, { headers: { cookie, accept: 'text/html' } })).arrayBuffer();
}

async function one(name, simOptions, rounds) {
  const dir = await mkdtemp(join(tmpdir(), 'stp-bench-logout-'));
  const propertiesPath = join(dir, 'Panopticon.properties');
  await writeFile(propertiesPath, `timeout.session.enabled=true\ntimeout.session.minutes=${TIMEOUT_MINUTES}\ntimeout.session.notification.minutes=0\n`);
  const sim = await startSimulator({ logger: false, ...simOptions });
  const lines = [];
  const destination = new Writable({ write(chunk, _e, cb) { for (const l of String(chunk).split('\n')) if (l.includes('"audit":true')) lines.push(JSON.parse(l)); cb(); } });
  const config = loadDeploymentConfig({
    PROXY_UPSTREAM: sim.url, PROXY_HOST: '127.0.0.1', PROXY_PORT: '0', PROXY_ADMIN_PORT: '0',
    PROXY_PROPERTIES: propertiesPath, PROXY_TOKEN_SECRET: sim.tokenSecret, PROXY_LOGOUT_RETRY_MIN_MS: '200',
  });
  const proxy = await startProxy(config, { logger: createLogger({ level: 'info', destination }), defaultMetrics: false });
  const figures = [];
  let unverified = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      lines.length = 0;
      for (const user of USERS) await signIn(proxy.url, user);
      if (simOptions.logoutStyle === 'fake') {
        await sleep(TIMEOUT_MS + 1000);
        unverified += lines.filter((l) => l.event === 'logout-unverified').length;
        continue;
      }
      const started = Date.now();
      while (lines.filter((l) => l.event === 'logout-result').length < USERS.length && Date.now() - started < TIMEOUT_MS + 10_000) await sleep(10);
      for (const result of lines.filter((l) => l.event === 'logout-result' && l.outcome === 'released')) {
        const logout = lines.find((l) => l.event === 'timeout-logout' && l.user === result.user);
        if (logout?.lastActivity) figures.push(result.time - (logout.lastActivity.atMs + TIMEOUT_MS));
      }
    }
    const licenses = Object.keys(sim.licensesInUse()).length;
    return { name, figures, unverified, licensesStillOut: licenses };
  } finally {
    await proxy.close();
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function runLogoutRelease({ log = console.log, rounds = process.env.BENCH_QUICK === '1' ? 1 : 5 } = {}) {
  const results = [];
  for (const [name, opts] of PERSONALITIES) {
    const r = await one(name, opts, rounds);
    results.push(r);
    if (r.figures.length > 0) {
      const sorted = [...r.figures].sort((a, b) => a - b);
      log(`  ${name.padEnd(32)} deadline -> verified release: median ${fmt(median(sorted))} ms, max ${fmt(sorted.at(-1))} ms (${sorted.length} users in ${rounds} rounds; ${r.licensesStillOut} licenses still out)`);
    } else {
      log(`  ${name.padEnd(32)} never released: ${r.unverified} unverified answers in ${rounds} rounds, ${r.licensesStillOut} users still hold their license (as they should)`);
    }
  }
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runLogoutRelease().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
}
