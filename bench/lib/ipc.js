/**
 * Tiny request/response protocol over the fork() IPC channel, so the orchestrator can drive
 * the upstream, the proxies and the load generator, each in its own process (own event loop).
 *
 *   parent: const c = await startChild('bench/upstream.js'); const port = c.ready.port;
 *           const answer = await c.call({ cmd: 'mem' }, 5000);
 *   child:  serve(async (msg) => ({ ... }), { port });
 */
import { fork } from 'node:child_process';

/** Forks `file`, waits for its `ready` message (bounded), and returns a handle. */
export async function startChild(file, { args = [], execArgv = [], env = {}, readyTimeoutMs = 15_000, name = file } = {}) {
  const child = fork(file, args, {
    execArgv,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let nextId = 1;
  const waiting = new Map();
  let exited = false;
  const exitedPromise = new Promise((resolve) => child.once('exit', (code, signal) => {
    exited = true;
    for (const w of waiting.values()) w.reject(new Error(`${name} exited (code ${code}, signal ${signal}) before answering`));
    waiting.clear();
    resolve({ code, signal });
  }));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not get ready within ${readyTimeoutMs} ms`)), readyTimeoutMs);
    child.on('message', (msg) => {
      if (msg && msg.type === 'ready') {
        clearTimeout(timer);
        resolve(msg);
      } else if (msg && msg.type === 'failed') {
        clearTimeout(timer);
        reject(new Error(`${name} failed to start: ${msg.error}`));
      } else if (msg && msg.id !== undefined && waiting.has(msg.id)) {
        const w = waiting.get(msg.id);
        waiting.delete(msg.id);
        if (msg.error) w.reject(new Error(`${name}: ${msg.error}`));
        else w.resolve(msg.result);
      }
    });
    exitedPromise.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (code ${code}, signal ${signal}) before getting ready`));
    });
  });
  const handle = {
    child,
    name,
    ready: await ready,
    get exited() {
      return exited;
    },
    /** sends a command and waits (bounded) for its answer */
    call(msg, timeoutMs = 60_000) {
      if (exited) return Promise.reject(new Error(`${name} has exited`));
      const id = nextId++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error(`${name} did not answer ${msg.cmd} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(id, {
          resolve: (v) => { clearTimeout(timer); resolve(v); },
          reject: (e) => { clearTimeout(timer); reject(e); },
        });
        child.send({ ...msg, id });
      });
    },
    /** asks the child to stop, then kills it (by its pid) if it is still there after `graceMs` */
    async stop(graceMs = 3000) {
      if (exited) return;
      try { child.send({ cmd: 'stop', id: 0 }); } catch { /* channel already closed */ }
      const timer = setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, graceMs);
      await exitedPromise;
      clearTimeout(timer);
    },
  };
  return handle;
}

/** Child side: answers commands with `handler`; `stop` runs `onStop` then exits. */
export function serve(handler, readyInfo, onStop = async () => {}) {
  process.on('message', async (msg) => {
    if (!msg || typeof msg !== 'object') return;
    if (msg.cmd === 'cpu') { // every child reports its CPU time (to tell our load from other processes')
      process.send({ id: msg.id, result: process.cpuUsage() });
      return;
    }
    if (msg.cmd === 'stop') {
      try { await onStop(); } finally { process.exit(0); }
      return;
    }
    try {
      const result = await handler(msg);
      process.send({ id: msg.id, result });
    } catch (err) {
      process.send({ id: msg.id, error: err && err.stack ? err.stack : String(err) });
    }
  });
  // the parent going away (Ctrl+C, crash) must not leave this process behind
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready', ...readyInfo });
}

/** Child side: report a start failure and exit. */
export function failed(err) {
  try { process.send({ type: 'failed', error: err && err.stack ? err.stack : String(err) }); } catch { /* no channel */ }
  process.exit(1);
}
