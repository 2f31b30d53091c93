/**
 * `npm run bench` (after `npm run build`): prints figures and ratios, asserts nothing.
 *
 * Every party runs in its own process so none shares an event loop with another:
 *   upstream.js (node:http + ws)  ·  contender.js bare / ours  ·  nginx (if installed)  ·  loadgen.js (wrk or autocannon, ws)
 *   engine.js (sections 2 and 2b, --expose-gc)  ·  logout-release.js (section 5: simulator and proxy in this process)
 *
 * `npm run bench -- --soak 10m [--users 300]` runs the soak (bench/soak.js) instead.
 * Runs alternate between contenders (A B C D A B C D …) and medians are reported.
 *
 * BENCH_QUICK=1 shortens every phase (for checking the harness, not for figures).
 * BENCH_NO_NGINX=1 behaves as if nginx were not installed.
 * BENCH_ROUNDS=N sets the number of alternating rounds of every section (default 3; 6 for section 1).
 * BENCH_ONLY=4,4a runs only the listed sections (ids as printed: 1 1b 2 2b 3 4 4a 4b 4c 5 6) after
 * the common set-up (children, nginx, sanity check); the summary and bench/results.md are skipped.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os, { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT } from 'jose';
import { startChild } from './lib/ipc.js';
import { median, percentile, fmt, ratio, table, MiB } from './lib/stats.js';
import { nginxBinary, nginxVersion, startNginx } from './lib/nginx.js';
import { redisInstalled, replicaSummaryLines, runReplicaSection } from './lib/replicas.js';
import { describeSoak, parseDuration, soak } from './soak.js';
import { inspectionLines, measureInspection } from './lib/ws-inspection.js';
import { measureWsThroughput, NODE_RELAY_LABEL, UNINSPECTED_NOTIFY_PATHS, wsLoadgenCount, wsThroughputLines } from './lib/ws-throughput.js';
import { runLogoutRelease } from './logout-release.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const quick = process.env.BENCH_QUICK === '1';
const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((x) => x.trim()).filter(Boolean)) : undefined;
/** true when section `id` is to run (BENCH_ONLY) */
const runs = (id) => only === undefined || only.has(id);

const P = quick
  ? { rounds: 1, httpRounds: 1, connections: 50, warmS: 1, measureS: 2, bigConnections: 10, bigWarmS: 1, bigMeasureS: 2, wsMessages: 500, wsLiveMessages: 1000, pushMs: 2000, timerUsers: 200 }
  : { rounds: 3, httpRounds: 6, connections: 50, warmS: 2, measureS: 5, bigConnections: 10, bigWarmS: 2, bigMeasureS: 5, wsMessages: 5000, wsLiveMessages: 20_000, pushMs: 5000, timerUsers: 500 };
if (process.env.BENCH_ROUNDS) P.rounds = P.httpRounds = Math.max(1, Number(process.env.BENCH_ROUNDS));
const WS_CLIENTS = 10;
const WS_WINDOW = 32;
const TOKEN_USERS = 50;
const SMALL_PATH = '/panopticon/server/rest/dashboards/sales';
const BIG_PATH = '/panopticon/server/rest/files/big';
const WHOAMI_PATH = '/panopticon/server/rest/server/myself';

function log(line = '') {
  process.stdout.write(line + '\n');
}
function section(title) {
  log('');
  log(`== ${title}`);
}

const children = [];
let nginx;
async function cleanup() {
  await Promise.allSettled(children.map((c) => c.stop()));
  if (nginx) await nginx.stop().catch(() => {});
}
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    interrupted = true;
    cleanup().finally(() => process.exit(130));
  });
}

async function child(file, opts) {
  const c = await startChild(join(here, file), { name: opts?.name ?? file, ...opts });
  children.push(c);
  return c;
}

async function signTokens(secret) {
  const key = new TextEncoder().encode(secret);
  const cookies = [];
  for (let i = 0; i < TOKEN_USERS; i++) {
    const jwt = await new SignJWT({ sub: `bench-user-${i}` })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuedAt()
      .setExpirationTime('1d')
      .setJti(randomUUID())
      .sign(key);
    cookies.push(`ptoken=${jwt}`);
  }
  return cookies;
}

// ---------------------------------------------------------------------------------------------

/** `--soak 10m [--users 300]`: the soak run instead of the benchmarks */
function soakArgs(argv) {
  const at = argv.indexOf('--soak');
  if (at === -1) return undefined;
  const usersAt = argv.indexOf('--users');
  return { durationMs: parseDuration(argv[at + 1] ?? ''), users: usersAt === -1 ? 300 : Number(argv[usersAt + 1]) };
}

async function main() {
  if (!existsSync(join(root, 'dist', 'app.js'))) {
    console.error('bench: dist/ is missing; run `npm run build` first (npm run bench does).');
    process.exit(1);
  }
  const soakRun = soakArgs(process.argv.slice(2));
  if (soakRun) {
    log(`session-timeout-proxy soak — Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model?.trim() ?? 'unknown CPU'}, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
    const result = await soak({ ...soakRun, log });
    section('Soak summary');
    for (const line of describeSoak(result)) log(`  ${line}`);
    return;
  }
  const benchStarted = Date.now();
  const cpu = cpus();
  const env = `Node ${process.version}, ${cpu.length} × ${cpu[0]?.model?.trim() ?? 'unknown CPU'}, ${fmt(totalmem() / 1024 ** 3, 1)} GiB RAM, ${new Date().toISOString().slice(0, 10)}`;
  log(`session-timeout-proxy benchmarks — ${env}`);
  if (quick) log('(BENCH_QUICK=1: short phases, figures are not meaningful)');

  // pre-flight: is something else already using the CPU?
  const idle0 = machineBusySeconds();
  const self0 = process.cpuUsage();
  await sleep(2000);
  const selfS = cpuSec(process.cpuUsage(self0));
  const preBusy = Math.max(0, (machineBusySeconds() - idle0 - selfS) / (2 * cpu.length));
  if (preBusy > 0.1) log(`warning: other processes already use ${fmt(preBusy * 100)}% of the CPU (load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}); figures will be noisy`);

  const secret = randomBytes(32).toString('base64url');
  const cookies = await signTokens(secret);

  const upstream = await child('upstream.js', { env: { BENCH_WHOAMI_PATH: WHOAMI_PATH }, name: 'upstream' });
  const upstreamUrl = upstream.ready.url;
  const proxyEnv = { BENCH_UPSTREAM: upstreamUrl, BENCH_TOKEN_SECRET: secret, BENCH_WHOAMI_PATH: WHOAMI_PATH };
  const bare = await child('contender.js', { args: ['bare'], env: proxyEnv, name: 'bare http-proxy' });
  const ours = await child('contender.js', { args: ['ours'], env: proxyEnv, execArgv: ['--expose-gc'], name: 'our proxy' });
  const loadgen = await child('loadgen.js', { name: 'load generator' });

  let nginxNote;
  const bin = process.env.BENCH_NO_NGINX === '1' ? undefined : nginxBinary();
  if (!bin) {
    nginxNote = 'nginx not installed (apt-get install -y nginx) — skipped';
    log(nginxNote);
  } else {
    try {
      nginx = await startNginx(bin, upstream.ready.port);
      nginxNote = nginxVersion(bin);
    } catch (err) {
      nginxNote = `nginx failed to start (${err.message.split('\n')[0]}) — skipped`;
      log(nginxNote);
    }
  }

  // sanity: every contender answers 200 with the 1 KiB body, and ours knows the user afterwards
  for (const [name, base] of [['direct', upstreamUrl], ['bare', bare.ready.url], ['ours', ours.ready.url], ...(nginx ? [['nginx', nginx.url]] : [])]) {
    const res = await fetch(base + SMALL_PATH, { headers: { cookie: cookies[0] } });
    const body = await res.arrayBuffer();
    if (res.status !== 200 || body.byteLength !== 1024) throw new Error(`${name} answered ${res.status} with ${body.byteLength} bytes`);
  }
  await sleep(100);
  const oursStats = await ours.call({ cmd: 'stats' });
  if (oursStats.usersTracked < 1) throw new Error('our proxy did not track the user of a request with a valid ptoken: identity/engine not on the path');

  const results = { env, nginxNote, foreign: {} };
  const meter = foreignMeter(results.foreign);

  // ---- 1. HTTP proxy overhead -----------------------------------------------------------------
  const { tool } = await loadgen.call({ cmd: 'tool' });
  results.tool = tool;
  const contenders = [
    { key: 'direct', label: '(a) direct to upstream', url: upstreamUrl, cpu: () => upstream.call({ cmd: 'cpu' }).then(cpuSec) },
    { key: 'bare', label: '(b) bare @fastify/http-proxy', url: bare.ready.url, cpu: () => bare.call({ cmd: 'cpu' }).then(cpuSec) },
    { key: 'ours', label: '(c) session-timeout-proxy', url: ours.ready.url, cpu: () => ours.call({ cmd: 'cpu' }).then(cpuSec) },
    ...(nginx ? [{ key: 'nginx', label: `(d) nginx ${/nginx\/([\d.]+)/.exec(nginxNote)?.[1] ?? ''} (1 worker)`.replace('  ', ' '), url: nginx.url, cpu: () => nginx.cpuSeconds() }] : []),
  ];
  if (runs('1')) {
    section(`1. HTTP proxy overhead — ${tool}, ${P.connections} connections, ${P.warmS} s warm-up + ${P.measureS} s measured, ${P.httpRounds} alternating rounds (order reversed every other round), 1 KiB JSON`);
    const small = Object.fromEntries(contenders.map((c) => [c.key, []]));
    await meter.start();
    for (let round = 0; round < P.httpRounds; round++) {
      // the machine's speed drifts (a shared VM): reversing the order every other round keeps
      // one contender from always running right after another
      for (const c of round % 2 === 0 ? contenders : [...contenders].reverse()) {
        await loadgen.call({ cmd: 'http', url: c.url + SMALL_PATH, connections: P.connections, durationS: P.warmS, cookies }, (P.warmS + 30) * 1000);
        const cpu0 = await c.cpu();
        const r = await loadgen.call({ cmd: 'http', url: c.url + SMALL_PATH, connections: P.connections, durationS: P.measureS, cookies }, (P.measureS + 30) * 1000);
        const cpu1 = await c.cpu();
        r.cpuUsPerReq = ((cpu1 - cpu0) * 1e6) / r.requests;
        small[c.key].push(r);
        log(`  round ${round + 1} ${c.label.padEnd(30)} ${fmt(r.rps).padStart(7)} req/s  p50 ${ms(r.p50Ms)} ms  p99 ${ms(r.p99Ms)} ms  cpu ${fmt(r.cpuUsPerReq, 1)} µs/req${problems(r)}`);
      }
  }
  await meter.stop('1');
  const smallMed = {};
  for (const c of contenders) {
    const runs = small[c.key];
    smallMed[c.key] = {
      label: c.label,
      rps: median(runs.map((r) => r.rps)),
      p50Ms: median(runs.map((r) => r.p50Ms)),
      p99Ms: median(runs.map((r) => r.p99Ms)),
      cpuUsPerReq: median(runs.map((r) => r.cpuUsPerReq)),
      errors: runs.reduce((a, r) => a + r.errors + r.timeouts + r.non2xx, 0),
    };
  }
  results.small = smallMed;
  log('  medians:');
  for (const c of contenders) {
    const m = smallMed[c.key];
    log(`    ${m.label.padEnd(30)} ${fmt(m.rps).padStart(7)} req/s  p50 ${ms(m.p50Ms)} ms  p99 ${ms(m.p99Ms)} ms  cpu ${fmt(m.cpuUsPerReq, 1)} µs/req${m.errors ? `  [${m.errors} failed requests]` : ''}`);
  }
  const tracked = await ours.call({ cmd: 'stats' });
  log(`  our proxy tracks ${tracked.usersTracked} users (${TOKEN_USERS} tokens used by the load): identity, activity rules and engine ran on each request`);
  log(`  ratios: ours / bare http-proxy = ${ratio(smallMed.ours.rps, smallMed.bare.rps)} req/s (${ratio(smallMed.ours.cpuUsPerReq, smallMed.bare.cpuUsPerReq)} CPU per request)` +
    (nginx ? `, nginx / ours = ${ratio(smallMed.nginx.rps, smallMed.ours.rps)} req/s` : '') +
    `, ours / direct = ${ratio(smallMed.ours.rps, smallMed.direct.rps)} req/s`);
  // paired per round: ours and bare ran back to back, so their ratio cancels most of the drift
  const pairedRps = median(small.ours.map((r, i) => r.rps / small.bare[i].rps));
  const pairedP99Gap = median(small.ours.map((r, i) => r.p99Ms - small.bare[i].p99Ms));
  results.smallPaired = { rps: pairedRps, p99GapMs: pairedP99Gap };
  log(`  paired per round (ours and bare back to back): median ours / bare = ${fmt(pairedRps, 2)}× req/s, median p99 gap ${pairedP99Gap >= 0 ? '+' : ''}${fmt(pairedP99Gap, 2)} ms`);
  const p99Gap = smallMed.ours.p99Ms - smallMed.bare.p99Ms;
  const rpsRange = (k) => `${fmt(Math.min(...small[k].map((r) => r.rps)))}–${fmt(Math.max(...small[k].map((r) => r.rps)))}`;
  log(`  goal ≥ 1.0× bare req/s and p99 ≤ bare p99 + 1 ms: ${ratio(smallMed.ours.rps, smallMed.bare.rps)}, p99 ${p99Gap >= 0 ? '+' : ''}${fmt(p99Gap, 2)} ms (ranges over rounds: ours ${rpsRange('ours')}, bare ${rpsRange('bare')} req/s)`);
  }

  if (runs('1b')) {
    section(`1b. 1 MiB responses — ${P.bigConnections} connections, ${P.bigWarmS} s warm-up + ${P.bigMeasureS} s measured, ${P.rounds} alternating rounds`);
    const bigContenders = contenders.filter((c) => c.key === 'bare' || c.key === 'ours');
    const big = Object.fromEntries(bigContenders.map((c) => [c.key, []]));
    await meter.start();
    for (let round = 0; round < P.rounds; round++) {
      for (const c of bigContenders) {
        await loadgen.call({ cmd: 'http', url: c.url + BIG_PATH, connections: P.bigConnections, durationS: P.bigWarmS, cookies }, (P.bigWarmS + 30) * 1000);
        const r = await loadgen.call({ cmd: 'http', url: c.url + BIG_PATH, connections: P.bigConnections, durationS: P.bigMeasureS, cookies }, (P.bigMeasureS + 30) * 1000);
        big[c.key].push(r);
        log(`  round ${round + 1} ${c.label.padEnd(30)} ${fmt(r.bytesPerS / 1e6).padStart(6)} MB/s  ${fmt(r.rps)} req/s  p99 ${ms(r.p99Ms)} ms${problems(r)}`);
      }
  }
  await meter.stop('1b');
  results.big = Object.fromEntries(bigContenders.map((c) => [c.key, {
    label: c.label,
    mbPerS: median(big[c.key].map((r) => r.bytesPerS / 1e6)),
    p99Ms: median(big[c.key].map((r) => r.p99Ms)),
  }]));
  log(`  medians: bare ${fmt(results.big.bare.mbPerS)} MB/s, ours ${fmt(results.big.ours.mbPerS)} MB/s; ours / bare = ${ratio(results.big.ours.mbPerS, results.big.bare.mbPerS)}`);

  }
  // ---- 2. Engine ---------------------------------------------------------------------------------
  if (runs('2')) {
    section('2. Session engine (ManualClock + MemorySessionStore, 10 000 users, own process with --expose-gc)');
    const engineProc = await child('engine.js', { execArgv: ['--expose-gc'], name: 'engine bench' });
    await meter.start();
    const eng = await engineProc.call({ cmd: 'run', users: 10_000, calls: quick ? 200_000 : 1_000_000 }, 120_000);
    await meter.stop('2');
    await engineProc.stop();
    results.engine = eng;
    log(`  heap per user: ${fmt(eng.heapBytesPerUser.oneRequest)} B after one request, ${fmt(eng.heapBytesPerUser.oneRequestWithCredential)} B with its credential, ${fmt(eng.heapBytesPerUser.fullHistoryWithCredential)} B with a full history (${eng.recentNotesMax} notes) — 10 000 users ≈ ${fmt((eng.heapBytesPerUser.fullHistoryWithCredential * 10_000) / MiB, 1)} MiB`);
    log(`  recordActivity, existing user: ${fmt(eng.recordActivityNs.median)} ns/call (median of ${eng.recordActivityNs.samples.length} × ${fmt(quick ? 200_000 : 1_000_000)} calls)`);
    log(`  10 000 simultaneous warnings: ${fmt(eng.burst.warnMs, 1)} ms; 10 000 simultaneous timeouts: ${fmt(eng.burst.logoutMs, 1)} ms (no-op actions, median of 5)`);
    log(`  clock timers still pending after the burst: ${eng.burst.pendingTimersAfter} (the engine needs 1)`);
    log(`  settings change, reschedule 10 000 users: ${fmt(eng.reschedule.median, 2)} ms median, ${fmt(eng.reschedule.max, 2)} ms max`);

  }
  if (runs('2b')) {
    section('2b. Memory of tracked users — the whole process (Node included), each user with a full recent-request history and the credentials the proxy keeps (token + session cookie + CSRF token, taken from a real Cookie header); a fresh process per size');
    results.memory = [];
    for (const users of [10_000, 100_000]) {
      const p = await child('engine.js', { execArgv: ['--expose-gc'], name: `engine memory ${users}` });
      const m = await p.call({ cmd: 'memory', users }, 300_000);
      await p.stop();
      results.memory.push(m);
      log(`  ${fmt(users).padStart(7)} users: RSS ${fmt(m.rssMiB, 1)} MiB, ${fmt(m.rssMiB - m.baselineRssMiB, 1)} MiB over Node alone (${fmt(m.baselineRssMiB, 1)} MiB); ${fmt(m.heapBytesPerUser)} B per user (${m.notesPerUser} notes and ${m.credentialsPerUser} credentials each) in JS heap ${fmt(m.v8HeapUsedMiB, 1)} MiB (V8 holds ${fmt(m.v8HeapCommittedMiB, 1)} MiB) and off-heap arrays ${fmt(m.offHeapMiB, 1)} MiB; RSS ${fmt(m.settledRssMiB, 1)} MiB (${fmt(m.settledRssMiB - m.baselineRssMiB, 1)} over Node alone) after ${m.settleMs / 1000} s without work`);
  }

  }
  // ---- 3. Timer precision --------------------------------------------------------------------------
  if (runs('3')) {
    section(`3. Timer precision on the real clock — ${P.timerUsers} users, active at random over 1 s, timeout 2 s, warning 1 s before (fires 1–3 s after start); engine inside the proxy process`);
    const timerOpts = { users: P.timerUsers, spreadMs: 1000, timeoutMs: 2000, notifyBeforeMs: 1000, limitMs: 10_000 };
    const idleRuns = [];
    const loadedRuns = [];
    const timerRounds = quick ? 1 : 2;
    await meter.start();
    for (let round = 0; round < timerRounds; round++) {
      idleRuns.push(await ours.call({ cmd: 'timers', options: timerOpts }, 30_000));
      const loadS = 6;
      const load = loadgen.call({ cmd: 'http', url: ours.ready.url + SMALL_PATH, connections: P.connections, durationS: loadS, cookies }, (loadS + 30) * 1000);
      await sleep(1000);
      const loaded = await ours.call({ cmd: 'timers', options: timerOpts }, 30_000);
      const loadResult = await load;
      loaded.loadRps = loadResult.rps;
      loadedRuns.push(loaded);
  }
  await meter.stop('3');
  results.timers = { idle: summariseTimers(idleRuns), loaded: summariseTimers(loadedRuns) };
  for (const [name, s] of [['idle', results.timers.idle], ['under load', results.timers.loaded]]) {
    log(`  ${name.padEnd(10)} warn drift median ${fmt(s.warn.median, 1)} / p99 ${fmt(s.warn.p99, 1)} / max ${fmt(s.warn.max, 1)} ms; logout drift median ${fmt(s.logout.median, 1)} / p99 ${fmt(s.logout.p99, 1)} / max ${fmt(s.logout.max, 1)} ms; fired ${s.fired}/${s.expected}; event-loop lag p99 ${fmt(s.loopP99, 1)} ms${s.loadRps ? `; load ${fmt(s.loadRps)} req/s` : ''}`);
  }

  }
  // ---- 4. WebSocket relay (its figures against direct and nginx may come from a bench/lib module of their own) ----
  if (runs('4')) {
    section(`4. WebSocket relay — echo of small text frames, ${WS_CLIENTS} clients × ${fmt(P.wsMessages)} messages, ${WS_WINDOW} in flight per client, ${P.rounds} alternating rounds`);
    const wsTargets = [
      { key: 'direct', label: 'direct to upstream', url: upstreamUrl.replace('http', 'ws') + '/ws/echo' },
      { key: 'ours', label: 'through session-timeout-proxy', url: ours.ready.url.replace('http', 'ws') + '/ws/echo' },
    ];
    const wsRuns = { direct: [], ours: [] };
    await meter.start();
    for (const t of wsTargets) { // warm-up (JIT, connection set-up paths), not counted
      await loadgen.call({ cmd: 'wsEcho', url: t.url, clients: WS_CLIENTS, messages: Math.ceil(P.wsMessages / 5), window: WS_WINDOW, cookie: cookies[0], timeoutMs: 20_000 }, 60_000);
  }
  for (let round = 0; round < P.rounds; round++) {
    for (const t of wsTargets) {
      const r = await loadgen.call({ cmd: 'wsEcho', url: t.url, clients: WS_CLIENTS, messages: P.wsMessages, window: WS_WINDOW, cookie: cookies[round % cookies.length], timeoutMs: 20_000 }, 60_000);
      wsRuns[t.key].push(r);
      log(`  round ${round + 1} ${t.label.padEnd(30)} ${fmt(r.msgsPerS).padStart(7)} msgs/s (${fmt(r.messages)} echoes in ${fmt(r.seconds, 2)} s)${r.timedOut ? ' TIMED OUT' : ''}`);
    }
  }
  await meter.stop('4');
  results.ws = {
    direct: median(wsRuns.direct.map((r) => r.msgsPerS)),
    ours: median(wsRuns.ours.map((r) => r.msgsPerS)),
  };
  log(`  medians: direct ${fmt(results.ws.direct)} msgs/s, through the proxy ${fmt(results.ws.ours)} msgs/s; proxy / direct = ${ratio(results.ws.ours, results.ws.direct)}`);

  }
  if (runs('4a')) {
    section(`4a. WebSocket live data: echo and 1 KiB server push, direct vs ours (inspected, and not inspected) vs a bare Node TCP relay${nginx ? ' vs nginx' : ''}, ${P.rounds} alternating rounds, ${WS_CLIENTS} clients over ${wsLoadgenCount()} load-generator processes`);
    const uninspected = await child('contender.js', { args: ['ours'], env: { ...proxyEnv, BENCH_NOTIFY_PATHS: UNINSPECTED_NOTIFY_PATHS }, name: 'our proxy (not inspected)' });
    const nodeRelay = await child('node-relay.js', { env: proxyEnv, name: 'bare Node TCP relay' });
    const wsLoadgens = [loadgen];
    while (wsLoadgens.length < wsLoadgenCount()) wsLoadgens.push(await child('loadgen.js', { name: `load generator ${wsLoadgens.length + 1}` }));
    const cpuOf = (c) => () => c.call({ cmd: 'cpu' }).then(cpuSec);
    const liveTargets = [
      { key: 'direct', label: 'direct to upstream', base: upstreamUrl, cpu: cpuOf(upstream) },
      { key: 'ours', label: 'ours, inspected (notification socket)', base: ours.ready.url, cpu: cpuOf(ours) },
      { key: 'oursUninspected', label: 'ours, not inspected', base: uninspected.ready.url, cpu: cpuOf(uninspected) },
      { key: 'nodeRelay', label: NODE_RELAY_LABEL, base: nodeRelay.ready.url, cpu: cpuOf(nodeRelay) },
      ...(nginx ? [{ key: 'nginx', label: 'nginx (1 worker)', base: nginx.url, cpu: () => nginx.cpuSeconds() }] : []),
    ];
    await meter.start();
    results.wsLive = await measureWsThroughput({ targets: liveTargets, loadgens: wsLoadgens, cookie: cookies[0], rounds: P.rounds, clients: WS_CLIENTS, echoMessages: P.wsLiveMessages, window: WS_WINDOW, liveMs: quick ? 1000 : 3000, log: (l) => log(`  ${l}`) });
    await meter.stop('4a');
    for (const c of [uninspected, nodeRelay, ...wsLoadgens.slice(1)]) {
      await c.stop();
      children.splice(children.indexOf(c), 1);
  }
  for (const line of wsThroughputLines(results.wsLive)) log(`  ${line}`);

  }
  if (runs('4b')) {
    section(`4b. A client that never reads, upstream pushing 64 KiB frames for ${P.pushMs / 1000} s (a fresh proxy process, so RSS starts from a clean baseline)`);
    const fresh = await child('contender.js', { args: ['ours'], env: proxyEnv, execArgv: ['--expose-gc'], name: 'our proxy (fresh)' });
    // one short request first so the proxy has served traffic (lazy code paths loaded)
    await (await fetch(fresh.ready.url + SMALL_PATH, { headers: { cookie: cookies[1] } })).arrayBuffer();
    await sleep(300);
    await meter.start();
    const memBefore = await fresh.call({ cmd: 'mem', gc: true });
    await loadgen.call({ cmd: 'wsPause', url: fresh.ready.url.replace('http', 'ws') + `/ws/push?ms=${P.pushMs}`, cookie: cookies[1] }, 10_000);
    const peak = { rss: memBefore.rss, arrayBuffers: memBefore.arrayBuffers, heapUsed: memBefore.heapUsed };
    const pushStarted = Date.now();
    const sampleUntil = pushStarted + P.pushMs + 500;
    const series = []; // [seconds since the push began, RSS MiB]
    while (Date.now() < sampleUntil) {
      await sleep(200);
      const m = await fresh.call({ cmd: 'mem' });
      for (const k of Object.keys(peak)) peak[k] = Math.max(peak[k], m[k]);
      series.push([(Date.now() - pushStarted) / 1000, m.rss / MiB]);
  }
  // RSS about once a second: a plateau shows the relay's queue is bounded
  const perSecond = [];
  for (let t = 1; t <= Math.ceil(P.pushMs / 1000); t++) {
    const near = series.reduce((best, x) => (Math.abs(x[0] - t) < Math.abs(best[0] - t) ? x : best), series[0]);
    if (near) perSecond.push(`${t} s ${fmt(near[1] - memBefore.rss / MiB, 1)}`);
  }
  const pushed = await upstream.call({ cmd: 'pushStats' });
  // what the stalled pair still holds after a full GC, the client still not reading
  const memHeld = await fresh.call({ cmd: 'mem', gc: true });
  const pausedEnd = await loadgen.call({ cmd: 'wsPauseEnd' });
  await sleep(500);
  const memAfter = await fresh.call({ cmd: 'mem', gc: true });
  await meter.stop('4b');
  await fresh.stop();
  results.wsPaused = {
    rssBeforeMiB: memBefore.rss / MiB,
    rssPeakMiB: peak.rss / MiB,
    rssGrowthMiB: (peak.rss - memBefore.rss) / MiB,
    buffersGrowthMiB: (peak.arrayBuffers - memBefore.arrayBuffers) / MiB,
    heapGrowthMiB: (peak.heapUsed - memBefore.heapUsed) / MiB,
    buffersHeldMiB: (memHeld.arrayBuffers - memBefore.arrayBuffers) / MiB,
    buffersAfterMiB: (memAfter.arrayBuffers - memBefore.arrayBuffers) / MiB,
    rssAfterMiB: memAfter.rss / MiB,
    rssGrowthBySecond: perSecond,
    // less than 1 MiB of growth over the last 2 s of the push: the relay's memory stopped growing
    plateau: plateauOf(series, P.pushMs / 1000),
    upstreamSentMiB: pushed.bytesSent / MiB,
    clientReadMiB: (pausedEnd?.bytesReadByClient ?? 0) / MiB,
  };
  const p = results.wsPaused;
  log(`  proxy RSS ${fmt(p.rssBeforeMiB, 1)} MiB before, ${fmt(p.rssPeakMiB, 1)} MiB at peak (+${fmt(p.rssGrowthMiB, 1)} MiB; Buffers +${fmt(p.buffersGrowthMiB, 1)} MiB, JS heap +${fmt(p.heapGrowthMiB, 1)} MiB), ${fmt(p.rssAfterMiB, 1)} MiB after the client left`);
  log(`  Buffers still held by the stalled socket pair after a full GC: +${fmt(p.buffersHeldMiB, 1)} MiB; after the client left: ${p.buffersAfterMiB >= 0 ? '+' : ''}${fmt(p.buffersAfterMiB, 1)} MiB`);
  log(`  RSS growth over time (MiB): ${p.rssGrowthBySecond.join(', ')}`);
  log(`  the upstream sent ${fmt(p.upstreamSentMiB, 1)} MiB in ${P.pushMs / 1000} s before back-pressure stopped it (the rest sits in socket buffers and the proxy's bounded queue); the client had read ${fmt(p.clientReadMiB, 1)} MiB before pausing`);

  }
  if (!runs('6')) { /* skipped (BENCH_ONLY) */ } else if (redisInstalled()) {
    section(`6. Several replicas on Redis — store=redis vs store=memory req/s (${P.rounds} alternating rounds), and 100 000 users / 10 000 simultaneous expiries over three replicas`);
    results.replicas = await runReplicaSection({ log, child, loadgen, ours, proxyEnv, cookies, path: SMALL_PATH, P, quick });
  } else {
    section('6. Several replicas on Redis — skipped: redis-server is not installed (apt-get install -y redis-server)');
  }

  await cleanup();

  // ---- 4c. notification-socket inspection (in this process, after the children are gone) --------------
  if (runs('4c')) {
    section('4c. Inspecting a notification socket: relay cost per frame (byte relay, stand-in sockets)');
    results.inspection = await measureInspection(quick ? { frames: 20_000, reps: 3 } : {});
    for (const line of inspectionLines(results.inspection, fmt)) log(`  ${line}`);

  }
  if (runs('5')) {
    section('5. Logout: deadline -> verified release, per server personality (simulator + proxy in this process, real clock)');
    results.logoutRelease = await runLogoutRelease({ log, rounds: quick ? 1 : 5 });
  }
  results.elapsedS = (Date.now() - benchStarted) / 1000;

  // ---- summary -----------------------------------------------------------------------------------------
  if (only) {
    log('');
    log(`(BENCH_ONLY=${[...only].join(',')}: summary and bench/results.md skipped; ${fmt(results.elapsedS)} s)`);
    return;
  }
  const md = summary(results);
  section('Summary');
  log(md);
  await writeFile(join(here, 'results.md'), md + '\n');
  log('');
  log(`(written to bench/results.md; ${fmt(results.elapsedS)} s)`);
}

/** wrk measures latency in microseconds, autocannon in whole milliseconds */
function ms(v) {
  if (!Number.isFinite(v)) return 'n/a';
  if (Number.isInteger(v)) return v < 1 ? '<1' : fmt(v);
  return fmt(v, v < 10 ? 2 : 1);
}

/** CPU seconds the whole machine spent busy (all cores) */
function machineBusySeconds() {
  let ms = 0;
  for (const c of cpus()) ms += c.times.user + c.times.nice + c.times.sys + c.times.irq;
  return ms / 1000;
}

/** CPU seconds of every benchmark process still running (children, nginx's workers, this one) */
async function ourCpuSeconds() {
  const alive = children.filter((c) => !c.exited);
  const parts = await Promise.all(alive.map((c) => c.call({ cmd: 'cpu' }, 10_000).then(cpuSec, () => 0)));
  return parts.reduce((a, x) => a + x, 0) + cpuSec(process.cpuUsage()) + (nginx ? await nginx.cpuSeconds() : 0);
}

/**
 * Measures, per section, the share of the machine's CPU used by processes that are not part of
 * the benchmark (other work on a shared machine makes every figure noisy). Children must not be
 * started or stopped between start() and stop().
 */
function foreignMeter(into) {
  let t0;
  let m0;
  let o0;
  return {
    async start() {
      o0 = await ourCpuSeconds();
      m0 = machineBusySeconds();
      t0 = Date.now();
    },
    async stop(name) {
      const m1 = machineBusySeconds();
      const wallS = (Date.now() - t0) / 1000;
      const o1 = await ourCpuSeconds();
      const share = Math.max(0, (m1 - m0 - (o1 - o0)) / (wallS * cpus().length));
      into[name] = share;
      log(`  (other processes used ${fmt(share * 100)}% of the machine's CPU during this section${share > 0.1 ? ' — figures are noisy; rerun on a quiet machine' : ''})`);
      return share;
    },
  };
}

function plateauOf(series, pushS) {
  const end = series.filter((x) => x[0] <= pushS + 0.5);
  if (end.length < 2) return false;
  const last = end[end.length - 1];
  const earlier = end.find((x) => x[0] >= last[0] - 2) ?? end[0];
  return last[1] - earlier[1] < 1;
}

function cpuSec(u) {
  return (u.user + u.system) / 1e6;
}

function problems(r) {
  const bad = r.errors + r.timeouts + r.non2xx;
  return bad > 0 ? `  [${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx]` : '';
}

function summariseTimers(runs) {
  const warn = runs.flatMap((r) => r.warnDriftMs);
  const logout = runs.flatMap((r) => r.logoutDriftMs);
  const loadRps = runs.some((r) => r.loadRps) ? median(runs.map((r) => r.loadRps)) : undefined;
  return {
    warn: { median: median(warn), p99: percentile(warn, 99), max: Math.max(...warn) },
    logout: { median: median(logout), p99: percentile(logout, 99), max: Math.max(...logout) },
    all: { median: median([...warn, ...logout]), p99: percentile([...warn, ...logout], 99), max: Math.max(...warn, ...logout) },
    fired: warn.length + logout.length,
    expected: runs.reduce((a, r) => a + 2 * r.users, 0),
    loopP99: median(runs.map((r) => r.loopDelayP99Ms)),
    loadRps,
  };
}

function summary(r) {
  const s = r.small;
  const lines = [];
  lines.push(`Measured with \`npm run bench\` on ${r.env}. Upstream, proxy and load generator each in their own process; medians of alternating runs.`);
  const noisy = Object.entries(r.foreign).filter(([, share]) => share > 0.1).sort(([a], [b]) => a.localeCompare(b));
  if (noisy.length > 0) {
    lines.push('');
    lines.push(`**Warning:** other processes used CPU during the runs (${noisy.map(([name, share]) => `section ${name}: ${fmt(share * 100)}%`).join(', ')}); those figures are noisy.`);
  }
  lines.push('');
  lines.push(`**HTTP, 1 KiB JSON, ${P.connections} connections, load from ${r.tool}** (ours: timeouts enabled, every request carries a verified \`ptoken\`, access log at info to a file)`);
  lines.push('');
  const keys = ['direct', 'bare', 'ours', 'nginx'].filter((k) => s[k]);
  lines.push(table(['contender', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req¹'], keys.map((k) => [
    s[k].label, fmt(s[k].rps), ms(s[k].p50Ms), ms(s[k].p99Ms), fmt(s[k].cpuUsPerReq, 1),
  ])));
  lines.push('');
  const ratios = [`ours / bare @fastify/http-proxy: **${ratio(s.ours.rps, s.bare.rps)}** req/s (paired per round: ${fmt(r.smallPaired.rps, 2)}×, p99 gap ${r.smallPaired.p99GapMs >= 0 ? '+' : ''}${fmt(r.smallPaired.p99GapMs, 2)} ms), ${ratio(s.ours.cpuUsPerReq, s.bare.cpuUsPerReq)} CPU per request`];
  if (s.nginx) ratios.push(`nginx / ours: **${ratio(s.nginx.rps, s.ours.rps)}** req/s`);
  else ratios.push(r.nginxNote);
  ratios.push(`ours / direct: ${ratio(s.ours.rps, s.direct.rps)} req/s`);
  lines.push(ratios.join(' · '));
  lines.push('');
  lines.push(`¹ CPU time (user + system) of the process answering the load generator per request: the proxy's own, or the upstream's for "direct", or nginx's worker. Latencies come from ${r.tool === 'wrk' ? 'wrk' : 'autocannon (whole milliseconds)'}. Two cores are shared by three busy processes, so a proxy's req/s also depends on how much CPU the upstream and the load generator leave it.`);
  lines.push('');
  lines.push(table(['1 MiB responses, ' + P.bigConnections + ' connections', 'MB/s', 'p99 ms'], ['bare', 'ours'].map((k) => [r.big[k].label, fmt(r.big[k].mbPerS), ms(r.big[k].p99Ms)])));
  lines.push('');
  lines.push(`ours / bare: ${ratio(r.big.ours.mbPerS, r.big.bare.mbPerS)} MB/s`);
  lines.push('');
  const e = r.engine;
  lines.push('**Session engine** (ManualClock, MemorySessionStore, 10 000 users)');
  lines.push('');
  lines.push(table(['measure', 'value'], [
    ['heap per user, one request', `${fmt(e.heapBytesPerUser.oneRequest)} B`],
    ['heap per user, one request + credential', `${fmt(e.heapBytesPerUser.oneRequestWithCredential)} B`],
    [`heap per user, full history (${e.recentNotesMax} notes) + credential`, `${fmt(e.heapBytesPerUser.fullHistoryWithCredential)} B (10 000 users ≈ ${fmt((e.heapBytesPerUser.fullHistoryWithCredential * 10_000) / MiB, 1)} MiB)`],
    ['recordActivity, existing user', `${fmt(e.recordActivityNs.median)} ns`],
    ['10 000 simultaneous warnings', `${fmt(e.burst.warnMs, 1)} ms`],
    ['10 000 simultaneous timeouts', `${fmt(e.burst.logoutMs, 1)} ms`],
    ['settings change, reschedule 10 000 users', `${fmt(e.reschedule.median, 2)} ms`],
    ...r.memory.map((m) => [`process RSS with ${fmt(m.users)} users (full history + credentials each, real request path)`, `${fmt(m.rssMiB, 1)} MiB, ${fmt(m.rssMiB - m.baselineRssMiB, 1)} over Node alone (${fmt(m.heapBytesPerUser)} B per user in heap + off-heap arrays); ${fmt(m.settledRssMiB, 1)} MiB (${fmt(m.settledRssMiB - m.baselineRssMiB, 1)} over Node alone) after ${m.settleMs / 1000} s without work`]),
  ]));
  lines.push('');
  const t = r.timers;
  lines.push(`**Timer precision** (real clock, ${P.timerUsers} users, 1–3 s timeouts with warnings; drift = fired − deadline)`);
  lines.push('');
  const row = (name, d, loop) => [name, fmt(d.median, 1), fmt(d.p99, 1), fmt(d.max, 1), fmt(loop, 1)];
  lines.push(table(['action, proxy process', 'median ms', 'p99 ms', 'max ms', 'event-loop lag p99 ms'], [
    row('warning, idle', t.idle.warn, t.idle.loopP99),
    row('logout, idle', t.idle.logout, t.idle.loopP99),
    row(`warning, under HTTP load (${fmt(t.loaded.loadRps)} req/s)`, t.loaded.warn, t.loaded.loopP99),
    row(`logout, under HTTP load`, t.loaded.logout, t.loaded.loopP99),
  ]));
  lines.push('');
  lines.push(`**WebSocket relay**: ${WS_CLIENTS} clients echoing small text frames — direct ${fmt(r.ws.direct)} msgs/s, through the proxy ${fmt(r.ws.ours)} msgs/s (${ratio(r.ws.ours, r.ws.direct)}). ` +
    `A client that never reads while the upstream pushes 64 KiB frames for ${P.pushMs / 1000} s: proxy RSS +${fmt(r.wsPaused.rssGrowthMiB, 1)} MiB at peak ` +
    `(${r.wsPaused.plateau ? 'flat over the last 2 s' : 'still growing at the end'}; live Buffers after a GC +${fmt(r.wsPaused.buffersHeldMiB, 1)} MiB); back-pressure stopped the upstream after ${fmt(r.wsPaused.upstreamSentMiB, 1)} MiB.`);
  lines.push('');
  lines.push('**WebSocket live data** (echo of small frames, and the server pushing 1 KiB text frames as fast as the client reads):');
  lines.push('');
  for (const line of wsThroughputLines(r.wsLive)) lines.push(`- ${line}`);
  lines.push('');
  lines.push('**Inspecting notification sockets** (relay code path per frame, medians):');
  lines.push('');
  for (const line of inspectionLines(r.inspection, fmt)) lines.push(`- ${line}`);
  lines.push('');
  lines.push(...replicaSummaryLines(r.replicas));
  return lines.join('\n');
}

main().catch(async (err) => {
  if (interrupted) return;
  console.error(`bench failed: ${err && err.stack ? err.stack : err}`);
  await cleanup();
  process.exit(1);
});
