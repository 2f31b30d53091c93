/**
 * deploy/kubernetes/ is read and checked against the code (settings, ports, paths, probes, mounts,
 * secrets), and then the proxy is run for real with the Deployment's environment — container
 * paths mapped to local ones laid out as the kubelet lays out a ConfigMap volume — to see that the
 * probes answer and that a ConfigMap update (the kubelet's symlink swap) is applied.
 */
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { request } from 'undici';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { KNOWN_ENV, loadDeploymentConfig, type DeploymentConfig } from '../src/config/deployment.js';
import { parseTimeoutProperties } from '../src/properties/parse.js';
import { startSimulator } from '../src/simulator/server.js';
import { freePort, ROOT, startProxyProcess } from './helpers/process.js';

const DIR = join(ROOT, 'deploy', 'kubernetes');

// ---------------------------------------------------------------------------------------------
// the manifests (only the fields the checks read)

interface EnvVar { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }
interface Port { name?: string; containerPort: number }
interface VolumeMount { name: string; mountPath: string; readOnly?: boolean; subPath?: string }
interface Probe { httpGet?: { path: string; port: string | number } }
interface Container {
  name: string;
  image: string;
  ports?: Port[];
  env?: EnvVar[];
  volumeMounts?: VolumeMount[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
  resources?: { requests?: { cpu?: string; memory?: string } };
}
interface Volume {
  name: string;
  configMap?: { name: string };
  secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
  persistentVolumeClaim?: { claimName: string };
  emptyDir?: unknown;
}
interface Manifest {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: {
    selector?: { matchLabels?: Record<string, string> } | Record<string, string>;
    ports?: Array<{ port: number; targetPort: string | number }>;
    template?: { metadata: { labels: Record<string, string> }; spec: { containers: Container[]; volumes?: Volume[]; terminationGracePeriodSeconds?: number } };
  };
}

const kustomization = parseYaml(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
const manifests: Manifest[] = kustomization.resources.flatMap((file) =>
  parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((d) => d.toJS() as Manifest),
);
const one = (kind: string): Manifest => {
  const found = manifests.filter((m) => m.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0]!;
};
const deployment = one('Deployment');
const service = one('Service');
const pod = deployment.spec!.template!;
const proxyContainer = pod.spec.containers.find((c) => c.env?.some((e) => e.name === 'PROXY_UPSTREAM'))!;
const serverContainer = pod.spec.containers.find((c) => c !== proxyContainer)!;
const volumes = new Map((pod.spec.volumes ?? []).map((v) => [v.name, v]));
const secretData = (name: string): Record<string, string> => {
  const s = manifests.find((m) => m.kind === 'Secret' && m.metadata.name === name);
  return { ...(s?.stringData ?? {}), ...Object.fromEntries(Object.entries(s?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()])) };
};

/** the proxy container's environment, secrets resolved from the Secret manifest */
const proxyEnv: Record<string, string> = Object.fromEntries(
  (proxyContainer?.env ?? []).map((e) => {
    const ref = e.valueFrom?.secretKeyRef;
    return [e.name, ref ? secretData(ref.name)[ref.key] ?? '' : e.value ?? ''];
  }),
);
const config: DeploymentConfig = loadDeploymentConfig(proxyEnv);

const portOf = (c: Container, port: string | number): number | undefined =>
  typeof port === 'number' ? port : c.ports?.find((p) => p.name === port)?.containerPort;

/** the volume mount a container path lies in (the longest matching mountPath) */
function mountFor(c: Container, path: string): VolumeMount | undefined {
  return (c.volumeMounts ?? [])
    .filter((m) => path === m.mountPath || path.startsWith(m.mountPath.replace(/\/+$/, '') + '/'))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
}

// ---------------------------------------------------------------------------------------------

t.test('kustomization lists every manifest in the folder', async (t) => {
  const files = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml').sort();
  t.same([...kustomization.resources].sort(), files);
  t.same(manifests.map((m) => m.kind).sort(), ['ConfigMap', 'Deployment', 'PersistentVolumeClaim', 'Secret', 'Service']);
});

t.test('the pod: the Panopticon server and the proxy as a sidecar', async (t) => {
  t.equal(pod.spec.containers.length, 2, 'two containers in one pod');
  t.ok(proxyContainer, 'a container with PROXY_UPSTREAM is the proxy');
  t.match(proxyContainer.image, /session-timeout-proxy/, 'the proxy image');
  const labels = pod.metadata.labels;
  const selector = (deployment.spec!.selector as { matchLabels: Record<string, string> }).matchLabels;
  for (const [k, v] of Object.entries(selector)) t.equal(labels[k], v, `the Deployment selects its pods (${k})`);
});

t.test('the proxy environment: known settings, valid, upstream in the same pod', async (t) => {
  const names = (proxyContainer.env ?? []).map((e) => e.name);
  t.same(names.filter((n) => !KNOWN_ENV.has(n)), [], 'every variable is a setting in src/config/deployment.ts');
  t.equal(new Set(names).size, names.length, 'no variable set twice');
  t.ok(['127.0.0.1', 'localhost'].includes(config.upstream.hostname), 'the upstream is localhost (same pod)');
  t.ok(serverContainer.ports?.some((p) => p.containerPort === Number(config.upstream.port)), `the upstream port ${config.upstream.port} is the server container's port`);
  t.equal(config.contextPath, '/panopticon');
  t.equal(config.host, '0.0.0.0', 'the proxy listens on the pod address');
  t.equal(portOf(proxyContainer, 'proxy'), config.port, 'containerPort "proxy" is PROXY_PORT');
  t.equal(portOf(proxyContainer, 'admin'), config.adminPort, 'containerPort "admin" is PROXY_ADMIN_PORT');
  t.ok(config.adminToken && config.adminToken.length >= 16, 'an admin token (the admin listener is not loopback-only)');
  const adminRef = proxyContainer.env!.find((e) => e.name === 'PROXY_ADMIN_TOKEN')!.valueFrom?.secretKeyRef;
  t.ok(adminRef, 'PROXY_ADMIN_TOKEN comes from a Secret, not a literal');
  t.equal(proxyContainer.env!.find((e) => e.name === 'PROXY_TOKEN_SECRET'), undefined, 'the token secret is not put in the environment');
});

t.test('the Service sends browsers to the proxy only', async (t) => {
  const selector = service.spec!.selector as Record<string, string>;
  for (const [k, v] of Object.entries(selector)) t.equal(pod.metadata.labels[k], v, `selector ${k}=${v} matches the pods`);
  for (const p of service.spec!.ports!) {
    t.equal(portOf(proxyContainer, p.targetPort), config.port, `service port ${p.port} targets the proxy's port`);
    t.notOk(serverContainer.ports?.some((sp) => sp.containerPort === portOf(proxyContainer, p.targetPort) || sp.name === p.targetPort), 'and never the server');
  }
});

t.test('probes ask the proxy\'s own health endpoints', async (t) => {
  const want = { startupProbe: 'healthz', livenessProbe: 'healthz', readinessProbe: 'readyz' } as const;
  for (const [probe, what] of Object.entries(want)) {
    const get = proxyContainer[probe as keyof typeof want]?.httpGet;
    t.ok(get, `${probe} is an HTTP GET`);
    const port = get && portOf(proxyContainer, get.port);
    const path = port === config.adminPort ? `/${what}` : `${config.internalPrefix}/${what}`;
    t.ok(port === config.port || port === config.adminPort, `${probe} on a port the proxy listens on`);
    t.equal(get?.path, path, `${probe} path`);
  }
});

t.test('Panopticon.properties: one ConfigMap, mounted as a directory into both containers', async (t) => {
  const mount = mountFor(proxyContainer, config.propertiesPath);
  t.ok(mount, `PROXY_PROPERTIES ${config.propertiesPath} lies in a volume mount`);
  t.equal(mount?.mountPath, posix.dirname(config.propertiesPath), 'the mount is the file\'s directory');
  t.equal(mount?.subPath, undefined, 'no subPath (a subPath mount never sees ConfigMap updates)');
  const volume = volumes.get(mount?.name ?? '');
  t.ok(volume?.configMap, 'from a ConfigMap');
  const cm = manifests.find((m) => m.kind === 'ConfigMap' && m.metadata.name === volume?.configMap?.name);
  const text = cm?.data?.[posix.basename(config.propertiesPath)];
  t.ok(text, `the ConfigMap has the key ${posix.basename(config.propertiesPath)}`);
  const parsed = parseTimeoutProperties(text ?? '');
  t.ok(parsed.ok, 'its timeout keys are valid');
  const serverMount = serverContainer.volumeMounts?.find((m) => m.name === mount?.name);
  t.ok(serverMount, 'the server mounts the same ConfigMap');
  t.equal(serverMount?.subPath, undefined, 'as a directory too');
});

t.test('secrets, state, read-only root, non-root, resources', async (t) => {
  const tokenMount = mountFor(proxyContainer, config.tokenSecretFile ?? '/nowhere');
  const tokenVolume = volumes.get(tokenMount?.name ?? '');
  t.ok(tokenVolume?.secret, 'PROXY_TOKEN_SECRET_FILE lies in a Secret volume');
  const item = tokenVolume?.secret?.items?.find((i) => posix.join(tokenMount!.mountPath, i.path) === config.tokenSecretFile);
  t.ok(item && secretData(tokenVolume!.secret!.secretName)[item.key], 'the file is a key of the Secret');

  const stateMount = mountFor(proxyContainer, config.stateDir ?? '/nowhere');
  t.ok(stateMount && !stateMount.readOnly, 'PROXY_STATE_DIR is on a writable mount');
  const claim = volumes.get(stateMount?.name ?? '')?.persistentVolumeClaim?.claimName;
  t.ok(manifests.some((m) => m.kind === 'PersistentVolumeClaim' && m.metadata.name === claim), 'a PersistentVolumeClaim (state survives a rescheduled pod)');
  t.ok(mountFor(proxyContainer, '/tmp'), '/tmp is writable with a read-only root');

  const sc = proxyContainer.securityContext ?? {};
  t.equal(sc.readOnlyRootFilesystem, true, 'readOnlyRootFilesystem');
  t.equal(sc.runAsNonRoot, true, 'runAsNonRoot');
  t.not(sc.runAsUser, 0, 'not uid 0');
  t.equal(sc.allowPrivilegeEscalation, false, 'no privilege escalation');
  for (const c of pod.spec.containers) t.ok(c.resources?.requests?.cpu && c.resources.requests.memory, `${c.name}: cpu and memory requests`);
  t.ok((pod.spec.terminationGracePeriodSeconds ?? 30) * 1000 > config.shutdownGraceMs + 5000, 'the grace period outlasts PROXY_SHUTDOWN_GRACE_MS plus the state save');
});

t.test('the proxy runs with the Deployment environment: probes answer, a ConfigMap update applies', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'stp-k8s-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  // the kubelet's ConfigMap layout: Panopticon.properties -> ..data/Panopticon.properties, ..data -> ..<stamp>/
  const configDir = join(root, 'config');
  const cmName = volumes.get(mountFor(proxyContainer, config.propertiesPath)!.name)!.configMap!.name;
  const cmText = manifests.find((m) => m.kind === 'ConfigMap' && m.metadata.name === cmName)!.data!['Panopticon.properties']!;
  const publish = async (stamp: string, text: string) => {
    await mkdir(join(configDir, stamp), { recursive: true });
    await writeFile(join(configDir, stamp, 'Panopticon.properties'), text);
    await symlink(stamp, join(configDir, '..data_tmp'));
    await rename(join(configDir, '..data_tmp'), join(configDir, '..data'));
  };
  await publish('..2026_01_01_00_00_00.1', cmText);
  await symlink('..data/Panopticon.properties', join(configDir, 'Panopticon.properties'));
  const secretsDir = join(root, 'secrets');
  await mkdir(secretsDir);
  const tokenSecret = secretData('session-timeout-proxy')['token-secret']!;
  await writeFile(join(secretsDir, 'token-secret'), tokenSecret, { mode: 0o400 });
  await mkdir(join(root, 'data'));

  const sim = await startSimulator({ host: '127.0.0.1', port: 0, contextPath: config.contextPath, tokenSecret, logger: false });
  t.teardown(() => sim.close());
  const [port, adminPort] = [await freePort(), await freePort()];
  const local = (p: string) => (p.startsWith('/config/') || p.startsWith('/secrets/') || p === '/data' ? join(root, p) : p);
  const env = Object.fromEntries(Object.entries(proxyEnv).map(([k, v]) => [k, local(v)]));
  Object.assign(env, { PROXY_UPSTREAM: sim.url, PROXY_HOST: '127.0.0.1', PROXY_PORT: String(port), PROXY_ADMIN_HOST: '127.0.0.1', PROXY_ADMIN_PORT: String(adminPort), PROXY_LOG_LEVEL: 'debug' });
  t.ok(existsSync(env['PROXY_PROPERTIES']!) && existsSync(env['PROXY_TOKEN_SECRET_FILE']!), 'the manifest paths map onto the local layout');
  const proxy = await startProxyProcess(t, env);

  for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe'] as const) {
    const get = proxyContainer[probe]!.httpGet!;
    const base = portOf(proxyContainer, get.port) === config.adminPort ? proxy.adminUrl : proxy.url;
    const res = await request(`${base}${get.path}`);
    await res.body.dump();
    t.equal(res.statusCode, 200, `${probe} ${get.path} answers 200`);
  }

  const before = parseTimeoutProperties(cmText);
  const minutes = before.ok ? before.settings.timeoutMinutes + 1 : 31;
  await publish('..2026_01_01_00_05_00.2', cmText.replace(/^timeout\.session\.minutes=.*$/m, `timeout.session.minutes=${minutes}`));
  const changed = await proxy.waitForLog((l) => l['event'] === 'settings-changed', 10_000, 'settings-changed after the ConfigMap swap');
  t.match(JSON.stringify(changed['changes']), new RegExp(`"timeout.session.minutes"[^}]*${minutes}`), `the new timeout (${minutes} min) is applied`);

  const exit = await proxy.stop(15_000);
  t.same([exit.code, exit.signal], [0, null], 'SIGTERM: exit code 0');
});
