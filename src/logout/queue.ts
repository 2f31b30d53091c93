/**
 * Upstream logouts that must happen, one job per credential. A job leaves the queue only when
 * the upstream confirmed the credential is gone (released / already gone) or after `giveUpMs`
 * of retrying; failures are retried with exponential backoff and jitter. At most `concurrency`
 * calls are in flight, so one user's hanging logout cannot hold up everyone else's.
 */
import type { Clock, TimerHandle } from '../sessions/clock.js';
import { MAX_TIMER_DELAY_MS } from '../sessions/clock.js';
import { TimeHeap } from '../sessions/heap.js';

/** `candidate` names the logout endpoint that answered (`POST /path`), for the audit line. */
export type AttemptOutcome =
  | { readonly kind: 'released' | 'already-gone'; readonly status: number; readonly candidate?: string }
  | { readonly kind: 'retry'; readonly reason: string; readonly status?: number | undefined; readonly candidate?: string };

export type FinalOutcome = 'released' | 'already-gone' | 'failed';

export interface LogoutJob {
  readonly user: string;
  readonly fingerprint: string;
  readonly kind: string;
  /** SECRET: headers replaying the credential */
  readonly replay: Readonly<Record<string, string>>;
  /** SECRET: the freshest CSRF token the credential came with (replayed as cookie and header) */
  readonly csrf?: string | undefined;
  readonly reason: string;
  readonly enqueuedAtMs: number;
  attempts: number;
  nextAttemptAtMs: number;
  lastError: string | undefined;
}

export type LogoutRequest = Pick<LogoutJob, 'user' | 'fingerprint' | 'kind' | 'replay' | 'reason' | 'csrf'>;

export interface LogoutQueueOptions {
  clock: Clock;
  concurrency: number;
  retryMinMs: number;
  retryMaxMs: number;
  giveUpMs: number;
  /** one upstream call; must not throw (a throw is treated as a retryable failure) */
  attempt(job: LogoutJob): Promise<AttemptOutcome>;
  /** called once per job when it leaves the queue, with the last attempt's outcome */
  onDone?(job: LogoutJob, outcome: FinalOutcome, durationMs: number, last: AttemptOutcome): void;
  /** called after each failed attempt that will be retried */
  onRetry?(job: LogoutJob, outcome: AttemptOutcome, delayMs: number): void;
  /** 0..1, injectable for tests */
  random?: () => number;
}

export class LogoutQueue {
  readonly #opts: LogoutQueueOptions;
  readonly #random: () => number;
  /** every job not finished yet, by fingerprint (waiting, ready or in flight) */
  readonly #jobs = new Map<string, LogoutJob>();
  readonly #waiting = new TimeHeap<LogoutJob>();
  readonly #ready: LogoutJob[] = [];
  #readyHead = 0;
  #inFlight = 0;
  #timer: TimerHandle | undefined;
  #timerAtMs: number | undefined;
  #closed = false;
  #idleWaiters: Array<() => void> = [];

  constructor(opts: LogoutQueueOptions) {
    this.#opts = opts;
    this.#random = opts.random ?? Math.random;
  }

  /** Queues a logout for a credential; a credential already queued is not queued twice. */
  enqueue(request: LogoutRequest): boolean {
    if (this.#jobs.has(request.fingerprint)) return false;
    const nowMs = this.#opts.clock.now();
    const job: LogoutJob = { ...request, enqueuedAtMs: nowMs, attempts: 0, nextAttemptAtMs: nowMs, lastError: undefined };
    this.#jobs.set(job.fingerprint, job);
    this.#ready.push(job);
    this.#pump();
    return true;
  }

  /** Jobs as they stand, for saving across restarts. */
  pending(): LogoutJob[] {
    return [...this.#jobs.values()].map((j) => ({ ...j }));
  }

  /** Puts saved jobs back; each is tried again at once. */
  restore(jobs: readonly LogoutJob[]): void {
    const nowMs = this.#opts.clock.now();
    for (const saved of jobs) {
      if (this.#jobs.has(saved.fingerprint)) continue;
      const job: LogoutJob = { ...saved, nextAttemptAtMs: nowMs };
      this.#jobs.set(job.fingerprint, job);
      this.#ready.push(job);
    }
    this.#pump();
  }

  /**
   * Drops a job without an outcome (another replica took it over); an attempt already in flight
   * finishes, but its result is not reported and the job is not retried.
   */
  forget(fingerprint: string): boolean {
    const deleted = this.#jobs.delete(fingerprint);
    if (deleted && this.#jobs.size === 0) this.#wakeIdleWaiters();
    return deleted;
  }

  has(fingerprint: string): boolean {
    return this.#jobs.has(fingerprint);
  }

  get size(): number {
    return this.#jobs.size;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Resolves when no job is left (tests, shutdown). */
  whenIdle(): Promise<void> {
    if (this.#jobs.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) this.#opts.clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  #pump(): void {
    if (this.#closed) return;
    const { concurrency } = this.#opts;
    while (this.#inFlight < concurrency && this.#readyHead < this.#ready.length) {
      const job = this.#ready[this.#readyHead++]!;
      void this.#run(job);
    }
    if (this.#readyHead > 1024 && this.#readyHead * 2 > this.#ready.length) {
      this.#ready.splice(0, this.#readyHead);
      this.#readyHead = 0;
    }
    this.#armRetryTimer();
  }

  async #run(job: LogoutJob): Promise<void> {
    this.#inFlight++;
    job.attempts++;
    let outcome: AttemptOutcome;
    try {
      outcome = await this.#opts.attempt(job);
    } catch (err) {
      outcome = { kind: 'retry', reason: (err as Error)?.message ?? String(err) };
    }
    this.#inFlight--;
    if (this.#jobs.get(job.fingerprint) !== job) {
      this.#pump(); // forgotten meanwhile
      return;
    }
    const nowMs = this.#opts.clock.now();
    if (outcome.kind === 'retry') {
      job.lastError = outcome.reason;
      if (nowMs - job.enqueuedAtMs >= this.#opts.giveUpMs) {
        this.#finish(job, 'failed', nowMs, outcome);
      } else {
        const delayMs = this.#backoffMs(job.attempts);
        job.nextAttemptAtMs = nowMs + delayMs;
        this.#waiting.push(job.nextAttemptAtMs, job);
        this.#safe(() => this.#opts.onRetry?.(job, outcome, delayMs));
      }
    } else {
      this.#finish(job, outcome.kind, nowMs, outcome);
    }
    this.#pump();
  }

  #finish(job: LogoutJob, outcome: FinalOutcome, nowMs: number, last: AttemptOutcome): void {
    this.#jobs.delete(job.fingerprint);
    this.#safe(() => this.#opts.onDone?.(job, outcome, nowMs - job.enqueuedAtMs, last));
    if (this.#jobs.size === 0) this.#wakeIdleWaiters();
  }

  #wakeIdleWaiters(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Exponential backoff with "equal jitter": half the step is fixed, half random. */
  #backoffMs(attempts: number): number {
    const { retryMinMs, retryMaxMs } = this.#opts;
    const stepMs = Math.min(retryMaxMs, retryMinMs * 2 ** Math.min(attempts - 1, 30));
    return Math.round(stepMs / 2 + (this.#random() * stepMs) / 2);
  }

  #armRetryTimer(): void {
    const nextMs = this.#waiting.peekAtMs();
    if (nextMs === this.#timerAtMs) return;
    if (this.#timer) this.#opts.clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAtMs = nextMs;
    if (nextMs === undefined || this.#closed) return;
    const delayMs = Math.min(Math.max(0, nextMs - this.#opts.clock.now()), MAX_TIMER_DELAY_MS);
    this.#timer = this.#opts.clock.setTimer(() => this.#onRetryTimer(), delayMs);
  }

  #onRetryTimer(): void {
    this.#timer = undefined;
    this.#timerAtMs = undefined;
    const nowMs = this.#opts.clock.now();
    for (;;) {
      const atMs = this.#waiting.peekAtMs();
      if (atMs === undefined || atMs > nowMs) break;
      const { key: job } = this.#waiting.pop()!;
      if (this.#jobs.get(job.fingerprint) === job) this.#ready.push(job);
    }
    this.#pump();
  }

  #safe(fn: () => void): void {
    try {
      fn();
    } catch {
      // observers must not break the queue
    }
  }
}
