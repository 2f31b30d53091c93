/**
 * The timer detector on its own, with injected times (no sleeping): what it takes for a timer,
 * what it never does, and what it keeps in memory.
 */
import t from 'tap';
import fc from 'fast-check';
import { PeriodicDetector, PATTERNS_PER_USER, intervalText, type PeriodicOptions } from '../src/activity/periodic.js';
import { pathShape } from '../src/activity/path-shape.js';
import { MINUTE_MS } from '../src/properties/settings.js';

const HOUR_MS = 60 * MINUTE_MS;
const T0 = 1_700_000_000_000;
const REFRESH = '/panopticon/server/rest/dashboards/7/refresh';

const DEFAULTS: PeriodicOptions = {
  repeats: 5,
  tolerancePercent: 11,
  minIntervalMs: 500,
  maxIntervalMs: () => 4 * HOUR_MS,
  forgetAfterMs: 10 * MINUTE_MS,
};

function detector(over: Partial<PeriodicOptions> = {}): PeriodicDetector {
  return new PeriodicDetector({ ...DEFAULTS, ...over });
}

/** Feeds requests at the given offsets (ms after T0); returns the offsets that were taken for a timer. */
function feed(d: PeriodicDetector, offsetsMs: readonly number[], path = REFRESH, user = 'alice', method = 'GET'): number[] {
  const timer: number[] = [];
  for (const at of offsetsMs) if (d.observe(user, method, path, T0 + at)) timer.push(at);
  return timer;
}

function every(intervalMs: number, count: number, startMs = 0, jitter: (i: number) => number = () => 0): number[] {
  const out: number[] = [];
  let at = startMs;
  for (let i = 0; i < count; i++) {
    out.push(Math.round(at));
    at += intervalMs * (1 + jitter(i));
  }
  return out;
}

/** deterministic pseudo-random numbers (mulberry32), so a failure can be replayed */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

t.test('path shapes: ids and query values normalised, words kept', async (t) => {
  t.equal(pathShape('/panopticon/server/rest/dashboards/7/refresh'), '/panopticon/server/rest/dashboards/:n/refresh');
  t.equal(pathShape('/p/dashboards/123e4567-e89b-12d3-a456-426614174000/tiles'), '/p/dashboards/:uuid/tiles');
  t.equal(pathShape('/p/objects/5f2b9c0e1a7d3b44/state'), '/p/objects/:hex/state');
  t.equal(pathShape('/p/poll?_=1712345678&b=2&a=x&a=y'), '/p/poll?_&a&b');
  t.equal(pathShape('/p/report-2024-07.csv'), '/p/report-:n-:n.csv');
  t.equal(pathShape('/p/dashboards/sales/refresh'), '/p/dashboards/sales/refresh', 'no digits: unchanged');
  t.equal(pathShape('/'), '/');
  t.equal(pathShape('/p//x/'), '/p//x/', 'empty segments kept');
});

t.test('a 1-second timer is recognised after 5 steady gaps, and the learned requests are taken back', async (t) => {
  const d = detector();
  t.equal(d.observe('alice', 'GET', '/panopticon/', T0 - 30_000), undefined, 'a page load by hand counts');
  const hits: Array<ReturnType<PeriodicDetector['observe']>> = [];
  for (const at of every(1000, 9)) hits.push(d.observe('alice', 'GET', REFRESH, T0 + at));
  t.same(hits.map((h) => h !== undefined), [false, false, false, false, false, true, true, true, true], 'the 6th request is the first not counted');
  const first = hits[5]!;
  t.equal(first.newlyRecognised, true);
  t.equal(first.rule, 'periodic:GET /panopticon/server/rest/dashboards/:n/refresh@1s');
  t.equal(first.intervalMs, 1000);
  t.match(first.retractTo, { atMs: T0 - 30_000, method: 'GET', path: '/' }, 'idle time runs from the last request that was not the timer');
  t.equal(hits[6]!.newlyRecognised, false);
  t.equal(hits[6]!.retractTo, undefined, 'nothing more to take back');
  const [view] = d.describe('alice', T0 + 8000);
  t.match(view, { method: 'GET', shape: '/panopticon/server/rest/dashboards/:n/refresh', state: 'timer', intervalMs: 1000, timerSinceMs: T0 + 5000, seen: 9, timerRequests: 4 });
});

t.test('a 7-second timer, and one with ±5 % jitter (worst case alternating), are recognised', async (t) => {
  t.same(feed(detector(), every(7000, 7)), [35_000, 42_000]);
  const alternating = every(7000, 10, 0, (i) => (i % 2 === 0 ? 0.05 : -0.05));
  t.same(feed(detector(), alternating), alternating.slice(5), 'alternating +5 % / -5 %');
  const r = random(7);
  const jittered = every(7000, 40, 0, () => (r() * 2 - 1) * 0.05);
  t.same(feed(detector(), jittered), jittered.slice(5), 'random ±5 %: every request from the 6th on');
  const r2 = random(11);
  const fast = every(1000, 60, 0, () => (r2() * 2 - 1) * 0.05);
  t.same(feed(detector(), fast), fast.slice(5), '1 s ± 5 %');
});

t.test('a person clicking at irregular times, with bursts and pauses, is never taken for a timer', async (t) => {
  // a hand-written session: reading, a burst of impatient clicks, a pause, more reading
  const session = [0, 4_200, 9_800, 10_100, 10_350, 10_600, 10_900, 31_000, 33_500, 47_000, 47_400, 47_800, 48_300, 120_000, 126_500, 131_000, 152_000];
  t.same(feed(detector(), session), [], 'hand-written session');
  // bursts of the same button: three quick clicks, over and over, with pauses between bursts
  const bursts: number[] = [];
  for (let b = 0; b < 20; b++) for (let c = 0; c < 3; c++) bursts.push(b * 15_000 + [0, 300, 450, 700][b % 4]! + c * 250);
  t.same(feed(detector(), bursts), [], 'bursts: quick clicks are below the minimum interval and the bursts are not steady');
  // irregular by construction: every gap at least the minimum interval and at least 25 % longer
  // or shorter than the one before — never two steady gaps in a row, so never a timer
  t.doesNotThrow(() => fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 500, max: 900_000 }), fc.boolean()), { minLength: 6, maxLength: 60 }), (draws) => {
    const offsets: number[] = [];
    let at = 0;
    let prev = 0;
    for (const [raw, longer] of draws) {
      let gapMs = raw;
      if (prev > 0 && gapMs < prev * 1.25 && gapMs > prev * 0.8) gapMs = longer ? Math.ceil(prev * 1.25) + 1 : Math.max(500, Math.floor(prev * 0.8) - 1);
      if (prev > 0 && gapMs < prev * 1.25 && gapMs > prev * 0.8) gapMs = Math.ceil(prev * 1.25) + 1; // 500 floor hit
      at += gapMs;
      prev = gapMs;
      offsets.push(at);
    }
    return feed(detector(), offsets).length === 0;
  }), { seed: 10, numRuns: 300 }), '300 generated irregular sessions: no request taken for a timer');
  // the harshest model (one button pressed over and over, log-normal think times, bursts,
  // pauses): a steady stretch happens now and then by chance; the rate stays far below 1 in 1000
  let misread = 0;
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) {
    const r = random(seed);
    const normal = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    const clicks: number[] = [];
    let at = 0;
    for (let i = 0; i < 400; i++) {
      const kind = r();
      const gapMs = kind < 0.15 ? 150 + r() * 300 : kind < 0.2 ? 60_000 + r() * 600_000 : Math.exp(Math.log(6000) + normal());
      at += Math.round(gapMs);
      clicks.push(at);
    }
    misread += feed(detector(), clicks).length;
  }
  t.ok(misread <= 4, `harsh model: ${misread} of 4000 requests misread (at most 1 in 1000)`);
});

t.test('two timers at once: on different paths, on one shape with different ids, and at different phases', async (t) => {
  const d = detector();
  const heartbeat = '/panopticon/server/rest/heartbeat';
  const seven = '/panopticon/server/rest/dashboards/7/refresh';
  const eight = '/panopticon/server/rest/dashboards/8/refresh';
  type Req = [number, string];
  const reqs: Req[] = [
    ...every(5000, 12).map((at): Req => [at, seven]),
    ...every(5000, 12, 2000).map((at): Req => [at, eight]),
    ...every(3000, 20, 700).map((at): Req => [at, heartbeat]),
  ].sort((a, b) => a[0] - b[0]);
  const timer = new Set<string>();
  const counted: Req[] = [];
  for (const [at, path] of reqs) {
    if (d.observe('alice', 'GET', path, T0 + at)) timer.add(path);
    else counted.push([at, path]);
  }
  t.same([...timer].sort(), [heartbeat, seven, eight].sort(), 'all three recognised');
  t.same(counted.filter(([, p]) => p === seven).length, 5, 'dashboard 7 counted only while learned');
  t.same(counted.filter(([, p]) => p === eight).length, 5, 'dashboard 8 counted only while learned');
  t.same(counted.filter(([, p]) => p === heartbeat).length, 5, 'heartbeat counted only while learned');
  t.same(d.describe('alice', T0 + 60_000).map((p) => [p.shape, p.state, Math.round(p.intervalMs!)]).sort(), [
    ['/panopticon/server/rest/dashboards/:n/refresh', 'timer', 5000],
    ['/panopticon/server/rest/heartbeat', 'timer', 3000],
  ]);
});

t.test('a click on the timer path by hand counts and is what the idle time runs from', async (t) => {
  const d = detector();
  t.same(feed(d, every(2000, 8)), every(2000, 8).slice(5));
  t.equal(d.observe('alice', 'GET', REFRESH, T0 + 15_100), undefined, 'a click between beats counts');
  // the timer goes on; the beat after the click is judged afresh and learned again
  const later = every(2000, 9, 16_000);
  const hits = later.map((at) => d.observe('alice', 'GET', REFRESH, T0 + at));
  const firstAgain = hits.findIndex((h) => h !== undefined);
  t.ok(firstAgain >= 0 && firstAgain <= 5, `recognised again (after ${firstAgain} counted beats)`);
  const retracting = hits.find((h) => h?.retractTo !== undefined);
  if (firstAgain > 0) t.match(retracting?.retractTo, { atMs: T0 + 15_100 }, 'the beats counted in between are taken back to the click');
});

t.test('a timer that stops and restarts is recognised again; the restart is learned and taken back', async (t) => {
  const d = detector();
  d.noteGenuine('alice', { atMs: T0 - 1000, method: 'GET', path: '/panopticon/', counted: true, rule: 'sec-fetch-user' });
  t.same(feed(d, every(3000, 10)), every(3000, 10).slice(5));
  // stopped for 4 minutes (less than forget-after), then restarted at another phase
  const restart = every(3000, 10, 27_000 + 4 * MINUTE_MS + 1234);
  const hits = restart.map((at) => d.observe('alice', 'GET', REFRESH, T0 + at));
  t.same(hits.map((h) => h !== undefined), [false, false, false, false, false, true, true, true, true, true]);
  t.match(hits[5]!.retractTo, { atMs: T0 - 1000, path: '/panopticon/' }, 'taken back to the last real request, not to the restart');
  t.equal(hits[5]!.newlyRecognised, false, 'still the same pattern (not forgotten)');
  // stopped for longer than forget-after: forgotten, then learned as new
  const after = every(3000, 7, restart.at(-1)! + 11 * MINUTE_MS);
  const again = after.map((at) => d.observe('alice', 'GET', REFRESH, T0 + at));
  t.same(again.map((h) => h !== undefined), [false, false, false, false, false, true, true]);
  t.equal(again[5]!.newlyRecognised, true, 'recognised anew after being forgotten');
  t.match(again[5]!.retractTo, { atMs: T0 - 1000 }, 'a forgotten pattern keeps no claim on being real');
});

t.test('an hourly renewal is caught under an 8-hour timeout; with a relative maximum it follows the timeout', async (t) => {
  const timeoutMs = 8 * HOUR_MS;
  const d = detector({ maxIntervalMs: () => timeoutMs * 0.5 });
  d.noteGenuine('alice', { atMs: T0 - 5 * MINUTE_MS, method: 'GET', path: '/panopticon/', counted: true, rule: 'counted' });
  const hourly = every(HOUR_MS, 8, 0, (i) => (i % 3) * 0.01);
  const hits = hourly.map((at) => d.observe('alice', 'POST', '/panopticon/server/rest/auth/token', T0 + at));
  t.same(hits.map((h) => h !== undefined), [false, false, false, false, false, true, true, true]);
  t.match(hits[5]!, { rule: /^periodic:POST \/panopticon\/server\/rest\/auth\/token@1h$/, retractTo: { atMs: T0 - 5 * MINUTE_MS } });
  t.ok(hits[5]!.retractTo!.atMs + timeoutMs > T0 + hourly[5]!, 'recognised (5 h) before the deadline (8 h after the real request)');
  const short = detector({ maxIntervalMs: () => 30 * MINUTE_MS });
  t.same(feed(short, hourly, '/panopticon/server/rest/auth/token'), [], 'intervals above the maximum are not considered');
});

t.test('forget-after: a quiet pattern and a quiet user are dropped', async (t) => {
  const d = detector();
  feed(d, every(1000, 6));
  t.equal(d.describe('alice', T0 + 6000).length, 1);
  t.equal(d.describe('alice', T0 + 5000 + 10 * MINUTE_MS + 1).length, 0, 'not shown once older than forget-after');
  // users are swept a few at a time by later requests of anyone
  for (let i = 0; i < 50; i++) d.observe(`u${i}`, 'GET', REFRESH, T0);
  const later = T0 + 9 * HOUR_MS; // beyond twice the longest interval (4 h)
  for (let i = 0; i < 30; i++) d.observe('bob', 'GET', REFRESH, later + i * 1000);
  t.equal(d.userCount, 1, 'only bob is left');
});

t.test('memory is bounded per user: a handful of patterns, the least recently used evicted', async (t) => {
  const d = detector();
  for (let i = 0; i < 1000; i++) d.observe('alice', 'GET', `/panopticon/x${'abcdefghijklmnopqrstuvwxyz'[i % 26]}/y`, T0 + i * 700);
  const views = d.describe('alice', T0 + 1000 * 700);
  t.equal(views.length, PATTERNS_PER_USER);
  t.ok(views.every((v) => v.seen <= 1000 / 26 + 1));
  // an evicted pattern's real request is still what idle time runs from when a timer is found later
  const e = detector({ patternsPerUser: 2 });
  e.observe('alice', 'GET', '/panopticon/', T0);
  const a = every(1000, 6, 1000).map((at) => e.observe('alice', 'GET', '/panopticon/a', T0 + at)).at(-1);
  t.match(a?.retractTo, { atMs: T0, path: '/panopticon/' });
  const b = every(1000, 6, 1500).map((at) => e.observe('alice', 'GET', '/panopticon/b', T0 + at)).at(-1);
  t.same(e.describe('alice', T0 + 7000).map((v) => v.shape).sort(), ['/panopticon/a', '/panopticon/b'], 'the page load was evicted');
  t.match(b?.retractTo, { atMs: T0, path: '/panopticon/' }, 'yet it is remembered as the last real request');
});

t.test('what is retracted: only requests that counted, never before a real one', async (t) => {
  const d = detector();
  const offsets = every(1000, 6);
  const hits = offsets.map((at) => d.observe('alice', 'GET', REFRESH, T0 + at));
  t.match(hits[5]!.retractTo, { atMs: T0, path: '/panopticon/server/rest/dashboards/:n/refresh' }, 'nothing real known: back to the first request of the timer');
  const e = detector();
  e.observe('alice', 'GET', REFRESH, T0);
  e.observe('alice', 'GET', '/panopticon/other', T0 + 1500);
  const first = every(1000, 6, 2000).map((at) => e.observe('alice', 'GET', REFRESH, T0 + at)).find((h) => h !== undefined);
  t.match(first?.retractTo, { atMs: T0 + 1500, path: '/panopticon/other' }, 'back to the last other request');
  const hit = e.observe('alice', 'GET', REFRESH, T0 + 8000);
  t.ok(hit, 'still a timer');
  t.equal(hit?.retractTo, undefined, 'already taken back on the first hit');
});

t.test('interval text', async (t) => {
  t.same([intervalText(800), intervalText(1000), intervalText(7250), intervalText(60_000), intervalText(HOUR_MS), intervalText(5400_000)], ['800ms', '1s', '7.3s', '1m', '1h', '1.5h']);
});

t.test('a beat sent late on a busy machine is still the timer\'s, and is taken back', async (t) => {
  for (const [intervalMs, lateMs] of [[1000, 300], [1000, 450], [7000, 3000]] as const) {
    const d = detector();
    d.noteGenuine('alice', { atMs: T0 - 1000, method: 'GET', path: '/panopticon/', counted: true, rule: 'sec-fetch-user' });
    const beats = every(intervalMs, 20);
    beats[10] = beats[10]! + lateMs; // one late beat, the schedule goes on
    const hits = beats.map((at) => d.observe('alice', 'GET', REFRESH, T0 + at));
    const countedAfter = beats.filter((_, i) => i >= 5 && hits[i] === undefined);
    t.ok(countedAfter.length <= 3, `${lateMs} ms late: at most a few beats counted before it was understood (${countedAfter.length})`);
    const last = hits.filter((h) => h?.retractTo !== undefined).at(-1);
    t.match(last?.retractTo, { atMs: T0 - 1000 }, `${lateMs} ms late: taken back to the last real request, not to the late beat`);
    t.ok(hits.slice(15).every((h) => h !== undefined), `${lateMs} ms late: a timer again afterwards`);
  }
});
