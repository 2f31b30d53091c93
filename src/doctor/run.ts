/**
 * The doctor's steps, in order: sign in, "who am I", find and watch the sockets and the page,
 * try the logout candidates, print the report and the settings block. Returns the exit status.
 */
import type { DeploymentConfig } from '../config/deployment.js';
import { UpstreamWhoami } from '../identity/whoami.js';
import type { DoctorArgs } from './args.js';
import { checkLogout } from './logout-check.js';
import { scanPage, socketCandidates } from './page-scan.js';
import { watchPage } from './page-watch.js';
import { buildReport, type Findings } from './report.js';
import { DoctorSession } from './session.js';
import { isFinding, probeSocket } from './socket-probe.js';

export const EXIT_OK = 0;
export const EXIT_MISSING = 2;

export async function runDoctor(args: DoctorArgs, config: DeploymentConfig, print: (line: string) => void): Promise<number> {
  const startedMs = Date.now();
  const session = new DoctorSession(config.upstream, args);
  const whoami = new UpstreamWhoami(config);
  const step = (what: string, text: string) => print(`  ${what.padEnd(14)} ${text}`);
  print(`session-timeout-proxy doctor: ${config.upstream.origin} (context path "${config.contextPath}")`);
  try {
    if (args.user !== undefined) {
      const problem = await session.formLogin(config.loginPath, args.user, args.password ?? '', { cookie: config.csrfCookie, header: config.csrfHeader });
      step('sign-in', problem ?? `form login at ${config.loginPath} as ${args.user}: answered; cookies set: ${session.jar.names().join(', ') || 'none'}`);
    } else {
      step('sign-in', args.token ? 'bearer token given' : `cookies given: ${session.jar.names().join(', ')}`);
    }
    let user: string | undefined;
    try {
      const answer = await whoami.ask(session.replay());
      user = answer.user;
      step('who am I', `GET ${config.whoamiPath}: ${answer.status}${user ? `, names "${user}"` : ', names nobody'}`);
    } catch (err) {
      step('who am I', `GET ${config.whoamiPath}: no answer (${(err as Error).message})`);
    }
    const findings: Findings = { config, signedIn: user !== undefined, user, page: 'not watched', probed: [], logout: undefined, cookieNames: [] };
    if (user !== undefined) {
      const scan = await scanPage(session, config.contextPath);
      const candidates = socketCandidates(config.contextPath, [...args.notifyPaths, ...config.notifyPaths], scan.mentioned);
      // one after the other: a starting browser must not slow the probes' handshakes
      const probes = await Promise.all(candidates.map((path) => probeSocket(config.upstream, path, session.replay(), args.watchMs)));
      const page = args.browserPath
        ? await watchPage(session, config, args.browserPath, args.watchMs)
        : 'no browser (--no-browser, or none at /usr/bin/chromium; give --browser PATH)';
      findings.probed = probes.filter(isFinding);
      for (const miss of probes.filter((p) => !isFinding(p))) if (!('framing' in miss) && miss.why !== '404') step('not a socket', `${miss.path}: ${miss.why}`);
      findings.page = page;
      step('page', typeof page === 'string'
        ? `not watched: ${page}`
        : `watched ${args.watchMs} ms in Chromium: ${page.sockets.length} socket(s), ${page.repeated.length} repeated request(s), ${page.consoleErrors.length} console error(s)`);
      for (const p of findings.probed) step('socket', `${p.path}: ${p.framing} (${p.detail})`);
      if (typeof page !== 'string') for (const s of page.sockets) step('page socket', `${s.path}: ${s.envelope === 'sockjs' ? 'SockJS, ' : ''}${s.stomp ? 'STOMP' : 'no STOMP'}, ${s.framesReceived} frame(s) received`);
      if (findings.probed.length === 0) step('socket', `none of ${candidates.length} candidate path(s) is a socket this credential may open`);
      if (args.logout) findings.logout = await checkLogout(config, session, whoami, user);
    }
    findings.cookieNames = session.jar.names();
    const report = buildReport(findings);
    for (const note of report.notes) step('found', note);
    print('');
    print(`# settings to paste (doctor run took ${Date.now() - startedMs} ms)`);
    for (const line of report.settings) print(line);
    if (report.problems.length > 0) {
      print('');
      for (const problem of report.problems) print(`MISSING: ${problem}`);
      return EXIT_MISSING;
    }
    return EXIT_OK;
  } finally {
    await whoami.close();
  }
}
