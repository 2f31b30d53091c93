/**
 * Where the proxy's log lines go (stdout unless told otherwise), with the access log kept off
 * the hot path: access lines (`"msg":"request"`) are collected and written in one system call
 * per BATCH_BYTES, or after at most FLUSH_MS. Every other line (audit events: warnings, logouts,
 * settings changes; warnings and errors) is written at once, together with the access lines
 * before it, so the order holds and nothing that matters waits in memory. The batch is also
 * written when the process exits (shutdown, crash); a SIGKILL can lose at most one batch of
 * access lines, never an audit line.
 */
import pino from 'pino';

export const BATCH_BYTES = 16 * 1024;
export const FLUSH_MS = 1000;
const ACCESS_LINE_END = '"msg":"request"}\n';

export interface LogDestination extends pino.DestinationStream {
  /** writes what is batched, now (pino's logger.flush calls it) */
  flush(cb?: (err?: Error) => void): void;
}

const flushAtExit = new Set<() => void>();
let exitHookInstalled = false;

export function createLogDestination(dest: number | string = 1): LogDestination {
  // synchronous and unbuffered itself (it handles partial writes, EAGAIN and a closed pipe)
  const out = pino.destination({ dest, sync: true });
  let batch: string[] = [];
  let bytes = 0;
  const flush = (): void => {
    if (bytes === 0) return;
    const text = batch.length === 1 ? batch[0]! : batch.join('');
    batch = [];
    bytes = 0;
    out.write(text);
  };
  setInterval(flush, FLUSH_MS).unref();
  flushAtExit.add(flush);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => { for (const f of flushAtExit) f(); });
  }
  return {
    write(line: string): boolean {
      batch.push(line);
      bytes += line.length;
      if (bytes >= BATCH_BYTES || !line.endsWith(ACCESS_LINE_END)) flush();
      return true;
    },
    flush(cb?: (err?: Error) => void): void {
      flush();
      cb?.();
    },
  };
}
