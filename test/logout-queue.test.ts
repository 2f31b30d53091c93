import t from 'tap';
import http from 'node:http';
import { once } from 'node:events';
import { ManualClock } from '../src/sessions/clock.js';
import { LogoutQueue, type AttemptOutcome, type FinalOutcome, type LogoutJob } from '../src/logout/queue.js';
import { createUpstreamLogout } from '../src/logout/upstream-call.js';
import { CandidateBook } from '../src/logout/candidates.js';
import { RevokedCredentials } from '../src/logout/revoked.js';

const flush = () => new Promise((r) => setImmediate(r));
const req = (fp: string, user = 'alice') => ({ user, fingerprint: fp, kind: 'token-cookie', replay: { cookie: `ptoken=${fp}` }, reason: 'timeout' });

function makeQueue(attempt: (job: LogoutJob) => Promise<AttemptOutcome>, over: Partial<{ concurrency: number; giveUpMs: number }> = {}) {
  const clock = new ManualClock();
  const done: Array<{ fp: string; outcome: FinalOutcome; attempts: number }> = [];
  const retries: number[] = [];
  const queue = new LogoutQueue({
    clock, concurrency: over.concurrency ?? 4, retryMinMs: 1000, retryMaxMs: 60_000, giveUpMs: over.giveUpMs ?? 3_600_000,
    attempt, random: () => 0.5,
    onDone: (job, outcome) => done.push({ fp: job.fingerprint, outcome, attempts: job.attempts }),
    onRetry: (_job, _o, delayMs) => retries.push(delayMs),
  });
  return { clock, queue, done, retries };
}

t.test('released on the fifth try, with growing, capped backoff', async (t) => {
  let calls = 0;
  const { clock, queue, done, retries } = makeQueue(async () => (++calls < 5 ? { kind: 'retry', reason: 'status 500', status: 500 } : { kind: 'released', status: 200 }));
  queue.enqueue(req('a'));
  for (let i = 0; i < 10; i++) {
    await flush();
    clock.advance(60_000);
  }
  await flush();
  t.same(done, [{ fp: 'a', outcome: 'released', attempts: 5 }]);
  t.same(retries, [750, 1500, 3000, 6000], 'equal jitter around 1s, 2s, 4s, 8s');
});

t.test('without verification, an answer is classified by its status alone', async (t) => {
  let status = 200;
  const server = http.createServer((rq, rs) => { rq.resume(); rs.statusCode = status; rs.end('{}'); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const upstream = new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
  const call = createUpstreamLogout({
    upstream, candidates: new CandidateBook([{ method: 'POST', path: '/logout' }], () => 0), timeoutMs: 2000,
    backgroundHeader: { name: 'x-b', value: '1' }, csrf: { cookie: 'XSRF-TOKEN', header: 'X-XSRF-TOKEN' }, verify: undefined,
  });
  const job = { ...req('a'), enqueuedAtMs: 0, attempts: 0, nextAttemptAtMs: 0, lastError: undefined };
  const expect: Array<[number, string]> = [[200, 'released'], [302, 'released'], [401, 'already-gone'], [403, 'already-gone'], [500, 'retry'], [404, 'retry'], [429, 'retry']];
  for (const [s, kind] of expect) {
    status = s;
    t.equal((await call(job)).kind, kind, `${s} -> ${kind}`);
  }
  status = 403;
  t.equal((await call({ ...job, csrf: 'tok' })).kind, 'retry', '403 while a CSRF token was sent is a CSRF failure, not "already gone"');
  status = 404;
  t.match(await call(job), { kind: 'retry', reason: /no logout candidate ended the session: POST \/logout: 404/ }, 'a wrong logout path is retried (and visible), never dropped');
});

t.test('a credential is queued once; a throwing attempt is retried', async (t) => {
  let calls = 0;
  const { clock, queue, done } = makeQueue(async () => { if (++calls === 1) throw new Error('socket hang up'); return { kind: 'released', status: 200 }; });
  t.equal(queue.enqueue(req('a')), true);
  t.equal(queue.enqueue(req('a')), false);
  await flush();
  clock.advance(2000);
  await flush();
  t.same(done.map((d) => d.outcome), ['released']);
  t.equal(calls, 2);
});

t.test('gives up only after giveUpMs, reporting failed', async (t) => {
  const { clock, queue, done } = makeQueue(async () => ({ kind: 'retry', reason: 'status 500' }), { giveUpMs: 3_600_000 });
  queue.enqueue(req('a'));
  for (let i = 0; i < 200 && done.length === 0; i++) {
    await flush();
    clock.advance(60_000);
  }
  t.equal(done[0]?.outcome, 'failed');
  t.ok(done[0]!.attempts > 60, `retried ${done[0]!.attempts} times within the hour`);
});

t.test('bounded concurrency; a hanging job does not hold the others', async (t) => {
  let inFlight = 0;
  let maxInFlight = 0;
  const { queue, done } = makeQueue(async (job) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    if (job.fingerprint === 'hang') await new Promise(() => {});
    await flush();
    inFlight--;
    return { kind: 'released', status: 200 };
  }, { concurrency: 3 });
  queue.enqueue(req('hang', 'slow'));
  for (let i = 0; i < 100; i++) queue.enqueue(req(`u${i}`, `u${i}`));
  for (let i = 0; i < 200 && done.length < 100; i++) await flush();
  t.equal(done.length, 100, 'all others released while one hangs');
  t.equal(maxInFlight, 3);
});

t.test('pending jobs survive a restore', async (t) => {
  const a = makeQueue(async () => ({ kind: 'retry', reason: 'down' }));
  a.queue.enqueue(req('x'));
  await flush();
  const saved = a.queue.pending();
  a.queue.close();
  t.equal(saved.length, 1);
  t.equal(saved[0]!.attempts, 1);
  const b = makeQueue(async () => ({ kind: 'released', status: 200 }));
  b.queue.restore(saved);
  await flush();
  t.same(b.done, [{ fp: 'x', outcome: 'released', attempts: 2 }]);
});

t.test('the upstream call sends the credential and the background marker', async (t) => {
  const seen: http.IncomingHttpHeaders[] = [];
  let status = 500;
  const server = http.createServer((rq, rs) => { seen.push(rq.headers); t.equal(rq.method, 'POST'); rs.statusCode = status; rs.end('{}'); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const opts = { csrf: { cookie: 'XSRF-TOKEN', header: 'X-XSRF-TOKEN' }, verify: undefined };
  const call = createUpstreamLogout({ ...opts, upstream: new URL(`http://127.0.0.1:${port}`), candidates: new CandidateBook([{ method: 'POST', path: '/panopticon/server/rest/auth/logout' }], () => 0), timeoutMs: 2000, backgroundHeader: { name: 'x-background-request', value: 'true' } });
  const job = { ...req('a'), enqueuedAtMs: 0, attempts: 0, nextAttemptAtMs: 0, lastError: undefined };
  t.same(await call(job), { kind: 'retry', reason: 'POST /panopticon/server/rest/auth/logout: status 500', status: 500, candidate: 'POST /panopticon/server/rest/auth/logout' });
  status = 200;
  t.same(await call(job), { kind: 'released', status: 200, candidate: 'POST /panopticon/server/rest/auth/logout' });
  t.equal(seen[0]!.cookie, 'ptoken=a');
  t.equal(seen[0]!['x-background-request'], 'true');
  const down = createUpstreamLogout({ ...opts, upstream: new URL('http://127.0.0.1:1'), candidates: new CandidateBook([{ method: 'POST', path: '/x' }], () => 0), timeoutMs: 500, backgroundHeader: { name: 'x-b', value: '1' } });
  t.equal((await down(job)).kind, 'retry', 'connection refused is retried');
});

t.test('revoked credentials are refused until expiry or the cap', async (t) => {
  const r = new RevokedCredentials(10_000);
  r.add('a', 'alice', 0);
  r.add('b', 'bob', 0, 5_000);
  r.add('c', 'carol', 0, -1);
  t.ok(r.lookup('a', 9_999));
  t.notOk(r.lookup('a', 10_000));
  t.ok(r.lookup('b', 4_999));
  t.notOk(r.lookup('b', 5_000));
  t.notOk(r.lookup('c', 0), 'already expired: nothing to refuse');
});
