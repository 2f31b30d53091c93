/**
 * `npm run demo`: the Panopticon SIMULATOR and the proxy in front of it, with short timeouts,
 * so the whole story can be watched in a browser in two minutes.
 *
 *   npm run demo -- --protocol json|stomp|sockjs-stomp   what the simulator's sockets speak (default json)
 * The simulator's other SIM_* variables (SIM_LOGOUT, SIM_CSRF, ...) apply too.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pino from 'pino';
import { loadDeploymentConfig } from './config/deployment.js';
import { startProxy } from './app.js';
import { optionsFromEnv } from './simulator/env-options.js';
import { startSimulator, type WsProtocol } from './simulator/server.js';
import { WS_PROTOCOLS } from './simulator/stomp-routes.js';

class DemoUsageError extends Error {}

/** `--protocol X` / `--protocol=X`; anything else is a usage error. */
function protocolFromArgv(argv: readonly string[]): WsProtocol | undefined {
  let protocol: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--protocol') protocol = argv[++i];
    else if (arg.startsWith('--protocol=')) protocol = arg.slice('--protocol='.length);
    else throw new DemoUsageError(`unknown option ${JSON.stringify(arg)}; usage: npm run demo -- [--protocol ${WS_PROTOCOLS.join('|')}]`);
    if (protocol === undefined || !(WS_PROTOCOLS as readonly string[]).includes(protocol)) {
      throw new DemoUsageError(`--protocol ${JSON.stringify(protocol ?? '')}: expected one of ${WS_PROTOCOLS.join(', ')}`);
    }
  }
  return protocol as WsProtocol | undefined;
}

const DEMO_PROPERTIES = `# Demo settings: edit this file while the demo runs; changes apply within a second.
timeout.session.enabled=true
timeout.session.minutes=2
timeout.session.notification.minutes=1
timeout.session.exception.delimiter=,
timeout.session.exception.usernames=kiosk
`;

/** Readable log lines (pino-pretty) when a person watches the terminal; JSON lines otherwise. */
async function demoLogDestination(): Promise<pino.DestinationStream | undefined> {
  if (!process.stdout.isTTY) return undefined;
  try {
    const { default: pretty } = await import('pino-pretty');
    return pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname', singleLine: true });
  } catch {
    return undefined; // installed without dev dependencies: plain JSON lines
  }
}

async function main(): Promise<void> {
  const proxyPort = Number(process.env.DEMO_PORT ?? 3000);
  const simPort = Number(process.env.DEMO_SIMULATOR_PORT ?? 8080);
  const adminPort = Number(process.env.DEMO_ADMIN_PORT ?? 9090);
  const dir = join(tmpdir(), 'session-timeout-proxy-demo');
  await mkdir(dir, { recursive: true });
  const propertiesPath = join(dir, 'Panopticon.properties');
  await writeFile(propertiesPath, DEMO_PROPERTIES);

  const fromEnv = optionsFromEnv(process.env);
  const wsProtocol = protocolFromArgv(process.argv.slice(2)) ?? fromEnv.wsProtocol ?? 'json';
  const simulator = await startSimulator({
    ...fromEnv,
    // a fresh random token secret per demo unless one is given
    tokenSecret: process.env.SIM_TOKEN_SECRET || undefined,
    host: '127.0.0.1',
    port: simPort,
    logger: false,
    wsProtocol,
  });
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
  const proxy = await startProxy(config, { logDestination: await demoLogDestination() });
  const adminUrl = proxy.adminUrl;

  process.stdout.write(
    [
      '',
      `  session-timeout-proxy demo (upstream: the bundled Panopticon SIMULATOR, sockets: ${wsProtocol})`,
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
  if (err instanceof DemoUsageError) {
    process.stderr.write(`demo: ${err.message}\n`);
  } else if (e?.code === 'EADDRINUSE') {
    process.stderr.write(`demo: a port is already in use (${e.message}). Set DEMO_PORT, DEMO_SIMULATOR_PORT or DEMO_ADMIN_PORT.\n`);
  } else {
    process.stderr.write(`demo failed: ${e?.stack ?? String(err)}\n`);
  }
  process.exit(1);
});
