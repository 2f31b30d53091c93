import t from 'tap';
import fc from 'fast-check';
import type { IncomingHttpHeaders } from 'node:http';
import { loadDeploymentConfig } from '../src/config/deployment.js';
import { parse as parseCookie } from 'cookie';
import { IdentityResolver, type IdentityLogger } from '../src/identity/index.js';
import { pickCookies } from '../src/identity/cookies.js';

const logger: IdentityLogger = { warn() {}, debug() {} };
const RUNS = 300;

const b64 = (s: string) => Buffer.from(s).toString('base64url');
const b64url = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('')), maxLength: 60 });
const anyText = fc.string({ unit: 'binary', maxLength: 200 });

// a JSON payload whose user-name claims may be any type: strings, numbers, arrays, objects, null
const claims = fc.record(
  {
    sub: fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.array(fc.string()), fc.object()),
    username: fc.oneof(fc.string(), fc.boolean(), fc.dictionary(fc.string(), fc.string())),
    preferred_username: fc.anything(),
    name: fc.oneof(fc.string({ unit: 'binary' }), fc.double()),
    exp: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(Number.MAX_VALUE)),
  },
  { requiredKeys: [] },
);
const header = fc.oneof(
  fc.constant({ alg: 'none' }),
  fc.constant({ alg: 'HS256', typ: 'JWT' }),
  fc.record({ alg: fc.oneof(fc.string(), fc.integer()) }, { requiredKeys: [] }),
);
const jwtLike = fc.oneof(
  fc.tuple(header, claims, b64url).map(([h, p, s]) => `${b64(JSON.stringify(h))}.${b64(JSON.stringify(p))}.${s}`),
  fc.tuple(b64url, b64url, b64url).map((parts) => parts.join('.')),
  fc.tuple(header, fc.json(), b64url).map(([h, p, s]) => `${b64(JSON.stringify(h))}.${b64(p)}.${s}`),
  fc.tuple(anyText, anyText).map(([h, p]) => `${b64(h)}.${b64(p)}.`),
  fc.integer({ min: 10_000, max: 120_000 }).map((n) => `${b64('{"alg":"HS256"}')}.${'e'.repeat(n)}.sig`),
);
const cookieName = fc.oneof(fc.constantFrom('ptoken', 'SESSION', 'other', ' ptoken', 'ptoken '), anyText);
const cookieValue = fc.oneof(jwtLike, jwtLike.map((j) => `"${j}"`), anyText);
const cookieHeader = fc.oneof(
  anyText,
  fc.array(fc.tuple(cookieName, fc.constantFrom('=', '', '==', ' = '), cookieValue, fc.constantFrom('; ', ';', ';;', ' ;', ',')), { maxLength: 6 })
    .map((pairs) => pairs.map(([n, eq, v, sep]) => `${n}${eq}${v}${sep}`).join('')),
  fc.array(anyText, { maxLength: 3 }),
);
const authorization = fc.oneof(
  jwtLike.map((j) => `Bearer ${j}`),
  fc.tuple(fc.constantFrom('Bearer', 'bearer', 'BEARER', 'Basic', 'Negotiate', ''), fc.constantFrom(' ', '\t', '  ', ''), anyText).map(([s, sp, v]) => `${s}${sp}${v}`),
  anyText,
);
const headers = fc.record(
  {
    cookie: cookieHeader,
    authorization,
    'x-user': fc.oneof(fc.constant('admin'), anyText),
  },
  { requiredKeys: [] },
) as fc.Arbitrary<IncomingHttpHeaders>;
const remote = fc.oneof(fc.constantFrom('203.0.113.7', '::ffff:203.0.113.7', 'fe80::1%eth0', 'garbage'), fc.constant(undefined), anyText);

function config(env: Record<string, string> = {}) {
  return loadDeploymentConfig({ PROXY_UPSTREAM: 'http://127.0.0.1:9', ...env });
}

/** Runs the property; returns how many inputs were tried. */
async function check(r: IdentityResolver): Promise<number> {
  let tried = 0;
  await fc.assert(
    fc.asyncProperty(headers, remote, async (h, addr) => {
      tried++;
      const creds = r.extractCredentials({ ...h }, addr);
      const id = await r.resolve(creds);
      if (id !== undefined) throw new Error(`resolved to ${JSON.stringify(id.user)} via ${id.via}`);
      // a second, cached pass answers the same
      if ((await r.resolve(creds)) !== undefined) throw new Error('cached pass resolved');
    }),
    { numRuns: RUNS },
  );
  return tried;
}

t.test('no secret, who-am-I always says nobody: never a user, never a throw', async (t) => {
  const r = new IdentityResolver(config({ PROXY_IDENTITY_HEADER: 'x-user', PROXY_TRUSTED_SOURCES: '10.0.0.0/8,fd00::/8' }), logger, { whoami: async () => undefined });
  const tried = await check(r);
  t.comment(`tried ${tried} random requests (who-am-I answers undefined)`);
  t.equal(tried, RUNS);
});

t.test('no secret, who-am-I always fails: never a user, never a throw', async (t) => {
  const r = new IdentityResolver(config({ PROXY_IDENTITY_HEADER: 'x-user', PROXY_TRUSTED_SOURCES: '10.0.0.1' }), logger, {
    whoami: async () => { throw new Error('down'); },
  });
  const tried = await check(r);
  t.comment(`tried ${tried} random requests (who-am-I rejects)`);
  t.equal(tried, RUNS);
});

t.test('with a secret, random tokens are never accepted', async (t) => {
  const r = new IdentityResolver(config({ PROXY_TOKEN_SECRET: 'fuzz-secret-fuzz-secret-fuzz-secret' }), logger, { whoami: async () => undefined });
  const tried = await check(r);
  t.comment(`tried ${tried} random requests (secret set)`);
  t.equal(tried, RUNS);
});

t.test('no secret: whatever tokens claim, only the who-am-I user can come out', async (t) => {
  let calls = 0;
  const r = new IdentityResolver(config(), logger, { whoami: async () => { calls++; return 'mallory'; } });
  let tried = 0;
  let resolved = 0;
  const named = fc.tuple(header, fc.constantFrom('alice', 'admin', 'mallory', ' mallory ', 'root'), b64url)
    .map(([h, user, s]) => `${b64(JSON.stringify(h))}.${b64(JSON.stringify({ sub: user, exp: 4_000_000_000 }))}.${s}`);
  await fc.assert(
    fc.asyncProperty(fc.oneof(named, jwtLike), fc.boolean(), async (token, asCookie) => {
      tried++;
      const h: IncomingHttpHeaders = asCookie ? { cookie: `ptoken=${token}` } : { authorization: `Bearer ${token}` };
      const id = await r.resolve(r.extractCredentials(h, undefined));
      if (id === undefined) return;
      resolved++;
      if (id.user !== 'mallory') throw new Error(`forged claim yielded ${JSON.stringify(id.user)}`);
    }),
    { numRuns: RUNS },
  );
  t.comment(`tried ${tried} random tokens, ${resolved} resolved (all to the who-am-I user), ${calls} who-am-I calls`);
  t.equal(tried, RUNS);
  t.ok(resolved > 0, `some tokens resolved at all (${resolved}), so the check on who came out was exercised`);
});

t.test('stripUntrustedIdentityHeader never throws and always removes it from untrusted peers', async (t) => {
  const r = new IdentityResolver(config({ PROXY_IDENTITY_HEADER: 'x-user', PROXY_TRUSTED_SOURCES: '10.0.0.0/8' }), logger, { whoami: async () => undefined });
  let tried = 0;
  fc.assert(
    fc.property(headers, remote, (h, addr) => {
      tried++;
      const copy = { ...h };
      r.stripUntrustedIdentityHeader(copy, addr);
      if (copy['x-user'] !== undefined) throw new Error('identity header survived from an untrusted peer');
    }),
    { numRuns: RUNS },
  );
  t.comment(`tried ${tried} random requests (strip)`);
  t.equal(tried, RUNS);
});

t.test('pickCookies reads a header exactly like cookie.parse (pass-through decoding)', async (t) => {
  const RAW = { decode: (v: string) => v };
  let tried = 0;
  const text = fc.oneof(
    cookieHeader.map((h) => (Array.isArray(h) ? h.join('; ') : h)),
    fc.array(fc.constantFrom('a', 'b', '=', ';', ' ', '\t', '"', 'ptoken', 'SESSION'), { maxLength: 40 }).map((p) => p.join('')),
  );
  const name = fc.oneof(fc.constantFrom('ptoken', 'SESSION', 'a', 'b', 'a b'), fc.string({ minLength: 1, maxLength: 4 }));
  fc.assert(
    fc.property(text, name, name, (header, n1, n2) => {
      fc.pre(n1 !== n2 && n1.trim() === n1 && n1 !== '' && n2.trim() === n2 && n2 !== '');
      tried++;
      const expected = parseCookie(header, RAW);
      const got = pickCookies(header, n1, n2);
      if (got.first !== expected[n1] || got.second !== expected[n2]) {
        throw new Error(`differ on ${JSON.stringify(header)}: ${JSON.stringify(got)} vs ${JSON.stringify([expected[n1], expected[n2]])}`);
      }
    }),
    { numRuns: RUNS * 10 },
  );
  t.comment(`compared ${tried} random cookie headers with cookie.parse`);
  t.ok(tried >= RUNS * 5, 'most inputs passed the precondition');
});
