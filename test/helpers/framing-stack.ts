/**
 * The whole proxy (src/app.ts, manual clock) in front of the strict STOMP test server, for the
 * notification-framing tests. Users are named by a trusted identity header (`x-user`), so real
 * STOMP and SockJS clients can carry their identity in the handshake.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import type { Test } from 'tap';
import { startProxy, type RunningProxy } from '../../src/app.js';
import { loadDeploymentConfig } from '../../src/config/deployment.js';
import { createLogger } from '../../src/log.js';
import { ManualClock } from '../../src/sessions/clock.js';
import { props } from './stack.js';
import { startStompUpstream, type StompUpstream } from './stomp-upstream.js';

export const USER_HEADER = 'x-user';

export interface FramingStack {
  readonly clock: ManualClock;
  readonly upstream: StompUpstream;
  readonly proxy: RunningProxy;
  /** ws://… of the proxy */
  readonly wsUrl: string;
  /** a request as `user` through the proxy; returns the status */
  get(user: string, path: string, method?: string): Promise<number>;
  /** the admin view of one session */
  adminSession(user: string): Promise<Record<string, unknown>>;
}

export async function startFramingStack(t: Test, env: Record<string, string> = {}): Promise<FramingStack> {
  const dir = await mkdtemp(join(tmpdir(), 'stp-framing-'));
  const propertiesPath = join(dir, 'Panopticon.properties');
  await writeFile(propertiesPath, props({ enabled: true, minutes: 10, 'notification.minutes': 1 }));
  const upstream = await startStompUpstream();
  const clock = new ManualClock(Date.now());
  const config = loadDeploymentConfig({
    PROXY_UPSTREAM: upstream.url,
    PROXY_HOST: '127.0.0.1',
    PROXY_PORT: '0',
    PROXY_ADMIN_PORT: '0',
    PROXY_PROPERTIES: propertiesPath,
    PROXY_IDENTITY_HEADER: USER_HEADER,
    PROXY_LOG_LEVEL: 'warn',
    ...env,
  });
  const proxy = await startProxy(config, { clock, defaultMetrics: false, logger: createLogger({ level: 'warn', destination: { write: () => undefined } }) });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  return {
    clock,
    upstream,
    proxy,
    wsUrl: proxy.url.replace('http', 'ws'),
    async get(user, path, method = 'GET') {
      const res = await request(proxy.url + path, { method: method as 'GET', headers: { [USER_HEADER]: user } });
      await res.body.dump();
      return res.statusCode;
    },
    async adminSession(user) {
      const res = await request(`${proxy.adminUrl}/admin/sessions/${encodeURIComponent(user)}`);
      return (await res.body.json()) as Record<string, unknown>;
    },
  };
}
