/**
 * The admin page's "Upstream" section: logout candidates, "who am I" health and the WebSocket
 * framing rows of GET /admin/upstream. Plain browser JavaScript that runs inside the page's
 * script (it uses the page's `api`, `cell`, `clockText` and `$`); text is set with textContent only.
 */

export const UPSTREAM_HTML = `
<section id="upstream" hidden>
  <h2>Upstream</h2>
  <p id="upstream-logout" class="muted"></p>
  <table id="upstream-candidates"><thead><tr>
    <th>Logout candidate</th><th>Verified</th><th>Last result</th><th>Status</th><th>When</th><th>Calls</th><th>Released</th><th>Unverified</th>
  </tr></thead><tbody></tbody></table>
  <p id="upstream-whoami"></p>
  <h3>WebSocket framing</h3>
  <div id="upstream-websocket" class="muted">not available</div>
</section>
`;

// Only single quotes and no backticks inside (it is embedded in the page's script).
export const UPSTREAM_SCRIPT = `
  function upstreamValue(v) {
    if (v === null || v === undefined) return '—';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }
  function genericTable(data) {
    var list = Array.isArray(data) ? data : (data && typeof data === 'object' ? Object.keys(data).map(function (k) {
      var v = data[k];
      return v && typeof v === 'object' && !Array.isArray(v) ? Object.assign({ key: k }, v) : { key: k, value: v };
    }) : []);
    if (list.length === 0) return null;
    var cols = [];
    list.forEach(function (row) { Object.keys(row || {}).forEach(function (k) { if (cols.indexOf(k) < 0) cols.push(k); }); });
    var table = document.createElement('table');
    var head = document.createElement('tr');
    cols.forEach(function (c) { var th = document.createElement('th'); th.textContent = c; head.appendChild(th); });
    var thead = document.createElement('thead');
    thead.appendChild(head);
    table.appendChild(thead);
    var body = document.createElement('tbody');
    list.forEach(function (row) {
      var tr = document.createElement('tr');
      cols.forEach(function (c) { cell(tr, upstreamValue(row ? row[c] : null), 'path'); });
      body.appendChild(tr);
    });
    table.appendChild(body);
    return table;
  }
  function renderUpstream(u) {
    var l = u.logout;
    $('upstream-logout').textContent = 'Logout: ' + (l.verified ? 'verified with ' + l.verified : 'no candidate verified yet')
      + ' · verification ' + (l.verify ? 'on' : 'off (PROXY_LOGOUT_VERIFY=false)')
      + ' · CSRF cookie ' + l.csrf.cookie + ' → header ' + l.csrf.header;
    var frag = document.createDocumentFragment();
    l.candidates.forEach(function (c) {
      var tr = document.createElement('tr');
      cell(tr, c.method + ' ' + c.path, 'path');
      cell(tr, c.verified ? 'yes (tried first)' : 'no');
      cell(tr, c.lastResult || 'not tried');
      cell(tr, c.lastStatus === null ? '—' : String(c.lastStatus), 'num');
      cell(tr, c.lastAtMs === null ? '—' : clockText(c.lastAtMs), 'time');
      cell(tr, String(c.calls), 'num');
      cell(tr, String(c.released), 'num');
      cell(tr, String(c.unverified), 'num');
      frag.appendChild(tr);
    });
    $('upstream-candidates').querySelector('tbody').replaceChildren(frag);
    var w = u.whoami;
    $('upstream-whoami').textContent = 'Who am I: ' + w.calls + ' calls'
      + (w.lastStatus !== null ? ' · last status ' + w.lastStatus : '')
      + (w.lastLatencyMs !== null ? ' · last latency ' + w.lastLatencyMs + ' ms' : '')
      + ' · no answer ' + w.failures + ' · server errors ' + w.serverErrors
      + (w.lastError ? ' · last error ' + w.lastError + ' at ' + clockText(w.lastErrorAtMs) : '');
    var ws = $('upstream-websocket');
    var table = u.websocket === null ? null : genericTable(u.websocket);
    if (table) { ws.className = ''; ws.replaceChildren(table); }
    else { ws.className = 'muted'; ws.textContent = u.websocket === null ? 'not available' : 'no WebSocket seen yet'; }
  }
  function loadUpstream() {
    // a proxy built without the upstream report answers 404: the section stays hidden
    return api('GET', '/admin/upstream').then(function (u) { $('upstream').hidden = false; renderUpstream(u); },
      function () { $('upstream').hidden = true; });
  }
`;
