/**
 * The admin page's pictures, drawn as inline SVG by the page's own script (no library, no CDN):
 *   - the last 24 hours of this replica (GET /admin/history): users tracked, and per 5 minutes the
 *     warnings, logouts by outcome (released, unverified, failed) and refused credentials;
 *   - in one user's detail, a timeline of their recent requests (counted above, not counted
 *     below, the rule in each dot's tooltip) with the warning, the deadline and "now" marked.
 * The main page script exposes its API helper as window.stpAdmin and announces a loaded detail with
 * the `stp-session-detail` event; everything else lives here.
 */

export const HISTORY_SECTION_HTML = `<section id="history" hidden>
  <h2>Last 24 hours <span class="muted">(this replica)</span></h2>
  <div id="history-chart"></div>
  <p id="history-legend" class="legend"></p>
</section>`;

export const TIMELINE_HTML = `<div id="detail-timeline"></div>
  <p id="detail-timeline-legend" class="legend" hidden></p>`;

export const CHARTS_CSS = `
#history { margin-top: 1rem; }
#history h2 { margin: .5rem 0; }
svg.chart { width: 100%; height: auto; display: block; font: 11px system-ui, sans-serif; }
svg.chart .axis { stroke: #8886; stroke-width: 1; }
svg.chart .grid { stroke: #8882; stroke-width: 1; }
svg.chart text { fill: #888; }
svg.chart text.mark-label { font-weight: 600; }
svg.chart .users { fill: none; stroke: #2563eb; stroke-width: 2; }
svg.chart .users-area { fill: #2563eb22; stroke: none; }
.c-warnings { fill: #d97706; background: #d97706; }
.c-released { fill: #15803d; background: #15803d; }
.c-unverified { fill: #7c3aed; background: #7c3aed; }
.c-failed { fill: #b91c1c; background: #b91c1c; }
.c-refused { fill: #64748b; background: #64748b; }
.c-users { background: #2563eb; }
svg.chart .counted { fill: #15803d; }
svg.chart .passive { fill: none; stroke: #888; stroke-width: 1.5; }
svg.chart .mark-warning { stroke: #d97706; stroke-width: 2; stroke-dasharray: 4 3; }
svg.chart .mark-deadline { stroke: #b91c1c; stroke-width: 2; }
svg.chart .mark-now { stroke: #888; stroke-width: 1; stroke-dasharray: 2 2; }
svg.chart .mark-logout { stroke: #b91c1c; stroke-width: 2; stroke-dasharray: 1 2; }
.legend { display: flex; flex-wrap: wrap; gap: .25rem 1rem; margin: .25rem 0 0; color: #888; font-size: 12px; }
.legend .swatch { display: inline-block; width: .8rem; height: .8rem; border-radius: .15rem; margin-right: .3rem; vertical-align: -1px; }
`;

// Plain browser JavaScript (no template interpolation inside: only single quotes and no backticks).
export const CHARTS_SCRIPT = `
'use strict';
(function () {
  var NS = 'http://www.w3.org/2000/svg';
  var $ = function (id) { return document.getElementById(id); };
  var SERIES = [
    { key: 'warnings', label: 'warnings' },
    { key: 'released', label: 'logged out: released' },
    { key: 'unverified', label: 'logged out: unverified' },
    { key: 'failed', label: 'logged out: failed' },
    { key: 'refused', label: 'credentials refused' }
  ];
  var lastHistoryMs = 0;

  function svgEl(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (parent) parent.appendChild(e);
    return e;
  }
  function svgText(parent, x, y, text, cls, anchor) {
    var t = svgEl('text', { x: x, y: y, 'text-anchor': anchor || 'start' }, parent);
    if (cls) t.setAttribute('class', cls);
    t.textContent = text;
    return t;
  }
  function tip(parent, text) { svgEl('title', {}, parent).textContent = text; }
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function hhmm(ms) { var d = new Date(ms); return pad(d.getHours()) + ':' + pad(d.getMinutes()); }
  function hhmmss(ms) { var d = new Date(ms); return hhmm(ms) + ':' + pad(d.getSeconds()); }
  function niceMax(n) { if (n <= 4) return 4; var p = Math.pow(10, Math.floor(Math.log10(n))); var m = n / p; return (m <= 2 ? 2 : m <= 5 ? 5 : 10) * p; }
  function legend(el, items) {
    el.replaceChildren();
    items.forEach(function (it) {
      var span = document.createElement('span');
      var sw = document.createElement('span');
      sw.className = 'swatch ' + it.cls;
      span.appendChild(sw);
      span.appendChild(document.createTextNode(it.text));
      el.appendChild(span);
    });
    el.hidden = items.length === 0;
  }
  function valueOf(b, key) { return key === 'warnings' || key === 'refused' ? b[key] : b.logouts[key] || 0; }

  function drawHistory(h) {
    var W = 960, L = 44, R = 12, top = 10, usersH = 80, gap = 26, barsH = 110, axisH = 22;
    var H = top + usersH + gap + barsH + axisH;
    var span = h.toMs - h.fromMs;
    var x = function (ms) { return L + (ms - h.fromMs) / span * (W - L - R); };
    var svg = svgEl('svg', { viewBox: '0 0 ' + W + ' ' + H, 'class': 'chart', role: 'img', 'aria-label': 'Users tracked, warnings, logouts and refused credentials over the last 24 hours' });
    var usersMax = niceMax(h.buckets.reduce(function (m, b) { return Math.max(m, b.usersTracked); }, 0));
    var eventsMax = niceMax(h.buckets.reduce(function (m, b) {
      return Math.max(m, SERIES.reduce(function (n, s) { return n + valueOf(b, s.key); }, 0));
    }, 0));
    var usersBase = top + usersH, barsTop = usersBase + gap, barsBase = barsTop + barsH;

    // grid and axes: hour ticks every 3 hours
    var first = Math.ceil(h.fromMs / 3600000) * 3600000;
    for (var t = first; t <= h.toMs; t += 3600000) {
      var tx = x(t);
      var major = new Date(t).getHours() % 3 === 0;
      if (!major) continue;
      svgEl('line', { x1: tx, x2: tx, y1: top, y2: barsBase, 'class': 'grid' }, svg);
      svgText(svg, tx, barsBase + 15, hhmm(t), '', 'middle');
    }
    svgEl('line', { x1: L, x2: W - R, y1: usersBase, y2: usersBase, 'class': 'axis' }, svg);
    svgEl('line', { x1: L, x2: W - R, y1: barsBase, y2: barsBase, 'class': 'axis' }, svg);
    svgText(svg, L - 6, top + 8, String(usersMax), '', 'end');
    svgText(svg, L - 6, usersBase, '0', '', 'end');
    svgText(svg, L + 4, top + 8, 'users tracked', '', 'start');
    svgText(svg, L - 6, barsTop + 8, String(eventsMax), '', 'end');
    svgText(svg, L - 6, barsBase, '0', '', 'end');
    svgText(svg, L + 4, barsTop - 4, 'per ' + Math.round(h.bucketMs / 60000) + ' minutes', '', 'start');

    // users tracked: a line with its area, broken where there is no sample
    var uy = function (n) { return usersBase - n / usersMax * usersH; };
    var runs = [], run = [];
    h.buckets.forEach(function (b, i) {
      var prev = h.buckets[i - 1];
      if (prev && b.startMs - prev.startMs > h.bucketMs) { runs.push(run); run = []; }
      run.push(b);
    });
    if (run.length) runs.push(run);
    runs.forEach(function (r) {
      var pts = r.map(function (b) { return [x(b.startMs + h.bucketMs / 2), uy(b.usersTracked)]; });
      if (pts.length === 1) pts.push([pts[0][0] + 1, pts[0][1]]);
      var d = pts.map(function (p, i) { return (i ? 'L' : 'M') + p[0].toFixed(1) + ' ' + p[1].toFixed(1); }).join(' ');
      svgEl('path', { d: d + ' L' + pts[pts.length - 1][0].toFixed(1) + ' ' + usersBase + ' L' + pts[0][0].toFixed(1) + ' ' + usersBase + ' Z', 'class': 'users-area' }, svg);
      svgEl('path', { d: d, 'class': 'users' }, svg);
    });

    // events: stacked bars per bucket
    var bw = Math.max(1, (W - L - R) * h.bucketMs / span - 1);
    var totals = {};
    SERIES.forEach(function (s) { totals[s.key] = 0; });
    h.buckets.forEach(function (b) {
      var y = barsBase;
      var parts = [];
      SERIES.forEach(function (s) {
        var n = valueOf(b, s.key);
        totals[s.key] += n;
        if (!n) return;
        var hgt = n / eventsMax * barsH;
        y -= hgt;
        var rect = svgEl('rect', { x: x(b.startMs).toFixed(1), y: y.toFixed(1), width: bw.toFixed(1), height: hgt.toFixed(1), 'class': 'c-' + s.key }, svg);
        tip(rect, hhmm(b.startMs) + '–' + hhmm(b.startMs + h.bucketMs) + ': ' + n + ' ' + s.label);
        parts.push(n + ' ' + s.label);
      });
      var hit = svgEl('rect', { x: x(b.startMs).toFixed(1), y: top, width: bw.toFixed(1), height: usersH, fill: 'transparent' }, svg);
      tip(hit, hhmm(b.startMs) + '–' + hhmm(b.startMs + h.bucketMs) + ': up to ' + b.usersTracked + ' users tracked' + (parts.length ? '; ' + parts.join(', ') : ''));
    });
    $('history-chart').replaceChildren(svg);
    legend($('history-legend'), [{ cls: 'c-users', text: 'users tracked' }].concat(SERIES.map(function (s) {
      return { cls: 'c-' + s.key, text: s.label + ' (' + totals[s.key] + ')' };
    })));
    $('history').hidden = false;
  }

  function loadHistory() {
    if (!window.stpAdmin) return;
    lastHistoryMs = Date.now();
    window.stpAdmin.api('GET', '/admin/history').then(drawHistory).catch(function () { lastHistoryMs = 0; });
  }

  function drawTimeline(v) {
    var notes = v.recent || [];
    var now = window.stpAdmin ? window.stpAdmin.serverNow() : Date.now();
    var marks = [];
    if (v.warnAtMs !== null && v.state !== 'logged-out') marks.push({ at: v.warnAtMs, cls: 'mark-warning', label: (v.warned ? 'warned ' : 'warning ') + hhmmss(v.warnAtMs) });
    if (v.deadlineMs !== null) marks.push({ at: v.deadlineMs, cls: 'mark-deadline', label: 'deadline ' + hhmmss(v.deadlineMs) });
    if (v.loggedOutAtMs !== null) marks.push({ at: v.loggedOutAtMs, cls: 'mark-logout', label: 'logged out ' + hhmmss(v.loggedOutAtMs) });
    marks.push({ at: now, cls: 'mark-now', label: 'now' });
    var times = notes.map(function (n) { return n.atMs; }).concat(marks.map(function (m) { return m.at; }));
    if (v.lastActivity) times.push(v.lastActivity.atMs);
    var from = Math.min.apply(null, times), to = Math.max.apply(null, times);
    var margin = Math.max(1000, (to - from) * 0.04);
    from -= margin; to += margin;
    var W = 960, L = 90, R = 16, H = 138, top = 44, laneC = 70, laneP = 104;
    var x = function (ms) { return L + (ms - from) / (to - from) * (W - L - R); };
    var svg = svgEl('svg', { viewBox: '0 0 ' + W + ' ' + H, 'class': 'chart', role: 'img', 'aria-label': 'Recent requests of ' + v.user + ' with the warning and the deadline' });
    svgEl('line', { x1: L, x2: W - R, y1: laneC, y2: laneC, 'class': 'grid' }, svg);
    svgEl('line', { x1: L, x2: W - R, y1: laneP, y2: laneP, 'class': 'grid' }, svg);
    svgText(svg, L - 8, laneC + 4, 'counted', '', 'end');
    svgText(svg, L - 8, laneP + 4, 'not counted', '', 'end');
    svgText(svg, L, H - 4, hhmmss(from), '', 'start');
    svgText(svg, W - R, H - 4, hhmmss(to), '', 'end');
    marks.sort(function (a, b) { return a.at - b.at; });
    // labels on up to three rows so that close marks (warning, now, deadline) stay readable
    var rowEnds = [-Infinity, -Infinity, -Infinity];
    marks.forEach(function (m) {
      var mx = x(m.at);
      var width = m.label.length * 6.5;
      var anchorEnd = mx + width > W - R;
      var left = anchorEnd ? mx - width : mx;
      var row = 0;
      while (row < rowEnds.length - 1 && left < rowEnds[row] + 8) row++;
      rowEnds[row] = left + width;
      var y = 12 + row * 12;
      svgEl('line', { x1: mx, x2: mx, y1: y + 3, y2: laneP + 10, 'class': m.cls }, svg);
      tip(svgText(svg, mx, y, m.label, 'mark-label', anchorEnd ? 'end' : 'start'), m.label);
    });
    notes.forEach(function (n) {
      var c = svgEl('circle', { cx: x(n.atMs).toFixed(1), cy: n.counted ? laneC : laneP, r: 4.5, 'class': n.counted ? 'counted' : 'passive' }, svg);
      tip(c, hhmmss(n.atMs) + '  ' + n.method + ' ' + n.path + '  (' + (n.counted ? 'counted' : 'not counted') + ': ' + n.rule + ')');
    });
    $('detail-timeline').replaceChildren(svg);
    legend($('detail-timeline-legend'), [
      { cls: 'c-released', text: 'counted as activity (resets the timer)' },
      { cls: 'c-refused', text: 'not counted (passive, background, ...): hover a dot for its rule' },
      { cls: 'c-warnings', text: 'warning' },
      { cls: 'c-failed', text: 'deadline / logout' }
    ]);
  }

  document.addEventListener('stp-session-detail', function (e) { drawTimeline(e.detail); });
  document.addEventListener('stp-sessions-loaded', function () {
    if (Date.now() - lastHistoryMs > 60000) loadHistory();
  });
})();
`;
