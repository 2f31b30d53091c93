/**
 * The plain-HTTP forwarding tests of proxy-http.test.ts, run again with
 * PROXY_HTTP_FORWARDER=http-proxy (Fastify + @fastify/http-proxy), the path unusual requests
 * always take: both forwarders must behave the same.
 */
process.env.STP_TEST_HTTP_FORWARDER = 'http-proxy';
await import('./proxy-http.test.js');
