/**
 * `node dist/main.js --help` (the production entry point, run for real) lists every row of the
 * settings table: environment variable, flag, default and meaning; and starts nothing.
 */
import t from 'tap';
import { SETTINGS, flagOf } from '../src/config/deployment.js';
import { childEnv, ensureBuilt, MAIN_JS, runToEnd } from './helpers/process.js';

ensureBuilt();
const plain = (s: string) => s.replace(/`/g, '');

for (const arg of ['--help', '-h']) {
  t.test(`${arg} prints every setting and exits 0`, async (t) => {
    // no PROXY_UPSTREAM: --help must not need a valid configuration
    const run = await runToEnd(process.execPath, [MAIN_JS, arg], { env: childEnv(), timeoutMs: 30_000 });
    t.equal(run.code, 0, 'exit code 0');
    t.equal(run.stderr, '', 'nothing on stderr');
    const lines = run.stdout.split('\n');
    t.match(lines[0], /^Usage: /);
    for (const row of SETTINGS) {
      const at = lines.findIndex((l) => l.trim() === `${row.env}  ${flagOf(row.env)}`);
      t.ok(at >= 0, `${row.env} is listed with ${flagOf(row.env)}`);
      t.equal(lines[at + 1]?.trim(), `default: ${plain(row.doc)}`, `${row.env}: default`);
      t.equal(lines[at + 2]?.trim(), plain(row.meaning), `${row.env}: meaning`);
    }
    t.notMatch(run.stdout, /`/, 'no markdown left in the text');
  });
}

t.test('an unknown flag is still a configuration error, not help', async (t) => {
  const run = await runToEnd(process.execPath, [MAIN_JS, '--helpme'], { env: childEnv(), timeoutMs: 30_000 });
  t.equal(run.code, 2);
  t.match(run.stderr, /unknown option "--helpme"/);
});
