import { createHash } from 'node:crypto';
import t from 'tap';
import { ByteArena } from '../src/sessions/byte-arena.js';
import { CredentialSet, storedCredential } from '../src/sessions/credential-set.js';
import type { StoredCredential } from '../src/sessions/store.js';
import { detached } from '../src/detached-string.js';

const cred = (fingerprint: string, lastSeenMs = 1) =>
  storedCredential({ fingerprint, kind: 'token-cookie', replay: { cookie: `ptoken=${fingerprint}` } }, lastSeenMs);

t.test('keeps insertion order and lookups from one credential to many and back', async (t) => {
  const set = new CredentialSet();
  t.equal(set.size, 0);
  t.same([...set.keys()], []);
  set.set('a', cred('a'));
  set.set('b', cred('b'));
  t.equal(set.size, 2);
  t.same([...set.keys()], ['a', 'b']);
  t.equal(set.get('b')?.fingerprint, 'b');
  t.notOk(set.has('c'));
  set.set('b', cred('b', 5)); // replaced in place, order kept
  t.same([...set.values()].map((c) => [c.fingerprint, c.lastSeenMs]), [['a', 1], ['b', 5]]);
  set.set('c', cred('c'));
  set.set('d', cred('d'));
  t.equal(set.size, 4);
  t.same([...set.keys()], ['a', 'b', 'c', 'd']);
  t.ok(set.delete('a'));
  t.ok(set.delete('c'));
  t.notOk(set.delete('c'), 'already gone');
  t.equal(set.size, 2);
  t.same([...set.keys()], ['b', 'd'], 'back to two, in their order');
  t.equal(set.get('d')?.fingerprint, 'd');
  set.set('e', cred('e'));
  t.same([...set.keys()], ['b', 'd', 'e']);
  set.clear();
  t.equal(set.size, 0);
  t.same([...set.values()], []);
});

t.test('deleting the first of two keeps the second', async (t) => {
  const set = new CredentialSet([cred('a'), cred('b')]);
  t.ok(set.delete('a'));
  t.same([...set.keys()], ['b']);
  t.equal(set.get('b')?.fingerprint, 'b');
  t.notOk(set.has('a'));
  set.set('c', cred('c'));
  t.same([...set.keys()], ['b', 'c']);
  t.ok(set.delete('c'));
  t.ok(set.delete('b'));
  t.equal(set.size, 0);
  t.notOk(set.delete('b'));
});

t.test('detached keeps the characters of a value cut from a header', async (t) => {
  const header = `SESSION=abc; XSRF-TOKEN=${'x'.repeat(40)}; ptoken=${'e'.repeat(300)}`;
  const value = header.slice(header.indexOf('ptoken=') + 7);
  t.equal(detached(value), value);
  t.equal(detached(`ptoken=${value}`), `ptoken=${value}`);
  t.equal(detached('short'), 'short');
  t.equal(detached('é ünïcødé value ✓ 🍪'), 'é ünïcødé value ✓ 🍪');
  const lone = `a lone surrogate \ud800 here`;
  t.equal(detached(lone), lone, 'a string UTF-8 cannot carry is kept as it is');
});

// ---- packed storage ----------------------------------------------------------------------------

const b64 = (what: string) => createHash('sha256').update(what).digest('base64url');
const jwt = (sub: string) => {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub, exp: 1_800_000_000, roles: ['viewer'] })}.${b64(`sig-${sub}`)}`;
};

t.test('every kind of credential comes back exactly as it was kept', async (t) => {
  const arena = new ByteArena();
  const set = new CredentialSet([], arena);
  const kept: StoredCredential[] = [
    { fingerprint: b64('a'), kind: 'token-cookie', replay: { cookie: `ptoken=${jwt('alice')}` }, expiresAtMs: 1_800_000_000_000, secretFingerprint: b64('a'), csrf: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0', lastSeenMs: 1_764_547_200_123 },
    { fingerprint: b64('b'), kind: 'authorization', replay: { authorization: `Bearer ${jwt('bob')}` }, secretFingerprint: b64('b-secret'), lastSeenMs: 5.25 },
    { fingerprint: 'short-fp', kind: 'session-cookie', replay: { cookie: `SESSION="${jwt('quoted')}"` }, lastSeenMs: 0 },
    // 43 characters of base64url whose last one carries stray bits: not 32 bytes, kept as written
    { fingerprint: `${'A'.repeat(42)}B`, kind: 'identity-header', replay: { 'x-remote-user': 'Zoë ✓ 🍪', 'x-extra': 'two headers' }, lastSeenMs: 1 },
    { fingerprint: b64('long'), kind: 'token-cookie', replay: { cookie: `ptoken=${'x'.repeat(40_000)}` }, csrf: 'é-latin1-csrf', lastSeenMs: 2 },
    // dotted but one segment cannot be base64url (a single character), and one with '=' padding
    { fingerprint: b64('odd'), kind: 'token-cookie', replay: { cookie: `ptoken=${'a'.repeat(70)}.b`, other: `t=${'QUJD'.repeat(20)}.QQ==` }, lastSeenMs: 3 },
    { fingerprint: b64('none'), kind: 'session-cookie', replay: {}, lastSeenMs: 4 },
  ];
  for (const c of kept) set.set(c.fingerprint, c);
  t.same([...set.values()], kept, 'values');
  for (const c of kept) {
    t.same(set.get(c.fingerprint), c, `get ${c.kind}`);
    t.ok(set.has(c.fingerprint));
  }
  t.same([...set.keys()], kept.map((c) => c.fingerprint));
  t.notOk(set.has(b64('absent')));
  t.notOk(set.has(`${b64('a').slice(0, 42)}Q`), 'a fingerprint differing in its last character is another one');
  t.notOk(set.has('short-fq'));
  t.notOk(set.has(''));
  t.equal(set.get(b64('a'))!.secretFingerprint, b64('a'), 'a secret fingerprint equal to the fingerprint is kept once and given back');
  t.notOk('secretFingerprint' in set.get('short-fp')!, 'absent stays absent');
  t.notOk('expiresAtMs' in set.get(b64('b'))!);
});

t.test('what comes out is a copy; refresh moves the last-seen time and replaces a changed CSRF token', async (t) => {
  const set = new CredentialSet();
  const fp = b64('copy');
  set.set(fp, storedCredential({ fingerprint: fp, kind: 'token-cookie', replay: { cookie: `ptoken=${jwt('c')}` }, csrf: 'one' }, 10));
  const copy = set.get(fp)!;
  copy.lastSeenMs = 99;
  copy.csrf = 'changed';
  t.equal(set.get(fp)!.lastSeenMs, 10, 'changing a copy changes nothing kept');
  t.equal(set.get(fp)!.csrf, 'one');

  t.equal(set.refresh(b64('other'), 20, 'one'), undefined, 'not held');
  t.equal(set.refresh(fp, 20, 'one'), false, 'same CSRF token');
  t.equal(set.get(fp)!.lastSeenMs, 20);
  t.equal(set.refresh(fp, 30), false, 'no CSRF token with the request');
  t.equal(set.get(fp)!.csrf, 'one', 'a request without a token keeps the kept one');
  const before = set.stampOf(fp);
  set.markWritten(fp, before);
  t.ok(set.isWritten(fp));
  t.equal(set.refresh(fp, 40, 'two'), true, 'a new CSRF token is a new version');
  t.same(set.get(fp), { fingerprint: fp, kind: 'token-cookie', replay: { cookie: `ptoken=${jwt('c')}` }, csrf: 'two', lastSeenMs: 40 });
  t.not(set.stampOf(fp), before, 'the stamp changed');
  t.notOk(set.isWritten(fp), 'the new version is not written yet');
  set.markWritten(fp, before);
  t.notOk(set.isWritten(fp), 'marking the old version written does not mark the new one');
  set.markWritten(fp, set.stampOf(fp));
  t.ok(set.isWritten(fp));
  set.forgetWritten();
  t.notOk(set.isWritten(fp));

  const other = b64('other');
  set.set(other, storedCredential({ fingerprint: other, kind: 'session-cookie', replay: { cookie: 'SESSION=o' } }, 1));
  set.markWritten(fp);
  t.same(set.unwritten(), [{ credential: set.get(other), stamp: set.stampOf(other) }], 'unwritten lists what is not written, with its stamp');
  set.markWritten(other, set.unwritten()[0]!.stamp);
  t.same(set.unwritten(), []);
});

t.test('the arena gives freed blocks back and reuses them', async (t) => {
  const arena = new ByteArena();
  const set = new CredentialSet([], arena);
  const make = (i: number) => storedCredential({ fingerprint: b64(`u${i}`), kind: 'token-cookie', replay: { cookie: `ptoken=${jwt(`u${i}`)}` }, secretFingerprint: b64(`u${i}`), csrf: 'c' }, i);
  for (let i = 0; i < 5; i++) set.set(b64(`u${i}`), make(i));
  t.ok(arena.usedBytes > 0);
  const tokenChars = jwt('u0').length;
  const chars = `ptoken=${jwt('u0')}`.length + 2 * 43 + 'cookie'.length + 1;
  t.ok(arena.usedBytes / 5 < chars, `a credential takes ${arena.usedBytes / 5} bytes, less than the ${chars} characters it holds`);
  set.clear();
  t.equal(arena.usedBytes, 0, 'clear frees every block');
  const reserved = arena.reservedBytes;
  for (let round = 0; round < 10_000; round++) {
    set.set(b64(`u${round % 7}`), make(round % 7));
    if (set.size > 3) set.delete([...set.keys()][0]!);
  }
  t.equal(arena.reservedBytes, reserved, 'churn reuses the freed blocks');
  t.ok(set.size >= 1 && set.size <= 3, `${set.size} held`);
  set.clear();
  t.equal(arena.usedBytes, 0);
});

t.test('sets that share rows keep to their own row', async (t) => {
  const arena = new ByteArena();
  const rows = { credOne: new Int32Array(3).fill(-1), credTwo: new Int32Array(3).fill(-1), credMany: new Map<number, Map<string, number>>() };
  const at = (row: number) => CredentialSet.atRow(arena, rows, row);
  for (let i = 0; i < 4; i++) at(0).set(`zero-${i}`, cred(`zero-${i}`));
  at(2).set('two', cred('two'));
  t.same([...at(0).keys()], ['zero-0', 'zero-1', 'zero-2', 'zero-3']);
  t.same([...at(1).keys()], []);
  t.same([...at(2).keys()], ['two']);
  at(0).clear();
  t.same([...at(2).values()].map((c) => c.fingerprint), ['two']);
  t.equal(rows.credMany.size, 0, 'a cleared row leaves no map behind');
});

t.test('a UUID CSRF token is kept as its 16 bytes, comes back in its own case, and refresh tells every digit apart', async (t) => {
  const lower = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
  const tokens = [lower, lower.toUpperCase(), `${lower.slice(0, 24)}${lower.slice(24).toUpperCase()}`, '0f1e2d3c4-b5a-6978-8796-a5b4c3d2e1f0', `${lower.slice(0, 35)}g`];
  const bytesOf = (csrf: string) => {
    const arena = new ByteArena();
    const set = new CredentialSet([], arena);
    set.set('fp', storedCredential({ fingerprint: 'fp', kind: 'token-cookie', replay: {}, csrf }, 1));
    t.equal(set.get('fp')!.csrf, csrf, `${csrf} comes back as it was`);
    return arena.usedBytes;
  };
  const [packedLower, packedUpper, mixed, misplaced, notHex] = tokens.map(bytesOf);
  t.equal(packedUpper, packedLower, 'upper case packs as small as lower case');
  t.ok(mixed! > packedLower! && misplaced! > packedLower! && notHex! > packedLower!, 'mixed case, a misplaced dash or a non-hex digit are kept as text');

  for (const csrf of tokens.slice(0, 2)) {
    const set = new CredentialSet();
    set.set('fp', storedCredential({ fingerprint: 'fp', kind: 'token-cookie', replay: {}, csrf }, 1));
    t.equal(set.refresh('fp', 2, csrf), false, 'the same token');
    t.equal(set.refresh('fp', 3, csrf === lower ? lower.toUpperCase() : lower), true, 'the same digits in the other case are another token');
    set.set('fp', storedCredential({ fingerprint: 'fp', kind: 'token-cookie', replay: {}, csrf }, 1));
    for (let i = 0; i < 36; i++) {
      if (csrf[i] === '-') continue;
      const changed = `${csrf.slice(0, i)}${csrf[i] === '7' ? '8' : '7'}${csrf.slice(i + 1)}`;
      if (set.refresh('fp', 4, changed) !== true) t.fail(`a change at ${i} was not seen`);
      set.set('fp', storedCredential({ fingerprint: 'fp', kind: 'token-cookie', replay: {}, csrf }, 1));
    }
    t.equal(set.get('fp')!.csrf, csrf);
  }
});
