import t from 'tap';
import { ActivityRules, ActivityRulesError, ruleLabel } from '../src/activity/rules.js';

const rules = new ActivityRules({
  passivePaths: ['GET /panopticon/server/rest/data/**', '/panopticon/heartbeat', 'post /panopticon/*/ping'],
  backgroundHeader: { name: 'X-Background-Request', value: 'true' },
});

t.test('requests count unless a rule says otherwise', async (t) => {
  t.same(rules.classify('GET', '/panopticon/server/rest/dashboards/1', {}, 200), { counted: true, rule: 'counted' });
  t.same(rules.classify('POST', '/panopticon/login', {}, 302), { counted: true, rule: 'counted' });
  t.same(rules.classify('GET', '/panopticon/x', {}, 500), { counted: true, rule: 'counted' }, 'a server error is still the user acting');
});

t.test('401 and 403 never count', async (t) => {
  t.same(rules.classify('GET', '/panopticon/x', {}, 401), { counted: false, rule: 'upstream-401' });
  t.same(rules.classify('GET', '/panopticon/x', {}, 403), { counted: false, rule: 'upstream-403' });
});

t.test('passive globs, with and without a method', async (t) => {
  t.same(rules.classify('GET', '/panopticon/server/rest/data/poll', {}, 200), { counted: false, rule: 'passive:GET /panopticon/server/rest/data/**' });
  t.same(rules.classify('GET', '/panopticon/server/rest/data/a/b/c', {}, 200).counted, false);
  t.same(rules.classify('POST', '/panopticon/server/rest/data/poll', {}, 200).counted, true, 'method must match');
  t.same(rules.classify('DELETE', '/panopticon/heartbeat', {}, 200).rule, 'passive:/panopticon/heartbeat', 'no method = any method');
  t.same(rules.classify('POST', '/panopticon/a/ping', {}, 200).rule, 'passive:post /panopticon/*/ping', 'method is case-insensitive');
  t.same(rules.classify('POST', '/panopticon/a/b/ping', {}, 200).counted, true, 'single star is one segment');
});

t.test('the background marker header', async (t) => {
  t.same(rules.classify('GET', '/panopticon/x', { 'x-background-request': 'true' }, 200), { counted: false, rule: 'background-header' });
  t.same(rules.classify('GET', '/panopticon/x', { 'x-background-request': ' TRUE ' }, 200).counted, false);
  t.same(rules.classify('GET', '/panopticon/x', { 'x-background-request': 'false' }, 200).counted, true);
  t.same(rules.classify('GET', '/panopticon/x', { 'x-background-request': ['no', 'true'] }, 200).counted, false);
});

t.test('a rule that is not a path is refused with a clear error', async (t) => {
  t.throws(() => new ActivityRules({ passivePaths: ['GET data/**'], backgroundHeader: { name: 'x', value: 'y' } }), ActivityRulesError);
  t.throws(() => new ActivityRules({ passivePaths: ['GET data/**'], backgroundHeader: { name: 'x', value: 'y' } }), /"GET data\/\*\*" is not valid/);
});

const full = new ActivityRules({
  passivePaths: ['GET /panopticon/server/rest/data/**'],
  backgroundHeader: { name: 'x-background-request', value: 'true' },
  activePaths: ['GET /panopticon/server/rest/data/orders/**', '/panopticon/server/rest/dashboards/*/refresh'],
  tokenCookie: 'ptoken',
  sessionCookie: 'SESSION',
  loginPath: '/panopticon/login',
});
const NAV = { 'sec-fetch-mode': 'navigate' };
const GESTURE = { 'sec-fetch-mode': 'navigate', 'sec-fetch-user': '?1' };

t.test('Sec-Fetch-User: ?1 always counts, over passive paths and the background marker, but not over a refused credential', async (t) => {
  t.same(full.classify('GET', '/panopticon/server/rest/data/x', GESTURE, 200), { counted: true, rule: 'sec-fetch-user' });
  t.same(full.classify('GET', '/panopticon/x', { ...GESTURE, 'x-background-request': 'true' }, 200).rule, 'sec-fetch-user');
  t.same(full.classify('GET', '/panopticon/x', GESTURE, 401), { counted: false, rule: 'upstream-401' });
  t.same(full.classify('GET', '/panopticon/x', { 'sec-fetch-user': '?0' }, 200).rule, 'counted', '?0 is no gesture');
});

t.test('PROXY_ACTIVE_PATHS always count, over the passive rules', async (t) => {
  t.same(full.classify('GET', '/panopticon/server/rest/data/orders/7', {}, 200), { counted: true, rule: 'active:GET /panopticon/server/rest/data/orders/**' });
  t.same(full.classify('POST', '/panopticon/server/rest/dashboards/7/refresh', {}, 200).rule, 'active:/panopticon/server/rest/dashboards/*/refresh');
  t.same(full.classify('GET', '/panopticon/server/rest/data/other', {}, 200).rule, 'passive:GET /panopticon/server/rest/data/**');
  t.throws(() => new ActivityRules({ passivePaths: [], activePaths: ['x/**'], backgroundHeader: { name: 'x', value: 'y' } }), /active path rule "x\/\*\*" is not valid/);
});

t.test('an answer that only renews the credential is not activity', async (t) => {
  const renewed = { 'set-cookie': ['ptoken=eyJ.new.token; Path=/panopticon; Max-Age=604800'] };
  t.same(full.classify('GET', '/panopticon/server/rest/auth/renew', {}, 200, renewed), { counted: false, rule: 'credential-renewal' });
  t.same(full.classify('GET', '/panopticon/x', {}, 200, { 'set-cookie': 'SESSION=abc; HttpOnly' }).rule, 'credential-renewal', 'the session cookie too');
  t.same(full.classify('GET', '/panopticon/x', {}, 200, { 'set-cookie': 'other=1; Path=/' }).rule, 'counted', 'other cookies are not the credential');
  t.same(full.classify('POST', '/panopticon/logout', {}, 302, { 'set-cookie': ['ptoken=; Path=/panopticon; Max-Age=0'] }).rule, 'counted', 'deleting the cookie is no renewal');
  t.same(full.classify('GET', '/panopticon/x', {}, 200, { 'set-cookie': 'ptoken=; Expires=Thu, 01 Jan 1970 00:00:00 GMT' }).rule, 'counted');
  t.same(full.classify('POST', '/panopticon/login', {}, 302, renewed).rule, 'counted', 'the login itself counts');
  t.same(full.classify('POST', '/panopticon/login?next=%2F', {}, 302, renewed).rule, 'counted', 'with a query too');
  t.same(full.classify('GET', '/panopticon/', NAV, 200, renewed).rule, 'navigate', 'a page load that also refreshes the cookie is a page load');
  t.same(full.classify('GET', '/panopticon/x', {}, 401, renewed).rule, 'upstream-401');
});

t.test('Sec-Fetch-Mode: navigate is marked, and ruleLabel keeps the metrics labels bounded', async (t) => {
  t.same(full.classify('GET', '/panopticon/dashboard', NAV, 200), { counted: true, rule: 'navigate' });
  t.equal(ruleLabel('periodic:GET /panopticon/server/rest/dashboards/:n/refresh@5s'), 'periodic');
  t.equal(ruleLabel('passive:GET /x/**'), 'passive:GET /x/**');
});
