/**
 * Several proxy replicas (in this process) sharing one real Redis, in front of one simulator, with
 * a round-robin over them as a load balancer without sticky sessions would do.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { request } from 'undici';
import type { Test } from 'tap';
import { loadDeploymentConfig } from '../../src/config/deployment.js';
import { startProxy, type RunningProxy } from '../../src/app.js';
import { createLogger } from '../../src/log.js';
import { startSimulator, type Simulator } from '../../src/simulator/server.js';

export const TEST_STATE_KEY = 'test-state-key-0123456789abcdefghijklmnop';

export interface Replica {
  readonly proxy: RunningProxy;
  readonly id: string;
  /** every log line, parsed */
  logs(): Array<Record<string, unknown>>;
}

export interface Replicas {
  readonly sim: Simulator;
  readonly replicas: Replica[];
  /** the next replica in round-robin order */
  next(): Replica;
  /** GET through the round-robin */
  get(path: string, headers?: Record<string, string>): Promise<{ status: number; body: string; via: string }>;
  /** starts one more replica with the same settings (after a stop, for example) */
  add(): Promise<Replica>;
}

export async function startReplicas(t: Test, opts: { count: number; redisUrl: string; properties: string; env?: Record<string, string>; sim?: Simulator }): Promise<Replicas> {
  const dir = await mkdtemp(join(tmpdir(), 'stp-replicas-'));
  const propertiesPath = join(dir, 'Panopticon.properties');
  await writeFile(propertiesPath, opts.properties);
  const sim = opts.sim ?? (await startSimulator({ logger: false, dataIntervalMs: 200 }));
  if (!opts.sim) t.teardown(() => sim.close());
  const env = {
    PROXY_UPSTREAM: sim.url,
    PROXY_HOST: '127.0.0.1',
    PROXY_PORT: '0',
    PROXY_ADMIN_PORT: '0',
    PROXY_PROPERTIES: propertiesPath,
    PROXY_PROPERTIES_POLL_MS: '100',
    PROXY_TOKEN_SECRET: sim.tokenSecret,
    PROXY_STORE: 'redis',
    PROXY_REDIS_URL: opts.redisUrl,
    PROXY_REDIS_FLUSH_MS: '100',
    PROXY_STATE_KEY: TEST_STATE_KEY,
    PROXY_LOGOUT_RETRY_MIN_MS: '200',
    PROXY_LOGOUT_RETRY_MAX_MS: '500',
    ...opts.env,
  };
  const replicas: Replica[] = [];
  async function add(): Promise<Replica> {
    const lines: string[] = [];
    const destination = new Writable({ write(chunk, _enc, cb) { lines.push(...String(chunk).split('\n').filter(Boolean)); cb(); } });
    const proxy = await startProxy(loadDeploymentConfig(env), { logger: createLogger({ level: 'debug', destination }), defaultMetrics: false });
    t.teardown(() => proxy.close());
    const replica: Replica = { proxy, id: proxy.link!.replicaId, logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
    replicas.push(replica);
    return replica;
  }
  for (let i = 0; i < opts.count; i++) await add();
  let turn = 0;
  const next = () => replicas[turn++ % replicas.length]!;
  return {
    sim,
    replicas,
    next,
    add,
    async get(path, headers = {}) {
      const r = next();
      const res = await request(r.proxy.url + path, { headers });
      return { status: res.statusCode, body: await res.body.text(), via: r.id };
    },
  };
}
