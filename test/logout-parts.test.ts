/** The small parts of the logout: candidate book, CSRF helpers, verification verdicts. */
import t from 'tap';
import { CandidateBook, parseLogoutCandidates } from '../src/logout/candidates.js';
import { csrfCookieIn, csrfSetBy, withCsrf } from '../src/logout/csrf.js';
import { judge } from '../src/logout/verify.js';

t.test('candidate book: configured order until one releases; an unverified one loses its place', async (t) => {
  const book = new CandidateBook([{ method: 'POST', path: '/a' }, { method: 'POST', path: '/b' }, { method: 'GET', path: '/c' }], () => 7);
  const [a, b, c] = book.order();
  t.same(book.order().map((x) => x.path), ['/a', '/b', '/c']);
  book.record(a!, 'not-found', 404);
  book.record(c!, 'released', 200);
  t.same(book.order().map((x) => x.path), ['/c', '/a', '/b'], 'the releasing candidate first');
  book.record(b!, 'released', 200);
  t.same(book.order().map((x) => x.path), ['/b', '/a', '/c'], 'the latest one to release');
  book.record(b!, 'unverified', 200);
  t.same(book.order().map((x) => x.path), ['/a', '/b', '/c'], 'back to the configured order');
  t.equal(book.verified, undefined);
  t.match(book.report().find((r) => r.path === '/b'), { calls: 2, released: 1, unverified: 1, lastResult: 'unverified', lastStatus: 200, lastAtMs: 7 });
  t.throws(() => new CandidateBook([], () => 0));
  t.same(parseLogoutCandidates(' post /x ,/y'), [{ method: 'POST', path: '/x' }, { method: undefined, path: '/y' }]);
});

t.test('CSRF: read from cookies and Set-Cookie, replayed as cookie and header', async (t) => {
  t.equal(csrfCookieIn('a=1; XSRF-TOKEN=abc; b=2', 'XSRF-TOKEN'), 'abc');
  t.equal(csrfCookieIn(['a=1', 'XSRF-TOKEN=abc'], 'XSRF-TOKEN'), 'abc', 'several Cookie headers');
  t.equal(csrfCookieIn('XSRF-TOKEN=; a=1', 'XSRF-TOKEN'), undefined, 'empty is absent');
  t.equal(csrfCookieIn('MY-XSRF-TOKEN=zz', 'XSRF-TOKEN'), undefined, 'a longer name is another cookie');
  t.equal(csrfCookieIn(undefined, 'XSRF-TOKEN'), undefined);
  t.equal(csrfSetBy(['ptoken=x; Path=/', 'XSRF-TOKEN=new1; Path=/p'], 'XSRF-TOKEN'), 'new1');
  t.equal(csrfSetBy('XSRF-TOKEN=; Max-Age=0', 'XSRF-TOKEN'), undefined, 'a cleared cookie is no token');
  t.equal(csrfSetBy(['XSRF-TOKEN=one', 'XSRF-TOKEN=two'], 'XSRF-TOKEN'), 'two', 'the last one set wins');
  const names = { cookie: 'XSRF-TOKEN', header: 'X-XSRF-TOKEN' };
  t.same(withCsrf({ cookie: 'ptoken=j' }, 'a%2Fb', names), { cookie: 'ptoken=j; XSRF-TOKEN=a%2Fb', 'x-xsrf-token': 'a/b' }, 'header carries the decoded value');
  t.same(withCsrf({ authorization: 'Bearer j' }, 't', names), { authorization: 'Bearer j', cookie: 'XSRF-TOKEN=t', 'x-xsrf-token': 't' });
  t.same(withCsrf({ cookie: 'ptoken=j' }, undefined, names), { cookie: 'ptoken=j' }, 'no token: unchanged');
});

t.test('verification verdicts', async (t) => {
  const login = '/panopticon/login';
  t.equal(judge({ status: 401, user: undefined, location: undefined }, login).verdict, 'gone');
  t.equal(judge({ status: 403, user: undefined, location: undefined }, login).verdict, 'gone');
  t.equal(judge({ status: 302, user: undefined, location: 'http://srv/panopticon/login?x=1' }, login).verdict, 'gone', 'redirect to the login page');
  t.equal(judge({ status: 302, user: undefined, location: '/elsewhere' }, login).verdict, 'unknown', 'another redirect proves nothing');
  t.equal(judge({ status: 200, user: 'alice', location: undefined }, login).verdict, 'still-signed-in');
  t.equal(judge({ status: 200, user: undefined, location: undefined }, login).verdict, 'gone', 'an answer naming nobody');
  t.equal(judge({ status: 503, user: undefined, location: undefined }, login).verdict, 'unknown');
  t.equal(judge({ status: 404, user: undefined, location: undefined }, login).verdict, 'unknown', 'a missing who-am-I proves nothing');
});
