import t from 'tap';
import { mkdtemp, readFile, stat, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateFile, parseState, type ProxyState } from '../src/sessions/state-file.js';
import { StatePersister } from '../src/sessions/persister.js';
import { makeEngine, settings } from './helpers/engine.js';
import { MINUTE_MS } from '../src/properties/settings.js';

const cred = { fingerprint: 'fp-a', kind: 'token-cookie', replay: { cookie: 'ptoken=SECRET' } };

t.test('save is atomic, private, and round-trips engine state including the warned flag', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'stp-state-'));
  const a = makeEngine(settings({ minutes: 10, notify: 2 }));
  a.engine.recordActivity('alice', 'GET', '/a', cred);
  a.clock.advance(8 * MINUTE_MS);
  t.equal(a.events.length, 1, 'alice warned before the save');
  const file = new StateFile(dir);
  const state: ProxyState = { version: 1, savedAtMs: a.clock.now(), sessions: a.store.exportSnapshots(), pendingLogouts: [], revoked: [] };
  await file.save(state);
  t.equal((await stat(file.path)).mode & 0o777, 0o600);
  t.same((await readdir(dir)).filter((n) => n.includes('.tmp-')), [], 'no temporary file left');

  const loaded = await file.load(0);
  t.equal(loaded.kind, 'loaded');
  const b = makeEngine(settings({ minutes: 10, notify: 2 }));
  b.clock.set(a.clock.now());
  b.store.importSnapshots(loaded.kind === 'loaded' ? loaded.state.sessions : []);
  b.engine.rescheduleAll();
  t.equal(b.engine.describe('alice')?.state, 'warned', 'warned flag restored: no second warning');
  b.clock.advance(2 * MINUTE_MS);
  t.same(b.events.map((e) => [e.kind, e.user, e.credentials]), [['logout', 'alice', ['fp-a']]], 'logged out on time with the saved credential');
});

t.test('a user due while the proxy was down is logged out at once on restore', async (t) => {
  const a = makeEngine(settings({ minutes: 10, notify: 1 }));
  a.engine.recordActivity('bob', 'GET', '/a', cred);
  const snaps = a.store.exportSnapshots();
  const b = makeEngine(settings({ minutes: 10, notify: 1 }));
  b.clock.set(a.clock.now() + 60 * MINUTE_MS);
  b.store.importSnapshots(snaps);
  b.engine.rescheduleAll();
  b.clock.advance(0);
  t.same(b.events.map((e) => e.kind), ['logout']);
});

t.test('a corrupt state file is moved aside, never deleted', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'stp-state-'));
  const file = new StateFile(dir);
  await writeFile(file.path, '{"version":1,"sessions":[');
  const r = await file.load(42);
  t.equal(r.kind, 'corrupt');
  if (r.kind === 'corrupt') {
    t.match(r.error, /not JSON/);
    t.equal(r.movedTo, `${file.path}.corrupt-42`);
    t.equal(await readFile(r.movedTo!, 'utf8'), '{"version":1,"sessions":[');
  }
  t.equal((await file.load(43)).kind, 'missing');
});

t.test('parseState names what is wrong', async (t) => {
  t.throws(() => parseState('[]'), /version/);
  t.throws(() => parseState('{"version":2}'), /version 2 is not 1/);
  t.throws(() => parseState('{"version":1,"sessions":[],"pendingLogouts":[],"revoked":[{}]}'), /revoked credential #0/);
  t.throws(() => parseState('{"version":1,"sessions":[{"user":1}],"pendingLogouts":[],"revoked":[]}'), /session #0/);
  const job = { user: 'a', fingerprint: 'f', kind: 'token-cookie', replay: {}, reason: 'timeout', enqueuedAtMs: 0, attempts: 1, nextAttemptAtMs: 0 };
  t.throws(() => parseState(JSON.stringify({ version: 1, sessions: [], pendingLogouts: [{ ...job, csrf: 5 }], revoked: [] })), /pending logout #0/, 'a CSRF token must be text');
  t.equal(parseState(JSON.stringify({ version: 1, sessions: [], pendingLogouts: [{ ...job, csrf: 'tok' }], revoked: [] })).pendingLogouts[0]!.csrf, 'tok', 'a pending logout keeps its CSRF token across restarts');
});

t.test('the persister never runs two saves at once and reports errors', async (t) => {
  let inside = 0;
  let maxInside = 0;
  let calls = 0;
  const errors: unknown[] = [];
  const fakeFile = { save: async () => { inside++; maxInside = Math.max(maxInside, inside); calls++; await new Promise((r) => setTimeout(r, 5)); inside--; if (calls === 3) throw new Error('disk full'); } };
  const p = new StatePersister({ file: fakeFile as unknown as StateFile, intervalMs: 1000, collect: () => ({}) as ProxyState, onError: (e) => errors.push(e) });
  await Promise.all([p.saveNow(), p.saveNow(), p.saveNow()]);
  await p.saveNow();
  t.equal(maxInside, 1);
  t.equal(calls, 3, 'three requests while busy collapse into one follow-up save');
  t.equal(errors.length, 1);
});

t.test('with a state key the file is sealed (AES-256-GCM): no credential in clear, another key cannot open it', async (t) => {
  const { SecretBox } = await import('../src/sessions/secret-box.js');
  const { stateKeyBytes } = await import('../src/config/state-key.js');
  const dir = await mkdtemp(join(tmpdir(), 'stp-state-'));
  const box = new SecretBox(stateKeyBytes('a'.repeat(40)));
  const a = makeEngine(settings({ minutes: 10 }));
  a.engine.recordActivity('alice', 'GET', '/a', cred);
  const state: ProxyState = { version: 1, savedAtMs: a.clock.now(), sessions: a.store.exportSnapshots(), pendingLogouts: [], revoked: [] };
  await new StateFile(dir, box).save(state);
  const text = await readFile(join(dir, 'session-state.json'), 'utf8');
  t.notMatch(text, /SECRET|alice/, 'neither the credential nor the user is readable on disk');
  const back = await new StateFile(dir, box).load(1);
  t.equal(back.kind, 'loaded');
  if (back.kind === 'loaded') t.same(back.state.sessions[0]?.credentials[0]?.replay, { cookie: 'ptoken=SECRET' });
  const wrong = await new StateFile(dir, new SecretBox(stateKeyBytes('b'.repeat(40)))).load(2);
  t.equal(wrong.kind, 'corrupt');
  if (wrong.kind === 'corrupt') t.match(wrong.error, /does not open with this key/);
});

t.test('a sealed value that was altered does not open', async (t) => {
  const { SecretBox } = await import('../src/sessions/secret-box.js');
  const box = new SecretBox(Buffer.alloc(32, 7));
  const sealed = box.seal('hello');
  t.equal(box.open(sealed), 'hello');
  t.not(box.seal('hello'), sealed, 'a fresh IV each time');
  const bytes = Buffer.from(sealed.slice(3), 'base64url');
  bytes[bytes.length - 1]! ^= 1;
  t.throws(() => box.open('v1.' + bytes.toString('base64url')), /does not open/);
});
