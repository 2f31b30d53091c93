import { createHash } from 'node:crypto';
import t from 'tap';
import { storedCredential } from '../src/sessions/credential-set.js';
import { MemorySessionStore } from '../src/sessions/memory-store.js';
import { RECENT_NOTES_MAX, type RequestNote } from '../src/sessions/store.js';

const fp = (what: string) => createHash('sha256').update(what).digest('base64url');
const note = (i: number, atMs: number): RequestNote => ({ atMs, method: i % 2 ? 'POST' : 'GET', path: `/p/${i}`, counted: i % 3 !== 0, rule: i % 3 !== 0 ? 'counted' : 'passive:GET /p/**' });

/** a store with a few users in every state a record can be in */
function filled(): MemorySessionStore {
  const store = new MemorySessionStore();
  for (let u = 0; u < 40; u++) {
    const user = `user-${u}`;
    const t0 = 1_790_000_000_000 + u * 1000;
    store.ensure(user, t0);
    for (let i = 0; i < (u % 5) * 7; i++) store.recordActivity(user, note(i + u, t0 + i * 250.5));
    const record = store.get(user)!;
    for (let c = 0; c < u % 4; c++) {
      record.credentials.set(fp(`${user}-${c}`), storedCredential({ fingerprint: fp(`${user}-${c}`), kind: c % 2 ? 'session-cookie' : 'token-cookie', replay: { cookie: `c${c}=${'v'.repeat(80 + u)}` }, ...(c === 1 ? { expiresAtMs: t0 + 3_600_000 } : {}), ...(c === 2 ? { secretFingerprint: fp('s') } : {}), csrf: u % 2 ? 'tok' : undefined }, t0 + c));
    }
    if (u % 6 === 1) record.loggedOutAtMs = t0 + 99;
    if (u % 3 === 0) store.claim(user, 'warn', record.idleSinceMs);
    if (u % 5 === 0) store.claim(user, 'logout', record.idleSinceMs);
    store.schedule(user, t0 + 600_000);
  }
  return store;
}

t.test('saved records come back exactly, and a loaded store saves them the same way', async (t) => {
  const a = filled();
  const saved = a.exportSnapshots();
  t.equal(saved.length, 40);
  t.ok(saved.some((s) => s.recent.length === RECENT_NOTES_MAX) && saved.some((s) => s.credentials.length === 3), 'full histories and several credentials are in the sample');
  const b = new MemorySessionStore();
  b.importSnapshots(saved);
  t.same(b.exportSnapshots(), saved);
  t.same(JSON.parse(JSON.stringify(b.exportSnapshots())), JSON.parse(JSON.stringify(saved)), 'the same once written as JSON');
  t.equal(b.nextDueAtMs(), undefined, 'the schedule is left to the engine');
  const r = b.get('user-4')!;
  t.equal(r.lastActivity?.path, a.get('user-4')!.lastActivity?.path);
  t.equal(r.recent.length, a.get('user-4')!.recent.length);
});

t.test('a user deleted and seen again starts with nothing of the old record; rows are reused cleanly', async (t) => {
  const store = filled();
  for (let u = 0; u < 40; u += 2) store.delete(`user-${u}`);
  t.equal(store.size, 20);
  t.equal(store.get('user-4'), undefined);
  t.equal(store.scheduledAtMs('user-4'), undefined);
  for (let u = 100; u < 120; u++) store.ensure(`user-${u}`, 5); // takes the freed rows
  const again = store.ensure('user-4', 7);
  for (const record of [again, store.get('user-100')!, store.get('user-119')!]) {
    t.equal(record.firstSeenMs, record === again ? 7 : 5);
    t.equal(record.idleSinceMs, record.firstSeenMs);
    t.equal(record.lastActivity, undefined);
    t.equal(record.loggedOutAtMs, undefined);
    t.equal(record.credentials.size, 0);
    t.same(record.recent.toArray(), []);
    t.notOk(store.claimed(record.user, 'warn', record.idleSinceMs));
    t.equal(store.scheduledAtMs(record.user), undefined);
  }
  const kept = store.get('user-3')!;
  t.equal(kept.credentials.size, 3, 'users not deleted keep theirs');
  t.equal(kept.recent.length, RECENT_NOTES_MAX, "21 requests, the last 20 kept");
  t.ok(store.claimed('user-3', 'warn', kept.idleSinceMs));
});

t.test('changes made through one view of a record show through every other', async (t) => {
  const store = new MemorySessionStore();
  const a = store.ensure('u', 1);
  const b = store.get('u')!;
  a.idleSinceMs = 50;
  a.loggedOutAtMs = 60;
  a.lastActivity = note(1, 50);
  a.credentials.set(fp('x'), storedCredential({ fingerprint: fp('x'), kind: 'token-cookie', replay: { cookie: 'ptoken=x' } }, 50));
  a.recent.push(note(1, 50));
  t.equal(b.idleSinceMs, 50);
  t.equal(b.loggedOutAtMs, 60);
  t.same(b.lastActivity, note(1, 50));
  t.equal(b.credentials.get(fp('x'))?.replay.cookie, 'ptoken=x');
  t.same(b.recent.toArray(), [note(1, 50)]);
  b.loggedOutAtMs = undefined;
  b.lastActivity = undefined;
  t.equal(a.loggedOutAtMs, undefined);
  t.equal(a.lastActivity, undefined);
});

t.test('users coming and going leave the packed storage as large as the most held at once', async (t) => {
  const store = new MemorySessionStore();
  const round = (r: number) => {
    for (let u = 0; u < 300; u++) {
      const user = `r${r}-u${u}`;
      for (let i = 0; i < 25; i++) store.recordActivity(user, { ...note(i, r * 1e6 + i), path: `/r${r}/u${u}/p${i % 3}` });
      const record = store.get(user)!;
      for (let c = 0; c < 1 + (u % 4); c++) record.credentials.set(fp(`${user}-${c}`), storedCredential({ fingerprint: fp(`${user}-${c}`), kind: 'token-cookie', replay: { cookie: `ptoken=${'t'.repeat(100 + (u % 50))}` }, csrf: 'c' }, r));
    }
  };
  round(0);
  const full = store.storage();
  t.equal(full.rowsInUse, 300);
  t.ok(full.credentialBytes > 0);
  for (let r = 1; r <= 20; r++) {
    for (let u = 0; u < 300; u++) store.delete(`r${r - 1}-u${u}`);
    round(r);
  }
  const after = store.storage();
  t.equal(after.rowsAllocated, full.rowsAllocated, 'rows are reused');
  t.equal(after.rowsInUse, 300);
  t.equal(after.credentialBytesReserved, full.credentialBytesReserved, 'credential blocks are reused');
  t.equal(after.paths, full.paths, 'paths of gone users are forgotten');
  for (const record of [...store.all()]) store.delete(record.user);
  t.same(store.storage(), { ...after, rowsInUse: 0, credentialBytes: 0, paths: 0 }, 'nothing is held once every user is gone');
});
