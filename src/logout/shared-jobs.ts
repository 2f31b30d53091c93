/**
 * Upstream logouts that survive the replica doing them. Each job is written to Redis (sealed: it
 * holds the credential) with a lease naming the replica that works on it. The holder renews the
 * lease while it retries; a lease that is not renewed runs out, and another replica takes the job
 * over (keeping when the job began, for the give-up time) — within PROXY_LOGOUT_LEASE_MS of the holder stopping.
 * A job that ended (released, already gone, given up) is deleted by its holder, so a taken-over
 * job is never done again after it succeeded.
 *
 * Lease timing, with L = the lease setting: the lease lasts 2/3·L and is renewed every L/4; every
 * L/4 each replica also looks for jobs whose lease ran out. A holder that dies right after renewing
 * is replaced after at most 2/3·L + L/4 < L.
 */
import type pino from 'pino';
import type { RedisLink } from '../sessions/redis-link.js';
import { withScripts, type ScriptedClient } from '../sessions/redis-scripts.js';
import type { SecretBox } from '../sessions/secret-box.js';
import type { LogoutJob, LogoutQueue, LogoutRequest } from './queue.js';

export interface SharedLogoutsOptions {
  link: RedisLink;
  box: SecretBox;
  queue: LogoutQueue;
  leaseMs: number;
  logger: pino.Logger;
  nowMs(): number;
}

export class SharedLogouts {
  readonly #opts: SharedLogoutsOptions;
  readonly #redis: ScriptedClient;
  readonly #ttlMs: number;
  /** fingerprints of jobs whose end could not be written yet */
  readonly #finishPending = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;
  takenOver = 0;

  constructor(opts: SharedLogoutsOptions) {
    this.#opts = opts;
    this.#redis = withScripts(opts.link.cmd);
    this.#ttlMs = Math.max(100, Math.round((opts.leaseMs * 2) / 3));
    opts.link.onUp(async ({ emptied }) => {
      // re-seed: every job this replica holds goes back with its lease
      if (emptied) for (const job of opts.queue.pending()) await this.#write(job);
      await this.#writeFinished();
    });
    this.#timer = setInterval(() => void this.#tick(), Math.max(50, Math.round(opts.leaseMs / 4)));
    this.#timer.unref();
  }

  /** Queues a logout here and records it in Redis with this replica's lease. */
  enqueue(request: LogoutRequest): boolean {
    if (!this.#opts.queue.enqueue(request)) return false;
    const nowMs = this.#opts.nowMs();
    void this.#write({ ...request, enqueuedAtMs: nowMs, attempts: 0, nextAttemptAtMs: nowMs, lastError: undefined });
    return true;
  }

  /** The queue finished a job (any outcome): it leaves Redis. */
  finished(job: LogoutJob): void {
    this.#finishPending.add(job.fingerprint);
    void this.#writeFinished();
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #keys(fingerprint: string) {
    const tag = `{${fingerprint}}`;
    return { job: this.#opts.link.key('job', tag), lease: this.#opts.link.key('lease', tag), all: this.#opts.link.key('jobs') };
  }

  async #write(job: LogoutJob): Promise<void> {
    if (!this.#opts.link.up) return;
    const k = this.#keys(job.fingerprint);
    const stored: LogoutJob = { ...job };
    await Promise.all([
      this.#redis.set(k.job, this.#opts.box.sealJson(stored)),
      this.#redis.set(k.lease, this.#opts.link.replicaId, 'PX', this.#ttlMs),
      this.#redis.zadd(k.all, job.enqueuedAtMs, job.fingerprint),
    ]).catch(() => undefined);
  }

  async #writeFinished(): Promise<void> {
    if (!this.#opts.link.up) return;
    for (const fp of [...this.#finishPending]) {
      const k = this.#keys(fp);
      try {
        const deleted = await this.#redis.stpFinish(k.lease, k.job, this.#opts.link.replicaId);
        if (deleted) await this.#redis.zrem(k.all, fp);
        this.#finishPending.delete(fp);
      } catch {
        return;
      }
    }
  }

  async #tick(): Promise<void> {
    if (this.#ticking || !this.#opts.link.up) return;
    this.#ticking = true;
    try {
      await this.#renew();
      await this.#takeOver();
    } catch (err) {
      this.#opts.logger.debug({ err }, 'logout lease round failed');
    } finally {
      this.#ticking = false;
    }
  }

  async #renew(): Promise<void> {
    const me = this.#opts.link.replicaId;
    for (const job of this.#opts.queue.pending()) {
      const k = this.#keys(job.fingerprint);
      if (await this.#redis.stpRenew(k.lease, me, String(this.#ttlMs))) continue;
      // not ours any more: take it back if nobody holds it, else leave it to the holder
      if ((await this.#redis.set(k.lease, me, 'PX', this.#ttlMs, 'NX')) === 'OK') continue;
      this.#opts.queue.forget(job.fingerprint);
      this.#opts.logger.warn({ event: 'logout-lease-lost', user: job.user, credential: job.kind }, 'another replica took over this logout');
    }
  }

  async #takeOver(): Promise<void> {
    const me = this.#opts.link.replicaId;
    const fingerprints = await this.#redis.zrange(this.#keys('').all, 0, -1);
    for (const fp of fingerprints) {
      if (this.#opts.queue.has(fp) || this.#finishPending.has(fp)) continue;
      const k = this.#keys(fp);
      if ((await this.#redis.set(k.lease, me, 'PX', this.#ttlMs, 'NX')) !== 'OK') continue;
      const sealed = await this.#redis.get(k.job);
      if (!sealed) {
        // finished meanwhile
        await this.#redis.del(k.lease);
        await this.#redis.zrem(k.all, fp);
        continue;
      }
      let job: LogoutJob;
      try {
        job = this.#opts.box.openJson<LogoutJob>(sealed);
      } catch (err) {
        this.#opts.logger.error({ event: 'logout-job-unreadable', error: (err as Error).message }, 'a shared logout job does not open with this replica\'s PROXY_STATE_KEY (every replica needs the same key)');
        await this.#redis.del(k.lease);
        continue;
      }
      this.#opts.queue.restore([job]);
      this.takenOver++;
      this.#opts.logger.info({ event: 'logout-takeover', user: job.user, credential: job.kind, attempts: job.attempts, replica: me }, 'took over a logout whose replica stopped renewing it');
    }
  }
}
