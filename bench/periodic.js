/**
 * `npm run bench:periodic` (after `npm run build`): the timer detector alone — the CPU it adds per
 * request, its memory per user, and how often a person is misread. Prints figures, asserts nothing.
 * Run with --expose-gc for the memory figure.
 */
import { PeriodicDetector } from '../dist/activity/periodic.js';
import { pathShape } from '../dist/activity/path-shape.js';
import { median } from './lib/stats.js';

const quick = process.env.BENCH_QUICK === '1';
const ROUNDS = quick ? 3 : 5;
const N = quick ? 100_000 : 300_000;
const HOUR_MS = 3_600_000;
const T0 = 1_700_000_000_000;

const options = () => ({ repeats: 5, tolerancePercent: 11, minIntervalMs: 500, maxIntervalMs: () => 4 * HOUR_MS, forgetAfterMs: 600_000 });

/** deterministic pseudo-random numbers (mulberry32) */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Median CPU time (user + system, so other busy processes on the machine do not count) per call
 * over ROUNDS runs of `n` calls of `step(i)`, in ns.
 */
function nsPerCall(n, makeStep) {
  const runs = [];
  for (let r = 0; r < ROUNDS; r++) {
    const step = makeStep();
    for (let i = 0; i < Math.min(n, 20_000); i++) step(i); // warm up
    const start = process.cpuUsage();
    for (let i = 0; i < n; i++) step(i);
    const used = process.cpuUsage(start);
    runs.push(((used.user + used.system) * 1000) / n);
  }
  return median(runs);
}

const PATHS = [
  '/panopticon/server/rest/dashboards/7/refresh',
  '/panopticon/server/rest/dashboards/123e4567-e89b-12d3-a456-426614174000/tiles?_=1712345678',
  '/panopticon/server/rest/workbooks/sales/filters',
  '/panopticon/server/rest/objects/5f2b9c0e1a7d3b44/state',
  '/panopticon/',
  '/panopticon/server/rest/heartbeat',
  '/panopticon/server/rest/dashboards/8/refresh',
  '/panopticon/server/rest/server/myself',
];

function cpu() {
  const shapeNs = nsPerCall(N, () => (i) => pathShape(PATHS[i & 7]));
  const person = nsPerCall(N, () => {
    const d = new PeriodicDetector(options());
    const r = random(1);
    let at = T0;
    return (i) => {
      at += 300 + Math.round(r() * 20_000);
      d.observe('alice', 'GET', PATHS[i & 7], at);
    };
  });
  const timer = nsPerCall(N, () => {
    const d = new PeriodicDetector(options());
    return (i) => d.observe('alice', 'GET', PATHS[0], T0 + i * 1000);
  });
  const twoTimers = nsPerCall(N, () => {
    const d = new PeriodicDetector(options());
    return (i) => d.observe('alice', 'GET', PATHS[i & 1 ? 6 : 0], T0 + i * 2500 + (i & 1) * 700);
  });
  const users = 10_000;
  const many = nsPerCall(N, () => {
    const d = new PeriodicDetector(options());
    const r = random(2);
    let at = T0;
    return (i) => {
      at += 1 + Math.round(r() * 40);
      d.observe(`user-${i % users}`, 'GET', PATHS[(i / users) & 7], at);
    };
  });
  const baseline = nsPerCall(N, () => {
    let sink = 0;
    return (i) => { sink += PATHS[i & 7].length; };
  });
  console.log('== CPU per request (median of %d runs of %d requests, CPU ns/request; the loop itself costs %s)', ROUNDS, N, baseline.toFixed(0));
  console.log(`path shape alone                                  ${shapeNs.toFixed(0).padStart(6)}`);
  console.log(`observe: a person, 8 shapes, irregular            ${person.toFixed(0).padStart(6)}`);
  console.log(`observe: one 1 s timer (every request a hit)      ${timer.toFixed(0).padStart(6)}`);
  console.log(`observe: two timers on one shape, interleaved     ${twoTimers.toFixed(0).padStart(6)}`);
  console.log(`observe: ${users} users, 8 shapes each, mixed      ${many.toFixed(0).padStart(6)}`);
}

function memory() {
  if (typeof globalThis.gc !== 'function') {
    console.log('== memory: run with --expose-gc for this figure');
    return;
  }
  const heap = () => {
    for (let i = 0; i < 4; i++) globalThis.gc();
    return process.memoryUsage().heapUsed;
  };
  const users = quick ? 2000 : 10_000;
  const before = heap();
  const d = new PeriodicDetector(options());
  // every user with 8 shapes and full rings (worst case), plus 8 more shapes to push the LRU
  for (let k = 0; k < 16 * 12; k++) {
    for (let u = 0; u < users; u++) d.observe(`user-${String(u).padStart(5, '0')}`, 'GET', `/panopticon/server/rest/area${k % 16}/x`, T0 + k * 1000 + u);
  }
  const after = heap();
  console.log('== memory (full rings, 8 shapes per user, LRU at work)');
  console.log(`${users} users: ${((after - before) / users).toFixed(0)} bytes per user (${d.userCount} users kept)`);
}

function falsePositives() {
  const seeds = quick ? 20 : 200;
  const perSeed = 400;
  let hits = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const d = new PeriodicDetector(options());
    const r = random(seed);
    const normal = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    let at = T0;
    for (let i = 0; i < perSeed; i++) {
      const kind = r();
      // 15 % quick repeats (bursts), 5 % long pauses, otherwise log-normal think times around 6 s
      const gapMs = kind < 0.15 ? 150 + r() * 300 : kind < 0.2 ? 60_000 + r() * 600_000 : Math.exp(Math.log(6000) + normal());
      at += Math.round(gapMs);
      if (d.observe('alice', 'GET', '/panopticon/server/rest/dashboards/7/refresh', at)) hits++;
    }
  }
  const total = seeds * perSeed;
  console.log('== a person misread (one button pressed over and over: the harshest case)');
  console.log(`${hits} of ${total} requests taken for a timer's (1 in ${hits ? Math.round(total / hits) : '∞'})`);
}

cpu();
memory();
falsePositives();
