/**
 * Hardening, group 2b: requests whose framing is hostile, sent as raw bytes to the real proxy:
 * oversized and duplicated headers, request targets with `..`, encoded slashes, NUL bytes and
 * foreign hosts (as HTTP requests and as WebSocket upgrades), and impossible Content-Length values.
 * Each must get a clear 4xx (or be passed to the upstream unchanged, which then decides), never a
 * 5xx and never a crash; after each batch the proxy still answers a normal request.
 */
import t, { type Test } from 'tap';
import net from 'node:net';
import { MINUTE_MS } from '../src/properties/settings.js';
import { ManualClock } from '../src/sessions/clock.js';
import { head, rawExchange, type RawAnswer } from './helpers/raw-http.js';
import { props, startStack, type Stack } from './helpers/stack.js';

const UPGRADE = ['Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13'];

interface Batch { name: string; inputs: number; answers: Map<string, number> }

function note(batch: Batch, answer: RawAnswer): void {
  batch.inputs++;
  const key = answer.status === undefined ? (answer.closedByServer ? 'closed' : 'no answer') : String(answer.status);
  batch.answers.set(key, (batch.answers.get(key) ?? 0) + 1);
}

async function stillServes(t: Test, s: Stack, cookie: string, batch: Batch) {
  t.equal((await s.get('/panopticon/login')).status, 200, `after ${batch.name}: still serving pages`);
  t.equal((await s.get('/panopticon/server/rest/server/myself', { cookie })).status, 200, `after ${batch.name}: and signed-in requests`);
  t.comment(`group 2b, ${batch.name}: ${batch.inputs} inputs, answers ${JSON.stringify(Object.fromEntries(batch.answers))}`);
}


/** True when the proxy itself (Node, Fastify or our code) gave a JSON error body with a 4xx. */
function clearRefusal(answer: RawAnswer): boolean {
  if (answer.status === undefined || answer.status < 400 || answer.status >= 500) return false;
  try {
    return typeof (JSON.parse(answer.body) as { error?: unknown }).error === 'string';
  } catch {
    return false;
  }
}

t.test('hostile framing is refused with a clear 4xx and the proxy keeps serving', async (t) => {
  const clock = new ManualClock(Date.now());
  const s = await startStack(t, { clock, properties: props({ enabled: true, minutes: 30 }) });
  const port = Number(new URL(s.proxy.url).port);
  const cookie = await s.login('alice');
  await s.get('/panopticon/', { cookie });
  const deadlineMs = s.proxy.engine.describe('alice')!.deadlineMs!;
  clock.advance(MINUTE_MS);
  const totals: Batch[] = [];
  const batch = (name: string): Batch => {
    const b = { name, inputs: 0, answers: new Map<string, number>() };
    totals.push(b);
    return b;
  };

  await t.test('headers beyond Node\'s limits: 431 from Node', async (t) => {
    const b = batch('huge headers');
    const cases = [
      [`X-Big: ${'a'.repeat(20_000)}`],
      Array.from({ length: 1500 }, (_, i) => `X-H${i}: ${'v'.repeat(10)}`),
      [`Cookie: ${'c=1; '.repeat(5000)}`],
      [...UPGRADE, `X-Big: ${'a'.repeat(20_000)}`],
    ];
    for (const lines of cases) {
      const answer = await rawExchange(port, head('GET /panopticon/ HTTP/1.1', 'Host: x', `Cookie: ${cookie}`, ...lines));
      note(b, answer);
      t.equal(answer.status, 431, `${lines.length} header line(s), first ${lines[0]!.slice(0, 12)}...`);
    }
    const longTarget = await rawExchange(port, head(`GET /panopticon/${'p'.repeat(20_000)} HTTP/1.1`, 'Host: x'));
    note(b, longTarget);
    t.equal(longTarget.status, 431, 'a 20 KB request target counts against the same limit');
    await stillServes(t, s, cookie, b);
  });

  await t.test('request targets: traversal, encoded slashes, NUL, foreign hosts', async (t) => {
    const b = batch('request targets');
    const before = s.sim.requests.length;
    const targets = [
      '/panopticon/../../etc/passwd', '/panopticon/%2e%2e/%2e%2e/etc/passwd', '/panopticon/%2E%2E%2F%2E%2E%2Fetc', '/panopticon%2F..%2F..%2Fetc',
      '/panopticon/..%2F..%2Fetc', '/panopticon/server/rest/user/timeout/../timeout/reset', '/rest/user/timeout/reset/..',
      '/panopticon/server/ws/notifications/../data', '/panopticon/.%2e/x', '//evil.example/x', '/\\evil.example/x', '/\\\\evil.example/x',
      'http://evil.example/x', 'https://evil.example:443/x', '/panopticon/%zz', '/panopticon/%E0%A4%A', '/panopticon/%00/../x',
      '/panopticon/\u0000x', '/panopticon/x\u0001y', '/panopticon/\u00ff\u00fe', '*', '', '?a=1', '#frag',
    ];
    // passed on as they are (the upstream decides; `*` is asked for as `/*`)
    const forwardedTargets = ['/panopticon/%00', '/panopticon/a%2Fb', '/panopticon/%2F%2Fevil.example', '/*'];
    for (const target of [...targets, ...forwardedTargets]) {
      for (const upgrade of [false, true]) {
        const answer = await rawExchange(port, head(`GET ${target} HTTP/1.1`, 'Host: x', ...(upgrade ? UPGRADE : ['Connection: close'])));
        note(b, answer);
        const label = `${upgrade ? 'upgrade' : 'GET'} ${JSON.stringify(target)}`;
        if (answer.status === undefined || answer.status < 400 || answer.status >= 500) {
          t.fail(`${label} answered ${answer.status ?? (answer.closedByServer ? 'nothing (closed)' : 'nothing')}: ${answer.text.slice(0, 200)}`);
        }
      }
    }
    const upstreamSaw = s.sim.requests.slice(before).map((r) => r.path);
    t.same(upstreamSaw.filter((p) => /\.\.|\\/.test(decodeURIComponentSafe(p))), [], 'no traversal or backslash reached the upstream');
    t.same([...new Set(upstreamSaw)].sort(), [...forwardedTargets].sort(), 'only the harmless targets were forwarded, unchanged, as request and as upgrade');
    await stillServes(t, s, cookie, b);
  });

  await t.test('refusals made by the proxy itself are clear JSON 4xx', async (t) => {
    const b = batch('proxy refusals');
    const cases: Array<[string, string[]]> = [
      ['GET /panopticon/../x HTTP/1.1', []],
      ['GET /panopticon/../x HTTP/1.1', UPGRADE],
      ['GET /panopticon/%zz HTTP/1.1', []],
      ['GET /panopticon/%zz HTTP/1.1', UPGRADE],
      ['GET http://evil.example/x HTTP/1.1', UPGRADE],
      ['GET /panopticon/x HTTP/1.1', ['Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: short', 'Sec-WebSocket-Version: 13']],
    ];
    for (const [line, extra] of cases) {
      const answer = await rawExchange(port, head(line, 'Host: x', ...extra));
      note(b, answer);
      t.ok(clearRefusal(answer), `${line}${extra.length ? ' (upgrade)' : ''}: ${answer.status} ${answer.body.slice(0, 120)}`);
    }
    t.ok(s.logs.some((l) => l.msg === 'request' && l.reason === 'bad_request_target' && l.status === 400), 'an unroutable target still gets its access-log line, with the reason');
    // a refused upgrade must not leave its connection open: nobody would ever read or close it
    for (const target of ['/panopticon/%zz', '/panopticon/../x', '/panopticon/x%E0%A4%A']) {
      const ended = await new Promise<string>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.write(head(`GET ${target} HTTP/1.1`, 'Host: x', ...UPGRADE)));
        let text = '';
        socket.on('data', (c: Buffer) => { text += c.toString('latin1'); });
        const timer = setTimeout(() => { socket.destroy(); resolve(`still open after 3 s (${text.split('\r\n')[0]})`); }, 3000);
        socket.on('close', () => { clearTimeout(timer); resolve(`closed by the proxy after ${text.split('\r\n')[0]}`); });
        socket.on('error', () => undefined);
      });
      b.inputs++;
      t.match(ended, /^closed by the proxy after HTTP\/1\.1 400/, `upgrade of ${target}: ${ended}`);
    }
    await stillServes(t, s, cookie, b);
  });

  await t.test('absurd Content-Length and framing: 400 from Node', async (t) => {
    const b = batch('content length');
    const cases = [
      ['Content-Length: 99999999999999999999'], ['Content-Length: -1'], ['Content-Length: 3', 'Content-Length: 5'],
      ['Content-Length: 3, 5'], ['Content-Length: 1e3'], ['Content-Length: 0x10'], ['Content-Length: three'], ['Content-Length: +3'],
      ['Content-Length: 3', 'Transfer-Encoding: chunked'], ['Transfer-Encoding: gzip'], ['Transfer-Encoding: chunked, identity'],
      ['Transfer-Encoding: chunked', 'Transfer-Encoding: identity'], ['Transfer-Encoding: xchunked'],
    ];
    for (const lines of cases) {
      const answer = await rawExchange(port, head('POST /panopticon/server/rest/dashboards/refresh HTTP/1.1', 'Host: x', `Cookie: ${cookie}`, ...lines) + 'abc');
      note(b, answer);
      t.equal(answer.status, 400, lines.join(' + '));
    }
    const badChunk = await rawExchange(port, head('POST /panopticon/server/rest/dashboards/refresh HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked') + 'zz\r\nabc\r\n0\r\n\r\n');
    note(b, badChunk);
    t.ok(badChunk.status === 400 || (badChunk.status === undefined && badChunk.closedByServer), `a bad chunk size ends the exchange (${badChunk.status ?? 'closed'})`);
    await stillServes(t, s, cookie, b);
  });

  await t.test('a huge but well-formed Content-Length whose body never comes: no 5xx, nothing left behind', async (t) => {
    const b = batch('unfinished body');
    for (const length of ['9007199254740991', '1048576']) {
      const answer = await rawExchange(port, head('POST /panopticon/server/rest/dashboards/refresh HTTP/1.1', 'Host: x', `Content-Length: ${length}`, 'Content-Type: application/octet-stream') + 'abc', { waitMs: 500 });
      note(b, answer);
      t.ok(answer.status === undefined || answer.status < 500, `Content-Length ${length} with 3 bytes sent: ${answer.status ?? 'still waiting for the body'}`);
    }
    await stillServes(t, s, cookie, b);
  });

  t.equal(s.proxy.engine.list().length, 1, 'only alice is tracked');
  t.notOk(s.logs.some((l) => Number(l.level) >= 50), 'nothing was logged as an error');
  t.comment(`group 2b total: ${totals.reduce((n, x) => n + x.inputs, 0)} hostile requests`);
});

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
