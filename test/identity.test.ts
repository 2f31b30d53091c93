import t from 'tap';
import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { SignJWT, generateKeyPair } from 'jose';
import pino from 'pino';
import { loadDeploymentConfig, ConfigError } from '../src/config/deployment.js';
import {
  CredentialExtractor,
  IdentityResolver,
  decodeJwtClaims,
  fingerprintOf,
  isJwtLike,
  jwtExpiryMs,
  usernameFromClaims,
  type Credential,
  type Identity,
  type IdentityLogger,
} from '../src/identity/index.js';

const logger: IdentityLogger = pino({ level: 'silent' });
const SECRET = 'test-secret-that-is-long-enough-for-hs512-use-0123456789';

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
/** a token with any header/payload and a junk signature (never verifiable) */
const fakeJwt = (payload: unknown, header: unknown = { alg: 'HS256', typ: 'JWT' }, sig = 'c2ln') =>
  `${b64(header)}.${b64(payload)}.${sig}`;
const nowS = () => Math.floor(Date.now() / 1000);
const signed = (claims: Record<string, unknown>, secret = SECRET, alg = 'HS256') =>
  new SignJWT(claims).setProtectedHeader({ alg }).sign(new TextEncoder().encode(secret));

function config(env: Record<string, string> = {}) {
  return loadDeploymentConfig({ PROXY_UPSTREAM: 'http://127.0.0.1:9', ...env });
}

/** A stand-in "who am I" upstream: answers per credential (cookie or authorization value). */
interface Upstream {
  url: string;
  calls: number;
  seen: http.IncomingHttpHeaders[];
  answers: Map<string, { status: number; body: string; delayMs?: number }>;
  close(): Promise<void>;
}
async function startUpstream(): Promise<Upstream> {
  const up: Upstream = { url: '', calls: 0, seen: [], answers: new Map(), close: async () => {} };
  const server = http.createServer((req, res) => {
    up.calls++;
    up.seen.push(req.headers);
    const key = req.headers.authorization ?? req.headers.cookie ?? '';
    const a = up.answers.get(key) ?? { status: 401, body: '{"error":"unauthorized"}' };
    setTimeout(() => {
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(a.body);
    }, a.delayMs ?? 0);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  up.close = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  return up;
}

function clock(startMs = Date.now()) {
  const c = { ms: startMs, now: () => c.ms };
  return c;
}

async function settle(v: Identity | undefined | Promise<Identity | undefined>) {
  return await v;
}

t.test('extractCredentials: each kind', async (t) => {
  const ex = new CredentialExtractor(config({ PROXY_IDENTITY_HEADER: 'X-User' }));
  const jwt = fakeJwt({ sub: 'alice', exp: 2_000_000_000 });
  const creds = ex.extractCredentials({
    cookie: `theme=dark; ptoken=${jwt}; SESSION=s-123`,
    authorization: 'Basic YWxpY2U6cHc=',
    'x-user': 'alice',
  }, '127.0.0.1');
  t.same(creds.map((c) => c.kind), ['identity-header', 'token-cookie', 'authorization', 'session-cookie']);
  t.same(creds[0]!.replay, { 'x-user': 'alice' });
  t.same(creds[1]!.replay, { cookie: `ptoken=${jwt}` });
  t.equal(creds[1]!.expiresAtMs, 2_000_000_000_000);
  t.same(creds[2]!.replay, { authorization: 'Basic YWxpY2U6cHc=' });
  t.equal(creds[2]!.expiresAtMs, undefined);
  t.same(creds[3]!.replay, { cookie: 'SESSION=s-123' });
  t.equal(creds[3]!.fingerprint, fingerprintOf('session-cookie', 's-123'));
  t.match(creds[3]!.fingerprint, /^[A-Za-z0-9_-]{43}$/);

  const bearer = ex.extractCredentials({ authorization: `Bearer ${jwt}` }, undefined);
  t.equal(bearer.length, 1);
  t.equal(bearer[0]!.expiresAtMs, 2_000_000_000_000, 'Bearer JWT carries its exp');

  t.test('fingerprints are per kind and memoised', async (t) => {
    const a = ex.extractCredentials({ cookie: 'ptoken=same; SESSION=same' }, undefined);
    t.not(a[0]!.fingerprint, a[1]!.fingerprint, 'same raw value, different kinds');
    const b = ex.extractCredentials({ cookie: 'SESSION=same; ptoken=same' }, undefined);
    t.equal(a[0], b[0], 'same Credential object the second time');
    t.ok(Object.isFrozen(a[0]) && Object.isFrozen(a[0]!.replay));
  });
  t.test('custom cookie names', async (t) => {
    const ex2 = new CredentialExtractor(config({ PROXY_TOKEN_COOKIE: 'tok', PROXY_SESSION_COOKIE: 'JSESSIONID' }));
    const c = ex2.extractCredentials({ cookie: 'ptoken=x; tok=y; SESSION=z; JSESSIONID=w' }, undefined);
    t.same(c.map((x) => x.replay), [{ cookie: 'tok=y' }, { cookie: 'JSESSIONID=w' }]);
  });
});

t.test('extractCredentials: cookie edge cases', async (t) => {
  const ex = new CredentialExtractor(config());
  const kinds = (cookie: unknown) => ex.extractCredentials({ cookie } as http.IncomingHttpHeaders, undefined).map((c) => `${c.kind}:${c.replay['cookie']}`);
  t.same(kinds('ptoken=first; ptoken=second'), ['token-cookie:ptoken=first'], 'first duplicate wins (most specific path)');
  t.same(kinds(['ptoken=a', 'SESSION=b; ptoken=c']), ['token-cookie:ptoken=a', 'session-cookie:SESSION=b'], 'header sent twice');
  t.same(kinds('garbage; =; ptoken; ;;; =x; ptoken=abc;SESSION  =  s1 '), ['token-cookie:ptoken=abc', 'session-cookie:SESSION=s1'], 'malformed pairs skipped');
  t.same(kinds('ptoken=; SESSION='), [], 'empty values are no credential');
  t.same(kinds(''), []);
  t.same(kinds('='), []);
  t.same(kinds(42), [], 'non-string header ignored');
  t.same(kinds([undefined, 7]), []);
  t.same(kinds('ptoken=%E0%A4%A'), ['token-cookie:ptoken=%E0%A4%A'], 'bad percent-encoding kept raw, no throw');
  const jwt = fakeJwt({ sub: 'q', exp: 1_900_000_000 });
  const quoted = ex.extractCredentials({ cookie: `ptoken="${jwt}"` }, undefined);
  t.equal(quoted[0]!.replay['cookie'], `ptoken="${jwt}"`, 'quoted value replayed as sent');
  t.equal(quoted[0]!.expiresAtMs, 1_900_000_000_000, 'quoted JWT still decoded');
  const huge = 'x'.repeat(200_000);
  const big = ex.extractCredentials({ cookie: `a=${huge}; ptoken=${huge}; SESSION=ok` }, undefined);
  t.same(big.map((c) => c.kind), ['token-cookie', 'session-cookie'], 'huge header parsed without throwing');
  t.equal(big[0]!.expiresAtMs, undefined);
  const started = Date.now();
  const pathological = ex.extractCredentials({ cookie: `${';'.repeat(200_000)}${'x;'.repeat(100_000)}ptoken=t; SESSION=s` }, undefined);
  t.same(pathological.map((c) => c.replay['cookie']), ['ptoken=t', 'SESSION=s']);
  t.ok(Date.now() - started < 500, 'linear time on a header of many pairs without "="');
});

t.test('identity header and trusted sources', async (t) => {
  t.test('ignored when not configured', async (t) => {
    const ex = new CredentialExtractor(config());
    t.same(ex.extractCredentials({ 'x-user': 'mallory' }, '127.0.0.1'), []);
    const headers: http.IncomingHttpHeaders = { 'x-user': 'mallory' };
    t.equal(ex.stripUntrustedIdentityHeader(headers, '1.2.3.4'), false);
  });
  t.test('used from anywhere when no trusted sources are set', async (t) => {
    const r = new IdentityResolver(config({ PROXY_IDENTITY_HEADER: 'X-User' }), logger, { whoami: async () => t.fail('no whoami') as never });
    const creds = r.extractCredentials({ 'x-user': '  alice ' }, '203.0.113.9');
    const id = r.resolve(creds);
    t.notOk(id instanceof Promise, 'synchronous');
    const sync = id as Identity | undefined;
    t.same(sync && { user: sync.user, via: sync.via }, { user: 'alice', via: 'identity-header' });
    t.same(r.extractCredentials({ 'x-user': '   ' }, '1.1.1.1'), [], 'blank header ignored');
    const headers: http.IncomingHttpHeaders = { 'x-user': 'alice' };
    t.equal(r.stripUntrustedIdentityHeader(headers, '203.0.113.9'), false);
    t.equal(headers['x-user'], 'alice');
  });
  t.test('restricted to trusted sources', async (t) => {
    const cfg = config({
      PROXY_IDENTITY_HEADER: 'x-user',
      PROXY_TRUSTED_SOURCES: '10.0.0.0/8, 192.168.1.5, fd00::/8, ::1, ::ffff:172.16.0.0/108',
    });
    const ex = new CredentialExtractor(cfg);
    const trusted = ['10.1.2.3', '::ffff:10.1.2.3', '::FFFF:10.255.0.1', '192.168.1.5', 'fd00::5', 'fdff:1::1', '::1', '172.16.4.4', '::ffff:172.31.0.1'];
    const untrusted = ['11.0.0.1', '192.168.1.6', '::ffff:11.0.0.1', 'fe80::1', 'fe80::1%eth0', '2001:db8::1', '172.32.0.1', 'not-an-ip', '', undefined];
    for (const addr of trusted) {
      t.same(ex.extractCredentials({ 'x-user': 'alice' }, addr).map((c) => c.kind), ['identity-header'], `trusted ${addr}`);
      const h: http.IncomingHttpHeaders = { 'x-user': 'alice' };
      t.equal(ex.stripUntrustedIdentityHeader(h, addr), false);
      t.equal(h['x-user'], 'alice');
    }
    for (const addr of untrusted) {
      t.same(ex.extractCredentials({ 'x-user': 'alice' }, addr), [], `untrusted ${String(addr)}`);
      const h: http.IncomingHttpHeaders = { 'x-user': 'alice', cookie: 'a=b' };
      t.equal(ex.stripUntrustedIdentityHeader(h, addr), true, `stripped from ${String(addr)}`);
      t.same(h, { cookie: 'a=b' });
      t.equal(ex.stripUntrustedIdentityHeader(h, addr), false, 'nothing left to strip');
    }
  });
  t.test('bad trusted source is a startup error', async (t) => {
    for (const bad of ['10.0.0.0/33', 'nope', '::1/129', '10.0.0.1/x']) {
      t.throws(() => new CredentialExtractor(config({ PROXY_IDENTITY_HEADER: 'x-user', PROXY_TRUSTED_SOURCES: bad })), ConfigError, bad);
    }
  });
});

t.test('JWT helpers', async (t) => {
  const jwt = fakeJwt({ sub: 'a', exp: 1_700_000_000 });
  t.ok(isJwtLike(jwt));
  t.ok(isJwtLike('a.b.'), 'empty signature (alg none) still looks like a JWT');
  for (const v of ['a.b', 'a..c', '.b.c', 'a.b.c.d', 'a b.c.d', 'a.b+/.c', '', 42, undefined, `${'a'.repeat(17_000)}.b.c`]) {
    t.notOk(isJwtLike(v), `not jwt-like: ${String(v).slice(0, 20)}`);
  }
  t.same(decodeJwtClaims(jwt), { sub: 'a', exp: 1_700_000_000 });
  t.equal(decodeJwtClaims(`${b64('not json')}.${b64({ a: 1 })}.x`), undefined, 'header not JSON');
  t.equal(decodeJwtClaims(`${b64({})}.${b64('[1,2]')}.x`), undefined, 'payload an array');
  t.equal(decodeJwtClaims(`${b64({})}.${b64('null')}.x`), undefined);
  t.equal(decodeJwtClaims(`${b64({})}.@@@.x`), undefined);
  t.equal(decodeJwtClaims(`${b64({})}.${b64('{"a":')}.x`), undefined, 'truncated JSON');
  t.equal(jwtExpiryMs(jwt), 1_700_000_000_000);
  t.equal(jwtExpiryMs(fakeJwt({ exp: '1700000000' })), undefined, 'string exp ignored');
  t.equal(jwtExpiryMs('opaque'), undefined);
  const names = ['sub', 'username', 'preferred_username', 'name'];
  t.equal(usernameFromClaims({ sub: 123, username: ['x'], preferred_username: '  ', name: 'carol' }, names), 'carol', 'non-string and blank skipped');
  t.equal(usernameFromClaims({ name: 'n', sub: 's' }, names), 's', 'config order, not payload order');
  t.equal(usernameFromClaims({ sub: null, username: { a: 1 }, name: true }, names), undefined);
  t.equal(usernameFromClaims(JSON.parse('{"__proto__":"evil"}') as Record<string, unknown>, ['__proto__']), 'evil', 'own property only');
  t.equal(usernameFromClaims({}, ['toString']), undefined, 'inherited properties ignored');
});

t.test('tokens with a secret are verified locally', async (t) => {
  let whoamiCalls = 0;
  const c = clock();
  const r = new IdentityResolver(config({ PROXY_TOKEN_SECRET: SECRET }), logger, {
    whoami: async () => { whoamiCalls++; return 'someone-else'; },
    nowMs: c.now,
  });
  t.ok(r.verifiesTokens);
  const resolveCookie = (token: string) => r.resolve(r.extractCredentials({ cookie: `ptoken=${token}` }, undefined));

  const good = await signed({ username: 'alice', sub: 42, exp: Math.floor(c.ms / 1000) + 60 });
  const first = resolveCookie(good);
  t.ok(first instanceof Promise, 'first sight is asynchronous');
  const id = await first;
  t.same(id && { user: id.user, via: id.via, kind: id.credential.kind }, { user: 'alice', via: 'verified-token', kind: 'token-cookie' });
  const again = resolveCookie(good);
  t.notOk(again instanceof Promise, 'cached: synchronous');
  t.equal(again, id, 'same Identity object');

  const hs512 = await signed({ sub: 'bob' }, SECRET, 'HS512');
  t.equal((await resolveCookie(hs512))?.user, 'bob', 'HS512 accepted');
  const bearer = await r.resolve(r.extractCredentials({ authorization: `Bearer ${hs512}` }, undefined));
  t.same(bearer && [bearer.user, bearer.via, bearer.credential.kind], ['bob', 'verified-token', 'authorization']);

  const badSig = await signed({ sub: 'alice' }, 'another-secret-another-secret-another');
  t.equal(await resolveCookie(badSig), undefined, 'bad signature: unknown, claim not used');
  const tampered = good.split('.');
  tampered[1] = b64({ username: 'root', exp: Math.floor(c.ms / 1000) + 60 });
  t.equal(await resolveCookie(tampered.join('.')), undefined, 'tampered payload');
  t.equal(await resolveCookie(fakeJwt({ sub: 'alice' }, { alg: 'none' }, '')), undefined, 'alg none');
  t.equal(await resolveCookie(fakeJwt({ sub: 'alice' }, { alg: 'none' }, 'x')), undefined, 'alg none with signature');
  const { privateKey } = await generateKeyPair('RS256');
  const rs = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'RS256' }).sign(privateKey);
  t.equal(await resolveCookie(rs), undefined, 'RS256 refused');
  const expired = await signed({ sub: 'alice', exp: Math.floor(c.ms / 1000) - 10 });
  t.equal(await resolveCookie(expired), undefined, 'expired');
  t.equal(await resolveCookie('not-a-jwt'), undefined, 'malformed');
  t.equal(await resolveCookie(`${'a'.repeat(100_000)}.b.c`), undefined, 'oversized');
  t.equal(whoamiCalls, 0, 'no who-am-I call for any of these');

  t.test('a cached verified token stops counting once it expires', async (t) => {
    c.ms += 61_000;
    t.equal(await resolveCookie(good), undefined);
  });
  t.test('a genuine token without a usable claim asks who-am-I', async (t) => {
    const noClaim = await signed({ sub: 7 });
    const id = await resolveCookie(noClaim);
    t.same(id && [id.user, id.via], ['someone-else', 'whoami']);
  });
});

t.test('token secret file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'identity-'));
  const file = join(dir, 'secret');
  writeFileSync(file, `  ${SECRET}\n`);
  const r = new IdentityResolver(config({ PROXY_TOKEN_SECRET_FILE: file }), logger, { whoami: async () => undefined });
  const id = await r.resolve(r.extractCredentials({ cookie: `ptoken=${await signed({ sub: 'alice' })}` }, undefined));
  t.same(id && [id.user, id.via], ['alice', 'verified-token'], 'file content trimmed');
  t.throws(() => new IdentityResolver(config({ PROXY_TOKEN_SECRET_FILE: join(dir, 'missing') }), logger), /PROXY_TOKEN_SECRET_FILE=.*cannot be read \(ENOENT\)/);
  writeFileSync(join(dir, 'empty'), ' \n');
  t.throws(() => new IdentityResolver(config({ PROXY_TOKEN_SECRET_FILE: join(dir, 'empty') }), logger), /is empty/);
  t.throws(() => new IdentityResolver(config({ PROXY_TOKEN_SECRET_FILE: dir }), logger), ConfigError, 'a directory');
});

t.test('with a real who-am-I upstream', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const c = clock();
  const cfg = config({ PROXY_UPSTREAM: up.url, PROXY_UPSTREAM_TIMEOUT_MS: '300', PROXY_WHOAMI_CACHE_MS: '60000' });
  const r = new IdentityResolver(cfg, logger, { nowMs: c.now });
  t.teardown(() => r.close());
  const resolveHeaders = (h: http.IncomingHttpHeaders) => settle(r.resolve(r.extractCredentials(h, '127.0.0.1')));
  const answer = (key: string, status: number, body: unknown, delayMs?: number) =>
    up.answers.set(key, { status, body: typeof body === 'string' ? body : JSON.stringify(body), delayMs });

  t.test('unverified token claim confirmed by who-am-I', async (t) => {
    const alice = fakeJwt({ sub: 'alice' });
    answer(`ptoken=${alice}`, 200, { username: 'alice', roles: ['designer'] });
    const before = up.calls;
    const id = await resolveHeaders({ cookie: `ptoken=${alice}` });
    t.same(id && [id.user, id.via], ['alice', 'token-claim']);
    t.equal(up.calls - before, 1);
    const seen = up.seen.at(-1)!;
    t.equal(seen.cookie, `ptoken=${alice}`, 'only the credential is replayed');
    t.equal(seen.accept, 'application/json');
    t.equal(seen['x-background-request'], 'true', 'background marker sent');
    t.equal(seen.authorization, undefined);
  });
  t.test('a forged token naming another user never yields that user', async (t) => {
    const forged = fakeJwt({ sub: 'admin', username: 'admin' });
    answer(`ptoken=${forged}`, 200, { username: 'mallory' });
    t.equal(await resolveHeaders({ cookie: `ptoken=${forged}` }), undefined);
    const rejected = fakeJwt({ sub: 'admin' });
    t.equal(await resolveHeaders({ cookie: `ptoken=${rejected}` }), undefined, 'upstream rejects it (401)');
    const claimless = fakeJwt({ sub: 1, iat: 2 });
    answer(`ptoken=${claimless}`, 200, { username: 'dave' });
    const id = await resolveHeaders({ cookie: `ptoken=${claimless}` });
    t.same(id && [id.user, id.via], ['dave', 'whoami'], 'no claim: who-am-I alone decides');
  });
  t.test('opaque credentials', async (t) => {
    answer('SESSION=s-erin', 200, { username: 'erin' });
    answer('SESSION=s-frank', 200, { name: 'frank', username: '' });
    answer('Bearer api-token-1', 200, { username: 'svc-reports' });
    answer('Basic Z3JhY2U6cHc=', 200, { name: 'grace' });
    const cases: [http.IncomingHttpHeaders, string][] = [
      [{ cookie: 'SESSION=s-erin' }, 'erin'],
      [{ cookie: 'SESSION=s-frank' }, 'frank'],
      [{ authorization: 'Bearer api-token-1' }, 'svc-reports'],
      [{ authorization: 'Basic Z3JhY2U6cHc=' }, 'grace'],
    ];
    for (const [headers, user] of cases) {
      const id = await resolveHeaders(headers);
      t.same(id && [id.user, id.via], [user, 'whoami'], JSON.stringify(headers));
    }
    t.equal(up.seen.at(-1)!.authorization, 'Basic Z3JhY2U6cHc=');
  });
  t.test('who-am-I failures are unknown', async (t) => {
    answer('SESSION=s500', 500, { username: 'x' });
    answer('SESSION=s302', 302, '');
    answer('SESSION=sbad', 200, '<html>login</html>');
    answer('SESSION=sarr', 200, ['alice']);
    answer('SESSION=snum', 200, { username: 5, name: null });
    answer('SESSION=sslow', 200, { username: 'late' }, 1_000);
    for (const s of ['s500', 's302', 'sbad', 'sarr', 'snum', 'sslow', 'sunknown']) {
      t.equal(await resolveHeaders({ cookie: `SESSION=${s}` }), undefined, s);
    }
    const dead = new IdentityResolver(config({ PROXY_UPSTREAM: 'http://127.0.0.1:1', PROXY_UPSTREAM_TIMEOUT_MS: '300' }), logger);
    t.teardown(() => dead.close());
    t.equal(await dead.resolve(dead.extractCredentials({ cookie: 'SESSION=x' }, undefined)), undefined, 'connection refused');
    t.equal(dead.stats().whoamiFailures, 1);
  });
  t.test('credentials are tried in order; an unknown one falls through to the next', async (t) => {
    answer('SESSION=s-henry', 200, { username: 'henry' });
    const stale = fakeJwt({ sub: 'henry' });
    const id = await resolveHeaders({ cookie: `ptoken=${stale}; SESSION=s-henry` });
    t.same(id && [id.user, id.via, id.credential.kind], ['henry', 'whoami', 'session-cookie']);
    const cached = r.resolve(r.extractCredentials({ cookie: `ptoken=${stale}; SESSION=s-henry` }, undefined));
    t.notOk(cached instanceof Promise, 'both answers cached: synchronous');
    t.equal(cached, id);
  });
  t.test('cache: one call per credential per period, shared in flight', async (t) => {
    answer('SESSION=s-ivy', 200, { username: 'ivy' }, 50);
    const before = up.calls;
    const creds = r.extractCredentials({ cookie: 'SESSION=s-ivy' }, undefined);
    const pending = Array.from({ length: 100 }, () => r.resolve(creds));
    t.ok(pending.every((p) => p instanceof Promise));
    t.equal(r.stats().inflight, 1);
    const ids = await Promise.all(pending);
    t.equal(up.calls - before, 1, 'exactly one upstream call for 100 concurrent resolutions');
    t.ok(ids.every((id) => id?.user === 'ivy' && id === ids[0]));
    const sync = r.resolve(creds);
    t.notOk(sync instanceof Promise, 'synchronous once cached');
    t.equal(sync, ids[0]);

    c.ms += 59_999;
    t.notOk(r.resolve(creds) instanceof Promise, 'still cached just before the period ends');
    t.equal(up.calls - before, 1);
    c.ms += 1;
    const later = r.resolve(creds);
    t.ok(later instanceof Promise, 'expired: asks again');
    t.equal((await later)?.user, 'ivy');
    t.equal(up.calls - before, 2, 'second call only after the cache period');

    // negative answers are cached too
    const nobody = r.extractCredentials({ cookie: 'SESSION=s-nobody' }, undefined);
    const b2 = up.calls;
    t.equal(await r.resolve(nobody), undefined);
    t.equal(r.resolve(nobody), undefined, 'negative answer returned synchronously');
    t.equal(up.calls - b2, 1);

    // invalidate drops the cached answer
    r.invalidate(creds[0]!.fingerprint);
    t.ok(r.resolve(creds) instanceof Promise, 'after invalidate: asks again');
  });
  t.test('invalidate during an in-flight call does not store the stale answer', async (t) => {
    answer('SESSION=s-jack', 200, { username: 'jack' }, 30);
    const creds = r.extractCredentials({ cookie: 'SESSION=s-jack' }, undefined);
    const p = r.resolve(creds);
    r.invalidate(creds[0]!.fingerprint);
    t.equal((await p)?.user, 'jack', 'the waiting caller still gets its answer');
    t.ok(r.resolve(creds) instanceof Promise, 'but nothing was cached');
  });
  t.test('stats', async (t) => {
    const s = r.stats();
    t.ok(s.whoamiCalls >= 10);
    t.ok(s.answers > 0 && s.tokens > 0 && s.credentials > 0);
    t.equal(s.inflight >= 0, true);
  });
});

t.test('transient failures are retried sooner than definite answers', async (t) => {
  const c = clock();
  let calls = 0;
  let fail = true;
  const r = new IdentityResolver(config(), logger, {
    nowMs: c.now,
    whoami: async () => { calls++; if (fail) throw new Error('ECONNRESET'); return 'kim'; },
  });
  const creds: Credential[] = r.extractCredentials({ cookie: 'SESSION=k' }, undefined);
  t.equal(await r.resolve(creds), undefined);
  t.equal(r.resolve(creds), undefined, 'failure cached briefly');
  c.ms += 5_000;
  fail = false;
  t.equal((await r.resolve(creds))?.user, 'kim');
  t.equal(calls, 2);
  t.equal(r.stats().whoamiFailures, 1);
});
