/**
 * `npm run demo`: the Panopticon SIMULATOR and the proxy in front of it, with short timeouts,
 * so the whole story can be watched in a browser in two minutes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDeploymentConfig } from './config/deployment.js';
import { startProxy } from './app.js';
import { startSimulator } from './simulator/server.js';

const DEMO_PROPERTIES = `# Demo settings: edit this file while the demo runs; changes apply within a second.
timeout.session.enabled=true
timeout.session.minutes=2
timeout.session.notification.minutes=1
timeout.session.exception.delimiter=,
timeout.session.exception.usernames=kiosk
`;

async function main(): Promise<void> {
  const proxyPort = Number(process.env.DEMO_PORT ?? 3000);
  const simPort = Number(process.env.DEMO_SIMULATOR_PORT ?? 8080);
  const adminPort = Number(process.env.DEMO_ADMIN_PORT ?? 9090);
  const dir = join(tmpdir(), 'session-timeout-proxy-demo');
  await mkdir(dir, { recursive: true });
  const propertiesPath = join(dir, 'Panopticon.properties');
  await writeFile(propertiesPath, DEMO_PROPERTIES);

  const simulator = await startSimulator({ host: '127.0.0.1', port: simPort, logger: false, autoRefreshMs: 5000 });
  const config = loadDeploymentConfig({
    PROXY_LOG_LEVEL: 'info',
    ...process.env,
    PROXY_UPSTREAM: simulator.url,
    PROXY_HOST: process.env.PROXY_HOST ?? '127.0.0.1',
    PROXY_PORT: String(proxyPort),
    PROXY_ADMIN_PORT: String(adminPort),
    PROXY_PROPERTIES: propertiesPath,
    PROXY_STATE_DIR: process.env.PROXY_STATE_DIR ?? join(dir, 'state'),
  });
  const proxy = await startProxy(config);
  const adminUrl = proxy.adminUrl;

  process.stdout.write(
    [
      '',
      '  session-timeout-proxy demo (upstream: the bundled Panopticon SIMULATOR)',
      '',
      `  Open      ${proxy.url}/panopticon/   and sign in as alice / alice`,
      '            (bob / bob and carol / carol work too; kiosk / kiosk is exempt from the timeout)',
      '  Then      leave the tab alone: the warning shows after 1 minute, the logout after 2.',
      adminUrl ? `  Admin     ${adminUrl}/admin   (sessions, deadlines, "why was I logged out?")` : '',
      `  Licenses  ${simulator.url}/panopticon/server/rest/licenses`,
      `  Settings  ${propertiesPath}   (edit it live)`,
      '',
      '  Ctrl+C stops both.',
      '',
    ].join('\n') + '\n',
  );

  const stop = async () => {
    await proxy.close();
    await simulator.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

main().catch((err: unknown) => {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'EADDRINUSE') {
    process.stderr.write(`demo: a port is already in use (${e.message}). Set DEMO_PORT, DEMO_SIMULATOR_PORT or DEMO_ADMIN_PORT.\n`);
  } else {
    process.stderr.write(`demo failed: ${e?.stack ?? String(err)}\n`);
  }
  process.exit(1);
});
