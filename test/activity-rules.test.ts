import t from 'tap';
import { ActivityRules, ActivityRulesError } from '../src/activity/rules.js';

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
