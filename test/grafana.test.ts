/**
 * deploy/grafana/session-timeout-proxy.json queries only metrics the proxy really exports: the
 * names (and the labels the queries filter or group by) are looked up at run time in the registry
 * that src/admin/metrics.ts builds, not in a copied list.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMetrics } from '../src/admin/metrics.js';
import { ROOT } from './helpers/process.js';

interface Target { expr: string }
interface Panel { title: string; targets?: Target[]; panels?: Panel[] }
const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana', 'session-timeout-proxy.json'), 'utf8')) as {
  panels: Panel[];
  templating: { list: Array<{ query?: string | { query: string } }> };
};

// the registry the proxy serves on /metrics, with Node's default process metrics as in production
const metrics = createMetrics({ usersTracked: () => 0, openSockets: () => 0, pendingLogouts: () => 0 }, { defaultMetrics: true });
const registry = metrics.registry;
/** labels Prometheus adds to every scraped series */
const TARGET_LABELS = new Set(['job', 'instance']);

const panels = (list: Panel[]): Panel[] => list.flatMap((p) => [p, ...panels(p.panels ?? [])]);
const queries: Array<{ where: string; expr: string }> = [
  ...panels(dashboard.panels).flatMap((p) => (p.targets ?? []).map((tg) => ({ where: `panel "${p.title}"`, expr: tg.expr }))),
  ...dashboard.templating.list.flatMap((v) => {
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    return q && /^label_values\(/.test(q) ? [{ where: 'a template variable', expr: q.replace(/^label_values\(([^,)]+).*$/, '$1') }] : [];
  }),
];

/** metric names in a PromQL expression, and the labels it filters on or groups by */
function parse(expr: string): { metrics: string[]; labels: string[] } {
  const labels: string[] = [];
  let rest = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{([^}]*)\}/g, (_m, inner: string) => {
      for (const m of inner.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) labels.push(m[1]!);
      return ' ';
    })
    .replace(/\b(?:by|without)\s*\(([^)]*)\)/g, (_m, inner: string) => {
      labels.push(...inner.split(',').map((s) => s.trim()).filter(Boolean));
      return ' ';
    })
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\$\w+/g, ' ');
  rest = rest.replace(/[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(/g, '('); // function calls
  const metrics = [...rest.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((m) => m[0]).filter((w) => !/^(and|or|unless|on|ignoring|group_left|group_right|bool|offset)$/.test(w));
  return { metrics, labels };
}

/** the registry metric behind a series name (histograms export _bucket, _sum and _count) */
function lookup(series: string) {
  const direct = registry.getSingleMetric(series);
  if (direct) return { metric: direct, extraLabels: [] as string[] };
  const m = /^(.*)_(bucket|sum|count)$/.exec(series);
  const base = m ? registry.getSingleMetric(m[1]!) : undefined;
  if (base && (base as unknown as { constructor: { name: string } }).constructor.name.match(/Histogram|Summary/)) {
    return { metric: base, extraLabels: m![2] === 'bucket' ? ['le'] : [] };
  }
  return undefined;
}

t.test('the dashboard has queries', async (t) => {
  t.ok(queries.length >= 10, `${queries.length} queries`);
  const all = queries.map((q) => q.expr).join('\n');
  for (const m of ['users_tracked', 'warnings_total', 'logouts_total', 'refused_stale_credentials_total', 'license_release_seconds_bucket']) {
    t.match(all, `session_timeout_proxy_${m}`, `it charts ${m}`);
  }
});

t.test('every metric a query names exists in the proxy\'s registry, with the labels used', async (t) => {
  for (const q of queries) {
    const { metrics: names, labels } = parse(q.expr);
    t.ok(names.length > 0, `${q.where}: names a metric (${q.expr})`);
    for (const name of names) {
      const found = lookup(name);
      t.ok(found, `${q.where}: ${name} is exported`);
      if (!found) continue;
      const known = new Set([...(found.metric as unknown as { labelNames: string[] }).labelNames, ...found.extraLabels, ...TARGET_LABELS]);
      for (const label of labels) t.ok(known.has(label), `${q.where}: ${name} has the label "${label}"`);
    }
  }
});

t.test('the check itself notices a metric that does not exist', async (t) => {
  t.notOk(lookup('session_timeout_proxy_no_such_thing_total'), 'unknown name');
  t.notOk(lookup('session_timeout_proxy_users_tracked_bucket'), 'a gauge has no buckets');
  t.same(parse('sum by (outcome) (increase(x_total{job=~"a",mode="b"}[5m]))'), { metrics: ['x_total'], labels: ['job', 'mode', 'outcome'] });
});
