/**
 * The admin page: one static HTML document with inline CSS and JS, no build step. It carries no
 * session data — the script fetches /admin/sessions (with the bearer token the operator typed in,
 * kept in sessionStorage) and builds the table with textContent only, never innerHTML.
 */
import { UPSTREAM_HTML, UPSTREAM_SCRIPT } from './page-upstream.js';
import { CHARTS_CSS, CHARTS_SCRIPT, HISTORY_SECTION_HTML, TIMELINE_HTML } from './page-charts.js';

/** The page, with `nonce` allowing its inline script and style under the CSP below. */
export function adminPageHtml(nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Sessions · session-timeout-proxy</title>
<style nonce="${nonce}">${CSS}${CHARTS_CSS}</style>
</head>
<body>
<header>
  <h1>Sessions</h1>
  <span id="summary" class="muted"></span>
  <span class="spacer"></span>
  <button id="refresh" type="button">Refresh</button>
  <button id="forget" type="button" hidden>Forget token</button>
</header>
<p id="message" role="status" hidden></p>
<form id="login" hidden autocomplete="off">
  <label for="token">Admin token (PROXY_ADMIN_TOKEN)</label>
  <input id="token" type="password" autocomplete="off" spellcheck="false" required>
  <button type="submit">Use token</button>
  <span class="muted">kept in this tab only (sessionStorage)</span>
</form>
<p id="settings" class="muted"></p>
${HISTORY_SECTION_HTML}
<table id="sessions" hidden>
  <thead><tr>
    <th>User</th><th>State</th><th>Last counted request</th><th>Deadline</th><th>Time left</th>
    <th>Warned</th><th>Sockets</th><th>Credentials</th><th>Exempt</th><th></th>
  </tr></thead>
  <tbody></tbody>
</table>
<p id="empty" class="muted" hidden>No sessions tracked yet.</p>
<section id="detail" hidden>
  <h2 id="detail-title"></h2>
  <p id="detail-explanation"></p>
  ${TIMELINE_HTML}
  <h3>Request patterns (timers do not count)</h3>
  <table><thead><tr><th>Request shape</th><th>State</th><th>Interval</th><th>Timer since</th><th>Seen</th><th>As timer</th></tr></thead><tbody id="detail-patterns"></tbody></table>
  <h3>Recent requests</h3>
  <table><thead><tr><th>Time</th><th>Request</th><th>Counted</th><th>Rule</th></tr></thead><tbody id="detail-recent"></tbody></table>
  <button id="detail-close" type="button">Close</button>
</section>
${UPSTREAM_HTML}<script nonce="${nonce}">${SCRIPT}${CHARTS_SCRIPT}</script>
</body>
</html>
`;
}

/** Content-Security-Policy for the page: only its own nonce-marked script and style, fetches to itself. */
export function adminPageCsp(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

const CSS = `
:root { color-scheme: light dark; --line: #8884; --warn: #b45309; --bad: #b91c1c; --ok: #15803d; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; }
header { display: flex; align-items: center; gap: .75rem; }
h1 { font-size: 1.3rem; margin: 0; }
h2 { font-size: 1.1rem; }
.spacer { flex: 1; }
.muted { color: #888; }
table { border-collapse: collapse; width: 100%; margin-top: .75rem; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.time { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.path { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }
.state { padding: 0 .4rem; border-radius: .6rem; border: 1px solid currentColor; font-size: 12px; white-space: nowrap; }
.state-active { color: var(--ok); }
.state-warned { color: var(--warn); }
.state-logged-out { color: var(--bad); }
.state-exempt, .state-untimed { color: #888; }
.soon { color: var(--warn); font-weight: 600; }
button.link { background: none; border: none; padding: 0; color: inherit; text-decoration: underline; cursor: pointer; font: inherit; }
td.actions { white-space: nowrap; }
#message { padding: .5rem .75rem; border-radius: .3rem; border: 1px solid var(--line); }
#message.error { border-color: var(--bad); color: var(--bad); }
#login { display: flex; gap: .5rem; align-items: center; margin: .75rem 0; }
#login[hidden], [hidden] { display: none; }
#detail { margin-top: 1.5rem; padding: .75rem 1rem; border: 1px solid var(--line); border-radius: .4rem; }
`;

// Plain browser JavaScript (only single quotes and no backticks; the one interpolation is the
// upstream section's script, written under the same rule).
const SCRIPT = `
'use strict';
(function () {
  var TOKEN_KEY = 'session-timeout-proxy.admin-token';
  var REFRESH_MS = 5000;
  var $ = function (id) { return document.getElementById(id); };
  var offsetMs = 0; // server clock minus browser clock
  var rows = [];
  var busy = false;

  function token() { try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; } }
  function setToken(v) { try { if (v) sessionStorage.setItem(TOKEN_KEY, v); else sessionStorage.removeItem(TOKEN_KEY); } catch (e) {} }
  function serverNow() { return Date.now() + offsetMs; }
  window.stpAdmin = { api: function (m, p) { return api(m, p); }, serverNow: serverNow }; // for the charts (page-charts.ts)

  function show(text, isError) {
    var m = $('message');
    m.textContent = text;
    m.className = isError ? 'error' : '';
    m.hidden = !text;
  }

  function api(method, path) {
    var headers = { 'accept': 'application/json' };
    var t = token();
    if (t) headers['authorization'] = 'Bearer ' + t;
    return fetch(path, { method: method, headers: headers, cache: 'no-store', credentials: 'omit' }).then(function (res) {
      return res.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) {}
        if (res.status === 401) {
          $('login').hidden = false;
          $('forget').hidden = !token();
          throw new Error(token() ? 'The admin token was not accepted. Enter the current PROXY_ADMIN_TOKEN.' : 'This admin API needs a token: enter PROXY_ADMIN_TOKEN.');
        }
        if (!res.ok) throw new Error((body && (body.message || body.error)) || ('HTTP ' + res.status));
        $('login').hidden = true;
        $('forget').hidden = !token();
        return body;
      });
    });
  }

  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function clockText(ms) {
    var d = new Date(ms);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }
  function durationText(ms) {
    if (ms <= 0) return 'due now';
    var s = Math.floor(ms / 1000);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return (h ? h + 'h ' : '') + (h || m ? m + 'm ' : '') + sec + 's';
  }
  function cell(tr, text, cls, title) {
    var td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    if (title) td.title = title;
    tr.appendChild(td);
    return td;
  }
  /** why a user's notification sockets can(not) carry a warning, as a tooltip */
  function reachText(reach) {
    var parts = [reach.warnableSockets + ' notification socket(s) can carry a warning'];
    reach.unwarnableSockets.forEach(function (s) { parts.push(s.path + ' (' + s.framing + '): ' + s.reason); });
    if (reach.httpTransport) parts.push('seen on HTTP transport ' + reach.httpTransport.transport + ': warnings cannot be injected there');
    return parts.join('\\n');
  }
  function button(label, onClick, cls) {
    var b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    if (cls) b.className = cls;
    b.addEventListener('click', onClick);
    return b;
  }
  function userPath(user) { return '/admin/sessions/' + encodeURIComponent(user); }
${UPSTREAM_SCRIPT}
  function render(data) {
    offsetMs = data.now - Date.now();
    var s = data.settings;
    $('settings').textContent = (s.enabled
      ? 'Timeout ' + s.timeoutMinutes + ' min, warning ' + s.notifyBeforeMinutes + ' min before'
      : 'Timeout disabled (timeout.session.enabled=false)')
      + (s.exemptUsers.length ? ' · exempt: ' + s.exemptUsers.join(', ') : '')
      + ' · mode: ' + data.mode;
    $('summary').textContent = data.sessions.length + ' user' + (data.sessions.length === 1 ? '' : 's');
    var tbody = $('sessions').querySelector('tbody');
    var fresh = document.createDocumentFragment();
    rows = [];
    data.sessions.forEach(function (v) {
      var tr = document.createElement('tr');
      var userCell = document.createElement('td');
      userCell.appendChild(button(v.user, function () { detail(v.user); }, 'link'));
      tr.appendChild(userCell);
      var stateCell = document.createElement('td');
      var badge = document.createElement('span');
      badge.className = 'state state-' + v.state;
      badge.textContent = v.state;
      stateCell.appendChild(badge);
      tr.appendChild(stateCell);
      var last = v.lastActivity;
      cell(tr, last ? last.method + ' ' + last.path : '—', 'path', last ? last.iso : '');
      cell(tr, v.deadlineMs === null ? '—' : clockText(v.deadlineMs), 'time', v.deadlineIso || '');
      var left = cell(tr, '', 'time');
      cell(tr, v.warned ? 'yes' : 'no');
      var reach = v.reachability;
      var cannot = reach.warnableSockets === 0 && (reach.unwarnableSockets.length > 0 || reach.httpTransport);
      var onReplicas = v.socketsByReplica ? Object.keys(v.socketsByReplica).map(function (r) { return r + ': ' + v.socketsByReplica[r]; }).join(', ') : '';
      cell(tr, String(v.openSockets) + (onReplicas ? ' (' + onReplicas + ')' : '') + (cannot ? ' (cannot be warned)' : ''), 'num', (onReplicas ? 'open sockets per replica. ' : '') + reachText(reach));
      cell(tr, String(v.credentials), 'num');
      cell(tr, v.exempt ? 'yes' : 'no');
      var actions = document.createElement('td');
      actions.className = 'actions';
      if (v.state !== 'logged-out') {
        actions.appendChild(button('Log out now', function () { act(v.user, 'logout'); }));
        actions.appendChild(document.createTextNode(' '));
        actions.appendChild(button('Extend', function () { act(v.user, 'extend'); }));
      }
      tr.appendChild(actions);
      fresh.appendChild(tr);
      rows.push({ view: v, left: left });
    });
    tbody.replaceChildren(fresh);
    $('sessions').hidden = data.sessions.length === 0;
    $('empty').hidden = data.sessions.length !== 0;
    tick();
  }

  function tick() {
    var now = serverNow();
    rows.forEach(function (r) {
      var v = r.view;
      if (v.deadlineMs === null) {
        r.left.textContent = v.state === 'logged-out' && v.loggedOutAtMs !== null ? 'logged out ' + clockText(v.loggedOutAtMs) : '—';
        r.left.className = 'time';
        return;
      }
      var ms = v.deadlineMs - now;
      r.left.textContent = durationText(ms);
      r.left.className = 'time' + (v.warnAtMs !== null && now >= v.warnAtMs ? ' soon' : '');
    });
  }

  function load() {
    if (busy) return;
    busy = true;
    api('GET', '/admin/sessions').then(function (data) {
      render(data);
      document.dispatchEvent(new CustomEvent('stp-sessions-loaded'));
      return loadUpstream();
    }).then(function () {
      if ($('message').className === 'error') show('', false);
    }).catch(function (err) { show(err.message, true); }).then(function () { busy = false; });
  }

  function act(user, what) {
    if (what === 'logout' && !confirm('Log ' + user + ' out now? Their license units are released.')) return;
    api('POST', userPath(user) + '/' + what).then(function () {
      show(what === 'logout' ? user + ' is being logged out.' : user + '\\'s deadline was extended.', false);
      load();
    }).catch(function (err) { show(user + ': ' + err.message, true); });
  }

  function detail(user) {
    api('GET', userPath(user)).then(function (v) {
      $('detail-title').textContent = v.user;
      $('detail-explanation').textContent = v.explanation;
      var body = $('detail-recent');
      var frag = document.createDocumentFragment();
      v.recent.slice().reverse().forEach(function (n) {
        var tr = document.createElement('tr');
        cell(tr, clockText(n.atMs), 'time', n.iso);
        cell(tr, n.method + ' ' + n.path, 'path');
        cell(tr, n.counted ? 'yes' : 'no');
        cell(tr, n.rule, 'path');
        frag.appendChild(tr);
      });
      body.replaceChildren(frag);
      var patterns = document.createDocumentFragment();
      (v.patterns || []).forEach(function (p) {
        var tr = document.createElement('tr');
        cell(tr, p.method + ' ' + p.shape, 'path');
        cell(tr, p.state);
        cell(tr, p.interval === null ? '-' : p.interval);
        if (p.timerSinceMs === null) cell(tr, '-');
        else cell(tr, clockText(p.timerSinceMs), 'time', p.timerSinceIso);
        cell(tr, String(p.seen));
        cell(tr, String(p.timerRequests));
        patterns.appendChild(tr);
      });
      $('detail-patterns').replaceChildren(patterns);
      $('detail').hidden = false;
      document.dispatchEvent(new CustomEvent('stp-session-detail', { detail: v }));
    }).catch(function (err) { show(user + ': ' + err.message, true); });
  }

  $('login').addEventListener('submit', function (e) {
    e.preventDefault();
    setToken($('token').value.trim());
    $('token').value = '';
    show('', false);
    load();
  });
  $('forget').addEventListener('click', function () { setToken(''); $('forget').hidden = true; load(); });
  $('refresh').addEventListener('click', load);
  $('detail-close').addEventListener('click', function () { $('detail').hidden = true; });
  setInterval(tick, 1000);
  setInterval(load, REFRESH_MS);
  load();
})();
`;
