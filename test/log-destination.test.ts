import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { createLogDestination } from '../src/log-destination.js';

const access = (i: number) => `{"level":30,"time":${i},"method":"GET","path":"/p${i}","status":200,"msg":"request"}\n`;

t.test('access lines wait for a batch; any other line goes out at once, after them, in order', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'log-dest-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'log');
  await writeFile(file, '');
  const dest = createLogDestination(file);
  for (let i = 0; i < 3; i++) dest.write(access(i));
  t.equal(await readFile(file, 'utf8'), '', 'access lines are batched');
  const audit = '{"level":30,"time":9,"event":"logout-result","user":"alice","msg":"logged out"}\n';
  dest.write(audit);
  t.equal(await readFile(file, 'utf8'), access(0) + access(1) + access(2) + audit, 'an audit line is written at once, after the access lines before it');
  dest.write(access(3));
  dest.flush();
  t.match(await readFile(file, 'utf8'), /"path":"\/p3"/, 'flush() writes the batch');
});

t.test('a big enough batch is written without waiting; the batch is written when the process exits', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'log-dest-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'log');
  await writeFile(file, '');
  const dest = createLogDestination(file);
  const logger = pino({ level: 'info' }, dest);
  let n = 0;
  while ((await readFile(file, 'utf8')) === '' && n < 10_000) logger.info({ method: 'GET', path: `/p${n++}`, status: 200 }, 'request');
  t.ok(n > 10 && n < 10_000, `the batch went out after ${n} access lines`);

  const other = join(dir, 'exit-log');
  const url = pathToFileURL(join(process.cwd(), 'src/log-destination.ts')).href;
  const tsImport = pathToFileURL(join(process.cwd(), 'node_modules/@tapjs/typescript/dist/esm/import.mjs')).href;
  execFileSync(process.execPath, [`--import=${tsImport}`, '--input-type=module', '-e',
    `const { createLogDestination } = await import(${JSON.stringify(url)}); const d = createLogDestination(${JSON.stringify(other)}); d.write(${JSON.stringify(access(1))}); process.exit(0);`],
  { env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' } });
  t.equal(await readFile(other, 'utf8'), access(1), 'written at exit');
});
