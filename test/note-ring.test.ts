import t from 'tap';
import { NoteRing, NoteSlab } from '../src/sessions/note-ring.js';
import { RECENT_NOTES_MAX, type RequestNote } from '../src/sessions/store.js';

const note = (i: number, counted = i % 3 !== 0): RequestNote => ({
  atMs: 1_790_000_000_000 + i * 1000.5,
  method: i % 2 === 0 ? 'GET' : 'POST',
  path: `/panopticon/p${i}`,
  counted,
  rule: counted ? 'counted' : `passive:GET /p${i % 4}`,
});

t.test('keeps the last RECENT_NOTES_MAX notes, oldest first, exactly as they were pushed', async (t) => {
  const ring = new NoteRing();
  t.same(ring.toArray(), []);
  t.equal(ring.length, 0);
  const pushed: RequestNote[] = [];
  for (let i = 0; i < RECENT_NOTES_MAX * 2 + 7; i++) {
    ring.push(note(i));
    pushed.push(note(i));
    t.same(ring.toArray(), pushed.slice(-RECENT_NOTES_MAX), `after ${i + 1} notes`);
  }
  t.equal(ring.length, RECENT_NOTES_MAX);
  t.same([...ring], pushed.slice(-RECENT_NOTES_MAX), 'iterable');
});

t.test('rings do not share notes; a released ring starts empty and its row is reused cleanly', async (t) => {
  const a = new NoteRing();
  const b = new NoteRing();
  for (let i = 0; i < 5; i++) a.push(note(i));
  for (let i = 100; i < 103; i++) b.push(note(i));
  t.same(a.toArray(), [0, 1, 2, 3, 4].map((i) => note(i)));
  t.same(b.toArray(), [100, 101, 102].map((i) => note(i)));
  a.release();
  t.same(a.toArray(), []);
  const c = new NoteRing(); // may get a's old row
  c.push(note(7));
  t.same(c.toArray(), [note(7)], 'nothing of the released ring shows');
  t.same(b.toArray(), [100, 101, 102].map((i) => note(i)), 'others untouched');
  a.push(note(9));
  t.same(a.toArray(), [note(9)], 'a released ring can be used again');
});

t.test('from() rebuilds a ring from saved notes; many rings grow the shared storage', async (t) => {
  const saved = Array.from({ length: RECENT_NOTES_MAX + 3 }, (_, i) => note(i));
  t.same(NoteRing.from(saved).toArray(), saved.slice(-RECENT_NOTES_MAX));
  const rings = Array.from({ length: 3000 }, (_, i) => {
    const r = new NoteRing();
    r.push(note(i));
    return r;
  });
  t.ok(rings.every((r, i) => r.toArray()[0]!.path === `/panopticon/p${i}`), 'every ring kept its own note across growth');
});

t.test('a path is kept once while notes hold it and forgotten when none does', async (t) => {
  const slab = new NoteSlab();
  const a = new NoteRing(slab);
  const b = new NoteRing(slab);
  a.push(note(1));
  b.push(note(1));
  t.equal(slab.paths.size, 1, 'two notes of the same path share one entry');
  t.equal(a.toArray()[0]!.path, b.toArray()[0]!.path);
  // every note of `a` is overwritten by new paths: the table holds only what rings still show
  for (let i = 0; i < RECENT_NOTES_MAX * 3; i++) a.push(note(1000 + i));
  t.equal(slab.paths.size, RECENT_NOTES_MAX + 1, "a's last notes and b's note");
  for (let i = 0; i < RECENT_NOTES_MAX; i++) a.push(note(1)); // the same path over and over
  t.equal(slab.paths.size, 1);
  t.same(a.toArray(), Array.from({ length: RECENT_NOTES_MAX }, () => note(1)));
  a.release();
  t.equal(slab.paths.size, 1, "b's note still holds its path");
  b.release();
  t.equal(slab.paths.size, 0, 'released rings leave nothing behind');
  const c = new NoteRing(slab);
  c.push(note(5));
  t.same(c.toArray(), [note(5)], 'a freed path id is reused cleanly');
});

t.test('times are kept in 32 bits when they are whole milliseconds near the others, exactly otherwise', async (t) => {
  const slab = new NoteSlab();
  const ring = new NoteRing(slab);
  const t0 = 1_790_000_000_000;
  const at = (atMs: number, i = 0): RequestNote => ({ ...note(i), atMs });
  const DAY_MS = 86_400_000;
  ring.push(at(t0));
  ring.push(at(t0 + 20 * DAY_MS));
  ring.push(at(t0 - 20 * DAY_MS));
  t.equal(slab.exactTimes, 0, 'whole milliseconds within ±24 days of the first note take no extra room');
  ring.push(at(t0 + 0.5));
  t.equal(slab.exactTimes, 1, 'a fraction is kept exactly');
  ring.push(at(t0 - 30 * DAY_MS));
  t.equal(slab.exactTimes, 2, 'so is a time older than the range');
  t.same(ring.toArray().map((n) => n.atMs), [t0, t0 + 20 * DAY_MS, t0 - 20 * DAY_MS, t0 + 0.5, t0 - 30 * DAY_MS]);

  // 60 days later: the range moves on; every note keeps its time
  const other = new NoteRing(slab);
  other.push(at(t0 + 60 * DAY_MS, 1));
  t.same(ring.toArray().map((n) => n.atMs), [t0, t0 + 20 * DAY_MS, t0 - 20 * DAY_MS, t0 + 0.5, t0 - 30 * DAY_MS], 'older notes after the move');
  t.same(other.toArray().map((n) => n.atMs), [t0 + 60 * DAY_MS]);
  t.equal(slab.exactTimes, 5, 'the notes now out of range are kept exactly; the new one is not');
  for (let i = 0; i < RECENT_NOTES_MAX; i++) ring.push(at(t0 + 60 * DAY_MS + i, i));
  t.equal(slab.exactTimes, 0, 'overwriting notes drops their exact times');
  ring.push(at(t0 + 60 * DAY_MS + 0.25));
  other.release();
  ring.release();
  t.equal(slab.exactTimes, 0, 'released rows keep no exact times');
});

t.test('one path named by notes of several kinds keeps one string and each note its own kind', async (t) => {
  const slab = new NoteSlab();
  const ring = new NoteRing(slab);
  const path = '/panopticon/server/rest/dashboards/sales';
  const kinds: Array<Pick<RequestNote, 'method' | 'counted' | 'rule'>> = [
    { method: 'GET', counted: true, rule: 'default' },
    { method: 'GET', counted: false, rule: 'passive:GET /panopticon/server/rest/data/**' },
    { method: 'POST', counted: true, rule: 'default' },
    { method: 'GET', counted: false, rule: 'default' },
  ];
  const notes = kinds.map((k, i) => ({ atMs: 1_000 + i, path, ...k }));
  for (const n of notes) ring.push(n);
  t.same(ring.toArray(), notes, 'every note comes back with its own kind');
  t.equal(slab.paths.size, 1, 'one path');
  t.equal(slab.paths.pairs, 4, 'four (path, kind) pairs');
  t.equal(new Set(ring.toArray().map((n) => n.path)).size, 1);

  // overwrite the notes one by one, oldest first: the pairs go from the chain's tail, middle and head
  const other = (i: number): RequestNote => ({ atMs: 2_000 + i, path: `/other/${i}`, method: 'GET', counted: true, rule: 'default' });
  for (let i = 0; i < RECENT_NOTES_MAX - notes.length; i++) ring.push(other(i));
  for (let k = 0; k < notes.length; k++) {
    ring.push(other(100 + k));
    t.equal(slab.paths.pairs, RECENT_NOTES_MAX, `after dropping note ${k}: the other pairs stay`);
    t.same(ring.toArray().slice(0, notes.length - k - 1), notes.slice(k + 1), 'the notes still held keep their kinds');
  }
  t.notOk(ring.toArray().some((n) => n.path === path), 'the path is gone');
  // and back: a freed pair's id is reused for another kind without mixing them up
  ring.push(notes[2]!);
  ring.push(notes[1]!);
  t.same(ring.toArray().slice(-2), [notes[2], notes[1]]);
  ring.release();
  t.equal(slab.paths.size, 0);
  t.equal(slab.paths.pairs, 0, 'released rings leave nothing behind');
});

t.test('pairs released out of order keep the chain of the path intact', async (t) => {
  const slab = new NoteSlab();
  const path = '/p';
  const ids = [0, 1, 2, 3].map((kind) => slab.paths.acquire(path, kind));
  t.equal(new Set(ids).size, 4);
  t.equal(slab.paths.acquire(path, 2), ids[2], 'an existing pair is found again');
  slab.paths.release(ids[2]!);
  slab.paths.release(ids[2]!); // the middle of the chain
  slab.paths.release(ids[3]!); // the head
  slab.paths.release(ids[0]!); // the tail
  t.equal(slab.paths.acquire(path, 1), ids[1], 'the remaining pair is still found');
  t.equal(slab.paths.kind(ids[1]!), 1);
  t.equal(slab.paths.path(ids[1]!), path);
  for (const kind of [0, 2, 3]) {
    const id = slab.paths.acquire(path, kind);
    t.equal(slab.paths.kind(id), kind, `kind ${kind} comes back on a reused id`);
  }
  t.equal(slab.paths.pairs, 4);
  t.equal(slab.paths.size, 1);
});
