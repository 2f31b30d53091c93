/**
 * Hardening, group 2a: credentials that are malformed, forged, oversized or strangely typed, sent
 * through the real proxy (simulator behind it, tokens verified with the server's secret and, in a
 * second pass, confirmed by "who am I" instead). None may name a user, keep alice alive, make the
 * proxy answer 5xx, or stop it from serving the next normal request.
 */
import t, { type Test } from 'tap';
import { SignJWT } from 'jose';
import { request } from 'undici';
import { MINUTE_MS } from '../src/properties/settings.js';
import { ManualClock } from '../src/sessions/clock.js';
import { rawExchange, head } from './helpers/raw-http.js';
import { eventually, props, startStack, upgradeStatus, type Stack } from './helpers/stack.js';

const b64 = (json: string) => Buffer.from(json).toString('base64url');
const unsigned = (header: string, payload: string, signature = '') => `${b64(header)}.${b64(payload)}.${signature}`;

/** Tokens signed with the server's real secret but carrying claims of the wrong type. */
async function oddlyTypedTokens(secret: string): Promise<string[]> {
  const key = new TextEncoder().encode(secret);
  const claimSets: Array<Record<string, unknown>> = [
    { sub: 123 }, { sub: { name: 'alice' } }, { sub: ['alice'] }, { sub: null }, { sub: true }, { sub: '' }, { sub: '   ' },
    { username: 1.5 }, { preferred_username: { toString: 'alice' } }, { name: ['alice'] },
    { sub: 'mallory', exp: 'never' }, { sub: 'mallory', nbf: 'now' }, { sub: 'mallory', exp: -1 }, { sub: 'mallory', iat: { at: 1 } },
  ];
  return Promise.all(claimSets.map((claims) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(key)));
}

/** Values that are not tokens at all, or not decodable ones, or unsigned/forged ones naming alice. */
async function hostileTokens(): Promise<string[]> {
  const forged = await new SignJWT({ sub: 'alice', username: 'alice' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode('attacker-secret'));
  const deep = `${'['.repeat(3000)}${']'.repeat(3000)}`;
  return [
    '!!!.@@@.###', 'a.b.c', '...', 'eyJ.eyJ.', 'e30.e30.', `${b64('{"alg":"HS256"}')}.%%%.sig`,
    `${b64('{"alg":"HS256"}')}.${b64('[1,2]')}.sig`, `${b64('{"alg":"HS256"}')}.${b64('"alice"')}.sig`, `${b64('{"alg":"HS256"}')}.${b64('null')}.sig`,
    `${b64('{"alg":"HS256"}')}.${b64(deep)}.sig`, `${b64('not json')}.${b64('{"sub":"alice"}')}.sig`,
    unsigned('{"alg":"none"}', '{"sub":"alice"}'), unsigned('{"alg":"none","typ":"JWT"}', '{"sub":"alice","exp":9999999999}'),
    unsigned('{"alg":"nOnE"}', '{"sub":"alice"}'), unsigned('{"alg":"HS256"}', '{"sub":"alice"}'),
    unsigned('{"alg":"RS256"}', '{"sub":"alice"}', 'c2ln'), forged, forged.slice(0, -2), `${forged}.extra`,
    // just under Node's 16 KiB header limit: longer than the proxy's own token limit
    `${b64('{"alg":"none"}')}.${b64(JSON.stringify({ sub: 'alice', pad: 'p'.repeat(11_000) }))}.`,
  ];
}

const MALFORMED_COOKIES = [
  'ptoken', 'ptoken=', '=', ';;;', '=;=;=', 'ptoken=;SESSION=', 'ptoken="', 'ptoken=""', 'ptoken="a.b.c"', 'ptoken=%ZZ%00',
  'ptoken=a.b', 'ptoken=....', `ptoken=${'a;'.repeat(3000)}`, `${'x=1; '.repeat(1500)}ptoken=a.b.c`, 'SESSION=\t\t\t', 'SESSION=a=b=c',
  'ptoken=a.b.c; ptoken=d.e.f; SESSION=1; SESSION=2', ' ptoken = a.b.c ', 'PTOKEN=a.b.c', 'ptoken\t=x', 'session=abc',
];

interface Seen { statuses: Map<number, number>; inputs: number }

async function answerOf(s: Stack, path: string, headers: Record<string, string>): Promise<number> {
  const res = await request(s.proxy.url + path, { headers });
  await res.body.dump();
  return res.statusCode;
}

async function tryAll(t: Test, s: Stack, credentials: Array<Record<string, string>>, seen: Seen, label: string): Promise<void> {
  const ws = s.proxy.url.replace('http', 'ws');
  for (const headers of credentials) {
    seen.inputs++;
    const statuses = [
      await answerOf(s, '/panopticon/server/rest/server/myself', headers),
      await answerOf(s, '/panopticon/server/rest/dashboards/refresh', { ...headers, accept: 'text/html' }),
      await answerOf(s, '/rest/user/timeout/reset', headers),
    ];
    if (headers['cookie'] !== undefined) statuses.push(await upgradeStatus(`${ws}/panopticon/server/ws/notifications`, headers['cookie']));
    for (const status of statuses) seen.statuses.set(status, (seen.statuses.get(status) ?? 0) + 1);
    if (statuses.some((st) => st >= 500 || st === 200 || st === 101)) {
      t.fail(`${label}: ${JSON.stringify(headers).slice(0, 200)} answered ${statuses.join(',')}`);
    }
  }
}


for (const verify of [true, false]) {
  t.test(`hostile credentials name nobody and keep nobody alive (${verify ? 'tokens verified with the secret' : 'tokens confirmed by who-am-I'})`, async (t) => {
    const clock = new ManualClock(Date.now());
    const secret = 'server-secret-for-hardening';
    const s = await startStack(t, {
      clock,
      properties: props({ enabled: true, minutes: 30, 'notification.minutes': 1 }),
      env: { PROXY_TOKEN_SECRET: verify ? secret : '' },
      simulator: { tokenSecret: secret },
    });
    const alice = await s.login('alice');
    await s.get('/panopticon/', { cookie: alice });
    // without the secret the user is confirmed by a "who am I" call that may finish after the response
    await eventually('alice counted', () => s.proxy.engine.describe('alice')?.lastActivity !== undefined);
    const deadlineMs = s.proxy.engine.describe('alice')!.deadlineMs!;
    clock.advance(MINUTE_MS); // any request counted for alice from now on would move her deadline

    const tokens = [...(await hostileTokens()), ...(await oddlyTypedTokens(secret))];
    const seen: Seen = { statuses: new Map(), inputs: 0 };
    await tryAll(t, s, MALFORMED_COOKIES.map((cookie) => ({ cookie })), seen, 'malformed cookie');
    await tryAll(t, s, tokens.map((tok) => ({ cookie: `ptoken=${tok}` })), seen, 'token cookie');
    await tryAll(t, s, tokens.map((tok) => ({ authorization: `Bearer ${tok}` })), seen, 'bearer token');
    await tryAll(t, s, ['Bearer', 'Bearer ', 'Basic', 'Basic !!!', 'Basic ' + b64('alice'), 'Basic ' + b64('alice:wrong'), 'Digest x', 'bearer\ta.b.c', 'Bearer a.b.c d'].map((authorization) => ({ authorization })), seen, 'authorization');

    t.equal(s.proxy.engine.describe('alice')?.deadlineMs, deadlineMs, 'alice\'s deadline never moved');
    t.same(s.proxy.engine.list().map((v) => v.user), ['alice'], 'no other session appeared (no mallory, no odd names)');
    t.notOk(s.logs.some((l) => Number(l.level) >= 50), 'nothing was logged as an error');
    t.equal((await s.get('/panopticon/server/rest/server/myself', { cookie: alice })).status, 200, 'alice\'s own requests still work');
    await eventually('alice\'s request counted', () => s.proxy.engine.describe('alice')?.deadlineMs === deadlineMs + MINUTE_MS);
    t.comment(`group 2a (${verify ? 'verified' : 'who-am-I'}): ${seen.inputs} hostile credentials, answers ${JSON.stringify(Object.fromEntries(seen.statuses))}`);
  });
}

t.test('tokens beyond Node\'s header limit are refused by Node (431) and the proxy carries on', async (t) => {
  const s = await startStack(t, { properties: props({ enabled: true, minutes: 30 }) });
  const port = Number(new URL(s.proxy.url).port);
  const big = `${b64('{"alg":"HS256"}')}.${b64(JSON.stringify({ sub: 'alice', pad: 'p'.repeat(75_000) }))}.sig`;
  t.ok(big.length > 100_000, `${big.length} characters`);
  let inputs = 0;
  for (const line of [`Cookie: ptoken=${big}`, `Authorization: Bearer ${big}`, `Cookie: SESSION=${big}`, `X-User: ${big}`]) {
    inputs++;
    const answer = await rawExchange(port, head('GET /panopticon/server/rest/server/myself HTTP/1.1', 'Host: x', line));
    t.equal(answer.status, 431, `${line.slice(0, 20)}...: 431`);
  }
  t.equal((await s.get('/panopticon/login')).status, 200, 'still serving');
  t.equal(s.proxy.engine.userCount, 0, 'nobody was tracked');
  t.comment(`group 2a: ${inputs} requests with 100 KB credentials`);
});

t.test('duplicated Cookie and Authorization headers: the proxy and the upstream agree on whose request it is', async (t) => {
  const clock = new ManualClock(Date.now());
  const s = await startStack(t, { clock, properties: props({ enabled: true, minutes: 30 }) });
  const port = Number(new URL(s.proxy.url).port);
  const [bobToken, aliceToken] = [await s.sim.issueToken('bob'), await s.sim.issueToken('alice')];
  const forged = unsigned('{"alg":"none"}', '{"sub":"alice"}');
  let inputs = 0;

  const sendRaw = async (...lines: string[]) => {
    inputs++;
    const before = s.sim.requests.length;
    const answer = await rawExchange(port, head('GET /panopticon/server/rest/server/myself HTTP/1.1', 'Host: x', ...lines, 'Connection: close'));
    const upstreamUser = s.sim.requests.slice(before).find((r) => r.path.endsWith('/myself'))?.user;
    return { status: answer.status, body: answer.body, upstreamUser };
  };
  const users = () => s.proxy.engine.list().map((v) => `${v.user}@${v.lastActivity?.atMs ?? '-'}`).sort();

  const twoCookies = await sendRaw(`Cookie: ptoken=${bobToken}`, `Cookie: ptoken=${aliceToken}`);
  t.equal(twoCookies.upstreamUser, 'bob', 'two Cookie headers: the upstream took the first token');
  t.match(JSON.parse(twoCookies.body), { username: 'bob' });
  t.same(users(), [`bob@${clock.now()}`], 'and so did the proxy: only bob counted');

  clock.advance(1000);
  const forgedFirst = await sendRaw(`Cookie: ptoken=${forged}`, `Cookie: ptoken=${aliceToken}`);
  t.equal(forgedFirst.status, 401, 'a forged token in the first Cookie header: the upstream refuses');
  t.same(users(), [`bob@${clock.now() - 1000}`], 'and the proxy counts nobody');

  clock.advance(1000);
  const twoAuth = await sendRaw(`Authorization: Bearer ${bobToken}`, `Authorization: Bearer ${aliceToken}`);
  t.equal(twoAuth.upstreamUser, 'bob', 'two Authorization headers: the upstream saw the first');
  t.same(users(), [`bob@${clock.now()}`], 'the proxy counted the same user');

  clock.advance(1000);
  const mixed = await sendRaw(`Authorization: Bearer ${forged}`, `Cookie: ptoken=${aliceToken}`, `Authorization: Bearer ${bobToken}`);
  t.equal(mixed.upstreamUser, 'alice', 'forged Bearer first, then a cookie: the upstream fell back to the cookie');
  t.same(users(), [`alice@${clock.now()}`, `bob@${clock.now() - 1000}`], 'the proxy agrees: alice');

  t.equal((await s.get('/panopticon/login')).status, 200, 'still serving');
  t.comment(`group 2a: ${inputs} requests with duplicated credential headers`);
});
