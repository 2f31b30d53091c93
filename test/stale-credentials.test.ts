import t from 'tap';
import { RevokedCredentials } from '../src/logout/revoked.js';
import { StaleCredentials, isPageNavigation } from '../src/proxy/stale-credentials.js';
import { isReusableCredential } from '../src/identity/credentials.js';

const stale = (revoked: RevokedCredentials) => new StaleCredentials({ revoked, loginPath: '/p/login', contextPath: '/p', tokenCookie: 'ptoken', sessionCookie: 'SESSION' });
const header = { kind: 'identity-header' as const, fingerprint: 'h', replay: { 'x-user': 'kiosk' } };
const basic = { kind: 'authorization' as const, fingerprint: 'b', replay: { authorization: 'basic Ym9iOmJvYg==' } };
const token = { kind: 'token-cookie' as const, fingerprint: 't', replay: { cookie: 'ptoken=x' } };

t.test('which credentials are reusable', async (t) => {
  t.equal(isReusableCredential(header), true);
  t.equal(isReusableCredential(basic), true);
  t.equal(isReusableCredential(token), false);
  t.equal(isReusableCredential({ kind: 'authorization', replay: { authorization: 'Bearer abc' } }), false);
});

t.test('session credentials stay refused; reusable ones only for background traffic', async (t) => {
  const revoked = new RevokedCredentials(60_000);
  for (const c of [header, basic, token]) revoked.add(c.fingerprint, 'u', 0, undefined, isReusableCredential(c));
  const s = stale(revoked);
  t.ok(s.refusable([token], 1, true), 'a logged-out token is refused even for a real request');
  t.ok(s.refusable([header], 1, false), 'background traffic with the header is refused');
  t.ok(s.refusable([basic], 1, false));
  t.notOk(s.refusable([header], 1, true), 'a real request with the header is let through');
  t.notOk(s.refusable([header], 1, false), '... and the header is forgiven from then on');
  t.notOk(s.refusable([basic], 1, true));
  t.ok(s.refusable([basic, token], 1, true), 'a forgiven Basic does not forgive the token beside it');
});

t.test('page navigations get the redirect, everything else the 401', async (t) => {
  t.equal(isPageNavigation('GET', { 'sec-fetch-mode': 'navigate' }), true);
  t.equal(isPageNavigation('GET', { 'sec-fetch-mode': 'cors', accept: 'text/html' }), false);
  t.equal(isPageNavigation('GET', { accept: 'text/html,application/xhtml+xml' }), true);
  t.equal(isPageNavigation('GET', { accept: 'text/html', 'x-requested-with': 'XMLHttpRequest' }), false);
  t.equal(isPageNavigation('POST', { accept: 'text/html' }), false);
  const s = stale(new RevokedCredentials(1));
  t.equal(s.refusalFor('GET', { accept: 'text/html' }).statusCode, 302);
  t.equal(s.refusalFor('GET', { accept: 'application/json' }).statusCode, 401);
});
