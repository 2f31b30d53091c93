/**
 * Panopticon simulator CLI: `node dist/simulator/main.js` (a test stand-in, not Altair Panopticon).
 * Configured by SIM_* environment variables, see env-options.ts or `--help`.
 */
import { pino } from 'pino';
import { DEMO_TOKEN_SECRET, SIM_ENV_DOC, optionsFromEnv } from './env-options.js';
import { startSimulator } from './server.js';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log('Panopticon simulator (test stand-in, not Altair Panopticon). Environment:');
  for (const [name, meaning] of SIM_ENV_DOC) console.log(`  ${name.padEnd(26)} ${meaning}`);
  process.exit(0);
}

const wantedLevel = process.env['SIM_LOG_LEVEL'] || 'info';
const knownLevel = wantedLevel === 'silent' || wantedLevel in pino.levels.values;
const log = pino({ name: 'panopticon-simulator', level: knownLevel ? wantedLevel : 'info' });
if (!knownLevel) log.warn({ wantedLevel }, 'SIM_LOG_LEVEL is not a pino level; using info');

try {
  const opts = optionsFromEnv(process.env);
  if (opts.tokenSecret === DEMO_TOKEN_SECRET) log.warn('using the public demo token secret (set SIM_TOKEN_SECRET outside demos)');
  const sim = await startSimulator({ ...opts, logger: log });
  log.info({ host: opts.host, port: sim.port, login: `${sim.url}${opts.contextPath ?? '/panopticon'}/login` }, 'simulator ready');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'simulator stopping');
    sim.close().then(
      () => process.exit(0),
      (err: unknown) => { log.error({ err }, 'simulator did not close cleanly'); process.exit(1); },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
} catch (err) {
  log.fatal({ err }, 'simulator failed to start');
  process.exit(1);
}
