/**
 * `npm run doctor -- --upstream URL ...`: what does this server speak, and which proxy settings fit?
 * See args.ts for the options and README "What the proxy assumes about your server".
 */
import { existsSync } from 'node:fs';
import { ConfigError, loadDeploymentConfig } from '../config/deployment.js';
import { UsageError, USAGE, parseDoctorArgs } from './args.js';
import { runDoctor } from './run.js';

async function main(): Promise<number> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let args;
  let config;
  try {
    args = parseDoctorArgs(process.argv.slice(2), process.env, existsSync);
    config = loadDeploymentConfig({ ...process.env, PROXY_UPSTREAM: args.upstream }, args.proxyArgs);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`doctor: ${err.message}\n\n${USAGE}\n`);
      return 1;
    }
    throw err;
  }
  const code = await runDoctor(args, config, (line) => { process.stdout.write(`${line}\n`); });
  return code;
}

main().then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    process.stderr.write(`doctor failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 2;
  },
);
