/**
 * `npm run demo` (dist/demo.js, run for real): on a terminal the log is pino-pretty's readable
 * lines; piped into another program it stays one JSON object per line. The terminal is a real
 * pseudo-terminal made by util-linux `script`.
 */
import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childEnv, ensureBuilt, ROOT, spawnChild, type ChildRun } from './helpers/process.js';

ensureBuilt();
const DEMO_JS = join(ROOT, 'dist', 'demo.js');
const READY = 'Ctrl+C stops both.';

async function demoEnv(t: Test): Promise<NodeJS.ProcessEnv> {
  const dir = await mkdtemp(join(tmpdir(), 'stp-demo-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // every port chosen by the system; the demo's files in a directory of this test's own
  return childEnv({ DEMO_PORT: '0', DEMO_SIMULATOR_PORT: '0', DEMO_ADMIN_PORT: '0', TMPDIR: dir, NO_COLOR: undefined, FORCE_COLOR: undefined });
}

async function untilOutput(run: ChildRun, text: string, timeoutMs = 30_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  while (!run.stdout().includes(text)) {
    if (run.exit()) throw new Error(`the demo exited before printing ${JSON.stringify(text)}\n${run.tail()}`);
    if (Date.now() > until) throw new Error(`the demo did not print ${JSON.stringify(text)} within ${timeoutMs} ms\n${run.tail()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  // the start-up log line comes just before the banner; give the pretty stream a moment to flush
  await new Promise((r) => setTimeout(r, 200));
  return run.stdout();
}

t.test('on a terminal the demo prints readable log lines', async (t) => {
  const run = spawnChild(t, 'script', ['-qfec', `${JSON.stringify(process.execPath)} ${JSON.stringify(DEMO_JS)}`, '/dev/null'], { env: await demoEnv(t) });
  const out = (await untilOutput(run, READY)).replace(/\x1b\[[0-9;]*m/g, '').replace(/\r/g, '');
  const logLines = out.split('\n').filter((l) => /^\[\d\d:\d\d:\d\d(\.\d+)?\] [A-Z]+/.test(l));
  t.ok(logLines.some((l) => /INFO.*session-timeout-proxy listening/.test(l)), 'the start-up line is readable: [time] INFO: message');
  t.notOk(out.split('\n').some((l) => l.startsWith('{"level"')), 'no raw JSON log lines');
  run.signal('SIGTERM');
  await run.exited;
});

t.test('piped, the demo keeps JSON log lines', async (t) => {
  const run = spawnChild(t, process.execPath, [DEMO_JS], { env: await demoEnv(t) });
  await untilOutput(run, READY);
  const started = await run.waitForLog((l) => l['event'] === 'started', 10_000, 'the started line');
  t.equal(started['msg'], 'session-timeout-proxy listening', 'JSON line with the start-up message');
  run.signal('SIGTERM');
  await run.exited;
});
