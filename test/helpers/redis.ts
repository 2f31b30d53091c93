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
import { freePort, runToEnd, sleep } from './process.js';

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

export interface TestCluster {
  /** `host:port` of every master, comma-separated (PROXY_REDIS_CLUSTER_NODES) */
  readonly nodes: string;
  readonly ports: readonly number[];
}

/**
 * A Redis Cluster of `masters` masters (no replicas), each in its own temp dir with its own
 * cluster bus port (`cluster-port`, so nothing assumes port + 10000 is free), joined with
 * `redis-cli --cluster create` and waited for until every node reports `cluster_state:ok`.
 */
export async function startCluster(t: Test, masters = 3): Promise<TestCluster> {
  const ports: number[] = [];
  for (let i = 0; i < masters; i++) {
    const port = await freePort();
    const busPort = await freePort();
    const dir = await mkdtemp(join(tmpdir(), 'stp-cluster-'));
    await startRedis(t, ['--cluster-enabled', 'yes', '--cluster-port', String(busPort), '--cluster-config-file', join(dir, 'nodes.conf'), '--dir', dir, '--cluster-node-timeout', '2000'], 'redis-server', port);
    ports.push(port);
  }
  const created = await runToEnd('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { timeoutMs: 30_000 });
  if (created.code !== 0) throw new Error(`redis-cli --cluster create failed (${created.code}): ${created.stdout}\n${created.stderr}`);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const states = await Promise.all(ports.map((p) => runToEnd('redis-cli', ['-p', String(p), 'cluster', 'info'], { timeoutMs: 5000 })));
    if (states.every((s) => s.stdout.includes('cluster_state:ok'))) break;
    if (Date.now() > deadline) throw new Error(`the test cluster did not reach cluster_state:ok: ${states.map((s) => s.stdout.split('\n')[0]).join(' / ')}`);
    await sleep(200);
  }
  return { nodes: ports.map((p) => `127.0.0.1:${p}`).join(','), ports };
}

export interface TestTlsRedis extends TestRedis {
  /** PEM file of the private CA that signed the server certificate (for NODE_EXTRA_CA_CERTS) */
  readonly caFile: string;
}

/**
 * A redis-server that speaks only TLS (`--port 0 --tls-port`), with a private CA and a server
 * certificate for `localhost` / 127.0.0.1 made here with `openssl`. `extraArgs` as for startRedis.
 */
export async function startTlsRedis(t: Test, extraArgs: readonly string[] = []): Promise<TestTlsRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'stp-tls-'));
  const f = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-subj', '/CN=stp test CA', '-days', '2']);
  await openssl(['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost']);
  await writeFile(f('san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  await openssl(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('san.ext')]);
  const port = await freePort();
  const redis = await startRedis(t, ['--bind', '127.0.0.1', '-::1', '--port', '0', '--tls-port', String(port), '--tls-cert-file', f('server.pem'), '--tls-key-file', f('server.key'), '--tls-ca-cert-file', f('ca.pem'), '--tls-auth-clients', 'no', ...extraArgs], 'redis-server', port);
  return { ...redis, url: `rediss://localhost:${port}`, caFile: f('ca.pem') };
}

async function openssl(args: readonly string[]): Promise<void> {
  const r = await runToEnd('openssl', args, { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
}
