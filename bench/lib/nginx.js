/**
 * nginx as a reference reverse proxy: a temp nginx.conf (one worker, keep-alive upstream pool,
 * no access log), started in the foreground as our own child process, stopped by its pid.
 */
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtemp, writeFile, mkdir, chmod, rm, readFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function nginxBinary() {
  for (const candidate of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx']) {
    try {
      execFileSync(candidate, ['-v'], { stdio: 'ignore', timeout: 5000 });
      return candidate;
    } catch { /* not here */ }
  }
  try {
    const found = execFileSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8', timeout: 5000 }).trim();
    if (found) return found;
  } catch { /* not installed */ }
  return undefined;
}

export function nginxVersion(bin) {
  // nginx prints its version on stderr
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8', timeout: 5000 });
  return `${r.stderr ?? ''}${r.stdout ?? ''}`.trim() || 'nginx';
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

export async function startNginx(bin, upstreamPort) {
  const dir = await mkdtemp(join(tmpdir(), 'stp-bench-nginx-'));
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(join(dir, sub));
  // workers may run as an unprivileged user when started by root
  for (const sub of ['', 'body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await chmod(join(dir, sub), 0o777);
  const port = await freePort();
  const conf = `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  upstream backend {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location /ws/ {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $host;
      proxy_read_timeout 1h;
    }
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
}
`;
  const confPath = join(dir, 'nginx.conf');
  await writeFile(confPath, conf);
  const child = spawn(bin, ['-p', dir, '-c', confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  let exited = false;
  child.once('exit', () => { exited = true; });
  const deadline = Date.now() + 5000;
  while (!(await canConnect(port))) {
    if (exited || Date.now() > deadline) {
      if (!exited) child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
      throw new Error(`nginx did not start: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    /** CPU seconds (user+system) of nginx's worker processes, from /proc */
    async cpuSeconds() {
      let total = 0;
      let children = '';
      try { children = await readFile(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8'); } catch { return NaN; }
      for (const pid of children.trim().split(/\s+/).filter(Boolean)) {
        try {
          const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
          const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          total += (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
        } catch { /* gone */ }
      }
      return total;
    },
    async stop() {
      if (!exited) {
        child.kill('SIGTERM'); // our own child, by its pid: the master stops its worker
        const t = setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, 3000);
        await new Promise((r) => (exited ? r() : child.once('exit', r)));
        clearTimeout(t);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

let CLK_TCK = 100;
try {
  CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim()) || 100;
} catch { /* keep 100 */ }
