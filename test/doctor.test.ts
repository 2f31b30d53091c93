/**
 * `npm run doctor` (the built dist/doctor/main.js, as operators run it) against every simulator
 * personality: socket framing (json, stomp, sockjs-stomp) × logout style (rest; spring with Spring's
 * cookie CSRF; fake). It must print the settings that fit, exit 0 when everything the proxy needs
 * was found and verified, and exit 2 with a plain message when something is missing (a fake
 * logout stays unverified). It never prints a secret.
 */
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { startSimulator, type Simulator, type SimulatorOptions } from '../src/simulator/server.js';
import { ROOT, childEnv, ensureBuilt, runToEnd } from './helpers/process.js';
import { CHROMIUM_PATH, chromiumMissingMessage } from './helpers/browser.js';
import { buildReport } from '../src/doctor/report.js';
import { loadDeploymentConfig } from '../src/config/deployment.js';

const DOCTOR_JS = join(ROOT, 'dist', 'doctor', 'main.js');
const CTX = '/panopticon';
const JWT = /eyJ[\w-]+\.[\w-]+\.[\w-]+/;
const timings: string[] = [];

ensureBuilt();

async function sim(t: Test, opts: SimulatorOptions): Promise<Simulator> {
  const s = await startSimulator({ logger: false, ...opts });
  t.teardown(() => s.close());
  return s;
}

async function doctor(s: Simulator, args: string[], env: Record<string, string> = {}) {
  const startedMs = Date.now();
  const run = await runToEnd(process.execPath, [DOCTOR_JS, '--upstream', s.url, ...args], { env: childEnv(env), timeoutMs: 90_000 });
  return { ...run, tookMs: Date.now() - startedMs };
}

/** The settings block as name → value (comments after the value dropped). */
function settingsOf(stdout: string): Map<string, string> {
  const block = stdout.slice(stdout.indexOf('# settings to paste'));
  const out = new Map<string, string>();
  for (const line of block.split('\n')) {
    const m = /^(PROXY_[A-Z_]+)=(.*?)(\s{2,}#.*)?$/.exec(line);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

const NOTIFY = {
  json: { paths: `${CTX}/server/ws/notifications`, seen: 'json' },
  stomp: { paths: `${CTX}/server/ws/stomp`, seen: 'stomp' },
  'sockjs-stomp': { paths: `${CTX}/server/sockjs/*/*/websocket`, seen: 'sockjs-stomp' },
} as const;

const LOGOUTS = [
  { name: 'rest', opts: { logoutStyle: 'rest' }, path: `POST ${CTX}/server/rest/auth/logout`, csrf: false },
  { name: 'spring + CSRF', opts: { logoutStyle: 'spring', csrf: true }, path: `POST ${CTX}/logout`, csrf: true },
  { name: 'fake', opts: { logoutStyle: 'fake' }, path: undefined, csrf: false },
] as const;

if (!existsSync(DOCTOR_JS)) t.fail(`${DOCTOR_JS} is missing: run npm run build`);

for (const protocol of ['json', 'stomp', 'sockjs-stomp'] as const) {
  for (const logout of LOGOUTS) {
    t.test(`doctor against ${protocol} × ${logout.name}`, async (t) => {
      const s = await sim(t, { wsProtocol: protocol, ...logout.opts });
      const run = await doctor(s, ['--user', 'alice', '--password', 'alice', '--watch-ms', '500', '--no-browser']);
      timings.push(`${protocol} × ${logout.name}: ${run.tookMs} ms (exit ${run.code})`);
      const settings = settingsOf(run.stdout);
      t.equal(settings.get('PROXY_UPSTREAM'), s.url, 'the upstream');
      t.equal(settings.get('PROXY_NOTIFY_PATHS'), NOTIFY[protocol].paths, 'the notification socket path');
      t.match(run.stdout, new RegExp(`PROXY_NOTIFY_FRAMING=auto\\s+# seen: ${NOTIFY[protocol].seen}\\n`), 'the framing seen');
      t.equal(settings.get('PROXY_WHOAMI_PATH'), `${CTX}/server/rest/server/myself`);
      t.match(run.stdout, /who am I\s+GET \/panopticon\/server\/rest\/server\/myself: 200, names "alice"/);
      t.match(run.stdout, /PROXY_PASSIVE_PATHS: the page's polling was not observed \(no browser/, 'says it could not watch the polling');
      t.notMatch(run.stdout + run.stderr, JWT, 'no token in the output');
      t.notMatch(run.stdout + run.stderr, /ptoken=|XSRF-TOKEN=[^\s]/, 'no cookie value in the output');
      if (logout.path !== undefined) {
        if (run.code !== 0) t.comment(run.stdout + run.stderr);
        t.equal(run.code, 0, 'exit 0');
        t.equal(settings.get('PROXY_LOGOUT_PATH'), logout.path, 'the verified logout candidate');
        t.equal(settings.get('PROXY_CSRF_COOKIE'), logout.csrf ? 'XSRF-TOKEN' : undefined, 'CSRF cookie named only when it was replayed');
        t.equal(settings.get('PROXY_CSRF_HEADER'), logout.csrf ? 'X-XSRF-TOKEN' : undefined);
        t.notOk('alice' in s.licensesInUse(), 'the throwaway session was logged out: units released');
        t.notMatch(run.stdout, /MISSING/);
      } else {
        t.equal(run.code, 2, 'a fake logout: non-zero exit');
        t.equal(settings.get('PROXY_LOGOUT_PATH'), undefined, 'no logout path suggested');
        t.match(run.stdout, /MISSING: no logout candidate ended the session: POST \/panopticon\/server\/rest\/auth\/logout, POST \/panopticon\/logout answered like a success but "who am I" still names the user \(unverified\)/);
        t.ok((s.licensesInUse()['alice'] ?? 0) > 0, 'alice still holds her units (nothing was counted released)');
      }
      if (protocol !== 'json') t.match(run.stdout, /# PROXY_NOTIFY_DESTINATIONS: the page's subscriptions were not observed/);
      t.same(s.protocolErrors, [], 'the probe spoke correct STOMP/SockJS');
    });
  }
}

t.test('doctor with a bearer token; a wrong password; bad usage', async (t) => {
  const s = await sim(t, { wsProtocol: 'stomp' });
  const token = await s.issueToken('bob');
  const run = await doctor(s, ['--token', token, '--watch-ms', '300', '--no-browser', '--no-logout']);
  if (run.code !== 0) t.comment(run.stdout + run.stderr);
  t.equal(run.code, 0, 'exit 0 (logout not tried)');
  t.notOk(run.stdout.includes(token) || run.stderr.includes(token), 'the token is never printed');
  t.match(run.stdout, /names "bob"/);
  t.match(run.stdout, /# PROXY_LOGOUT_PATH: not tested \(--no-logout\)/);
  t.ok((s.licensesInUse()['bob'] ?? 0) > 0, '--no-logout leaves the session signed in');

  const wrong = await doctor(s, ['--user', 'alice', '--password', 'not-her-password', '--no-browser']);
  t.equal(wrong.code, 2);
  t.match(wrong.stdout, /sign-in\s+the sign-in was refused \(401\)/);
  t.match(wrong.stdout, /MISSING: cannot sign in: "who am I" \(\/panopticon\/server\/rest\/server\/myself\) did not name a user/);
  t.notMatch(wrong.stdout + wrong.stderr, /not-her-password/, 'the password is never printed');

  const usage = await runToEnd(process.execPath, [DOCTOR_JS, '--user', 'alice'], { env: childEnv() });
  t.equal(usage.code, 1);
  t.match(usage.stderr, /--upstream URL is required/);
  const noCred = await runToEnd(process.execPath, [DOCTOR_JS, '--upstream', s.url], { env: childEnv() });
  t.equal(noCred.code, 1);
  t.match(noCred.stderr, /give a way to sign in/);
});

t.test('report: polling already covered by the passive paths is kept as it is', async (t) => {
  const config = loadDeploymentConfig({ PROXY_UPSTREAM: 'http://upstream.invalid:8080' });
  const page = { sockets: [{ path: `${CTX}/server/ws/notifications`, envelope: 'plain' as const, stomp: false, subscriptions: [], framesReceived: 0 }], repeated: [{ method: 'GET', path: `${CTX}/server/rest/data/poll`, count: 4 }], consoleErrors: [] };
  const report = buildReport({ config, signedIn: true, user: 'alice', page, probed: [], logout: undefined, cookieNames: ['JSESSIONID', 'CSRF-TOKEN'] });
  t.ok(report.settings.includes(`PROXY_PASSIVE_PATHS=GET ${CTX}/server/rest/data/**`), 'unchanged');
  t.ok(report.notes.includes(`the page repeated GET ${CTX}/server/rest/data/poll ×4 (already passive)`));
  t.ok(report.settings.includes(`PROXY_NOTIFY_PATHS=${CTX}/server/ws/notifications`), 'the socket the page opened');
  t.ok(report.notes.some((n) => /^the server set CSRF-TOKEN: if that is its CSRF cookie, set PROXY_CSRF_COOKIE/.test(n)), 'a CSRF cookie under another name is pointed out');
  t.same(report.problems, []);
});

t.test('report: a STOMP page without a notification subscription is a problem', async (t) => {
  const config = loadDeploymentConfig({ PROXY_UPSTREAM: 'http://upstream.invalid:8080' });
  const page = { sockets: [{ path: `${CTX}/ws`, envelope: 'plain' as const, stomp: true, subscriptions: ['/topic/prices', '/user/queue/alerts'], framesReceived: 3 }], repeated: [], consoleErrors: [] };
  const report = buildReport({ config, signedIn: true, user: 'alice', page, probed: [], logout: undefined, cookieNames: [] });
  t.match(report.problems, [/the page subscribes to \/topic\/prices, \/user\/queue\/alerts but none is a notification destination/]);
  const custom = buildReport({ config: loadDeploymentConfig({ PROXY_UPSTREAM: 'http://upstream.invalid:8080', PROXY_NOTIFY_DESTINATIONS: '/user/queue/alerts' }), signedIn: true, user: 'alice', page, probed: [], logout: undefined, cookieNames: [] });
  t.same(custom.problems, [], 'with PROXY_NOTIFY_DESTINATIONS set, it fits');
  t.ok(custom.settings.includes('PROXY_NOTIFY_DESTINATIONS=/user/queue/alerts'));
});

t.test('report: no socket found is a plain problem', async (t) => {
  const config = loadDeploymentConfig({ PROXY_UPSTREAM: 'http://upstream.invalid:8080' });
  const report = buildReport({ config, signedIn: true, user: 'alice', page: 'no browser', probed: [], logout: undefined, cookieNames: [] });
  t.match(report.problems, [/no notification socket found: pass the page's socket path with --notify-path/]);
  t.notOk(report.settings.some((l) => l.startsWith('PROXY_NOTIFY_PATHS=')));
});

t.test('doctor watching the dashboard in Chromium (sockjs-stomp, spring + CSRF): subscriptions and polling observed', async (t) => {
  if (!existsSync(CHROMIUM_PATH)) {
    t.fail(chromiumMissingMessage());
    return;
  }
  const s = await sim(t, { wsProtocol: 'sockjs-stomp', logoutStyle: 'spring', csrf: true, pollIntervalMs: 300 });
  // a passive-path setting that misses the page's polling: the doctor must notice and suggest it
  const run = await doctor(s, ['--user', 'alice', '--password', 'alice', '--watch-ms', '2500', '--browser', CHROMIUM_PATH, '--passive-paths', `GET ${CTX}/server/rest/other/**`]);
  timings.push(`sockjs-stomp × spring + CSRF, with Chromium: ${run.tookMs} ms (exit ${run.code})`);
  if (run.code !== 0) t.comment(run.stdout + run.stderr);
  t.equal(run.code, 0, 'exit 0');
  const settings = settingsOf(run.stdout);
  t.equal(settings.get('PROXY_NOTIFY_PATHS'), `${CTX}/server/sockjs/*/*/websocket`);
  t.equal(settings.get('PROXY_NOTIFY_DESTINATIONS'), '/user/queue/notifications', 'the page\'s notification subscription');
  t.match(run.stdout, /subscriptions: \/user\/queue\/notifications \(notification\), \/topic\/data\/sales/);
  t.match(run.stdout, /page socket\s+\/panopticon\/server\/sockjs\/[^/]+\/[^/]+\/websocket: SockJS, STOMP/);
  t.match(run.stdout, /the page repeated GET \/panopticon\/server\/rest\/data\/poll ×\d+ \(counts as activity today\)/, 'the polling was observed, and it is not passive under the given setting');
  t.equal(settings.get('PROXY_PASSIVE_PATHS'), `GET ${CTX}/server/rest/other/**,GET ${CTX}/server/rest/data/poll`, 'the poll is added to the passive paths');
  t.equal(settings.get('PROXY_LOGOUT_PATH'), `POST ${CTX}/logout`);
  t.notMatch(run.stdout, /page console error/, 'the page had no errors');
  t.notOk('alice' in s.licensesInUse(), 'released');
});

t.teardown(() => {
  if (timings.length > 0) console.error(`# doctor run times:\n${timings.map((l) => `#   ${l}`).join('\n')}`);
});
