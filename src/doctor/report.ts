/**
 * From what the doctor found to the settings block an operator pastes, plus the plain problems
 * that make the exit status non-zero. Nothing secret goes in: names, paths and statuses only.
 */
import type { DeploymentConfig } from '../config/deployment.js';
import { ActivityRules } from '../activity/rules.js';
import { candidateLabel } from '../logout/candidates.js';
import { notificationDestinationRule } from '../notifications/framing/policy.js';
import { sessionPathShape } from '../notifications/framing/sockjs.js';
import type { LogoutCheck } from './logout-check.js';
import type { PageWatch } from './page-watch.js';
import type { SocketFinding } from './socket-probe.js';

export interface Findings {
  config: DeploymentConfig;
  signedIn: boolean;
  /** the user "who am I" named */
  user: string | undefined;
  /** the page watch, or why there is none */
  page: PageWatch | string;
  probed: SocketFinding[];
  /** undefined: --no-logout */
  logout: LogoutCheck | undefined;
  /** names of the cookies the server set (never values) */
  cookieNames: string[];
}

export interface Report {
  settings: string[];
  problems: string[];
  notes: string[];
}

const NOTIFICATION_WORD_HINT = 'any destination containing "notification"';

/** SockJS session sockets collapse to `<prefix>/*\/*\/websocket`. */
function notifyGlobOf(path: string): string {
  return sessionPathShape(path)?.replace('/{server}/{session}/', '/*/*/') ?? path;
}

function framingOfWatched(s: PageWatch['sockets'][number]): string {
  return `${s.envelope === 'sockjs' ? 'sockjs-' : ''}${s.stomp ? 'stomp' : 'json'}`;
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

/** Plain JSON sockets: the ones named like notifications, else all of them. */
function preferNotificationNamed(paths: readonly string[]): string[] {
  const named = paths.filter((p) => /notification/i.test(p));
  return named.length > 0 ? named : [...paths];
}

function notifySection(f: Findings, out: Report): void {
  const isNotification = notificationDestinationRule(f.config.notifyDestinations);
  const page = typeof f.page === 'string' ? undefined : f.page;
  const watched = page?.sockets ?? [];
  const framings = unique([...watched.map(framingOfWatched), ...f.probed.map((p) => p.framing)]);
  let paths: string[];
  if (watched.length > 0) {
    const stompPaths = watched.filter((s) => s.stomp).map((s) => notifyGlobOf(s.path));
    const jsonPaths = watched.filter((s) => !s.stomp).map((s) => notifyGlobOf(s.path));
    paths = unique([...stompPaths, ...preferNotificationNamed(unique(jsonPaths))]);
  } else {
    const stompish = f.probed.filter((p) => p.framing !== 'json').map((p) => p.notifyGlob);
    const json = f.probed.filter((p) => p.framing === 'json').map((p) => p.notifyGlob);
    paths = unique([...stompish, ...preferNotificationNamed(json)]);
  }
  if (paths.length === 0) {
    out.problems.push('no notification socket found: pass the page\'s socket path with --notify-path (the proxy could not warn anyone)');
    return;
  }
  out.settings.push(`PROXY_NOTIFY_PATHS=${paths.join(',')}`);
  out.settings.push(`PROXY_NOTIFY_FRAMING=auto    # seen: ${framings.join(', ')}`);

  const subscribed = unique(watched.flatMap((s) => s.subscriptions));
  const anyStomp = framings.some((x) => x.includes('stomp'));
  if (!anyStomp) return;
  if (subscribed.length === 0) {
    out.settings.push(`# PROXY_NOTIFY_DESTINATIONS: the page's subscriptions were not observed; the default is ${NOTIFICATION_WORD_HINT}`);
    return;
  }
  const notifications = subscribed.filter(isNotification);
  out.notes.push(`subscriptions: ${subscribed.map((d) => (isNotification(d) ? `${d} (notification)` : d)).join(', ')}`);
  if (notifications.length === 0) {
    out.problems.push(`the page subscribes to ${subscribed.join(', ')} but none is a notification destination under the current rule: set PROXY_NOTIFY_DESTINATIONS to the one that carries the server's notifications`);
    return;
  }
  out.settings.push(`PROXY_NOTIFY_DESTINATIONS=${notifications.join(',')}`);
}

function logoutSection(f: Findings, out: Report): void {
  if (!f.logout) {
    out.settings.push(`# PROXY_LOGOUT_PATH: not tested (--no-logout); current: ${f.config.logoutPath.map(candidateLabel).join(', ')}`);
    return;
  }
  for (const c of f.logout.candidates) out.notes.push(`logout ${c.method} ${c.path}: ${c.lastResult ?? 'not tried'}${c.lastStatus !== null ? ` (${c.lastStatus})` : ''}`);
  const { outcome } = f.logout;
  if (outcome.kind === 'released' || outcome.kind === 'already-gone') {
    out.settings.push(`PROXY_LOGOUT_PATH=${outcome.candidate ?? f.config.logoutPath.map(candidateLabel).join(', ')}    # verified: "who am I" no longer names the user`);
    if (f.logout.csrfReplayed) {
      out.settings.push(`PROXY_CSRF_COOKIE=${f.config.csrfCookie}`);
      out.settings.push(`PROXY_CSRF_HEADER=${f.config.csrfHeader}`);
    }
    return;
  }
  const unverified = f.logout.candidates.filter((c) => c.lastResult === 'unverified').map((c) => `${c.method} ${c.path}`);
  out.problems.push(unverified.length > 0
    ? `no logout candidate ended the session: ${unverified.join(', ')} answered like a success but "who am I" still names the user (unverified); licenses would not come back`
    : `no logout candidate ended the session (${"reason" in outcome ? outcome.reason : outcome.kind}); set PROXY_LOGOUT_PATH to the server's logout`);
}

function passiveSection(f: Findings, out: Report): void {
  if (typeof f.page === 'string') {
    out.settings.push(`# PROXY_PASSIVE_PATHS: the page's polling was not observed (${f.page}); current: ${f.config.passivePaths.join(', ')}`);
    return;
  }
  const rules = new ActivityRules({ passivePaths: f.config.passivePaths, backgroundHeader: f.config.backgroundHeader });
  const uncovered = f.page.repeated.filter((r) => rules.passiveVerdict(r.method, r.path, {}) === undefined);
  for (const e of f.page.consoleErrors) out.notes.push(`page console error: ${e}`);
  for (const r of f.page.repeated) out.notes.push(`the page repeated ${r.method} ${r.path} ×${r.count}${uncovered.includes(r) ? ' (counts as activity today)' : ' (already passive)'}`);
  out.settings.push(`PROXY_PASSIVE_PATHS=${unique([...f.config.passivePaths, ...uncovered.map((r) => `${r.method} ${r.path}`)]).join(',')}`);
}

export function buildReport(f: Findings): Report {
  const out: Report = { settings: [], problems: [], notes: [] };
  const c = f.config;
  if (!f.signedIn || f.user === undefined) {
    out.problems.push(`cannot sign in: "who am I" (${c.whoamiPath}) did not name a user with this credential`);
    return out;
  }
  out.settings.push(`PROXY_UPSTREAM=${c.upstream.origin}`);
  out.settings.push(`PROXY_CONTEXT_PATH=${c.contextPath}`);
  out.settings.push(`PROXY_WHOAMI_PATH=${c.whoamiPath}`);
  out.settings.push(`PROXY_LOGIN_PATH=${c.loginPath}`);
  notifySection(f, out);
  logoutSection(f, out);
  passiveSection(f, out);
  const csrfLike = f.cookieNames.filter((n) => /csrf|xsrf/i.test(n) && n !== c.csrfCookie);
  if (csrfLike.length > 0) out.notes.push(`the server set ${csrfLike.join(', ')}: if that is its CSRF cookie, set PROXY_CSRF_COOKIE (and PROXY_CSRF_HEADER)`);
  return out;
}
