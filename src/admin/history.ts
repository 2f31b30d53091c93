/**
 * The last 24 hours of this replica for the admin page's chart, kept in memory: per 10-minute
 * bucket the most users tracked, warnings, logouts by outcome and refused logged-out credentials.
 *
 * It is filled by sampling the Prometheus counters (src/admin/metrics.ts) and keeping the
 * differences, so whatever increments a counter shows up here without a second hook, and a new
 * label value (such as a new logout outcome) needs no change. A sample is taken every minute and
 * whenever the page asks, so the chart is current to the second.
 */
import type { FastifyInstance } from 'fastify';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { ProxyMetrics } from './metrics.js';

/** the logout outcomes the chart shows, in stacking order */
export const CHART_OUTCOMES = ['released', 'unverified', 'failed'] as const;
export type ChartOutcome = (typeof CHART_OUTCOMES)[number];

export const HISTORY_BUCKET_MS = 10 * 60_000;
export const HISTORY_SPAN_MS = 24 * 3_600_000;
export const HISTORY_SAMPLE_MS = 60_000;

export interface HistoryBucket {
  startMs: number;
  /** highest number of users tracked seen in the bucket */
  usersTracked: number;
  warnings: number;
  logouts: Record<ChartOutcome, number>;
  refused: number;
}

export interface HistoryView {
  bucketMs: number;
  fromMs: number;
  toMs: number;
  outcomes: readonly ChartOutcome[];
  /** buckets with a sample, oldest first (gaps: the proxy was not running or nothing sampled) */
  buckets: HistoryBucket[];
}

interface Totals { warnings: number; logouts: Record<ChartOutcome, number>; refused: number }

type Labels = Partial<Record<string, string | number>>;
interface Valued { get(): Promise<MetricObjectWithValues<MetricValue<string>>> }

async function sum(metric: Valued, where: (labels: Labels) => boolean = () => true): Promise<number> {
  const { values } = await metric.get();
  return values.reduce((n, v) => (where(v.labels) ? n + v.value : n), 0);
}

const emptyOutcomes = (): Record<ChartOutcome, number> => ({ released: 0, unverified: 0, failed: 0 });

export class ActivityHistory {
  readonly #metrics: ProxyMetrics;
  readonly #nowMs: () => number;
  readonly #bucketMs: number;
  readonly #slots: Array<HistoryBucket | undefined>;
  #last: Totals = { warnings: 0, logouts: emptyOutcomes(), refused: 0 };
  #chain: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: { metrics: ProxyMetrics; nowMs: () => number; bucketMs?: number; spanMs?: number }) {
    this.#metrics = opts.metrics;
    this.#nowMs = opts.nowMs;
    this.#bucketMs = opts.bucketMs ?? HISTORY_BUCKET_MS;
    this.#slots = new Array<HistoryBucket | undefined>(Math.ceil((opts.spanMs ?? HISTORY_SPAN_MS) / this.#bucketMs));
  }

  /** samples every `sampleMs` (real time) until stop() */
  start(sampleMs = HISTORY_SAMPLE_MS): void {
    this.#timer ??= setInterval(() => void this.sample().catch(() => undefined), sampleMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Reads the counters now and adds what changed since the last sample to the current bucket. */
  sample(): Promise<void> {
    const atMs = this.#nowMs();
    this.#chain = this.#chain.then(() => this.#sampleAt(atMs));
    return this.#chain;
  }

  async #sampleAt(atMs: number): Promise<void> {
    const m = this.#metrics;
    const users = await sum(m.usersTracked);
    const now: Totals = {
      warnings: await sum(m.warningsSent),
      logouts: emptyOutcomes(),
      refused: await sum(m.refusedStale),
    };
    for (const outcome of CHART_OUTCOMES) now.logouts[outcome] = await sum(m.logouts, (l) => l['outcome'] === outcome);

    const b = this.#bucketAt(atMs);
    b.usersTracked = Math.max(b.usersTracked, users);
    b.warnings += Math.max(0, now.warnings - this.#last.warnings);
    b.refused += Math.max(0, now.refused - this.#last.refused);
    for (const outcome of CHART_OUTCOMES) b.logouts[outcome] += Math.max(0, now.logouts[outcome] - this.#last.logouts[outcome]);
    this.#last = now;
  }

  #bucketAt(atMs: number): HistoryBucket {
    const index = Math.floor(atMs / this.#bucketMs);
    const slot = ((index % this.#slots.length) + this.#slots.length) % this.#slots.length;
    const startMs = index * this.#bucketMs;
    let b = this.#slots[slot];
    if (b?.startMs !== startMs) {
      b = { startMs, usersTracked: 0, warnings: 0, logouts: emptyOutcomes(), refused: 0 };
      this.#slots[slot] = b;
    }
    return b;
  }

  /** The last 24 hours up to `nowMs`. */
  view(nowMs = this.#nowMs()): HistoryView {
    const toMs = (Math.floor(nowMs / this.#bucketMs) + 1) * this.#bucketMs;
    const fromMs = toMs - this.#slots.length * this.#bucketMs;
    const buckets = this.#slots
      .filter((b): b is HistoryBucket => b !== undefined && b.startMs >= fromMs && b.startMs < toMs)
      .sort((a, b) => a.startMs - b.startMs)
      .map((b) => ({ ...b, logouts: { ...b.logouts } }));
    return { bucketMs: this.#bucketMs, fromMs, toMs, outcomes: CHART_OUTCOMES, buckets };
  }
}

/** `GET /admin/history`: a fresh sample, then the last 24 hours. Sampling stops when the app closes. */
export function registerHistoryRoute(app: FastifyInstance, history: ActivityHistory): void {
  history.start();
  app.addHook('onClose', async () => history.stop());
  app.get('/admin/history', async () => {
    await history.sample();
    return history.view();
  });
}
