import t from 'tap';
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, rmdir, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { PropertiesWatcher, type PropertiesWatcherOptions } from '../src/properties/watcher.js';
import type { TimeoutSettings } from '../src/properties/settings.js';

type LogLine = Record<string, unknown> & { level: number; msg: string; event?: string };
const WAIT_MS = 5000;
const delays: Record<string, number[]> = {};

/** A pino logger whose lines can be awaited. */
function captureLog() {
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  const logger = pino({ level: 'debug' }, {
    write(s: string) {
      lines.push(JSON.parse(s) as LogLine);
      for (const w of [...waiters]) w();
    },
  });
  /** Resolves with the first line (from index `from`) that matches. */
  const waitFor = (pred: (l: LogLine) => boolean, from = 0, timeoutMs = WAIT_MS): Promise<LogLine> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const hit = lines.slice(from).find(pred);
        if (hit === undefined) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(hit);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no matching log line within ${timeoutMs} ms; got ${JSON.stringify(lines.slice(from))}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return { logger, lines, waitFor };
}

function nextChange(w: PropertiesWatcher, timeoutMs = WAIT_MS): Promise<{ next: TimeoutSettings; previous: TimeoutSettings; at: number }> {
  return new Promise((resolve, reject) => {
    const off = w.onChange((next, previous) => {
      off();
      clearTimeout(timer);
      resolve({ next, previous, at: performance.now() });
    });
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no settings change within ${timeoutMs} ms`));
    }, timeoutMs);
  });
}

async function setup(t: Tap, opts: Partial<PropertiesWatcherOptions> = {}, initial?: string) {
  const dir = await mkdtemp(join(tmpdir(), 'props-watch-'));
  const file = join(dir, 'Panopticon.properties');
  if (initial !== undefined) await writeFile(file, initial);
  const log = captureLog();
  const w = await PropertiesWatcher.open({ path: file, pollMs: 100, logger: log.logger, ...opts });
  t.teardown(async () => {
    await w.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, file, w, log };
}
type Tap = { teardown: (fn: () => unknown) => void };

/** Runs `edit`, waits for the change, records how long it took. */
async function timedChange(w: PropertiesWatcher, label: string, edit: () => Promise<unknown>) {
  const changed = nextChange(w);
  const start = performance.now();
  await edit();
  const { next, at } = await changed;
  const ms = Math.round(at - start);
  (delays[label] ??= []).push(ms);
  return { next, ms };
}

const props = (minutes: number, extra = '') => `# Panopticon\nserver.port=8080\ntimeout.session.enabled=true\ntimeout.session.minutes=${minutes}\n${extra}`;

/** Kubernetes ConfigMap layout: file -> ..data/file, ..data -> ..<timestamp>/ */
async function configMap(dir: string, content: string, generation: number): Promise<void> {
  const stamp = `..2026_11_25_20_00_0${generation}.${1000 + generation}`;
  await mkdir(join(dir, stamp));
  await writeFile(join(dir, stamp, 'Panopticon.properties'), content);
  await symlink(stamp, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  if (generation === 0) await symlink('..data/Panopticon.properties', join(dir, 'Panopticon.properties'));
  else await rm(join(dir, `..2026_11_25_20_00_0${generation - 1}.${999 + generation}`), { recursive: true });
}

// Three ways of noticing: fs.watch only (the poll is made too slow to matter), poll only at the
// deployment default 500 ms, and both with a 100 ms poll.
const MODES: Array<{ name: string; opts: Partial<PropertiesWatcherOptions> }> = [
  { name: 'fs.watch', opts: { pollMs: 60_000 } },
  { name: 'poll 500ms', opts: { pollMs: 500, fsEvents: false } },
  { name: 'both, poll 100ms', opts: { pollMs: 100 } },
];

for (const mode of MODES) {
  t.test(`[${mode.name}] in-place write is applied`, async (t) => {
    const { file, w, log } = await setup(t, mode.opts, props(30));
    t.equal(w.current.timeoutMinutes, 30);
    t.equal(w.loadedFromFile, true);
    for (const minutes of [31, 32, 33]) {
      const { next, ms } = await timedChange(w, `in-place (${mode.name})`, () => writeFile(file, props(minutes)));
      t.equal(next.timeoutMinutes, minutes);
      t.ok(ms < 2000, `applied in ${ms} ms`);
    }
    t.equal(w.current.timeoutMinutes, 33);
    const changes = log.lines.filter((l) => l.event === 'settings-changed');
    t.equal(changes.length, 3, 'one log line per change');
    t.same(changes[0]?.changes, [{ key: 'timeout.session.minutes', from: '30', to: '31' }]);
    t.equal(changes[0]?.msg, 'timeout settings changed');
    t.equal(changes[0]?.level, 30, 'info');
    t.equal(w.stats.reloads, 3);
  });

  t.test(`[${mode.name}] rename over the file is applied`, async (t) => {
    const { dir, file, w } = await setup(t, mode.opts, props(30));
    for (const minutes of [40, 41]) {
      const { next, ms } = await timedChange(w, `rename (${mode.name})`, async () => {
        const tmp = join(dir, `.Panopticon.properties.${minutes}.tmp`);
        await writeFile(tmp, props(minutes));
        await rename(tmp, file);
      });
      t.equal(next.timeoutMinutes, minutes);
      t.ok(ms < 2000, `applied in ${ms} ms`);
    }
  });

  t.test(`[${mode.name}] ConfigMap symlink swap is applied`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'props-cm-'));
    await configMap(dir, props(50), 0);
    const log = captureLog();
    const w = await PropertiesWatcher.open({ path: join(dir, 'Panopticon.properties'), pollMs: 100, logger: log.logger, ...mode.opts });
    t.teardown(async () => {
      await w.close();
      await rm(dir, { recursive: true, force: true });
    });
    t.equal(w.current.timeoutMinutes, 50);
    for (const generation of [1, 2, 3]) {
      const { next, ms } = await timedChange(w, `symlink swap (${mode.name})`, () => configMap(dir, props(50 + generation), generation));
      t.equal(next.timeoutMinutes, 50 + generation);
      t.ok(ms < 2000, `applied in ${ms} ms`);
    }
    t.notOk(log.lines.some((l) => l.event === 'settings-file-missing'), 'the swap is never seen as a deletion');
  });
}

t.test('an edit of only the exempt users, then of only the delimiter, is applied and logged as a change', async (t) => {
  const exempt = (delimiter: string | undefined, users: string) =>
    props(30, `${delimiter === undefined ? '' : `timeout.session.exception.delimiter=${delimiter}\n`}timeout.session.exception.usernames=${users}\n`);
  const { file, w, log } = await setup(t, {}, exempt(undefined, 'alice'));
  t.same([...w.current.exemptUsers], ['alice']);

  const usersEdit = await timedChange(w, 'exempt users only', () => writeFile(file, exempt(undefined, 'alice,bob')));
  t.same([...usersEdit.next.exemptUsers].sort(), ['alice', 'bob'], 'the new user list is applied');
  t.same([...w.current.exemptUsers].sort(), ['alice', 'bob']);
  t.same(log.lines.filter((l) => l.event === 'settings-changed').at(-1)?.changes,
    [{ key: 'timeout.session.exception.usernames', from: '["alice"]', to: '["alice","bob"]' }], 'logged as a change of the user list only');

  // same users, written with another delimiter: only the delimiter differs
  const delimiterEdit = await timedChange(w, 'exempt delimiter only', () => writeFile(file, exempt(';', 'alice;bob')));
  t.equal(delimiterEdit.next.exemptDelimiter, ';', 'the new delimiter is applied');
  t.same([...delimiterEdit.next.exemptUsers].sort(), ['alice', 'bob'], 'the same users');
  t.same(log.lines.filter((l) => l.event === 'settings-changed').at(-1)?.changes,
    [{ key: 'timeout.session.exception.delimiter', from: '","', to: '";"' }], 'logged as a change of the delimiter only');
  t.equal(log.lines.filter((l) => l.event === 'settings-unchanged').length, 0, 'neither edit was logged as "unchanged"');
  t.equal(w.stats.reloads, 2);
});

t.test('a half-written file is not applied', async (t) => {
  const { file, w, log } = await setup(t, { pollMs: 50, debounceMs: 300 }, props(30));
  // truncate, then write the rest a little later (slower than one write() call)
  await writeFile(file, '');
  await new Promise((r) => setTimeout(r, 20));
  const changed = nextChange(w);
  await writeFile(file, props(35));
  t.equal((await changed).next.timeoutMinutes, 35);
  t.notOk(log.lines.some((l) => (l.changes as Array<{ to: string }> | undefined)?.some((c) => c.to === '480')), 'the empty file was never applied');
});

// A check may be under way when a writer starts rewriting the file in place, and Linux shows the
// truncated size to stat before it moves mtime/ctime: for a moment the file is empty with its old
// mtime, and stat before and after a read agree. Hammer that window: rewrite a same-length file in
// place hundreds of times at random moments while three watchers poll every 10 ms (and get fs
// events), and check that every value they applied was written completely.
t.test('stress: in-place same-length rewrites never apply a half-written file', async (t) => {
  const debounceMs = 25;
  const emptyRestMs = 1000; // how long the watcher lets an empty file rest before applying it
  // 3-digit values only, so every version has the same length; 64 KiB of comment make the
  // truncate free more blocks, which keeps its window open longer
  const content = (minutes: number) => props(minutes, `# ${'x'.repeat(64 * 1024)}\n`);
  const { file, w, log } = await setup(t, { pollMs: 10, debounceMs }, content(100));
  const others = await Promise.all([1, 2].map(async () => {
    const l = captureLog();
    const o = await PropertiesWatcher.open({ path: file, pollMs: 10, debounceMs, logger: l.logger });
    t.teardown(() => o.close());
    return { w: o, log: l };
  }));
  const watchers = [{ w, log }, ...others].map((x) => ({ ...x, applied: [] as number[] }));
  for (const x of watchers) x.w.onChange((next) => x.applied.push(next.timeoutMinutes));

  const budgetMs = 3000;
  const end = performance.now() + budgetMs;
  const written = new Set<number>([100]);
  let last = 100;
  let longestEmptyMs = 0;
  for (let minutes = 101; minutes <= 999 && performance.now() < end; minutes++) {
    const started = performance.now();
    await writeFile(file, content(minutes)); // open with O_TRUNC, then write
    longestEmptyMs = Math.max(longestEmptyMs, performance.now() - started);
    written.add(minutes);
    last = minutes;
    // back-to-back rewrites, or a rest long enough for the mtime to look old and a version to apply
    const pause = Math.random() < 0.5 ? Math.floor(Math.random() * 4) : debounceMs + 5 + Math.floor(Math.random() * 20);
    await new Promise((r) => setTimeout(r, pause));
  }

  const restedAt = performance.now();
  const allCurrent = () => watchers.every((x) => x.w.current.timeoutMinutes === last);
  while (!allCurrent() && performance.now() - restedAt < WAIT_MS) await new Promise((r) => setTimeout(r, 5));
  let appliedTotal = 0;
  for (const [i, x] of watchers.entries()) {
    appliedTotal += x.applied.length;
    t.equal(x.w.current.timeoutMinutes, last, `watcher ${i}: the last write is applied once the writer rests`);
    let applied = x.applied;
    if (applied.includes(480) && longestEmptyMs >= emptyRestMs) {
      // by the contract, a file left empty that long is not half-written (a stall, not a race)
      t.comment(`watcher ${i}: an empty file was applied, but a write left it empty for ${longestEmptyMs.toFixed(1)} ms`);
      applied = applied.filter((m) => m !== 480);
    }
    const foreign = applied.filter((m) => !written.has(m));
    t.same(foreign, [], `watcher ${i}: every applied value was one that was written completely (480 = an empty file was read)`);
    t.ok(applied.every((m, j) => j === 0 || m > applied[j - 1]!), `watcher ${i}: versions were applied in the order they were written`);
    const reported = x.log.lines.filter((l) => l.event === 'settings-invalid' || l.event === 'settings-file-missing' || l.event === 'settings-watch-failed');
    t.same(reported, [], `watcher ${i}: no torn read was reported as invalid or missing, no check failed`);
    t.ok(x.applied.length > 0, `watcher ${i}: some intermediate versions were applied while the writer rested`);
  }
  t.comment(`stress: ${written.size - 1} in-place rewrites in ${budgetMs} ms (longest write ${longestEmptyMs.toFixed(1)} ms), ${appliedTotal} versions applied by ${watchers.length} watchers`);
});

t.test('an emptied file is applied, but only after it has rested a while', async (t) => {
  // an in-place rewrite passes through an empty file, so an empty one has to stay empty for longer
  const { file, w } = await setup(t, {}, props(30));
  const { next, ms } = await timedChange(w, 'emptied', () => writeFile(file, ''));
  t.equal(next.timeoutMinutes, 480, 'the defaults');
  t.equal(next.enabled, false);
  t.ok(ms >= 900, `applied after ${ms} ms`);
});

t.test('delete keeps the last good settings; re-create is picked up', async (t) => {
  const { file, w, log } = await setup(t, {}, props(30));
  const from = log.lines.length;
  await unlink(file);
  const warned = await log.waitFor((l) => l.event === 'settings-file-missing', from);
  t.equal(warned.level, 40, 'warning');
  t.match(warned.msg, file);
  t.match(warned.msg, /keeping the last good/);
  t.equal(w.current.timeoutMinutes, 30, 'last good kept');
  await new Promise((r) => setTimeout(r, 400)); // several polls while missing
  t.equal(log.lines.filter((l) => l.event === 'settings-file-missing').length, 1, 'warned once');
  const { next } = await timedChange(w, 'delete + re-create', () => writeFile(file, props(60)));
  t.equal(next.timeoutMinutes, 60);
});

t.test('invalid edit keeps the last good settings and names key, value and rule', async (t) => {
  const { file, w, log } = await setup(t, {}, props(30));
  const reported: string[] = [];
  w.onReloadError((problems) => reported.push(...problems.map((p) => p.key)));
  const from = log.lines.length;
  await writeFile(file, props(30).replace('minutes=30', 'minutes=480min'));
  const err = await log.waitFor((l) => l.event === 'settings-invalid', from);
  t.equal(err.level, 50, 'error');
  t.equal(err.key, 'timeout.session.minutes');
  t.equal(err.value, '480min');
  t.equal(err.rule, 'must be a positive number of minutes (decimals allowed)');
  t.match(err.msg, 'timeout.session.minutes="480min" is invalid');
  t.match(err.msg, /keeping the last good/);
  t.equal(w.current.timeoutMinutes, 30);
  t.equal(w.current.enabled, true);
  t.same(reported, ['timeout.session.minutes']);
  t.equal(w.stats.reloadErrors, 1);
  await new Promise((r) => setTimeout(r, 300));
  t.equal(log.lines.filter((l) => l.event === 'settings-invalid').length, 1, 'the same bad content is reported once');
  const { next } = await timedChange(w, 'valid after invalid', () => writeFile(file, props(45)));
  t.equal(next.timeoutMinutes, 45);
  t.equal(w.stats.reloadErrors, 1);
});

t.test('a directory at the path is an error; the last good settings stay', async (t) => {
  const { file, w, log } = await setup(t, {}, props(30));
  const from = log.lines.length;
  await unlink(file);
  await mkdir(file);
  const err = await log.waitFor((l) => l.event === 'settings-invalid', from);
  t.equal(err.key, '(file)');
  t.equal(err.value, file);
  t.equal(err.rule, 'is a directory, not a file');
  t.equal(w.current.timeoutMinutes, 30);
  const { next } = await timedChange(w, 'directory then file', async () => {
    await rmdir(file);
    await writeFile(file, props(20));
  });
  t.equal(next.timeoutMinutes, 20);
});

t.test('missing at start: defaults and a warning, then the new file applies', async (t) => {
  const { file, w, log } = await setup(t);
  t.equal(w.loadedFromFile, false);
  t.equal(w.current.enabled, false);
  t.equal(w.current.timeoutMinutes, 480);
  const warned = log.lines.find((l) => l.event === 'settings-file-missing');
  t.equal(warned?.level, 40);
  t.match(warned?.msg, file);
  t.match(warned?.msg, /using the default/);
  const { next } = await timedChange(w, 'created after start', () => writeFile(file, props(25)));
  t.equal(next.enabled, true);
  t.equal(w.loadedFromFile, true);
});

t.test('invalid at start: error per problem, defaults, then a valid edit applies', async (t) => {
  const { file, w, log } = await setup(t, {}, 'timeout.session.enabled=yes\ntimeout.session.minutes=-3\n');
  const errors = log.lines.filter((l) => l.event === 'settings-invalid');
  t.same(errors.map((e) => [e.key, e.value]), [['timeout.session.enabled', 'yes'], ['timeout.session.minutes', '-3']]);
  t.match(errors[0]?.msg, /using the default timeout settings/);
  t.equal(w.loadedFromFile, false);
  t.equal(w.current.enabled, false);
  t.equal(w.stats.reloadErrors, 1);
  const { next } = await timedChange(w, 'valid after invalid start', () => writeFile(file, props(10)));
  t.equal(next.timeoutMinutes, 10);
});

t.test('a parent directory that does not exist yet', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'props-parent-'));
  const file = join(dir, 'conf', 'Panopticon.properties');
  const log = captureLog();
  const w = await PropertiesWatcher.open({ path: file, pollMs: 100, logger: log.logger });
  t.teardown(async () => {
    await w.close();
    await rm(dir, { recursive: true, force: true });
  });
  const { next } = await timedChange(w, 'parent created later', async () => {
    await mkdir(join(dir, 'conf'));
    await writeFile(file, props(12));
  });
  t.equal(next.timeoutMinutes, 12);
});

t.test('listeners: a throwing listener is logged, the others still run', async (t) => {
  const { file, w, log } = await setup(t, {}, props(30));
  const seen: number[] = [];
  w.onChange(() => {
    throw new Error('listener bug');
  });
  const off = w.onChange((next, previous) => seen.push(previous.timeoutMinutes, next.timeoutMinutes));
  await timedChange(w, 'listeners', () => writeFile(file, props(31)));
  t.same(seen, [30, 31]);
  t.ok(log.lines.some((l) => l.event === 'settings-listener-failed'), 'listener error logged');
  off();
  const { next } = await timedChange(w, 'listeners', () => writeFile(file, props(32)));
  t.equal(next.timeoutMinutes, 32);
  t.same(seen, [30, 31], 'unsubscribed');
});

t.test('current is frozen and its user set cannot be changed', async (t) => {
  const { w } = await setup(t, {}, props(30, 'timeout.session.exception.usernames=admin\n'));
  const s = w.current;
  t.ok(Object.isFrozen(s));
  t.equal(typeof (s.exemptUsers as unknown as Set<string>).add, 'undefined');
  t.throws(() => Set.prototype.add.call(s.exemptUsers, 'x'));
  t.same([...w.current.exemptUsers], ['admin']);
  const stats = w.stats as { reloads: number };
  t.throws(() => (stats.reloads = 99));
  t.equal(w.stats.reloads, 0);
});

t.test('content that stays the same (rewrite, touch) logs nothing new', async (t) => {
  const { file, w, log } = await setup(t, {}, props(30));
  const before = log.lines.length;
  await writeFile(file, props(30));
  await new Promise((r) => setTimeout(r, 500));
  t.same(log.lines.slice(before).filter((l) => l.level >= 30), [], 'no info/warn/error lines');
  t.equal(w.stats.reloads, 0);
});

// As root, chmod 000 does not stop reads, so the watcher runs in a child process as uid 65534
// (nobody). The child must not depend on the checkout being readable by that uid: the watcher's
// sources (src/properties, node built-ins only) are transpiled into a world-readable temp dir.
t.test('unreadable file (EACCES), tested as an unprivileged child process', { skip: process.platform === 'win32' ? 'POSIX permissions only' : false }, async (t) => {
  const isRoot = process.getuid?.() === 0;
  const dir = await mkdtemp(join(tmpdir(), 'props-perm-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755);
  const code = join(dir, 'code');
  await mkdir(code, { mode: 0o755 });
  const ts = (await import('typescript')).default;
  const srcDir = join(process.cwd(), 'src/properties');
  for (const name of (await readdir(srcDir)).filter((n) => n.endsWith('.ts'))) {
    const out = ts.transpileModule(await readFile(join(srcDir, name), 'utf8'), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
    await writeFile(join(code, name.replace(/\.ts$/, '.js')), out.outputText, { mode: 0o644 });
  }
  await writeFile(join(code, 'package.json'), '{"type":"module"}', { mode: 0o644 });
  const confDir = join(dir, 'conf');
  await mkdir(confDir);
  await chmod(confDir, 0o777); // the watcher may create nothing here, but it must list and watch it
  const file = join(confDir, 'Panopticon.properties');
  await writeFile(file, props(30));
  await chmod(file, 0o000);
  const child = join(code, 'child.js');
  await writeFile(child, `
    import { PropertiesWatcher } from './watcher.js';
    const out = (level) => (obj, msg) => console.log(JSON.stringify({ level, ...obj, err: undefined, msg }));
    const logger = { debug() {}, info: out(30), warn: out(40), error: out(50) };
    const w = await PropertiesWatcher.open({ path: ${JSON.stringify(file)}, pollMs: 100, logger });
    console.log(JSON.stringify({ event: 'started', minutes: w.current.timeoutMinutes, uid: process.getuid() }));
    const keepAlive = setInterval(() => {}, 1000); // the watcher's own timers are unref'd
    w.onChange((next) => { console.log(JSON.stringify({ event: 'applied', minutes: next.timeoutMinutes })); clearInterval(keepAlive); w.close(); });
    setTimeout(() => process.exit(3), 20000).unref();
  `, { mode: 0o644 });
  const proc = spawn(process.execPath, [child], {
    cwd: code,
    ...(isRoot ? { uid: 65534, gid: 65534 } : {}),
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => void proc.kill());
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += String(d)));
  let buffered = '';
  const started = new Promise<void>((resolve) => {
    proc.stdout.on('data', (d) => {
      buffered += String(d);
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      for (const p of parts) {
        try {
          const line = JSON.parse(p) as Record<string, unknown>;
          lines.push(line);
          if (line.event === 'started') resolve();
        } catch {
          // not ours
        }
      }
    });
  });
  const exited = new Promise<number | null>((resolve) => proc.on('close', resolve));
  await Promise.race([started, exited]);
  const startLine = lines.find((l) => l.event === 'started');
  if (startLine === undefined) {
    t.fail(`the child watcher did not start (as uid ${isRoot ? 65534 : process.getuid?.()}); stderr: ${stderr.slice(0, 1000)}`);
    return;
  }
  if (isRoot) t.equal(startLine.uid, 65534, 'the child runs without root\'s right to read anything');
  const err = lines.find((l) => l.event === 'settings-invalid');
  t.ok(err, 'the unreadable file is reported as an error, not treated as missing');
  t.notOk(lines.some((l) => l.event === 'settings-file-missing'), 'not reported as missing');
  t.equal(err?.key, '(file)');
  t.match(String(err?.rule), /EACCES/);
  t.equal(startLine.minutes, 480, 'runs on defaults');
  await chmod(file, 0o644);
  t.equal(await exited, 0, 'the child saw the file once readable, and exited');
  t.equal(lines.find((l) => l.event === 'applied')?.minutes, 30);
});

t.test('every edit above was applied within the 2 s the watcher promises', async (t) => {
  t.ok(Object.keys(delays).length > 0, 'delays were recorded');
  for (const [label, ms] of Object.entries(delays)) t.ok(Math.max(...ms) < 2000, `reload delay ${label}: ${ms.join(', ')} ms`);
});
