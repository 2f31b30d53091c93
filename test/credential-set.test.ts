import t from 'tap';
import { CredentialSet, storedCredential } from '../src/sessions/credential-set.js';
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
