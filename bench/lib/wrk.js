/**
 * HTTP load with wrk (Debian package `wrk`), when it is installed: a Lua script hands the
 * requests the given cookies in turn and prints the figures as one JSON line at the end.
 * Latencies are wrk's, in microseconds (finer than autocannon's whole milliseconds).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function wrkBinary() {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return 'wrk';
  } catch (err) {
    // wrk --version exits with 1 after printing its version
    return err && err.status === 1 ? 'wrk' : undefined;
  }
}

const SCRIPT = (cookies) => `
local cookies = { ${cookies.map((c) => JSON.stringify(c)).join(', ')} }
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, { ["cookie"] = cookies[(n % #cookies) + 1], ["accept"] = "application/json" })
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"durationUs":%d,"bytes":%d,"p50Us":%d,"p99Us":%d,"meanUs":%f,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99), latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
`;

/** Runs wrk; resolves with the same shape as the autocannon runner. */
export async function runWrk({ url, connections, durationS, cookies = [], threads = 2 }) {
  const dir = await mkdtemp(join(tmpdir(), 'bench-wrk-'));
  try {
    const script = join(dir, 'cookies.lua');
    await writeFile(script, SCRIPT(cookies.length > 0 ? cookies : ['']));
    const out = await new Promise((resolve, reject) => {
      const p = spawn('wrk', ['-t', String(Math.min(threads, connections)), '-c', String(connections), '-d', `${durationS}s`, '--timeout', '10s', '-s', script, url], { stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      p.stdout.on('data', (d) => (text += d));
      p.stderr.on('data', (d) => (text += d));
      p.on('error', reject);
      p.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited with ${code}: ${text}`))));
    });
    const line = /WRKJSON (\{.*\})/.exec(out);
    if (!line) throw new Error(`no figures in wrk's output: ${out}`);
    const r = JSON.parse(line[1]);
    const seconds = r.durationUs / 1e6;
    return {
      rps: r.requests / seconds,
      requests: r.requests,
      durationS: seconds,
      p50Ms: r.p50Us / 1000,
      p99Ms: r.p99Us / 1000,
      bytesPerS: r.bytes / seconds,
      non2xx: r.status,
      errors: r.connect + r.read + r.write,
      timeouts: r.timeout,
      tool: 'wrk',
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
