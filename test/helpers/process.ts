/**
 * Real child processes for the operations tests: the built proxy (`node dist/main.js`, exactly the
 * production start command), or any other command, with captured output and exit status.
 *
 * The child's environment is the test runner's minus anything that would change how the proxy
 * behaves (PROXY_*, SIM_*) or how Node starts (NODE_OPTIONS set by the test runner, coverage).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';

/** the repository root (where package.json lives) */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** the built entry point that `npm start` runs */
export const MAIN_JS = join(ROOT, 'dist', 'main.js');

/**
 * `npm test` builds before tap runs; when a test file is run on its own without a build, build
 * once here (the TypeScript compiler, as `npm run build` does) rather than fail obscurely.
 */
export function ensureBuilt(): void {
  if (existsSync(MAIN_JS)) return;
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'pipe' });
  } catch (err) {
    const out = (err as { stdout?: Buffer }).stdout?.toString() ?? '';
    throw new Error(`dist/main.js is missing and the build failed; run \`npm run build\`:\n${out}`);
  }
  if (!existsSync(MAIN_JS)) throw new Error('dist/main.js is still missing after the build');
}

const DROPPED = [/^PROXY_/, /^SIM_/, /^NODE_OPTIONS$/, /^NODE_V8_COVERAGE$/, /^TAP/, /^_TAPJS/, /^npm_/];

/** The test runner's environment without PROXY_*, SIM_*, NODE_OPTIONS, ...; then `extra` (undefined deletes). */
export function childEnv(extra: Readonly<Record<string, string | undefined>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!DROPPED.some((re) => re.test(k))) env[k] = v;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Date.now() when the exit was seen */
  atMs: number;
}

export type LogLine = Record<string, unknown>;

export interface ChildRun {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Date.now() at spawn */
  readonly spawnedAtMs: number;
  /** every stdout line that parsed as a JSON object (the proxy logs one per line) */
  readonly logs: LogLine[];
  stdout(): string;
  stderr(): string;
  /** resolves once, when the process has exited */
  readonly exited: Promise<Exit>;
  /** undefined while running */
  exit(): Exit | undefined;
  /** the first log line matching (already seen or future); rejects on timeout or exit */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number, what?: string): Promise<LogLine>;
  /** sends a signal (to this pid only) */
  signal(sig: NodeJS.Signals): void;
  /** the last output, for failure messages */
  tail(lines?: number): string;
}

/**
 * Spawns `command args` (no shell). The process is SIGKILLed at teardown if still running, and its
 * output is printed as a comment when the test failed.
 */
export function spawnChild(t: Test, command: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): ChildRun {
  const child = spawn(command, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const spawnedAtMs = Date.now();
  let out = '';
  let err = '';
  let partial = '';
  const logs: LogLine[] = [];
  const waiters: Array<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    out += chunk;
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const text of lines) {
      let line: unknown;
      try {
        line = JSON.parse(text);
      } catch {
        continue;
      }
      if (!line || typeof line !== 'object') continue;
      logs.push(line as LogLine);
      for (const w of [...waiters]) {
        if (w.match(line as LogLine)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line as LogLine);
        }
      }
    }
  });
  child.stderr!.on('data', (chunk: string) => (err += chunk));
  let exitInfo: Exit | undefined;
  const exited = new Promise<Exit>((resolve) => {
    // 'close': the process exited AND its output was read to the end
    child.once('close', (code, signal) => {
      exitInfo = { code, signal, atMs: Date.now() };
      resolve(exitInfo);
    });
  });
  child.once('error', (e) => {
    err += `spawn error: ${e.message}\n`;
  });

  const tail = (n = 40) => {
    const lines = out.split('\n').slice(-n).join('\n');
    return `--- ${command} ${args.join(' ')} (pid ${child.pid}) stdout (last ${n} lines):\n${lines}\n--- stderr:\n${err}`;
  };

  t.teardown(async () => {
    if (!exitInfo) {
      child.kill('SIGKILL');
      await exited;
    }
    if (!t.passing()) t.comment(tail());
  });

  return {
    child,
    pid: child.pid ?? -1,
    spawnedAtMs,
    logs,
    stdout: () => out,
    stderr: () => err,
    exited,
    exit: () => exitInfo,
    waitForLog(match, timeoutMs = 10_000, what = 'a matching log line') {
      const found = logs.find(match);
      if (found) return Promise.resolve(found);
      return new Promise<LogLine>((resolve, reject) => {
        const done = (fn: () => void) => {
          clearTimeout(timer);
          const i = waiters.indexOf(waiter);
          if (i !== -1) waiters.splice(i, 1);
          fn();
        };
        const waiter = { match, resolve: (l: LogLine) => done(() => resolve(l)) };
        const timer = setTimeout(() => done(() => reject(new Error(`no ${what} within ${timeoutMs} ms\n${tail()}`))), timeoutMs);
        waiters.push(waiter);
        void exited.then((e) => done(() => reject(new Error(`process exited (code ${e.code}, signal ${e.signal}) before ${what}\n${tail()}`))));
      });
    },
    signal(sig) {
      if (!exitInfo) child.kill(sig);
    },
    tail,
  };
}

export interface ProxyProcess extends ChildRun {
  /** main listener, from the `started` log line */
  readonly url: string;
  /** admin listener, from the `started` log line */
  readonly adminUrl: string;
  /** Date.now() when the `started` line was seen */
  readonly startedAtMs: number;
  /** SIGTERM, then the exit (rejects if it takes longer than timeoutMs) */
  stop(timeoutMs?: number): Promise<Exit>;
}

/** Runs `node dist/main.js` with the given environment and waits for its `started` log line. */
export async function startProxyProcess(t: Test, env: Readonly<Record<string, string | undefined>>, opts: { startTimeoutMs?: number } = {}): Promise<ProxyProcess> {
  ensureBuilt();
  const run = spawnChild(t, process.execPath, [MAIN_JS], { env: childEnv(env) });
  const started = await run.waitForLog((l) => l['event'] === 'started', opts.startTimeoutMs ?? 15_000, 'started log line');
  const startedAtMs = Date.now();
  return Object.assign(run, {
    url: String(started['url']),
    adminUrl: String(started['adminUrl']),
    startedAtMs,
    async stop(timeoutMs = 10_000) {
      run.signal('SIGTERM');
      try {
        return await withTimeout(run.exited, timeoutMs, 'exit after SIGTERM');
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${run.tail()}`);
      }
    },
  });
}

/** Runs a command to completion and returns its status and output. */
export function runToEnd(command: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish within ${opts.timeoutMs ?? 20_000} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, opts.timeoutMs ?? 20_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A TCP port that was free a moment ago (bound on 127.0.0.1, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for: ${what}`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
