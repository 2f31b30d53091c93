/**
 * Panopticon simulator: the HTML pages (login and dashboard), embedded so that `tsc` output needs
 * no asset files. They are plainly labelled as a simulator.
 */
import { SOCKJS_BUNDLE, STOMP_BUNDLE, assetPath } from './client-assets.js';
import { dashboardScript } from './dashboard-script.js';
import { stompClientScript } from './stomp-client-script.js';
import type { StompPageConfig } from './stomp-routes.js';

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch]!);
}

/** JSON that is safe inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}

const STYLE = `
  body { font-family: system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
  .sim-banner { background: #5b2a86; color: #fff; padding: .4rem 1rem; font-size: .85rem; }
  main { max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
  .card { background: #fff; border-radius: 8px; padding: 1.25rem; box-shadow: 0 1px 3px #0002; margin-bottom: 1rem; }
  label { display: block; margin: .6rem 0 .2rem; }
  input { font-size: 1rem; padding: .35rem; width: 16rem; }
  button { font-size: 1rem; padding: .45rem .9rem; margin-top: .8rem; cursor: pointer; }
  .message { padding: .6rem .8rem; border-radius: 6px; background: #fff4d6; border: 1px solid #e6c35c; }
  .error { background: #fde2e1; border-color: #e08a86; }
  #live-tile .value { font-size: 2.4rem; font-weight: 600; }
  .muted { color: #5d6473; font-size: .9rem; }
  .backdrop { position: fixed; inset: 0; background: #0007; display: flex; align-items: center; justify-content: center; }
  .backdrop[hidden] { display: none; }
  .dialog { background: #fff; border-radius: 8px; padding: 1.5rem; max-width: 26rem; box-shadow: 0 6px 24px #0005; }
  #timeout-countdown { font-size: 2rem; font-variant-numeric: tabular-nums; }
`;

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} - Panopticon Simulator</title>
<style>${STYLE}</style>
</head>
<body>
<div class="sim-banner" role="note">Panopticon simulator: a test stand-in, not Altair Panopticon.</div>
${body}
</body>
</html>
`;
}

export interface LoginPageOptions {
  contextPath: string;
  /** why the user landed here (`?reason=`), shown as a message */
  reason?: string | undefined;
  /** a failed sign-in */
  error?: string | undefined;
}

export function loginPage(opts: LoginPageOptions): string {
  const reason = opts.reason
    ? `<p id="login-reason" class="message" role="status">${escapeHtml(opts.reason)}</p>`
    : '';
  const error = opts.error ? `<p id="login-error" class="message error" role="alert">${escapeHtml(opts.error)}</p>` : '';
  return layout('Sign in', `<main>
<div class="card">
<h1>Sign in</h1>
${reason}${error}
<form id="login-form" method="post" action="${escapeHtml(opts.contextPath)}/login">
  <label for="username">User name</label>
  <input id="username" name="username" autocomplete="username" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <div><button id="login-submit" type="submit">Sign in</button></div>
</form>
<p class="muted">Demo users (simulator only): alice/alice, bob/bob, carol/carol, kiosk/kiosk.</p>
</div>
</main>`);
}

export interface DashboardPageOptions {
  contextPath: string;
  username: string;
  role: string;
  pollIntervalMs: number;
  autoRefreshMs: number;
  /** SIM_CSRF: the token the sign-out form sends back as `_csrf` */
  csrfToken?: string | undefined;
  /** the STOMP personalities' socket settings; undefined: two plain JSON sockets */
  stomp?: StompPageConfig | undefined;
}

/** The client libraries and the STOMP transport, for the STOMP personalities only. */
function stompScripts(contextPath: string, stomp: StompPageConfig | undefined): string {
  if (!stomp) return '';
  const bundles = stomp.wsProtocol === 'sockjs-stomp' ? [STOMP_BUNDLE, SOCKJS_BUNDLE] : [STOMP_BUNDLE];
  return bundles.map((file) => `<script src="${escapeHtml(assetPath(contextPath, file))}"></script>\n`).join('')
    + `<script>${stompClientScript}</script>\n`;
}

export function dashboardPage(opts: DashboardPageOptions): string {
  const config = { contextPath: opts.contextPath, pollIntervalMs: opts.pollIntervalMs, autoRefreshMs: opts.autoRefreshMs, ...opts.stomp };
  return layout('Dashboard', `<main>
<div class="card">
  <h1>Sales dashboard</h1>
  <p>Signed in as <strong id="current-user">${escapeHtml(opts.username)}</strong>
     (<span id="current-role">${escapeHtml(opts.role)}</span>)</p>
  <form method="post" action="${escapeHtml(opts.contextPath)}/logout">${opts.csrfToken === undefined ? '' : `<input type="hidden" name="_csrf" value="${escapeHtml(opts.csrfToken)}">`}<button id="sign-out" type="submit">Sign out</button></form>
</div>
<div class="card" id="live-tile" aria-live="polite">
  <div class="muted">Sales (live)</div>
  <div class="value" id="live-value">-</div>
  <div class="muted">updated <span id="live-at">never</span>, socket <span id="data-status">connecting</span></div>
</div>
<div class="card">
  <button id="refresh-btn" type="button">Refresh dashboard</button>
  <p class="muted">Last refresh: <span id="refresh-result">never</span></p>
  <p class="muted">Background poll: <span id="poll-status">not yet</span>;
     notifications: <span id="notify-status">connecting</span>;
     auto-refresh: <span id="auto-refresh-status">off</span></p>
  <p id="session-status" role="status"></p>
</div>
</main>
<div id="timeout-backdrop" class="backdrop" hidden>
  <div id="timeout-dialog" class="dialog" role="alertdialog" aria-modal="true"
       aria-labelledby="timeout-title" aria-describedby="timeout-message">
    <h2 id="timeout-title">Session about to time out</h2>
    <p id="timeout-message"></p>
    <p>Time left: <span id="timeout-countdown" aria-live="off">00:00</span></p>
    <button id="stay-signed-in" type="button">Stay signed in</button>
  </div>
</div>
<script type="application/json" id="sim-config">${scriptJson(config)}</script>
${stompScripts(opts.contextPath, opts.stomp)}<script>${dashboardScript}</script>`);
}
