/**
 * Command-line entry: `node dist/main.js [--upstream URL] [--port N] ...`
 * Settings come from PROXY_* environment variables, each also accepted as a flag (`--help` lists them).
 */
import closeWithGrace from 'close-with-grace';
import { ConfigError, loadDeploymentConfig } from './config/deployment.js';
import { helpText, wantsHelp } from './config/help.js';
import { startProxy } from './app.js';

async function main(): Promise<void> {
  if (wantsHelp(process.argv.slice(2))) {
    process.stdout.write(helpText());
    return;
  }
  let config;
  try {
    config = loadDeploymentConfig(process.env, process.argv.slice(2));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`session-timeout-proxy: configuration error:\n${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const proxy = await startProxy(config);
  closeWithGrace({ delay: config.shutdownGraceMs + 5000 }, async ({ signal, err }) => {
    if (err) proxy.logger.error({ err }, 'fatal error, shutting down');
    else proxy.logger.info({ event: 'shutdown', signal }, 'shutting down');
    await proxy.close();
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`session-timeout-proxy: failed to start: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
