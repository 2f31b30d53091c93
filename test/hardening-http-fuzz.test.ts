/**
 * Hardening, group 2c: random request lines and headers, as raw bytes, through the real proxy
 * (fast-check, bounded runs; HTTP_FUZZ_SEED=<n> replays a run). Whatever arrives, the proxy never
 * answers with a failure of its own (500, or a 502/504 although the upstream is healthy), never
 * crashes, and answers a normal request after every input.
 */
import t from 'tap';
import fc from 'fast-check';
import { head, rawExchange } from './helpers/raw-http.js';
import { props, startStack } from './helpers/stack.js';

const RUNS = 300;
const seed = process.env['HTTP_FUZZ_SEED'] ? Number(process.env['HTTP_FUZZ_SEED']) : Date.now() % 2 ** 31;

const ascii = (maxLength: number) => fc.string({ unit: 'binary-ascii', maxLength });
const printable = (maxLength: number) => fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength });
const tokenChars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&\'*+-.^_`|~'.split('');
const token = (maxLength: number) => fc.string({ unit: fc.constantFrom(...tokenChars), minLength: 1, maxLength });

const method = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'PROPFIND', 'TRACE', 'CONNECT', 'get', 'BREW') },
  { weight: 1, arbitrary: token(10) },
  { weight: 1, arbitrary: ascii(10) },
);
const segment = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('panopticon', 'server', 'rest', 'ws', 'notifications', 'data', 'user', 'timeout', 'reset', 'login', 'admin', 'sessions', '_session-timeout-proxy', 'readyz', 'metrics') },
  { weight: 2, arbitrary: fc.constantFrom('..', '.', '%2e%2e', '%2F', '%00', '%zz', '%E0%A4%A', '\\', '', '%5C', '*', '?', '#', ';') },
  { weight: 2, arbitrary: token(12) },
  { weight: 1, arbitrary: printable(12) },
);
const target = fc.oneof(
  { weight: 12, arbitrary: fc.tuple(fc.array(segment, { maxLength: 6 }), fc.option(printable(20))).map(([parts, query]) => `/${parts.join('/')}${query === null ? '' : `?${query}`}`) },
  { weight: 1, arbitrary: fc.constantFrom('*', '//evil.example/x', 'http://evil.example/x', '', '/rest/user/timeout/reset') },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
);
const version = fc.constantFrom(...Array<string>(12).fill('HTTP/1.1'), 'HTTP/1.0', 'HTTP/1.0', 'HTTP/0.9', 'HTTP/2.0', 'HTTP/1.10', '', 'http/1.1', 'HTTP/1.1 extra');
const headerName = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom('Host', 'Cookie', 'Authorization', 'Content-Length', 'Transfer-Encoding', 'Connection', 'Upgrade', 'Sec-WebSocket-Key', 'Sec-WebSocket-Version', 'Sec-WebSocket-Protocol', 'X-User', 'Expect', 'X-Background-Request', 'X-Forwarded-For', 'X-Forwarded-Host', 'Origin', 'Accept', 'Sec-Fetch-Mode', 'Content-Type', 'Content-Encoding', 'Forwarded') },
  { weight: 2, arbitrary: token(16) },
  { weight: 1, arbitrary: ascii(16) },
);
const headerValue = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('websocket', 'Upgrade', 'close', 'keep-alive', 'chunked', '0', '5', '-1', '99999999999999999999', '100-continue', 'dGhlIHNhbXBsZSBub25jZQ==', '13', 'true', 'ptoken=a.b.c', 'SESSION=x', 'Bearer a.b.c', 'Basic YWxpY2U6YWxpY2U=', 'text/html', 'application/json', 'gzip', 'for=1.2.3.4', 'chat, chat', '') },
  { weight: 4, arbitrary: printable(40) },
  { weight: 1, arbitrary: ascii(40) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
);
interface FuzzRequest { method: string; target: string; version: string; host: boolean; headers: Array<[string, string, string]>; lineEnd: string; body: string | null }

/** Anything goes: odd separators, line ends, versions, bytes. */
const hostile: fc.Arbitrary<FuzzRequest> = fc.record({
  method,
  target,
  version,
  host: fc.boolean(),
  headers: fc.array(fc.tuple(headerName, fc.constantFrom(': ', ':', ' : ', ':\t'), headerValue), { maxLength: 8 }),
  lineEnd: fc.constantFrom('\r\n', '\n', '\r'),
  body: fc.option(ascii(60)),
});

/** Well-formed HTTP/1.1 with odd content: these get past Node's parser to the proxy's own code. */
const plausible: fc.Arbitrary<FuzzRequest> = fc.record({
  method: fc.constantFrom('GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'PROPFIND'),
  target: target.filter((x) => /^[\x21-\x7e]*$/.test(x)),
  version: fc.constant('HTTP/1.1'),
  host: fc.constant(true),
  headers: fc.array(fc.tuple(headerName.filter((n) => /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(n) && !/^(content-length|transfer-encoding)$/i.test(n)), fc.constant(': '), headerValue.filter((v) => /^[\x20-\x7e]*$/.test(v))), { maxLength: 8 }),
  lineEnd: fc.constant('\r\n'),
  body: fc.option(printable(60)),
});

function bytesOf(r: FuzzRequest, wellFormed: boolean): Buffer {
  const lines = [`${r.method} ${r.target} ${r.version}`.trimEnd(), ...(r.host ? ['Host: fuzz'] : []), ...r.headers.map(([n, sep, v]) => `${n}${sep}${v}`)];
  // a well-formed request says how long its body is (and has none without saying so)
  if (wellFormed && r.body !== null) lines.push(`Content-Length: ${r.body.length}`);
  const text = head(lines[0]!, ...lines.slice(1)).replaceAll('\r\n', r.lineEnd) + (r.body ?? '');
  return Buffer.from(text, 'latin1');
}

const request = fc.oneof(
  { weight: 2, arbitrary: plausible.map((r) => bytesOf(r, true)) },
  { weight: 1, arbitrary: hostile.map((r) => bytesOf(r, false)) },
);

t.test('random request lines and headers never make the proxy fail', async (t) => {
  const s = await startStack(t, { properties: props({ enabled: true, minutes: 30, 'notification.minutes': 1 }) });
  const port = Number(new URL(s.proxy.url).port);
  const outcomes = new Map<string, number>();
  let tried = 0;
  const startedMs = Date.now();

  await fc.assert(
    fc.asyncProperty(request, async (bytes) => {
      tried++;
      const answer = await rawExchange(port, bytes, { waitMs: 300 });
      const key = answer.status === undefined ? (answer.closedByServer ? 'closed' : 'waiting') : String(answer.status);
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      if (answer.status !== undefined && answer.status >= 500) {
        throw new Error(`answered ${answer.status}: ${answer.text.slice(0, 300)}`);
      }
      const check = await s.get('/_session-timeout-proxy/healthz');
      if (check.status !== 200) throw new Error(`the proxy stopped answering (${check.status})`);
    }),
    { numRuns: RUNS, seed, endOnFailure: true },
  );

  t.equal((await s.get('/panopticon/login')).status, 200, 'the proxy still serves pages');
  const cookie = await s.login('alice');
  t.equal((await s.get('/panopticon/server/rest/server/myself', { cookie })).status, 200, 'and signed-in requests');
  t.notOk(s.logs.some((l) => Number(l.level) >= 50), 'nothing was logged as an error');
  t.comment(`group 2c (fuzz, HTTP_FUZZ_SEED=${seed}): ${tried} random requests in ${Date.now() - startedMs} ms, outcomes ${JSON.stringify(Object.fromEntries([...outcomes].sort()))}`);
});
