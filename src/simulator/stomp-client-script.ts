/**
 * Panopticon simulator: the dashboard's STOMP transport (plain browser JS kept as a string), used in
 * the stomp and sockjs-stomp personalities with the real `@stomp/stompjs` and `sockjs-client`
 * bundles. It defines `window.simStompTransport(config, page)`; the dashboard script calls it with
 * its hooks (onNotification, onLive, status setters). Every STOMP ERROR, unhandled frame or socket
 * error is kept in `window.__simStompProblems` and written to the console as an error.
 */
export const stompClientScript = String.raw`
(function () {
  'use strict';
  window.__simStompProblems = [];
  function problem(text) {
    window.__simStompProblems.push(text);
    console.error('STOMP client problem: ' + text);
  }

  window.simStompTransport = function (config, page) {
    var ctx = config.contextPath;
    var LOGGED_OUT_CLOSE_CODE = 4001;
    var wsBase = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host;
    var options = {
      reconnectDelay: 3000,
      heartbeatIncoming: config.stompHeartBeatMs,
      heartbeatOutgoing: config.stompHeartBeatMs,
      onConnect: function () {
        page.setNotifyStatus('connected');
        page.setDataStatus('connected');
        client.subscribe(config.notificationDestination, function (message) { page.onNotification(message.body); });
        client.subscribe(config.dataDestination, function (message) {
          var msg;
          try { msg = JSON.parse(message.body); } catch (e) { problem('live data that is not JSON: ' + message.body.slice(0, 80)); return; }
          page.onLive(msg);
        });
      },
      onStompError: function (frame) { problem('ERROR frame: ' + (frame.headers.message || frame.body)); },
      onUnhandledMessage: function (message) { problem('MESSAGE for no subscription: ' + message.headers.subscription); },
      onUnhandledReceipt: function (frame) { problem('unexpected RECEIPT ' + frame.headers['receipt-id']); },
      onUnhandledFrame: function (frame) { problem('unexpected frame ' + frame.command); },
      onWebSocketError: function () { if (!page.leaving()) problem('socket error'); },
      onWebSocketClose: function (event) {
        page.setNotifyStatus('closed (' + event.code + ')');
        page.setDataStatus('closed (' + event.code + ')');
        if (page.leaving()) { client.deactivate(); return; }
        if (event.code === LOGGED_OUT_CLOSE_CODE) { client.deactivate(); page.signedOutByServer(); }
      }
    };
    if (config.wsProtocol === 'sockjs-stomp') {
      options.webSocketFactory = function () {
        return new SockJS(location.origin + config.sockJsPrefix, null, { transports: ['websocket'] });
      };
    } else {
      options.brokerURL = wsBase + config.stompPath;
    }
    var client = new StompJs.Client(options);
    client.activate();
  };
})();
`;
