/**
 * A real redis-server for the tests, on a free loopback port, with no persistence (a restart
 * comes back empty, as a Redis without a volume does). Killed at teardown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { freePort, sleep } from './process.js';

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** stops the server (SIGKILL: like a crash or a pulled cable) */
  stop(): Promise<void>;
  /** starts it again on the same port, empty */
  start(): Promise<void>;
}

/** `extraArgs` are more redis-server options (e.g. ACL users, `--replicaof`). */
export async function startRedis(t: Test, extraArgs: readonly string[] = [], command = 'redis-server', portArg?: number): Promise<TestRedis> {
  const port = portArg ?? (await freePort());
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  async function start(): Promise<void> {
    const args = command === 'redis-server' ? ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', ...extraArgs] : [...extraArgs];
    const proc = spawn(command, args, { stdio: 'ignore' });
    child = proc;
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    await waitForPort(port, 5000);
  }
  async function stop(): Promise<void> {
    child?.kill('SIGKILL');
    await exited;
    child = undefined;
  }
  await start();
  t.teardown(stop);
  return { port, url: `redis://127.0.0.1:${port}`, stop, start };
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not listen on ${port} within ${timeoutMs} ms (is redis-server installed?)`);
    await sleep(50);
  }
}

export interface TestSentinelSetup {
  readonly master: TestRedis;
  readonly replica: TestRedis;
  /** `host:port` of the Sentinel */
  readonly sentinels: string;
}

/**
 * A master, a replica of it and one Sentinel watching them (quorum 1, master declared down after
 * 1 s), so killing the master promotes the replica within a few seconds.
 */
export async function startSentinelSetup(t: Test): Promise<TestSentinelSetup> {
  const master = await startRedis(t);
  const replica = await startRedis(t, ['--replicaof', '127.0.0.1', String(master.port)]);
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'stp-sentinel-'));
  const conf = join(dir, 'sentinel.conf');
  await writeFile(conf, [
    `port ${port}`,
    'bind 127.0.0.1',
    `dir ${dir}`,
    `sentinel monitor mymaster 127.0.0.1 ${master.port} 1`,
    'sentinel down-after-milliseconds mymaster 1000',
    'sentinel failover-timeout mymaster 5000',
    'sentinel parallel-syncs mymaster 1',
    '',
  ].join('\n'));
  await startRedis(t, [conf], 'redis-sentinel', port);
  return { master, replica, sentinels: `127.0.0.1:${port}` };
}
