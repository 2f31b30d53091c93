/**
 * Keeps the container files honest: docker-compose.yml and the Dockerfile are read and checked
 * against the code (known settings, defaults, the health path, the start command), and then the
 * image's start command is run for real with the compose file's environment — container paths,
 * hosts and ports translated to local ones — since no Docker engine is available to the tests.
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, posix } from 'node:path';
import { request } from 'undici';
import picomatch from 'picomatch';
import { parse as parseYaml } from 'yaml';
import { KNOWN_ENV, loadDeploymentConfig } from '../src/config/deployment.js';
import * as simEnv from '../src/simulator/env-options.js';
import { startSimulator } from '../src/simulator/server.js';
import { ROOT, childEnv, ensureBuilt, freePort, MAIN_JS, runToEnd, startProxyProcess, withTimeout } from './helpers/process.js';

// ---------------------------------------------------------------------------------------------
// reading the files

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; engines: { node: string } };
const START = pkg.scripts['start']!;
const compose = parseYaml(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as Compose;
const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const finalStage = dockerfile[dockerfile.length - 1]!;
/** the code's defaults (only the required upstream given) */
const DEFAULTS = loadDeploymentConfig({ PROXY_UPSTREAM: 'http://upstream.invalid:8080' });

interface ComposeService {
  environment?: Record<string, string | number | boolean | null> | string[];
  volumes?: Array<string | { type?: string; source?: string; target: string; read_only?: boolean }>;
  ports?: Array<string | number | { target: number; published?: string | number; host_ip?: string }>;
  read_only?: boolean;
  tmpfs?: string | string[];
  stop_grace_period?: string;
  command?: string | string[];
  build?: unknown;
  image?: string;
  profiles?: string[];
  deploy?: { replicas?: number };
  depends_on?: string[] | Record<string, unknown>;
}
interface Compose { services: Record<string, ComposeService>; volumes?: Record<string, unknown> }

/** `${VAR:-default}`, `${VAR-default}`, `${VAR}`, `$VAR` with nothing set (as `docker compose up` without a .env file) */
function interpolate(value: string): string {
  return value
    .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (_m, _name: string, def: string | undefined) => def ?? '')
    .replace(/\$([A-Za-z_][A-Za-z0-9_]*)/g, '')
    .replace(/\$\$/g, '$');
}

function environmentOf(service: ComposeService): Record<string, string> {
  const raw = service.environment ?? {};
  const entries: Array<[string, string]> = Array.isArray(raw)
    ? raw.map((s) => { const i = s.indexOf('='); return i === -1 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)]; })
    : Object.entries(raw).map(([k, v]) => [k, v === null ? '' : String(v)]);
  return Object.fromEntries(entries.map(([k, v]) => [k, interpolate(v)]));
}

/** compose duration (`20s`, `1m30s`, `500ms`) in ms */
function durationMs(text: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001 };
  let total = 0;
  const rest = String(text).replace(/(\d+(?:\.\d+)?)(h|ms|m|s|us)/g, (_m, n: string, unit: string) => {
    total += Number(n) * units[unit]!;
    return '';
  });
  if (rest.trim() !== '') throw new Error(`not a compose duration: ${text}`);
  return total;
}

interface Mount { source: string; target: string; readOnly: boolean; bind: boolean }

function mountsOf(service: ComposeService): Mount[] {
  return (service.volumes ?? []).map((v) => {
    if (typeof v === 'string') {
      const [source = '', target = '', mode = ''] = interpolate(v).split(':');
      return { source, target, readOnly: mode.split(',').includes('ro'), bind: source.startsWith('.') || source.startsWith('/') || source.startsWith('~') };
    }
    const source = v.source ?? '';
    return { source, target: v.target, readOnly: v.read_only === true, bind: v.type === 'bind' || source.startsWith('.') || source.startsWith('/') };
  });
}

/** the mount a container path lies in (the longest matching target) */
function mountFor(mounts: Mount[], containerPath: string): Mount | undefined {
  return mounts
    .filter((m) => containerPath === m.target || containerPath.startsWith(m.target.replace(/\/+$/, '') + '/'))
    .sort((a, b) => b.target.length - a.target.length)[0];
}

function containerPortsOf(service: ComposeService): Array<{ container: number; hostIp: string | undefined }> {
  return (service.ports ?? []).map((p) => {
    if (typeof p === 'number') return { container: p, hostIp: undefined };
    if (typeof p === 'object') return { container: p.target, hostIp: p.host_ip };
    const parts = p.replace(/\/(tcp|udp)$/, '').split(':');
    const container = Number(parts[parts.length - 1]);
    return { container, hostIp: parts.length === 3 ? parts[0] : undefined };
  });
}

interface Instruction { op: string; args: string; line: number }
interface Stage { from: string; name: string | undefined; instructions: Instruction[] }

/** Dockerfile → stages of instructions (comments dropped, `\` continuations joined). */
function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((rawLine, i) => {
    const line = rawLine.replace(/\r$/, '');
    if (pending === '' && /^\s*(#|$)/.test(line)) return;
    if (pending !== '' && /^\s*#/.test(line)) return; // comment inside a continuation
    if (pending === '') startLine = i + 1;
    if (/\\\s*$/.test(line)) {
      pending += line.replace(/\\\s*$/, ' ');
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\S+)\s*(.*)$/s.exec(full)!;
    instructions.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: startLine });
  });
  const stages: Stage[] = [];
  /** `ARG NAME=default` before the first FROM: what `${NAME}` in a FROM means without --build-arg */
  const globalArgs = new Map<string, string>();
  for (const ins of instructions) {
    if (ins.op === 'ARG' && stages.length === 0) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(ins.args);
      if (m) globalArgs.set(m[1]!, m[2] ?? '');
    } else if (ins.op === 'FROM') {
      const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?/i.exec(ins.args)!;
      const from = m[1]!.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_all, name: string) => globalArgs.get(name) ?? '');
      stages.push({ from, name: m[2], instructions: [] });
    } else if (stages.length > 0) {
      stages[stages.length - 1]!.instructions.push(ins);
    }
  }
  return stages;
}

function ops(stage: Stage, op: string): Instruction[] {
  return stage.instructions.filter((i) => i.op === op);
}

/** ENV key=value ... (quotes allowed) or the old `ENV key value` */
function envOf(stage: Stage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const ins of ops(stage, 'ENV')) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(ins.args)) {
      const m = /^(\S+)\s+(.*)$/.exec(ins.args);
      if (m) out[m[1]!] = m[2]!;
      continue;
    }
    for (const m of ins.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g)) {
      const v = m[2]!;
      out[m[1]!] = v.startsWith('"') ? JSON.parse(v) : v.startsWith("'") ? v.slice(1, -1) : v;
    }
  }
  return out;
}

/** exec form `["a","b"]` → words; shell form → `/bin/sh -c "..."` */
function commandWords(args: string): string[] {
  const s = args.trim();
  if (s.startsWith('[')) return JSON.parse(s) as string[];
  return ['/bin/sh', '-c', s];
}

function healthcheckCommand(stage: Stage): string[] | undefined {
  const hc = ops(stage, 'HEALTHCHECK').at(-1);
  if (!hc || /^NONE$/i.test(hc.args)) return undefined;
  const m = /(?:^|\s)CMD\s+(.*)$/s.exec(hc.args);
  return m ? commandWords(m[1]!) : undefined;
}

const proxyService = compose.services['proxy']!;
const proxyEnv = environmentOf(proxyService);
const proxyMounts = mountsOf(proxyService);

// ---------------------------------------------------------------------------------------------

t.test('docker-compose.yml: the proxy service', async (t) => {
  t.ok(proxyService, 'a service called "proxy"');
  const unknown = Object.keys(proxyEnv).filter((k) => !KNOWN_ENV.has(k));
  t.same(unknown, [], 'every variable the proxy service sets is a known setting');
  t.doesNotThrow(() => loadDeploymentConfig(proxyEnv), 'its values are valid settings');

  const props = proxyEnv['PROXY_PROPERTIES'];
  t.ok(props, 'PROXY_PROPERTIES is set');
  t.ok(props && posix.isAbsolute(props), 'as a container path');
  const propsMount = props ? mountFor(proxyMounts, props) : undefined;
  t.ok(propsMount, `${props} lies inside a mounted volume`);
  t.equal(propsMount?.source, './config', 'whose host side is ./config');
  t.ok(propsMount?.bind, 'a bind mount');
  t.ok(propsMount?.readOnly, 'mounted read-only');
  if (props && propsMount) {
    const local = join(ROOT, propsMount.source, posix.relative(propsMount.target, props));
    t.equal(local, join(ROOT, 'config', 'Panopticon.properties'));
    t.ok(existsSync(local), 'the properties file exists in the repo');
  }

  const stateDir = proxyEnv['PROXY_STATE_DIR'];
  t.ok(stateDir, 'PROXY_STATE_DIR is set (timers survive a container restart)');
  const stateMount = stateDir ? mountFor(proxyMounts, stateDir) : undefined;
  t.equal(stateMount?.target, stateDir, 'PROXY_STATE_DIR is itself a mounted volume');
  t.notOk(stateMount?.readOnly, 'and writable');
  if (stateMount && !stateMount.bind) t.ok(stateMount.source in (compose.volumes ?? {}), `named volume "${stateMount.source}" is declared`);

  t.equal(proxyService.read_only, true, 'read-only root file system');
  const tmpfs = ([] as string[]).concat(proxyService.tmpfs ?? []).map((s) => s.split(':')[0]);
  t.ok(tmpfs.includes('/tmp'), 'with a tmpfs on /tmp');

  // main.ts gives the shutdown PROXY_SHUTDOWN_GRACE_MS plus 5 s before it gives up by itself
  const graceMs = loadDeploymentConfig(proxyEnv).shutdownGraceMs;
  const stopMs = durationMs(proxyService.stop_grace_period ?? '10s');
  t.ok(stopMs >= graceMs + 5_000, `stop_grace_period (${stopMs} ms) lets the shutdown finish (grace ${graceMs} ms + 5 s) before Docker's SIGKILL`);

  const ports = containerPortsOf(proxyService);
  const port = Number(proxyEnv['PROXY_PORT'] ?? DEFAULTS.port);
  const adminPort = Number(proxyEnv['PROXY_ADMIN_PORT'] ?? DEFAULTS.adminPort);
  t.ok(ports.some((p) => p.container === port), `the proxy port ${port} is published`);
  const admin = ports.find((p) => p.container === adminPort);
  if (admin) t.equal(admin.hostIp, '127.0.0.1', 'the admin port, when published, only on the host loopback');
  if (proxyEnv['PROXY_ADMIN_HOST'] && !['127.0.0.1', '::1', 'localhost'].includes(proxyEnv['PROXY_ADMIN_HOST'])) {
    t.ok(proxyEnv['PROXY_ADMIN_TOKEN'], 'a non-loopback admin listener has a token (else the proxy refuses to start)');
  }
});

t.test('docker-compose.yml: the simulator service matches what the proxy expects', async (t) => {
  const upstream = new URL(proxyEnv['PROXY_UPSTREAM']!);
  const sim = compose.services[upstream.hostname];
  t.ok(sim, `PROXY_UPSTREAM names a compose service (${upstream.hostname})`);
  if (!sim) return;
  const env = environmentOf(sim);
  const known = (simEnv as { SIM_ENV_DOC?: ReadonlyArray<readonly [string, string]> }).SIM_ENV_DOC;
  if (known) {
    const names = new Set(known.map(([n]) => n));
    t.same(Object.keys(env).filter((k) => !names.has(k)), [], 'every SIM_* variable is one the simulator reads');
  } else {
    t.comment('SKIP: src/simulator/env-options.ts exports no list of variables');
  }
  t.doesNotThrow(() => simEnv.optionsFromEnv(env), 'its values are valid simulator options');
  t.equal(String(Number(upstream.port || 80)), env['SIM_PORT'] ?? '8080', 'the simulator listens on the port PROXY_UPSTREAM names');
  t.equal(env['SIM_CONTEXT_PATH'] ?? '/panopticon', proxyEnv['PROXY_CONTEXT_PATH'] ?? '/panopticon', 'same context path');
  t.equal(env['SIM_PUBLIC_ORIGIN'], upstream.origin, 'absolute redirects name the origin the proxy knows as its upstream');
  t.equal(env['SIM_TOKEN_SECRET'], proxyEnv['PROXY_TOKEN_SECRET'], 'the proxy verifies tokens with the simulator\'s secret');
  const command = ([] as string[]).concat(sim.command ?? []);
  const script = command.find((w) => w.endsWith('.js'));
  t.ok(script, 'the simulator service runs a script of the image');
  if (script) {
    ensureBuilt();
    t.ok(existsSync(join(ROOT, script)), `${script} exists after the build`);
  }
});

t.test('docker-compose.yml: the "ha" profile runs several replicas on Redis behind a round-robin', async (t) => {
  const inHa = Object.entries(compose.services).filter(([, svc]) => svc.profiles?.includes('ha'));
  const replicas = inHa.filter(([, svc]) => Object.keys(environmentOf(svc)).some((k) => k.startsWith('PROXY_')));
  t.equal(replicas.length, 1, 'one proxy service in the profile');
  const [name, svc] = replicas[0] ?? ['', {} as ComposeService];
  t.ok((svc.deploy?.replicas ?? 1) >= 2, `${name} runs at least two replicas`);
  const env = environmentOf(svc);
  t.same(Object.keys(env).filter((k) => !KNOWN_ENV.has(k)), [], 'every variable is a known setting');
  const cfg = loadDeploymentConfig(env);
  t.equal(cfg.store, 'redis', 'store=redis');
  t.ok(compose.services[cfg.redisUrl.hostname]?.profiles?.includes('ha'), `PROXY_REDIS_URL names the profile's Redis service (${cfg.redisUrl.hostname})`);
  t.same(mountsOf(svc).find((m) => m.target === '/config'), proxyMounts.find((m) => m.target === '/config'), 'the replicas mount the same properties as the single proxy');
  t.equal(cfg.trustForwarded, true, 'the replicas trust the forwarded headers of the balancer in front');

  const lb = inHa.find(([, s]) => (s.image ?? '').startsWith('nginx'));
  t.ok(lb, 'an nginx round-robin in front');
  const conf = lb ? mountsOf(lb[1]).find((m) => m.target === '/etc/nginx/nginx.conf') : undefined;
  t.ok(conf?.bind && existsSync(join(ROOT, conf.source)), 'its configuration file is in the repo');
  const text = conf ? readFileSync(join(ROOT, conf.source), 'utf8') : '';
  t.ok(text.includes(`server ${name}:${cfg.port};`), `it balances over ${name}:${cfg.port}`);
  t.match(text, /proxy_set_header Upgrade \$http_upgrade;/, 'and passes WebSocket upgrades');
  t.notMatch(text, /^\s*(ip_hash|hash|sticky)\b/m, 'without sticky sessions');
  const published = lb ? containerPortsOf(lb[1]) : [];
  t.ok(published.some((p) => p.container === 3000), 'the balancer publishes the proxy port');
});

t.test('Dockerfile', async (t) => {
  t.ok(dockerfile.length >= 2, 'multi-stage: at least two FROMs');
  const stageNames = new Set(dockerfile.map((s) => s.name).filter(Boolean));
  const bases = dockerfile.map((s) => s.from).filter((f) => !stageNames.has(f));
  for (const base of bases) t.match(base, /^(docker\.io\/)?(library\/)?node:24([.-][A-Za-z0-9.-]+)?$/, `official Node 24 LTS base image by default: ${base}`);
  t.match(pkg.engines.node, /\^24\./, 'package.json engines cover the image\'s Node major (24)');
  t.equal(new Set(bases).size, 1, 'every stage uses the same base (native modules built in one run in the other)');

  const user = ops(finalStage, 'USER').at(-1)?.args;
  t.ok(user, 'the final stage sets USER');
  t.notMatch(user ?? 'root', /^(root|0)(:|$)/, `USER ${user} is not root`);

  const imageEnv = envOf(finalStage);
  t.equal(imageEnv['NODE_ENV'], 'production', 'NODE_ENV=production');
  t.same(Object.keys(imageEnv).filter((k) => k.startsWith('PROXY_') && !KNOWN_ENV.has(k)), [], 'every PROXY_* the image sets is a known setting');

  const exposed = ops(finalStage, 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => Number(p.replace(/\/(tcp|udp)$/, '')));
  const imagePort = Number(imageEnv['PROXY_PORT'] ?? DEFAULTS.port);
  const imageAdminPort = Number(imageEnv['PROXY_ADMIN_PORT'] ?? DEFAULTS.adminPort);
  t.ok(exposed.includes(DEFAULTS.port), `EXPOSE covers the default PROXY_PORT ${DEFAULTS.port}`);
  t.ok(exposed.includes(DEFAULTS.adminPort), `EXPOSE covers the default PROXY_ADMIN_PORT ${DEFAULTS.adminPort}`);
  t.ok(exposed.includes(imagePort) && exposed.includes(imageAdminPort), 'and the ports the image\'s ENV sets');

  const hc = healthcheckCommand(finalStage);
  t.ok(hc, 'HEALTHCHECK with a CMD');
  const probed = hc?.join(' ').match(/\/[A-Za-z0-9_.~\-/]*healthz\b/)?.[0];
  const prefix = proxyEnv['PROXY_INTERNAL_PREFIX'] ?? imageEnv['PROXY_INTERNAL_PREFIX'] ?? DEFAULTS.internalPrefix;
  t.equal(prefix, DEFAULTS.internalPrefix, 'neither the image nor compose moves the internal prefix');
  t.equal(probed, `${DEFAULTS.internalPrefix}/healthz`, 'the health check probes the path the proxy serves');
  t.match(hc?.join(' ') ?? '', /PROXY_PORT/, 'on the port PROXY_PORT names');

  const cmd = ops(finalStage, 'CMD').at(-1);
  t.ok(cmd, 'the final stage has a CMD');
  t.same(cmd ? commandWords(cmd.args) : [], START.split(/\s+/), `CMD is package.json's start script (${START})`);
  t.equal(ops(finalStage, 'ENTRYPOINT').length, 0, 'no ENTRYPOINT wraps it');

  // Every file the build copies from the context exists.
  for (const stage of dockerfile) {
    for (const copy of ops(stage, 'COPY').filter((c) => !/--from=/.test(c.args))) {
      const words = copy.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      for (const src of words.slice(0, -1)) t.ok(existsSync(join(ROOT, src)), `COPY source ${src} exists (line ${copy.line})`);
    }
  }
});

t.test('.dockerignore lets in what the build copies and keeps the rest out', async (t) => {
  const path = join(ROOT, '.dockerignore');
  t.ok(existsSync(path), '.dockerignore exists');
  const rules = (existsSync(path) ? readFileSync(path, 'utf8') : '').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => ({ exclude: !l.startsWith('!'), match: picomatch(l.replace(/^!/, '').replace(/^\/+|\/+$/g, ''), { dot: true }) }));
  // Docker: the last rule matching the path or one of its parent directories decides
  const ignored = (file: string) => {
    const parts = file.split('/');
    const paths = parts.map((_p, i) => parts.slice(0, i + 1).join('/'));
    let out = false;
    for (const rule of rules) if (paths.some((p) => rule.match(p))) out = rule.exclude;
    return out;
  };
  for (const stage of dockerfile) {
    for (const copy of ops(stage, 'COPY').filter((c) => !/--from=/.test(c.args))) {
      for (const src of copy.args.split(/\s+/).filter((w) => !w.startsWith('--')).slice(0, -1)) {
        t.notOk(ignored(posix.join(src, src === 'src' ? 'main.ts' : '')), `COPY source ${src} reaches the build (line ${copy.line})`);
      }
    }
  }
  for (const heavy of ['node_modules/fastify/package.json', 'dist/main.js', '.git/HEAD', 'test/container.test.ts', '.tap/x', 'test-artifacts/x.png', 'bench/run.js', 'docs/screenshots/x.png']) {
    t.ok(ignored(heavy), `${heavy} stays out of the build context`);
  }
});

t.test('README shows the same start command', async (t) => {
  const path = join(ROOT, 'README.md');
  t.ok(existsSync(path), 'README.md exists');
  const readme = existsSync(path) ? readFileSync(path, 'utf8') : '';
  t.ok(readme.includes(START), `README.md contains \`${START}\``);
});

t.test('the image start command runs with the compose environment: healthy, ready, clean SIGTERM', async (t) => {
  ensureBuilt();
  // the simulator, configured from the compose file's panopticon service, on a local free port
  const upstream = new URL(proxyEnv['PROXY_UPSTREAM']!);
  const simService = compose.services[upstream.hostname]!;
  const simOptions = simEnv.optionsFromEnv({ ...environmentOf(simService), SIM_HOST: '127.0.0.1', SIM_PORT: '0', SIM_PUBLIC_ORIGIN: undefined });
  const sim = await startSimulator({ ...simOptions, logger: false });
  t.teardown(() => sim.close());

  // the container's environment: the image's ENV, then compose's, then paths/hosts/ports made local
  const stateRoot = await mkdtemp(join(tmpdir(), 'stp-container-'));
  const local = (value: string): string => {
    const m = mountFor(proxyMounts, value);
    if (!m || !posix.isAbsolute(value)) return value;
    const rest = posix.relative(m.target, value);
    const hostDir = m.bind ? (isAbsolute(m.source) ? m.source : join(ROOT, m.source)) : join(stateRoot, m.source);
    return rest ? join(hostDir, rest) : hostDir;
  };
  const [port, adminPort] = [await freePort(), await freePort()];
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...envOf(finalStage), ...proxyEnv })) env[k] = local(v);
  Object.assign(env, {
    PROXY_UPSTREAM: sim.url,
    PROXY_HOST: '127.0.0.1',
    PROXY_PORT: String(port),
    PROXY_ADMIN_HOST: '127.0.0.1',
    PROXY_ADMIN_PORT: String(adminPort),
  });
  t.equal(env['PROXY_PROPERTIES'], join(ROOT, 'config', 'Panopticon.properties'), 'the properties come from the repo\'s config dir');
  t.equal(env['PROXY_STATE_DIR'], join(stateRoot, mountFor(proxyMounts, proxyEnv['PROXY_STATE_DIR']!)!.source), 'the state volume is a temp dir');

  const [node, ...args] = START.split(/\s+/);
  t.equal(node, 'node');
  t.same(args, ['dist/main.js']);
  const proxy = await startProxyProcess(t, env);
  t.equal(proxy.url, `http://127.0.0.1:${port}`);

  const hc = healthcheckCommand(finalStage)!;
  const hcArgv = hc[0] === 'node' ? [process.execPath, ...hc.slice(1)] : hc;
  const healthy = await runToEnd(hcArgv[0]!, hcArgv.slice(1), { env: childEnv(env), timeoutMs: 10_000 });
  t.equal(healthy.code, 0, `the HEALTHCHECK command passes${healthy.stderr ? `: ${healthy.stderr}` : ''}`);

  const ready = await request(`${proxy.adminUrl}/readyz`);
  t.equal(ready.statusCode, 200, '/readyz on the admin port');
  t.match(await ready.body.json(), { status: 'ready' });

  // the demo works as the compose comment says: log in through the proxy as alice
  const login = await request(`${proxy.url}/panopticon/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'username=alice&password=alice',
  });
  await login.body.dump();
  t.equal(login.statusCode, 302, 'login through the proxy');
  const cookie = ([] as string[]).concat(login.headers['set-cookie'] ?? []).map((c) => c.split(';', 1)[0]).join('; ');
  const me = await request(`${proxy.url}/panopticon/server/rest/server/myself`, { headers: { cookie } });
  await me.body.dump();
  t.equal(me.statusCode, 200, 'an API call with the new cookie');

  const exit = await proxy.stop(5000);
  t.same([exit.code, exit.signal], [0, null], 'SIGTERM: exit code 0');
  t.ok(exit.atMs - proxy.startedAtMs < 60_000);
  t.ok(proxy.logs.some((l) => l['event'] === 'shutdown' && l['signal'] === 'SIGTERM'), 'the shutdown was logged');
  t.ok(existsSync(join(env['PROXY_STATE_DIR']!, 'session-state.json')), 'the state was saved into the state volume');

  const down = await runToEnd(hcArgv[0]!, hcArgv.slice(1), { env: childEnv(env), timeoutMs: 10_000 });
  t.not(down.code, 0, 'the HEALTHCHECK command fails when nothing answers');
});

t.test('npm start without a build tells to run `npm run build`', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'stp-nobuild-'));
  await copyFile(join(ROOT, 'package.json'), join(dir, 'package.json'));
  t.notOk(existsSync(join(dir, 'dist', 'main.js')));
  const res = await runToEnd('npm', ['start', '--silent'], { cwd: dir, env: childEnv({ npm_config_update_notifier: 'false', npm_config_fund: 'false' }), timeoutMs: 30_000 });
  t.not(res.code, 0, 'exit status is not 0');
  t.match(res.stderr, /dist\/main\.js is missing/, 'says what is missing');
  t.match(res.stderr, /npm run build/, 'and what to run');
  t.notMatch(res.stderr, /Cannot find module/, 'the start script itself never ran');
});

t.test('configuration errors: exit code 2 and the variable named on stderr', async (t) => {
  ensureBuilt();
  const cases: Array<[string, Record<string, string>, string[], RegExp]> = [
    ['a port that is not a number', { PROXY_UPSTREAM: 'http://127.0.0.1:9', PROXY_PORT: 'abc' }, [], /PROXY_PORT/],
    ['no upstream', {}, [], /PROXY_UPSTREAM/],
    ['an unknown flag', { PROXY_UPSTREAM: 'http://127.0.0.1:9' }, ['--no-such-option', 'x'], /--no-such-option/],
  ];
  await Promise.all(cases.map(async ([what, env, argv, named]) => {
    const res = await withTimeout(runToEnd(process.execPath, [MAIN_JS, ...argv], { env: childEnv(env) }), 20_000, what);
    t.equal(res.code, 2, `${what}: exit code 2`);
    t.match(res.stderr, named, `${what}: stderr names it`);
    t.match(res.stderr, /configuration error/, `${what}: says it is a configuration error`);
  }));
});
