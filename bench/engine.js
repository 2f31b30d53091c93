/**
 * Section 2: the session engine alone (ManualClock + MemorySessionStore), in its own process,
 * started with --expose-gc so heap figures are taken after full collections.
 */
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeHeapSnapshot } from 'node:v8';
import { ManualClock } from '../dist/sessions/clock.js';
import { SessionEngine } from '../dist/sessions/engine.js';
import { MemorySessionStore } from '../dist/sessions/memory-store.js';
import { RECENT_NOTES_MAX } from '../dist/sessions/store.js';
import { CredentialExtractor } from '../dist/identity/credentials.js';
import { csrfCookieIn } from '../dist/logout/csrf.js';
import { serve } from './lib/ipc.js';
import { settingsOf } from './lib/timer-precision.js';
import { median } from './lib/stats.js';

const MINUTE_MS = 60_000;

/** a credential fingerprint as identity makes one: a SHA-256 digest in base64url (a flat string) */
function fingerprintOf(i) {
  return createHash('sha256').update(`fp-${i}`).digest('base64url');
}
const noopActions = { warn() {}, logout() {} };

/** JS heap plus ArrayBuffer memory (notes, per-user numbers and credentials live in typed arrays) */
function gcHeap() {
  for (let i = 0; i < 4; i++) globalThis.gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function makeEngine(settings = settingsOf({ timeoutMs: 10 * MINUTE_MS, notifyBeforeMs: MINUTE_MS })) {
  const clock = new ManualClock();
  const store = new MemorySessionStore();
  const engine = new SessionEngine({ clock, store, settings, actions: noopActions, logger: { error() {} } });
  return { clock, store, engine };
}

/** what the proxy hands the engine: a credential made by the identity module (shared, not copied) */
function makeUsers(n) {
  const names = [];
  const creds = [];
  for (let i = 0; i < n; i++) {
    const name = `user-${String(i).padStart(5, '0')}`;
    names.push(name);
    creds.push({
      kind: 'token-cookie',
      fingerprint: fingerprintOf(i),
      replay: { cookie: `ptoken=${'e'.repeat(200)}.${i}` },
      expiresAtMs: 1_800_000_000_000,
    });
  }
  return { names, creds };
}

function heapPerUser(n, requestsPerUser, withCredential) {
  const { names, creds } = makeUsers(n);
  const before = gcHeap();
  let parts = makeEngine();
  for (let r = 0; r < requestsPerUser; r++) {
    for (let i = 0; i < n; i++) {
      // a fresh path string per request, as a real request would bring
      parts.engine.recordActivity(names[i], 'GET', `/panopticon/server/rest/dashboards/d${r}`, withCredential ? creds[i] : undefined);
    }
    parts.clock.set(parts.clock.now() + 1000);
  }
  const after = gcHeap();
  const bytes = (after - before) / n;
  if (parts.engine.userCount !== n) throw new Error('wrong user count');
  parts.engine.close();
  parts = undefined;
  return bytes;
}

function nsPerActivity(n, calls, reps) {
  const { names, creds } = makeUsers(n);
  const { clock, engine } = makeEngine();
  for (let r = 0; r < RECENT_NOTES_MAX; r++) for (let i = 0; i < n; i++) engine.recordActivity(names[i], 'GET', '/p', creds[i]);
  const path = '/panopticon/server/rest/dashboards/sales';
  const run = (count) => {
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < count; k++) {
      const i = k % n;
      engine.recordActivity(names[i], 'GET', path, creds[i]);
      if (i === 0) clock.set(clock.now() + 1);
    }
    return Number(process.hrtime.bigint() - t0) / count;
  };
  run(calls / 10); // warm-up
  const samples = [];
  for (let r = 0; r < reps; r++) samples.push(run(calls));
  engine.close();
  return { median: median(samples), samples };
}

function burst(n, reps) {
  const warnMs = [];
  const logoutMs = [];
  let timersLeft = 0;
  for (let r = 0; r < reps; r++) {
    const { names, creds } = makeUsers(n);
    const { clock, engine } = makeEngine();
    for (let i = 0; i < n; i++) engine.recordActivity(names[i], 'GET', '/p', creds[i]);
    let t0 = process.hrtime.bigint();
    clock.advance(9 * MINUTE_MS); // every warning falls due at the same moment
    warnMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    t0 = process.hrtime.bigint();
    clock.advance(MINUTE_MS); // every timeout at the same moment
    logoutMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    timersLeft = Math.max(timersLeft, clock.pendingTimers);
    engine.close();
  }
  return { warnMs: median(warnMs), logoutMs: median(logoutMs), pendingTimersAfter: timersLeft };
}

function reschedule(n, reps) {
  const { names, creds } = makeUsers(n);
  const { clock, engine } = makeEngine();
  for (let i = 0; i < n; i++) {
    engine.recordActivity(names[i], 'GET', '/p', creds[i]);
    if (i % 100 === 0) clock.set(clock.now() + 1);
  }
  const a = settingsOf({ timeoutMs: 20 * MINUTE_MS, notifyBeforeMs: 2 * MINUTE_MS });
  const b = settingsOf({ timeoutMs: 10 * MINUTE_MS, notifyBeforeMs: MINUTE_MS });
  const samples = [];
  for (let r = 0; r < reps + 2; r++) {
    const t0 = process.hrtime.bigint();
    engine.updateSettings(r % 2 === 0 ? a : b);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r >= 2) samples.push(ms); // first two are warm-up
  }
  engine.close();
  return { median: median(samples), max: Math.max(...samples) };
}

/**
 * One browser request's Cookie header as the HTTP parser hands it over (a flat string of its own):
 * several cookies, among them Spring Session's SESSION, the CSRF cookie and the `ptoken` JWT
 * (about 250 characters, with an `exp` claim).
 */
function cookieHeaderOf(i, secrets) {
  return Buffer.from(`_ga=GA1.1.${1_000_000_000 + i}.1764547200; SESSION=${secrets.session}; XSRF-TOKEN=${secrets.xsrf}; ptoken=${secrets.jwt}; panopticon.locale=en-GB`).toString();
}

/** a user's secrets, derived from `i` (so the bench keeps no copy of them) */
function secretsOf(i) {
  const claims = { sub: `user-${String(i).padStart(6, '0')}`, iat: 1_764_547_200, exp: 1_800_000_000, roles: ['viewer', 'designer'], iss: 'panopticon' };
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const digest = (what) => createHash('sha256').update(`${what}-${i}`).digest();
  const id = digest('xsrf').toString('hex');
  return {
    jwt: `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}.${digest('signature').toString('base64url')}`,
    session: digest('session').subarray(0, 27).toString('base64'),
    xsrf: `${id.slice(0, 8)}-${id.slice(8, 12)}-${id.slice(12, 16)}-${id.slice(16, 20)}-${id.slice(20, 32)}`,
  };
}

/**
 * The whole process's RSS with `n` users tracked, each with a full recent-request history
 * (RECENT_NOTES_MAX notes: counted page loads and passive polls over 200 distinct paths, each a
 * fresh string as a request would bring) and the credentials the proxy keeps for the logout.
 * Every request takes the proxy's own path (src/proxy/activity-hooks.ts): a fresh Cookie header
 * string, the credentials the identity module extracts from it (the ptoken JWT and the SESSION
 * cookie), the CSRF token picked from it, and `{ ...credential, csrf }` handed to the engine, so
 * whatever the engine keeps of a request's strings is counted here. The identity module's memo
 * (bounded, 50 000 entries per kind) is dropped before measuring: it is a cache, not per-user state.
 * Run once per fresh process: RSS does not shrink reliably after a run.
 */
function memoryAt(n) {
  const baseline = { rss: process.memoryUsage().rss, heap: gcHeap() };
  const { clock, engine } = makeEngine();
  let extractor = new CredentialExtractor({ identityHeader: undefined, trustedSources: [], tokenCookie: 'ptoken', sessionCookie: 'SESSION' });
  for (let r = 0; r <= RECENT_NOTES_MAX; r++) {
    for (let i = 0; i < n; i++) {
      // flat strings of their own, as the HTTP parser hands them over
      const user = Buffer.from(`user-${String(i).padStart(6, '0')}`).toString();
      const page = `/panopticon/server/rest/dashboards/d${(i + r) % 200}?v=${r}`;
      const path = page.slice(0, page.indexOf('?'));
      if (r % 4 === 3) {
        engine.recordIgnored(user, 'GET', path, 'passive:GET /panopticon/server/rest/data/**');
        continue;
      }
      const headers = { cookie: cookieHeaderOf(i, secretsOf(i)) };
      const [credential, ...others] = extractor.extractCredentials(headers, '127.0.0.1');
      const csrf = csrfCookieIn(headers.cookie, 'XSRF-TOKEN');
      const keep = (c) => (csrf === undefined ? c : { ...c, csrf });
      engine.recordActivity(user, 'GET', path, keep(credential));
      for (const other of others) engine.seen(user, keep(other));
    }
    clock.set(clock.now() + 1000);
  }
  extractor = undefined;
  if (engine.userCount !== n) throw new Error('wrong user count');
  const heap = gcHeap();
  const { rss, heapUsed, heapTotal, arrayBuffers } = process.memoryUsage();
  // BENCH_HEAP_SNAPSHOT=file.heapsnapshot: what the users hold, for a heap viewer (after the figures)
  if (process.env.BENCH_HEAP_SNAPSHOT) writeHeapSnapshot(process.env.BENCH_HEAP_SNAPSHOT);
  return { users: n, rssMiB: rss / 2 ** 20, heapMiB: heap / 2 ** 20, v8HeapUsedMiB: heapUsed / 2 ** 20, v8HeapCommittedMiB: heapTotal / 2 ** 20, offHeapMiB: arrayBuffers / 2 ** 20, baselineRssMiB: baseline.rss / 2 ** 20, heapBytesPerUser: (heap - baseline.heap) / n, notesPerUser: RECENT_NOTES_MAX, credentialsPerUser: engine.describe('user-000000')?.credentials, engine };
}

/**
 * memoryAt, then the same process again after SETTLE_MS without work: V8 gives back the young
 * generation it grew while the users were built (up to 32 MiB), as in a proxy between bursts.
 */
const SETTLE_MS = 5000;
async function memoryAtSettled(n) {
  const { engine, ...m } = memoryAt(n);
  await sleep(SETTLE_MS);
  gcHeap();
  const settledRssMiB = process.memoryUsage().rss / 2 ** 20;
  if (engine.userCount !== n) throw new Error('wrong user count'); // (and keeps the engine alive until here)
  engine.close();
  return { ...m, settledRssMiB, settleMs: SETTLE_MS };
}

async function handle(msg) {
  if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc');
  if (msg.cmd === 'memory') return memoryAtSettled(msg.users);
  if (msg.cmd !== 'run') throw new Error(`unknown command ${msg.cmd}`);
  const users = msg.users ?? 10_000;
  return {
    users,
    heapBytesPerUser: {
      oneRequest: heapPerUser(users, 1, false),
      oneRequestWithCredential: heapPerUser(users, 1, true),
      fullHistoryWithCredential: heapPerUser(users, RECENT_NOTES_MAX + 1, true),
    },
    recentNotesMax: RECENT_NOTES_MAX,
    recordActivityNs: nsPerActivity(users, msg.calls ?? 1_000_000, 5),
    burst: burst(users, 5),
    reschedule: reschedule(users, 10),
  };
}

if (process.send) serve(handle, { pid: process.pid });
else {
  // alone: `node --expose-gc bench/engine.js memory 100000` (or `run 10000`) prints the answer as JSON
  const [cmd = 'memory', users = '100000'] = process.argv.slice(2);
  console.log(JSON.stringify(await handle({ cmd, users: Number(users) }), null, 2));
}
