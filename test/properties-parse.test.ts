import t from 'tap';
import fc from 'fast-check';
import { mkdtemp, mkdir, rm, writeFile, truncate } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodePropertiesBytes,
  describeProblem,
  parseTimeoutProperties,
  settingsDiff,
  settingsEqual,
  MAX_PROPERTIES_BYTES,
  type ParseResult,
} from '../src/properties/parse.js';
import { readSettingsFile } from '../src/properties/read-file.js';
import { readPropertyEntries } from '../src/properties/java-format.js';
import { DEFAULT_SETTINGS, type TimeoutSettings } from '../src/properties/settings.js';
import { freezeSettings } from '../src/properties/frozen.js';
import { SETTINGS_FIELDS, sameSettings } from './helpers/settings.js';

function ok(t: Asserter, text: string): TimeoutSettings & { warnings: string[] } {
  const r = parseTimeoutProperties(text);
  if (!r.ok) {
    t.fail(`expected ok for ${JSON.stringify(text)}: ${r.problems.map(describeProblem).join('; ')}`);
    return { ...DEFAULT_SETTINGS, warnings: r.warnings };
  }
  return { ...r.settings, warnings: r.warnings };
}

function bad(t: Asserter, text: string): Extract<ParseResult, { ok: false }> {
  const r = parseTimeoutProperties(text);
  if (r.ok) {
    t.fail(`expected problems for ${JSON.stringify(text)}`);
    return { ok: false, problems: [], warnings: [] };
  }
  return r;
}

type Asserter = { fail: (message: string) => unknown };
const users = (s: TimeoutSettings): string[] => [...s.exemptUsers];
/** The value Java would give `key` (last wins). */
const javaValue = (text: string, key: string): string | undefined =>
  readPropertyEntries(text).filter((e) => e.key === key).at(-1)?.value;

t.test('an empty file, or one without timeout keys, gives the defaults', async (t) => {
  for (const text of ['', '\n\n', '# only a comment\n', 'server.port=8080\nother.key: x\n']) {
    const s = ok(t, text);
    t.ok(settingsEqual(s, DEFAULT_SETTINGS), JSON.stringify(text));
    t.same(s.warnings, []);
  }
  const s = ok(t, '');
  t.equal(s.enabled, false);
  t.equal(s.timeoutMinutes, 480);
  t.equal(s.timeoutMs, 480 * 60_000);
  t.equal(s.notifyBeforeMinutes, 1);
  t.equal(s.notifyBeforeMs, 60_000);
  t.equal(s.exemptDelimiter, ',');
  t.equal(s.exemptUsers.size, 0);
});

t.test('a full valid file', async (t) => {
  const s = ok(
    t,
    [
      'timeout.session.enabled=true',
      'timeout.session.minutes=30',
      'timeout.session.notification.minutes=2.5',
      'timeout.session.exception.delimiter=;',
      'timeout.session.exception.usernames= admin ; svc-report;;  ',
    ].join('\n'),
  );
  t.equal(s.enabled, true);
  t.equal(s.timeoutMinutes, 30);
  t.equal(s.timeoutMs, 1_800_000);
  t.equal(s.notifyBeforeMinutes, 2.5);
  t.equal(s.notifyBeforeMs, 150_000);
  t.equal(s.exemptDelimiter, ';');
  t.same(users(s), ['admin', 'svc-report']);
  t.ok(Object.isFrozen(s.exemptUsers), 'the user set is frozen');
});

t.test('enabled: true/false in any case, surrounding whitespace trimmed', async (t) => {
  for (const v of ['true', 'TRUE', 'True', 'tRuE', ' true ', 'true\t']) t.equal(ok(t, `timeout.session.enabled=${v}`).enabled, true, v);
  for (const v of ['false', 'FALSE', 'False', '  false']) t.equal(ok(t, `timeout.session.enabled=${v}`).enabled, false, v);
  // a trailing blank survives Java's parsing; written escaped here to make sure it is trimmed
  t.equal(ok(t, 'timeout.session.enabled=true\\ ').enabled, true);
  for (const v of ['', 'yes', '1', 'on', 'truee', 't', 'true false']) {
    const r = bad(t, `timeout.session.enabled=${v}`);
    t.same(r.problems, [{ key: 'timeout.session.enabled', value: v, rule: 'must be true or false' }], JSON.stringify(v));
  }
});

t.test('minutes: positive decimals up to 10 years', async (t) => {
  const cases: Array<[string, number]> = [['480', 480], ['0.1', 0.1], ['1.5', 1.5], ['.5', 0.5], ['5.', 5], ['+15', 15], [' 20 ', 20], ['007', 7], ['5256000', 5_256_000]];
  for (const [v, n] of cases) {
    const s = ok(t, `timeout.session.minutes=${v}\ntimeout.session.notification.minutes=0`);
    t.equal(s.timeoutMinutes, n, v);
    t.equal(s.timeoutMs, n * 60_000, v);
  }
  const rejected = ['0', '0.0', '-5', '-0', 'NaN', 'Infinity', '-Infinity', '1e309', '1e3', '480min', '', ' ', '0x1E', '1_000', '1,5', '4 80', '..5', '1.2.3', '٤٨٠', '５'];
  for (const v of rejected) {
    const r = bad(t, `timeout.session.minutes=${v}`);
    t.equal(r.problems.length, 1, JSON.stringify(v));
    t.equal(r.problems[0]?.key, 'timeout.session.minutes', JSON.stringify(v));
    t.equal(r.problems[0]?.rule, 'must be a positive number of minutes (decimals allowed)', JSON.stringify(v));
  }
  t.same(bad(t, 'timeout.session.minutes=5256000.5').problems[0]?.rule, 'must be at most 5256000 minutes (10 years)');
  t.same(bad(t, `timeout.session.minutes=${'9'.repeat(400)}`).problems[0]?.key, 'timeout.session.minutes');
  t.same(bad(t, `timeout.session.minutes=0.${'0'.repeat(400)}1`).problems[0]?.key, 'timeout.session.minutes', 'underflows to 0');
});

t.test('notification minutes: 0 or positive, below the timeout', async (t) => {
  t.equal(ok(t, 'timeout.session.notification.minutes=0').notifyBeforeMs, 0);
  t.equal(ok(t, 'timeout.session.notification.minutes=0.5').notifyBeforeMs, 30_000);
  t.equal(ok(t, 'timeout.session.minutes=10\ntimeout.session.notification.minutes=9.99').notifyBeforeMinutes, 9.99);
  for (const v of ['-1', 'NaN', '1e309', 'Infinity', '2min', '', 'one', '0x1']) {
    const r = bad(t, `timeout.session.notification.minutes=${v}`);
    t.same(r.problems, [{ key: 'timeout.session.notification.minutes', value: v, rule: 'must be 0 (no warning) or a positive number of minutes (decimals allowed)' }], JSON.stringify(v));
  }
  for (const v of ['10', '11', '10.0']) {
    const r = bad(t, `timeout.session.minutes=10\ntimeout.session.notification.minutes=${v}`);
    t.same(r.problems, [{ key: 'timeout.session.notification.minutes', value: v, rule: 'must be less than timeout.session.minutes (10)' }]);
  }
  // only the default (1) is in the way: no warning is sent, and the operator is told
  const s = ok(t, 'timeout.session.minutes=0.5');
  t.equal(s.notifyBeforeMs, 0);
  t.match(s.warnings.join('\n'), /timeout\.session\.notification\.minutes is not set/);
  // both bad: both named
  const r = bad(t, 'timeout.session.minutes=abc\ntimeout.session.notification.minutes=-1\ntimeout.session.enabled=maybe');
  t.same(r.problems.map((p) => p.key).sort(), ['timeout.session.enabled', 'timeout.session.minutes', 'timeout.session.notification.minutes']);
});

t.test('delimiter is literal, may be several characters, must not be empty', async (t) => {
  const split = (delim: string, list: string) =>
    users(ok(t, `timeout.session.exception.delimiter=${delim}\ntimeout.session.exception.usernames=${list}`));
  t.same(split(',', 'a,b , c,,'), ['a', 'b', 'c']);
  t.same(split(';', 'a;b;c'), ['a', 'b', 'c']);
  t.same(split('|', 'a|b|c'), ['a', 'b', 'c'], 'a pipe is not a regex alternation');
  t.same(split('.', 'john.doe.x'), ['john', 'doe', 'x'], 'a dot is not a regex wildcard');
  t.same(split('.*', 'a.*b.*c'), ['a', 'b', 'c']);
  t.same(split('.*', 'abc'), ['abc'], '.* only splits on the literal text');
  t.same(split('||', 'a||b|c'), ['a', 'b|c']);
  t.same(split('\\ ', 'a b  c'), ['a', 'b', 'c'], 'an escaped blank is a delimiter');
  t.same(split('::', 'a::b'), ['a', 'b']);
  t.same(split('\\u00e9', 'aébéc'), ['a', 'b', 'c']);
  t.same(users(ok(t, 'timeout.session.exception.usernames=alice, bob ,,carol')), ['alice', 'bob', 'carol'], 'default comma');
  t.same(users(ok(t, 'timeout.session.exception.usernames=')), []);
  t.same(users(ok(t, 'timeout.session.exception.usernames=Alice,alice')), ['Alice', 'alice'], 'case kept');
  const r = bad(t, 'timeout.session.exception.delimiter=');
  t.same(r.problems, [{ key: 'timeout.session.exception.delimiter', value: '', rule: 'must not be empty' }]);
  t.equal(describeProblem(r.problems[0]!), 'timeout.session.exception.delimiter="" is invalid: must not be empty');
});

t.test('Java syntax: separators', async (t) => {
  for (const line of [
    'timeout.session.minutes=15',
    'timeout.session.minutes:15',
    'timeout.session.minutes 15',
    'timeout.session.minutes\t15',
    'timeout.session.minutes\f15',
    'timeout.session.minutes = 15',
    'timeout.session.minutes : 15',
    '   timeout.session.minutes   =   15',
    'timeout.session.minutes   15',
    'timeout.session.minutes \t: 15',
  ]) {
    t.equal(ok(t, line).timeoutMinutes, 15, JSON.stringify(line));
  }
  // only the first separator counts; the rest belongs to the value
  t.equal(javaValue('a=b=c', 'a'), 'b=c');
  t.equal(javaValue('a:b:c', 'a'), 'b:c');
  t.equal(javaValue('a = = c', 'a'), '= c');
  t.equal(javaValue('a  =c', 'a'), 'c', 'blanks before the = are part of the separator');
  t.equal(javaValue('a b = c', 'a'), 'b = c', 'the key ends at the first unescaped blank');
  t.equal(javaValue('a', 'a'), '', 'a key alone has an empty value');
  t.equal(javaValue('a=', 'a'), '');
  t.equal(javaValue('a=x  ', 'a'), 'x  ', 'trailing blanks are kept, as in Java');
  t.equal(javaValue('=x', ''), 'x', 'an empty key is allowed');
});

t.test('Java syntax: escapes', async (t) => {
  t.equal(javaValue('a=\\u00e9t\\u00C9', 'a'), 'étÉ');
  t.equal(javaValue('a=x\\=y\\:z', 'a'), 'x=y:z');
  t.equal(javaValue('a\\=b=c', 'a=b'), 'c', 'escaped = in a key');
  t.equal(javaValue('a\\:b:c', 'a:b'), 'c', 'escaped : in a key');
  t.equal(javaValue('a\\ b c', 'a b'), 'c', 'escaped blank in a key');
  t.equal(javaValue('a=\\t\\n\\r\\f', 'a'), '\t\n\r\f');
  t.equal(javaValue('a=\\q\\\\\\#', 'a'), 'q\\#', 'unknown escapes drop the backslash');
  t.equal(javaValue('a=50%41', 'a'), '50%41', 'percent sequences are not decoded');
  t.equal(javaValue('a=${b}\nb=2', 'a'), '${b}', 'no interpolation');
  t.equal(javaValue('a=\\\\', 'a'), '\\', 'an escaped backslash at the end does not continue the line');
  t.equal(ok(t, 'timeout.session.minut\\u0065s=\\u0033\\u0030').timeoutMinutes, 30, 'escapes in keys and values');
  t.equal(ok(t, 'timeout.session.exception.delimiter=\\:\ntimeout.session.exception.usernames=a:b').exemptDelimiter, ':');
  t.equal(ok(t, 'timeout.session.exception.delimiter=\\=\ntimeout.session.exception.usernames=a=b').exemptUsers.size, 2);
  t.equal(ok(t, 'timeout.session.exception.delimiter=\\#\ntimeout.session.exception.usernames=a#b').exemptUsers.size, 2);
  t.equal(ok(t, 'timeout.session.exception.delimiter=#\ntimeout.session.exception.usernames=a#b').exemptUsers.size, 2, '# after a separator is a value');
  // Java refuses a malformed \u escape; our key -> problem, other key -> warning only
  const r = bad(t, 'timeout.session.minutes=\\u12');
  t.equal(r.problems[0]?.key, 'timeout.session.minutes');
  t.match(r.problems[0]?.rule, /malformed/);
  const s = ok(t, 'windows.path=C:\\users\\x\ntimeout.session.minutes=5');
  t.equal(s.timeoutMinutes, 5);
  t.match(s.warnings.join('\n'), /malformed \\uXXXX escape in "windows.path"/);
});

t.test('Java syntax: comments', async (t) => {
  t.ok(settingsEqual(ok(t, '#timeout.session.enabled=true'), DEFAULT_SETTINGS));
  t.ok(settingsEqual(ok(t, '!timeout.session.enabled=true'), DEFAULT_SETTINGS));
  t.ok(settingsEqual(ok(t, '   # timeout.session.enabled=true'), DEFAULT_SETTINGS), 'indented #');
  t.ok(settingsEqual(ok(t, '\t! timeout.session.enabled=true'), DEFAULT_SETTINGS), 'indented !');
  t.equal(ok(t, '# comment \\\ntimeout.session.enabled=true').enabled, true, 'a comment never continues');
  t.equal(bad(t, 'timeout.session.minutes=5 # not a comment').problems[0]?.value, '5 # not a comment', 'trailing # is part of the value');
});

t.test('Java syntax: continuation lines', async (t) => {
  t.equal(ok(t, 'timeout.session.minutes=1\\\n    5').timeoutMinutes, 15, 'leading blanks of the next line are dropped');
  t.equal(ok(t, 'timeout.session.\\\n  minutes=15').timeoutMinutes, 15, 'inside a key');
  t.same(users(ok(t, 'timeout.session.exception.usernames=alice,\\\n   bob,\\\r\n   carol,\\\r   dave')), ['alice', 'bob', 'carol', 'dave'], 'LF, CRLF and CR continuations');
  t.equal(javaValue('a=x\\\n# not a comment', 'a'), 'x# not a comment', 'a continuation line starting with # is content');
  t.equal(javaValue('a=x\\\n\nb=y', 'b'), 'y', 'an empty continuation line ends the entry');
  t.equal(javaValue('a=x\\\n\nb=y', 'a'), 'x');
  t.equal(javaValue('a=x\\', 'a'), 'x', 'a backslash at end of input is dropped');
  t.same(readPropertyEntries(' \\\r\n \r\nb=1').map((e) => e.key), ['b'], 'a line that is only a continuation is no entry (Java)');
  // JDK 17 corner cases, checked with java.util.Properties
  const keys = (text: string) => readPropertyEntries(text).map((e) => `${e.key}=${e.value}`);
  t.same(keys('\\'), ['='], 'a lone backslash at end of input is the entry "" = ""');
  t.same(keys('\\\n'), ['=']);
  t.same(keys('\\\r'), ['=']);
  t.same(keys('\\\r\n'), []);
  t.same(keys('\\\n '), []);
  t.same(keys('\\\n#x=1\nb=2'), ['b=2'], 'after an empty continued line, # still starts a comment (JDK 9+)');
  t.same(keys('a=1\\\n#x'), ['a=1#x'], 'but not once something was collected');
  t.equal(javaValue('a=x\\\\\nb=y', 'a'), 'x\\', 'even backslashes do not continue');
  t.equal(javaValue('a=x\\\\\\\nz', 'a'), 'x\\z', 'odd backslashes continue');
});

t.test('Java syntax: LF, CRLF and CR line endings', async (t) => {
  const lines = ['timeout.session.enabled=true', 'timeout.session.minutes=42', '# c', 'timeout.session.exception.usernames=a,b'];
  for (const eol of ['\n', '\r\n', '\r']) {
    const s = ok(t, lines.join(eol) + eol);
    t.equal(s.enabled, true, JSON.stringify(eol));
    t.equal(s.timeoutMinutes, 42, JSON.stringify(eol));
    t.same(users(s), ['a', 'b'], JSON.stringify(eol));
  }
  const mixed = ok(t, 'timeout.session.enabled=true\r\ntimeout.session.minutes=42\rtimeout.session.exception.usernames=a,b\n');
  t.equal(mixed.timeoutMinutes, 42, 'mixed endings');
  t.same(users(mixed), ['a', 'b']);
  const entries = readPropertyEntries('a=1\r\n\r\nb=2\rc=3\n\nd=4');
  t.same(entries.map((e) => [e.key, e.line]), [['a', 1], ['b', 3], ['c', 4], ['d', 6]], 'line numbers');
});

t.test('duplicate keys: the last wins, with a warning', async (t) => {
  const s = ok(t, 'timeout.session.minutes=10\nother=1\ntimeout.session.minutes=20\n');
  t.equal(s.timeoutMinutes, 20);
  t.match(s.warnings.join('\n'), /timeout\.session\.minutes is set 2 times \(lines 1, 3\)/);
  t.equal(ok(t, 'timeout.session.minutes=abc\ntimeout.session.minutes=20').timeoutMinutes, 20, 'an earlier bad value is overridden');
  t.equal(bad(t, 'timeout.session.minutes=20\ntimeout.session.minutes=abc').problems[0]?.value, 'abc');
});

t.test('keys are case-sensitive; near misses warn', async (t) => {
  const s = ok(t, 'Timeout.Session.Enabled=true\nTIMEOUT.SESSION.MINUTES=abc\n');
  t.equal(s.enabled, false, 'not applied');
  t.equal(s.timeoutMinutes, 480, 'not validated either');
  t.match(s.warnings[0], /"Timeout\.Session\.Enabled" is ignored .*did you mean timeout\.session\.enabled\?/);
  t.match(s.warnings[1], /did you mean timeout\.session\.minutes\?/);
  t.same(ok(t, 'timeout.session.enabledx=true\ntimeout.sessions.minutes=3').warnings, [], 'other keys are ignored silently');
});

t.test('describeProblem', async (t) => {
  const r = bad(t, 'timeout.session.minutes=480min');
  t.equal(describeProblem(r.problems[0]!), 'timeout.session.minutes="480min" is invalid: must be a positive number of minutes (decimals allowed)');
  t.equal(describeProblem({ key: '(file)', value: '/x', rule: 'is a directory, not a file' }), 'properties file "/x" is a directory, not a file');
  const long = bad(t, `timeout.session.minutes=${'x'.repeat(10_000)}`).problems[0]!;
  t.ok(long.value.length < 300, 'huge values are clipped in problems');
});

t.test('decodePropertiesBytes: UTF-8, BOM, ISO-8859-1 fallback', async (t) => {
  t.same(decodePropertiesBytes(Buffer.from('a=é', 'utf8')), { text: 'a=é' });
  t.same(decodePropertiesBytes(Buffer.from([0xef, 0xbb, 0xbf, 0x61, 0x3d, 0x31])), { text: 'a=1' }, 'BOM stripped');
  const latin = decodePropertiesBytes(Buffer.from([0x61, 0x3d, 0xe9, 0x74, 0xe9]));
  t.equal(latin.text, 'a=été');
  t.match(latin.warning, /not valid UTF-8; it was read as ISO-8859-1/);
  const bomThenLatin = decodePropertiesBytes(Buffer.from([0xef, 0xbb, 0xbf, 0x61, 0x3d, 0xe9]));
  t.equal(bomThenLatin.text, 'a=é', 'BOM stripped before the fallback too');
  const utf16 = decodePropertiesBytes(Buffer.from('\ufeffa=1', 'utf16le'));
  t.match(utf16.warning, /looks like UTF-16/);
  // BOM before a timeout key: the key must still match
  const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('timeout.session.enabled=true')]);
  t.equal(ok(t, decodePropertiesBytes(withBom).text).enabled, true);
  // ISO-8859-1 user names
  const r = parseTimeoutProperties(decodePropertiesBytes(Buffer.from('timeout.session.exception.usernames=j\xfcrgen,zo\xeb', 'latin1')).text);
  t.ok(r.ok && [...r.settings.exemptUsers].join() === 'jürgen,zoë');
});

t.test('binary garbage never throws', async (t) => {
  const samples = [Buffer.from([0, 1, 2, 255, 254, 0x5c]), Buffer.alloc(1000, 0x5c), Buffer.from('\\u\\u\\\\u00'), Buffer.from([0xc3, 0x28, 0x0d, 0x5c, 0x0a])];
  for (const b of samples) {
    const r = parseTimeoutProperties(decodePropertiesBytes(b).text);
    t.ok(r.ok || r.problems.length > 0);
  }
});

t.test('settingsDiff and settingsEqual', async (t) => {
  const a = ok(t, 'timeout.session.exception.usernames=alice,bob');
  const b = ok(t, 'timeout.session.enabled=true\ntimeout.session.minutes=30\ntimeout.session.exception.usernames=bob,alice');
  t.ok(settingsEqual(a, a));
  t.notOk(settingsEqual(a, b));
  t.same(settingsDiff(a, b), [
    { key: 'timeout.session.enabled', from: 'false', to: 'true' },
    { key: 'timeout.session.minutes', from: '480', to: '30' },
  ], 'user order does not matter');
  const c = ok(t, 'timeout.session.exception.delimiter=;\ntimeout.session.exception.usernames=carol\ntimeout.session.notification.minutes=0');
  t.same(settingsDiff(a, c), [
    { key: 'timeout.session.notification.minutes', from: '1', to: '0' },
    { key: 'timeout.session.exception.delimiter', from: '","', to: '";"' },
    { key: 'timeout.session.exception.usernames', from: '["alice","bob"]', to: '["carol"]' },
  ]);
  t.same(settingsDiff(a, ok(t, 'timeout.session.exception.usernames=alice,bob')), []);
});

t.test('settingsEqual, field by field, agrees with an independent comparison', async (t) => {
  t.same(Object.keys(DEFAULT_SETTINGS).sort(), [...SETTINGS_FIELDS].sort(), 'the yardstick knows every field of TimeoutSettings');
  const base = ok(t, 'timeout.session.enabled=true\ntimeout.session.minutes=30\ntimeout.session.notification.minutes=2\ntimeout.session.exception.usernames=alice,bob');
  const other: { [K in (typeof SETTINGS_FIELDS)[number]]: TimeoutSettings[K] } = {
    enabled: false,
    timeoutMs: 31 * 60_000,
    timeoutMinutes: 31,
    notifyBeforeMs: 3 * 60_000,
    notifyBeforeMinutes: 3,
    exemptDelimiter: ';',
    exemptUsers: new Set(['alice', 'carol']),
  };
  const copy = freezeSettings({ ...base, exemptUsers: new Set([...base.exemptUsers].reverse()) });
  t.ok(sameSettings(base, copy), 'the yardstick sees an equal copy (users in another order) as equal');
  t.equal(settingsEqual(base, copy), true, 'settingsEqual too');
  for (const field of SETTINGS_FIELDS) {
    const changed = freezeSettings({ ...base, [field]: other[field] });
    t.equal(sameSettings(base, changed), false, `the yardstick sees a change of ${field} alone`);
    t.equal(settingsEqual(base, changed), false, `settingsEqual sees a change of ${field} alone`);
    t.equal(settingsEqual(changed, base), false, `... in both directions (${field})`);
  }
  // user sets that differ in size, in one name, or only as a subset
  for (const users of [[], ['alice'], ['alice', 'bob', 'carol'], ['alice', 'Bob'], ['alice', 'bob ']]) {
    const changed = freezeSettings({ ...base, exemptUsers: new Set(users) });
    t.equal(settingsEqual(base, changed), sameSettings(base, changed), `users ${JSON.stringify(users)}`);
    t.equal(settingsEqual(changed, base), sameSettings(changed, base), `users ${JSON.stringify(users)}, reversed`);
  }
  // random pairs drawn from a small space, so equal pairs come up too
  const settings = fc.record({
    enabled: fc.boolean(),
    minutes: fc.constantFrom(10, 30),
    notify: fc.constantFrom(0, 1),
    delimiter: fc.constantFrom(',', ';'),
    users: fc.uniqueArray(fc.constantFrom('alice', 'bob', 'carol'), { maxLength: 3 }),
  }).map((r) => freezeSettings({
    enabled: r.enabled,
    timeoutMs: r.minutes * 60_000,
    timeoutMinutes: r.minutes,
    notifyBeforeMs: r.notify * 60_000,
    notifyBeforeMinutes: r.notify,
    exemptDelimiter: r.delimiter,
    exemptUsers: new Set(r.users),
  }));
  let equalPairs = 0;
  let pairs = 0;
  fc.assert(fc.property(settings, settings, (a, b) => {
    pairs++;
    const want = sameSettings(a, b);
    if (want) equalPairs++;
    if (settingsEqual(a, b) !== want) throw new Error(`settingsEqual says ${!want} for ${JSON.stringify([a, b].map((s) => ({ ...s, exemptUsers: [...s.exemptUsers] })))}`);
  }), { numRuns: 2000 });
  t.equal(pairs, 2000, 'every random pair was compared');
  t.ok(equalPairs > 0, `some random pairs were equal (${equalPairs})`);
});

t.test('settings are deeply immutable', async (t) => {
  const r = parseTimeoutProperties('timeout.session.exception.usernames=alice');
  if (!r.ok) return t.fail('expected ok');
  const s = r.settings;
  t.ok(Object.isFrozen(s));
  t.throws(() => ((s as { enabled: boolean }).enabled = true));
  const set = s.exemptUsers as unknown as Set<string>;
  t.equal(typeof set.add, 'undefined', 'no add()');
  t.equal(typeof set.delete, 'undefined', 'no delete()');
  t.throws(() => Set.prototype.add.call(set, 'mallory'), 'Set.prototype.add cannot be borrowed');
  t.equal(s.exemptUsers.has('mallory'), false);
  t.same([...s.exemptUsers], ['alice']);
});

t.test('readSettingsFile', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'props-read-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'Panopticon.properties');

  const missing = await readSettingsFile(file);
  t.equal(missing.missing, true);

  await writeFile(file, 'timeout.session.enabled=true\n');
  const good = await readSettingsFile(file);
  t.ok(good.ok && good.settings.enabled);
  t.ok(!good.missing && typeof good.contentHash === 'string');

  await writeFile(file, Buffer.from([0x61, 0x3d, 0xe9]));
  const latin = await readSettingsFile(file);
  t.ok(latin.ok);
  t.match(latin.warnings[0], /ISO-8859-1/);

  const sub = join(dir, 'sub');
  await mkdir(sub);
  const isDir = await readSettingsFile(sub);
  t.same(!isDir.ok && isDir.problems, [{ key: '(file)', value: sub, rule: 'is a directory, not a file' }]);

  // a size just over the limit is refused before reading (sparse file: no 5 MiB written)
  await truncate(file, MAX_PROPERTIES_BYTES + 1);
  const big = await readSettingsFile(file);
  t.ok(!big.ok && big.problems[0]?.key === '(file)' && /larger than 5 MiB/.test(big.problems[0].rule));

  await truncate(file, MAX_PROPERTIES_BYTES);
  t.ok((await readSettingsFile(file)).ok, 'exactly 5 MiB is still read (all NUL bytes: one long key)');

  const fifo = join(dir, 'fifo');
  try {
    execFileSync('mkfifo', [fifo]);
    const r = await readSettingsFile(fifo);
    t.same(!r.ok && r.problems[0]?.rule, 'is not a regular file', 'a FIFO does not block');
  } catch {
    t.comment('mkfifo not available; FIFO case not tested');
  }
});
