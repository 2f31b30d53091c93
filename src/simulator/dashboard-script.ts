/**
 * Panopticon simulator: the dashboard page's script (plain browser JS kept as a string, no build).
 *
 * It plays the Panopticon web client: a live-data socket, background polling, a user-action button,
 * and the notification socket that shows the timeout warning and follows the logout notice. In the
 * STOMP personalities one STOMP connection (stomp-client-script.ts) carries both subscriptions. All
 * URLs are built from `location` plus the context path, so the page works the same behind a proxy.
 */
export const dashboardScript = String.raw`
(function () {
  'use strict';
  var config = JSON.parse(document.getElementById('sim-config').textContent);
  var ctx = config.contextPath;
  var RECONNECT_DELAY_MS = 3000;
  var KEEPALIVE_MS = 25000;
  var LOGGED_OUT_CLOSE_CODE = 4001;
  var leaving = false;

  function $(id) { return document.getElementById(id); }
  function apiUrl(path) { return location.origin + ctx + path; }
  function wsUrl(path) { return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + ctx + path; }
  function clock() { return new Date().toLocaleTimeString(); }
  function setStatus(text) { $('session-status').textContent = text; }
  function pad2(n) { return n < 10 ? '0' + n : String(n); }

  function callApi(path) {
    return fetch(apiUrl(path), { method: 'GET', credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (res) {
        if (res.status === 401) setStatus('Your session has ended. Please sign in again.');
        return res;
      });
  }

  // live data
  function showLive(msg) {
    if (msg && msg.tile === 'sales') {
      $('live-value').textContent = String(msg.value);
      $('live-at').textContent = new Date(msg.at).toLocaleTimeString();
    }
  }

  function openDataSocket() {
    var ws = new WebSocket(wsUrl('/server/ws/data'));
    ws.onopen = function () { $('data-status').textContent = 'connected'; };
    ws.onmessage = function (event) {
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      showLive(msg);
    };
    ws.onclose = function (event) {
      $('data-status').textContent = 'closed (' + event.code + ')';
      if (!leaving && event.code !== LOGGED_OUT_CLOSE_CODE) setTimeout(openDataSocket, RECONNECT_DELAY_MS);
    };
  }

  // background polling (never a user action)
  function poll() {
    callApi('/server/rest/data/poll')
      .then(function (res) { $('poll-status').textContent = clock() + ' (' + res.status + ')'; })
      .catch(function () { $('poll-status').textContent = clock() + ' (failed)'; });
  }

  // auto-refresh: a timer of the page on a path that is in no list (not a user action either)
  function autoRefresh() {
    callApi('/server/rest/dashboards/7/refresh')
      .then(function (res) { $('auto-refresh-status').textContent = clock() + ' (' + res.status + ')'; })
      .catch(function () { $('auto-refresh-status').textContent = clock() + ' (failed)'; });
  }

  // user action
  $('refresh-btn').addEventListener('click', function () {
    callApi('/server/rest/dashboards/refresh')
      .then(function (res) { $('refresh-result').textContent = clock() + ' (' + res.status + ')'; })
      .catch(function () { $('refresh-result').textContent = clock() + ' (failed)'; });
  });

  // timeout warning dialog
  var countdownTimer = null;
  var deadlineMs = 0;
  var focusBefore = null;

  function renderCountdown() {
    var leftSec = Math.max(0, Math.ceil((deadlineMs - Date.now()) / 1000));
    $('timeout-countdown').textContent = pad2(Math.floor(leftSec / 60)) + ':' + pad2(leftSec % 60);
    if (leftSec === 0 && countdownTimer !== null) { clearInterval(countdownTimer); countdownTimer = null; }
  }

  function dialogOpen() { return !$('timeout-dialog').hidden; }

  function showTimeoutDialog(minutes) {
    var n = Number(minutes);
    if (!isFinite(n) || n < 0) return;
    $('timeout-message').textContent = 'You will be signed out in ' + String(n) + ' minute(s) due to inactivity.';
    deadlineMs = Date.now() + n * 60000;
    if (countdownTimer !== null) clearInterval(countdownTimer);
    countdownTimer = setInterval(renderCountdown, 250);
    renderCountdown();
    if (!dialogOpen()) {
      focusBefore = document.activeElement;
      $('timeout-backdrop').hidden = false;
      $('timeout-dialog').hidden = false;
    }
    $('stay-signed-in').focus();
  }

  function closeTimeoutDialog() {
    if (countdownTimer !== null) { clearInterval(countdownTimer); countdownTimer = null; }
    $('timeout-dialog').hidden = true;
    $('timeout-backdrop').hidden = true;
    if (focusBefore && typeof focusBefore.focus === 'function') focusBefore.focus();
    focusBefore = null;
  }

  // Other tabs of the same browser close their warning too once one tab extended the session.
  var tabs = typeof BroadcastChannel === 'function' ? new BroadcastChannel('session-timeout') : null;
  if (tabs) tabs.onmessage = function (event) { if (event.data === 'extended' && dialogOpen()) closeTimeoutDialog(); };

  $('stay-signed-in').addEventListener('click', function () {
    closeTimeoutDialog();
    callApi('/server/rest/user/timeout/reset')
      .then(function (res) {
        if (!res.ok) return;
        setStatus('Session extended at ' + clock() + '.');
        if (tabs) tabs.postMessage('extended');
      })
      .catch(function () { setStatus('Could not reach the server to extend the session.'); });
  });

  // keep keyboard focus inside the modal dialog while it is shown
  document.addEventListener('keydown', function (event) {
    if (event.key === 'Tab' && dialogOpen()) { event.preventDefault(); $('stay-signed-in').focus(); }
  });
  $('timeout-dialog').hidden = true;

  function leave(reason) {
    leaving = true;
    location.assign(ctx + '/login?reason=' + encodeURIComponent(reason || 'Logged out'));
  }

  // notification subscription
  function handleNotification(text) {
    var msg;
    try { msg = JSON.parse(text); } catch (e) { return; }
    if (!msg || typeof msg !== 'object') return;
    if (msg.TimeoutNotification) showTimeoutDialog(msg.TimeoutNotification.minutesUntilTimeout);
    else if (msg.LogoutNotification) leave(msg.LogoutNotification.reason);
  }

  function openNotificationSocket() {
    var ws = new WebSocket(wsUrl('/server/ws/notifications'));
    var keepalive = null;
    ws.onopen = function () {
      $('notify-status').textContent = 'connected';
      keepalive = setInterval(function () { if (ws.readyState === 1) ws.send('ping'); }, KEEPALIVE_MS);
    };
    ws.onmessage = function (event) { if (typeof event.data === 'string') handleNotification(event.data); };
    ws.onclose = function (event) {
      if (keepalive !== null) clearInterval(keepalive);
      $('notify-status').textContent = 'closed (' + event.code + ')';
      if (leaving) return;
      if (event.code === LOGGED_OUT_CLOSE_CODE) { setStatus('You were signed out by the server.'); return; }
      setTimeout(openNotificationSocket, RECONNECT_DELAY_MS);
    };
  }

  // the sockets: two plain JSON sockets, or one STOMP connection (stomp-client-script.ts)
  if (config.wsProtocol === 'stomp' || config.wsProtocol === 'sockjs-stomp') {
    window.simStompTransport(config, {
      onNotification: handleNotification,
      onLive: showLive,
      setNotifyStatus: function (text) { $('notify-status').textContent = text; },
      setDataStatus: function (text) { $('data-status').textContent = text; },
      signedOutByServer: function () { setStatus('You were signed out by the server.'); },
      leaving: function () { return leaving; }
    });
  } else {
    openNotificationSocket();
    openDataSocket();
  }

  setInterval(poll, config.pollIntervalMs);
  if (config.autoRefreshMs > 0) setInterval(autoRefresh, config.autoRefreshMs);
})();
`;
