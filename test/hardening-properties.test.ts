/**
 * Hardening, group 1: hostile states of Panopticon.properties while the whole proxy runs.
 *
 * The parser and the watcher have their own tests (properties-*.test.ts, fuzzing included); here
 * each bad state is put under a running proxy (startStack) and three things are checked after each:
 * the proxy still answers a normal request, the last good settings are still in force (a running
 * session's deadline did not move), and the problem was logged and counted.
 */
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdir, open, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { request } from 'undici';
import { MINUTE_MS } from '../src/properties/settings.js';
import { ManualClock } from '../src/sessions/clock.js';
import { eventually, props, startStack, type Stack } from './helpers/stack.js';

const GOOD = props({ enabled: true, minutes: 30, 'notification.minutes': 1 });
const MIB = 1024 * 1024;

/** Index of the next log line; pass it to `logged` to look only at what came after. */
const mark = (s: Stack) => s.logs.length;

async function logged(s: Stack, from: number, match: (l: Record<string, unknown>) => boolean, what: string) {
  await eventually(what, () => s.logs.slice(from).some(match), 10_000);
  return s.logs.slice(from).find(match)!;
}

async function stillServes(t: Test, s: Stack, cookie: string, label: string) {
  const page = await s.get('/panopticon/login');
  t.equal(page.status, 200, `${label}: the proxy still serves pages`);
  const api = await s.get('/panopticon/server/rest/server/myself', { cookie });
  t.equal(api.status, 200, `${label}: and signed-in requests`);
}

async function reloadErrors(s: Stack): Promise<number> {
  const res = await request(`${s.proxy.adminUrl}/metrics`);
  const text = await res.body.text();
  return Number(/^session_timeout_proxy_settings_reload_errors_total (\d+)/m.exec(text)?.[1] ?? NaN);
}

/** Removes the bad file and waits until the proxy saw it gone (so the next bad state is news). */
async function removeAndSeeMissing(s: Stack, file: string) {
  const from = mark(s);
  await unlink(file);
  await logged(s, from, (l) => l.event === 'settings-file-missing', 'the removal noticed');
}


t.test('a running proxy survives every bad state of its properties file and keeps the last good settings', async (t) => {
  const clock = new ManualClock(Date.now());
  const s = await startStack(t, { clock, properties: GOOD });
  const file = s.propertiesPath;
  const dir = dirname(file);
  const cookie = await s.login('alice');
  await s.get('/panopticon/', { cookie });
  const deadlineMs = s.proxy.engine.describe('alice')!.deadlineMs!;
  t.equal(deadlineMs, clock.now() + 30 * MINUTE_MS);
  let inputs = 0;

  const keptLastGood = async (label: string) => {
    t.equal(s.proxy.settings.current.timeoutMinutes, 30, `${label}: the last good timeout stays`);
    t.equal(s.proxy.engine.describe('alice')?.deadlineMs, deadlineMs, `${label}: the running session's deadline did not move`);
    await stillServes(t, s, cookie, label);
  };

  // 1. 50 MB of valid-looking lines: refused by size before a byte is read.
  {
    inputs++;
    const from = mark(s);
    const line = Buffer.from('timeout.session.minutes=1\n');
    const fh = await open(file, 'w');
    const block = Buffer.concat(Array.from({ length: Math.ceil(MIB / line.length) }, () => line));
    for (let written = 0; written < 50 * MIB; written += block.length) await fh.write(block);
    await fh.close();
    const err = await logged(s, from, (l) => l.event === 'settings-invalid', 'the 50 MB file reported');
    t.match(err, { key: '(file)', value: file, rule: /larger than 5 MiB/ });
    await keptLastGood('50 MB file');
  }

  // 2. A directory where the file should be.
  {
    inputs++;
    const from = mark(s);
    await unlink(file);
    await mkdir(file);
    const err = await logged(s, from, (l) => l.event === 'settings-invalid' && l.rule === 'is a directory, not a file', 'the directory reported');
    t.equal(err.key, '(file)');
    await keptLastGood('directory');
    await rm(file, { recursive: true });
  }

  // 3. Deleted: a warning, nothing else.
  {
    inputs++;
    const from = mark(s);
    await rm(file, { force: true });
    await logged(s, from, (l) => l.event === 'settings-file-missing', 'the deletion noticed');
    await keptLastGood('deleted');
  }

  // 4. A symlink to nowhere reads as missing.
  {
    inputs++;
    const from = mark(s);
    await symlink(join(dir, 'no-such-target'), file);
    await new Promise((r) => setTimeout(r, 400)); // several polls
    t.notOk(s.logs.slice(from).some((l) => l.event === 'settings-changed' || l.event === 'settings-watch-failed'), 'dangling symlink: no change, no internal failure');
    await keptLastGood('dangling symlink');
    await unlink(file);
  }

  // 5. A symlink loop.
  {
    inputs++;
    const from = mark(s);
    await symlink(join(dir, 'loop-b'), join(dir, 'loop-a'));
    await symlink(join(dir, 'loop-a'), join(dir, 'loop-b'));
    await symlink(join(dir, 'loop-a'), file);
    const err = await logged(s, from, (l) => l.event === 'settings-invalid', 'the symlink loop reported');
    t.match(err.rule, /ELOOP/);
    await keptLastGood('symlink loop');
    await removeAndSeeMissing(s, file);
  }

  // 6. A FIFO: must not block the proxy (nobody ever writes into it).
  let fifo = false;
  try {
    execFileSync('mkfifo', [file]);
    fifo = true;
  } catch {
    t.comment('mkfifo not available: FIFO case skipped');
  }
  if (fifo) {
    inputs++;
    const from = mark(s);
    const err = await logged(s, from, (l) => l.event === 'settings-invalid', 'the FIFO reported');
    t.equal(err.rule, 'is not a regular file');
    await keptLastGood('FIFO');
    await removeAndSeeMissing(s, file);
  }

  // 7. A symlink to an endless character device: refused without reading.
  {
    inputs++;
    const from = mark(s);
    await symlink('/dev/zero', file);
    const err = await logged(s, from, (l) => l.event === 'settings-invalid', 'the device reported');
    t.equal(err.rule, 'is not a regular file');
    await keptLastGood('symlink to /dev/zero');
    await removeAndSeeMissing(s, file);
  }

  // 8. The whole directory removed, then re-created with a new valid file: applied.
  {
    inputs++;
    await rm(dir, { recursive: true, force: true });
    await new Promise((r) => setTimeout(r, 300));
    await keptLastGood('directory removed');
    const changed = new Promise<void>((resolve) => s.proxy.settings.onChange(() => resolve()));
    await mkdir(dir);
    await writeFile(file, props({ enabled: true, minutes: 40, 'notification.minutes': 1 }));
    await changed;
    t.equal(s.proxy.engine.describe('alice')?.deadlineMs, deadlineMs + 10 * MINUTE_MS, 're-created file applied to the running session');
    await stillServes(t, s, cookie, 're-created');
  }

  // 9. Just under the size limit (comments, then one setting at the very end): read and applied.
  {
    inputs++;
    const comment = Buffer.from(`# ${'x'.repeat(1021)}\n`);
    const tail = Buffer.from(props({ enabled: true, minutes: 45, 'notification.minutes': 1 }));
    const body = Buffer.concat([...Array.from({ length: 5 * 1024 - 1 }, () => comment), tail]);
    t.ok(body.length <= 5 * MIB, `${body.length} bytes, under the 5 MiB limit`);
    const changed = new Promise<void>((resolve) => s.proxy.settings.onChange(() => resolve()));
    const started = performance.now();
    await writeFile(`${file}.tmp`, body);
    await rename(`${file}.tmp`, file);
    await changed;
    t.comment(`a ${(body.length / MIB).toFixed(2)} MiB file was applied ${Math.round(performance.now() - started)} ms after it was written`);
    t.equal(s.proxy.settings.current.timeoutMinutes, 45);
    await stillServes(t, s, cookie, 'large valid file');
  }

  const errors = await reloadErrors(s);
  t.ok(errors >= 3, `settings_reload_errors_total counted the refused files (${errors})`);
  t.notOk(s.logs.some((l) => l.event === 'settings-watch-failed'), 'no check of the file ever failed internally');
  t.comment(`group 1 (properties file): ${inputs} hostile file states tried through the running proxy`);
});
