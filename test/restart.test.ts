/**
 * Restarts and shutdowns of the real process (`node dist/main.js`): the session state saved in
 * PROXY_STATE_DIR carries timers, pending logouts and refused credentials over a restart, a
 * `kill -9` loses at most one save interval, a corrupt state file does not stop the proxy, and
 * SIGTERM lets in-flight work finish within PROXY_SHUTDOWN_GRACE_MS. The Panopticon simulator
 * runs in this process; timeouts are a few seconds (decimal minutes) on the real clock.
 */
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import WebSocket from 'ws';
import { startSimulator, type Simulator } from '../src/simulator/server.js';
import { STATE_FILE_NAME } from '../src/sessions/state-file.js';
import { eventually } from './helpers/stack.js';
import { sleep, startProxyProcess, type ProxyProcess } from './helpers/process.js';

const NOTIFY = '/panopticon/server/ws/notifications';
const MYSELF = '/panopticon/server/rest/server/myself';

interface Setup {
  sim: Simulator;
  stateDir: string;
  env: Record<string, string>;
}

/** A simulator, a properties file with the given timeout, a state dir, and the proxy's environment. */
async function setup(t: Test, minutes: number, extra: Record<string, string> = {}): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'stp-restart-'));
  const propsPath = join(dir, 'Panopticon.properties');
  await writeFile(propsPath, `timeout.session.enabled=true\ntimeout.session.minutes=${minutes}\ntimeout.session.notification.minutes=0\n`);
  const stateDir = join(dir, 'state');
  const sim = await startSimulator({ logger: false, dataIntervalMs: 1000 });
  t.teardown(() => sim.close());
  const env = {
    PROXY_UPSTREAM: sim.url,
    PROXY_HOST: '127.0.0.1',
    PROXY_PORT: '0',
    PROXY_ADMIN_PORT: '0',
    PROXY_PROPERTIES: propsPath,
    PROXY_STATE_DIR: stateDir,
    PROXY_STATE_SAVE_MS: '200',
    PROXY_LOGOUT_RETRY_MIN_MS: '100',
    PROXY_LOGOUT_RETRY_MAX_MS: '300',
    PROXY_SHUTDOWN_GRACE_MS: '3000',
    PROXY_LOG_LEVEL: 'info',
    ...extra,
  };
  return { sim, stateDir, env };
}

async function login(proxy: ProxyProcess, user: string): Promise<string> {
  const res = await request(`${proxy.url}/panopticon/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: user, password: user }).toString(),
  });
  await res.body.dump();
  if (res.statusCode !== 302) throw new Error(`login of ${user} answered ${res.statusCode}`);
  return ([] as string[]).concat(res.headers['set-cookie'] ?? []).map((c) => c.split(';', 1)[0]).join('; ');
}

async function get(proxy: ProxyProcess, path: string, headers: Record<string, string>) {
  const res = await request(proxy.url + path, { headers });
  return { status: res.statusCode, body: await res.body.text() };
}

/** A counted request (a page navigation); returns when it was sent. */
async function activity(proxy: ProxyProcess, cookie: string): Promise<number> {
  const at = Date.now();
  const res = await get(proxy, '/panopticon/', { cookie, accept: 'text/html' });
  if (res.status !== 200) throw new Error(`page answered ${res.status}`);
  return at;
}

function openSocket(t: Test, proxy: ProxyProcess, path: string, cookie: string): Promise<{ ws: WebSocket; closed: Promise<number> }> {
  const ws = new WebSocket(proxy.url.replace('http', 'ws') + path, { headers: { cookie } });
  t.teardown(() => ws.terminate());
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, closed }));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
}

async function readState(stateDir: string): Promise<{ savedAtMs: number; sessions: Array<{ user: string }>; pendingLogouts: Array<{ user: string; attempts: number }>; revoked: unknown[] } | undefined> {
  try {
    return JSON.parse(await readFile(join(stateDir, STATE_FILE_NAME), 'utf8'));
  } catch {
    return undefined; // not written yet, or caught between writes (it is replaced by rename)
  }
}

const logoutsOf = (sim: Simulator, user: string) => sim.logoutCalls.filter((c) => c.user === user);
const until = (atMs: number) => sleep(Math.max(0, atMs - Date.now()));

t.test('timers survive a graceful restart: logged out on time by the next process, due users at once', async (t) => {
  // Generous margins, because process start-up is slow on a loaded machine: alice's deadline comes
  // 8 s after bob's (B has that long to start), and A has 6 s after alice's request to stop.
  const T = 15_000; // 0.25 minutes
  const { sim, stateDir, env } = await setup(t, 0.25);
  const a = await startProxyProcess(t, env);

  const bobCookie = await login(a, 'bob');
  const bobAt = await activity(a, bobCookie);
  const bobDone = Date.now();
  await until(bobAt + 8_000);
  const aliceCookie = await login(a, 'alice');
  const aliceAt = await activity(a, aliceCookie);
  const socket = await openSocket(t, a, NOTIFY, aliceCookie);
  const aliceDone = Date.now();
  t.same(Object.keys(sim.licensesInUse()).sort(), ['alice', 'bob']);

  const exit = await a.stop(5_000);
  t.same([exit.code, exit.signal], [0, null], 'SIGTERM: A exits with code 0');
  t.equal(await socket.closed, 1001, 'the open WebSocket was closed with 1001 (going away)');
  const info = await stat(join(stateDir, STATE_FILE_NAME));
  t.equal(info.mode & 0o777, 0o600, 'the state file is private (0600)');
  const saved = await readState(stateDir);
  t.same(saved?.sessions.map((s) => s.user).sort(), ['alice', 'bob'], 'both users are in the saved state');
  t.same(sim.logoutCalls, [], 'nobody was logged out by A');

  // bob's deadline passes while no proxy runs; alice's does not
  await until(bobDone + T + 300);
  const b = await startProxyProcess(t, env);
  t.ok(b.startedAtMs < aliceAt + T, 'B was up before alice\'s deadline');
  t.match(await b.waitForLog((l) => l['event'] === 'state-restored', 1000), { sessions: 2 }, 'B restored the state');

  await eventually('bob logged out', () => logoutsOf(sim, 'bob').some((c) => c.status === 200), 5_000);
  const bobCall = logoutsOf(sim, 'bob').find((c) => c.status === 200)!;
  // a timer restarted by B would fire T after B was spawned at the earliest
  t.ok(bobCall.atMs >= b.spawnedAtMs && bobCall.atMs < b.spawnedAtMs + T, `bob (due while down) was logged out by B at start, not on a restarted timer (${bobCall.atMs - b.startedAtMs} ms after start)`);
  t.notOk('bob' in sim.licensesInUse(), 'bob\'s units came back');
  t.ok('alice' in sim.licensesInUse(), 'alice is still logged in');

  await eventually('alice logged out', () => logoutsOf(sim, 'alice').some((c) => c.status === 200), Math.max(10_000, aliceDone + T + 5_000 - Date.now()));
  const aliceCall = logoutsOf(sim, 'alice').find((c) => c.status === 200)!;
  t.ok(aliceCall.atMs >= aliceAt + T - 5, `alice was not logged out early (${aliceCall.atMs - (aliceAt + T)} ms after the earliest deadline)`);
  t.ok(aliceCall.atMs < b.spawnedAtMs + T, `alice was logged out on her own deadline by B, not on a timer restarted by B (${aliceCall.atMs - (aliceDone + T)} ms after the latest deadline)`);
  t.ok(bobCall.atMs < aliceCall.atMs, 'bob, due while no proxy ran, went first');
  t.same(sim.licensesInUse(), {}, 'every unit came back');

  // the logout is verified with a "who am I" call of the proxy's own: let it finish before counting
  await b.waitForLog((l) => l['event'] === 'logout-result' && l['user'] === 'alice', 10_000, 'alice\'s verified logout result');
  const before = sim.requests.filter((r) => r.path === MYSELF).length;
  const stale = await get(b, MYSELF, { cookie: aliceCookie, accept: 'application/json' });
  t.equal(stale.status, 401, 'B refuses alice\'s old cookie');
  t.match(JSON.parse(stale.body), { error: 'session_timed_out' }, 'as timed out (the proxy answered, not the server)');
  t.equal(sim.requests.filter((r) => r.path === MYSELF).length, before, 'the refused request never reached the server');
  t.same(logoutsOf(sim, 'alice').length, 1, 'one logout call for alice');

  const exitB = await b.stop(5_000);
  t.equal(exitB.code, 0, 'B exits with code 0');
});

t.test('a pending logout survives kill -9 and completes in the next process', async (t) => {
  const { sim, stateDir, env } = await setup(t, 0.03); // 1.8 s
  sim.failures.failLogout(1000);
  const a = await startProxyProcess(t, env);
  const cookie = await login(a, 'alice');
  await activity(a, cookie);

  await eventually('a failed logout attempt', () => logoutsOf(sim, 'alice').some((c) => c.status === 500), 8_000);
  let saved: Awaited<ReturnType<typeof readState>>;
  await eventually('a save with the pending logout', async () => {
    saved = await readState(stateDir);
    return (saved?.pendingLogouts ?? []).some((j) => j.user === 'alice' && j.attempts >= 1);
  }, 3_000);
  t.ok(saved!.pendingLogouts.length >= 1, 'the periodic save holds the pending logout');
  t.ok('alice' in sim.licensesInUse(), 'alice still holds her units');

  a.signal('SIGKILL');
  const exit = await a.exited;
  t.same([exit.code, exit.signal], [null, 'SIGKILL'], 'A was killed');
  sim.failures.reset();

  const b = await startProxyProcess(t, env);
  t.match(await b.waitForLog((l) => l['event'] === 'state-restored', 1000), { pendingLogouts: 1 });
  await eventually('the logout completed', () => logoutsOf(sim, 'alice').some((c) => c.status === 200), 5_000);
  const released = logoutsOf(sim, 'alice').filter((c) => c.status === 200);
  t.equal(released.length, 1, 'one successful logout call');
  t.ok(released[0]!.atMs >= b.spawnedAtMs, 'made by B');
  t.same(sim.licensesInUse(), {}, 'the units were released');
  await b.waitForLog((l) => l['event'] === 'logout-result' && l['outcome'] === 'released', 2_000, 'logout-result released');
  const stale = await get(b, MYSELF, { cookie, accept: 'application/json' });
  t.equal(stale.status, 401, 'B refuses the logged-out cookie');
  await eventually('the finished job leaves the saved state', async () => (await readState(stateDir))?.pendingLogouts.length === 0, 3_000);
  t.equal((await b.stop(5_000)).code, 0);
});

t.test('a corrupt state file is moved aside, logged as an error, and the proxy starts empty', async (t) => {
  const { sim, stateDir, env } = await setup(t, 10);
  await mkdir(stateDir, { recursive: true });
  const garbage = '{"version":1,"sessions":[{"user":';
  await writeFile(join(stateDir, STATE_FILE_NAME), garbage, { mode: 0o600 });

  const p = await startProxyProcess(t, env);
  const line = await p.waitForLog((l) => l['event'] === 'state-corrupt', 1000, 'state-corrupt log line');
  t.equal(line['level'], 50, 'logged at error level');
  t.match(String(line['movedTo']), /session-state\.json\.corrupt-\d+$/);
  t.ok(existsSync(String(line['movedTo'])), 'moved aside, not deleted');
  t.equal(await readFile(String(line['movedTo']), 'utf8'), garbage, 'kept as it was');
  t.notOk(p.logs.some((l) => l['event'] === 'state-restored'), 'nothing restored');

  const cookie = await login(p, 'alice');
  t.equal((await get(p, MYSELF, { cookie })).status, 200, 'serves requests');
  await activity(p, cookie);
  t.equal((await p.stop(5_000)).code, 0);
  const saved = await readState(stateDir);
  t.same(saved?.sessions.map((s) => s.user), ['alice'], 'a fresh, valid state file was written');
  t.ok((await readdir(stateDir)).some((n) => n.startsWith(`${STATE_FILE_NAME}.corrupt-`)));
  t.ok(sim.requests.some((r) => r.path === MYSELF), 'the request was passed to the server');
});

t.test('SIGTERM: an in-flight request shorter than the grace period finishes; a longer one is cut at the grace period', async (t) => {
  // long enough that nothing here waits it out unless the proxy is wrong
  const graceMs = 30_000;
  // no periodic save within the test: a save seen after SIGTERM is the shutdown's
  const { sim, stateDir, env } = await setup(t, 10, { PROXY_SHUTDOWN_GRACE_MS: String(graceMs), PROXY_STATE_SAVE_MS: '600000' });

  const p = await startProxyProcess(t, env);
  // the simulator holds logout calls until told otherwise: an in-flight request that ends on an event
  sim.failures.hangLogout(true);
  let answered = false;
  const held = request(`${p.url}/panopticon/server/rest/auth/logout`, { method: 'POST' })
    .then(async (r) => ({ status: r.statusCode, body: await r.body.text() }))
    .finally(() => (answered = true));
  await eventually('the request reached the server', () => sim.logoutCalls.length === 1, 10_000);
  const termAt = Date.now();
  p.signal('SIGTERM');
  await eventually('a save after SIGTERM', async () => ((await readState(stateDir))?.savedAtMs ?? 0) >= termAt, 10_000);
  t.notOk(answered, 'the state was saved at once, before waiting for in-flight requests');
  sim.failures.hangLogout(false);
  const res = await held;
  t.equal(res.status, 401, 'the in-flight request got the server\'s answer');
  t.match(res.body, /Unknown or expired credential/);
  const exit = await p.exited;
  t.equal(exit.code, 0, 'then the process exited with code 0');
  t.ok(exit.atMs - termAt < graceMs, `once it was answered, not at the end of the grace period (${exit.atMs - termAt} ms; the keep-alive connection does not hold the close)`);
  t.notOk(p.logs.some((l) => l['event'] === 'shutdown-grace-expired'), 'the grace period did not run out');
  t.ok(p.logs.some((l) => l['event'] === 'shutdown'));

  const q = await startProxyProcess(t, { ...env, PROXY_SHUTDOWN_GRACE_MS: '800' });
  sim.failures.setDelayMs(20_000);
  const stuck = get(q, '/panopticon/login', { accept: 'text/html' }).then((r) => r.status, (err: Error) => err);
  await eventually('the request reached the server', () => sim.requests.some((r) => r.path === '/panopticon/login'), 10_000);
  const termAt2 = Date.now();
  q.signal('SIGTERM');
  const exit2 = await q.exited;
  t.equal(exit2.code, 0, 'exit code 0 after cutting the request');
  t.ok(exit2.atMs - termAt2 >= 750, `waited for the grace period (${exit2.atMs - termAt2} ms)`);
  t.ok(q.logs.some((l) => l['event'] === 'shutdown-grace-expired'), 'and said that it ran out');
  // the held request would have been answered 20 s after it arrived
  t.ok(exit2.atMs - termAt2 < 10_000, `and cut the request rather than wait for its answer (${exit2.atMs - termAt2} ms)`);
  t.not(await stuck, 200, 'the request longer than the grace period did not get an answer');
  sim.failures.reset();
});
