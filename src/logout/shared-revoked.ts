/**
 * Refused (logged-out) credentials shared by every replica: a refusal decided on one replica is
 * written to one Redis hash (`<prefix>revoked`, fingerprint → user and end time; fingerprints are
 * hashes, never secrets) and announced, so every replica refuses it at once. Lifted refusals
 * (a Basic user signing in again) are shared the same way. Redis unreachable: the changes wait
 * and are written when it is back; then the hash is read back.
 */
import type { Clock } from '../sessions/clock.js';
import type { BusMessage, RedisLink } from '../sessions/redis-link.js';
import type { RevokedCredentials, RevokedEntry } from './revoked.js';

export interface SharedRevocationsOptions {
  link: RedisLink;
  revoked: RevokedCredentials;
  clock: Clock;
  /** drops cached identity answers for a credential refused elsewhere */
  forgetCredential(fingerprint: string): void;
}

export class SharedRevocations {
  readonly #opts: SharedRevocationsOptions;
  readonly #key: string;
  /** changes not written yet: fingerprint → entry, or null for "lifted" */
  readonly #pending = new Map<string, RevokedEntry | null>();

  constructor(opts: SharedRevocationsOptions) {
    this.#opts = opts;
    this.#key = opts.link.key('revoked');
    opts.revoked.observe({
      added: (entry) => this.#change(entry.fingerprint, entry),
      deleted: (fingerprint) => this.#change(fingerprint, null),
    });
    opts.link.onMessage((msg) => this.#onMessage(msg));
    opts.link.onUp(async ({ emptied }) => {
      if (emptied) for (const e of opts.revoked.entries()) this.#pending.set(e.fingerprint, e);
      await this.#write();
      await this.#load();
    });
  }

  #change(fingerprint: string, entry: RevokedEntry | null): void {
    this.#pending.set(fingerprint, entry);
    void this.#opts.link.publish(entry ? 'revoke' : 'forgive', entry ? { entries: [entry] } : { fingerprints: [fingerprint] });
    void this.#write();
  }

  async #write(): Promise<void> {
    if (!this.#opts.link.up || this.#pending.size === 0) return;
    const batch = [...this.#pending];
    this.#pending.clear();
    const redis = this.#opts.link.cmd;
    const sets = batch.filter(([, e]) => e !== null).flatMap(([fp, e]) => [fp, JSON.stringify(e)]);
    const dels = batch.filter(([, e]) => e === null).map(([fp]) => fp);
    try {
      await Promise.all([sets.length > 0 ? redis.hset(this.#key, ...sets) : 0, dels.length > 0 ? redis.hdel(this.#key, ...dels) : 0]);
    } catch {
      for (const [fp, e] of batch) if (!this.#pending.has(fp)) this.#pending.set(fp, e);
    }
  }

  async #load(): Promise<void> {
    const nowMs = this.#opts.clock.now();
    const all = await this.#opts.link.cmd.hgetall(this.#key);
    const live: RevokedEntry[] = [];
    const expired: string[] = [];
    for (const [fp, text] of Object.entries(all)) {
      const e = parseEntry(fp, text);
      if (!e || e.untilMs <= nowMs) expired.push(fp);
      else live.push(e);
    }
    this.#opts.revoked.restore(live, nowMs);
    if (expired.length > 0) await this.#opts.link.cmd.hdel(this.#key, ...expired);
  }

  #onMessage(msg: BusMessage): void {
    if (msg.from === this.#opts.link.replicaId) return;
    if (msg.t === 'revoke' && Array.isArray(msg['entries'])) {
      const entries = (msg['entries'] as unknown[]).map((e) => parseEntry((e as RevokedEntry)?.fingerprint, JSON.stringify(e))).filter((e): e is RevokedEntry => e !== undefined);
      this.#opts.revoked.restore(entries, this.#opts.clock.now());
      for (const e of entries) this.#opts.forgetCredential(e.fingerprint);
    } else if (msg.t === 'forgive' && Array.isArray(msg['fingerprints'])) {
      for (const fp of msg['fingerprints']) if (typeof fp === 'string') this.#opts.revoked.forget(fp);
    }
  }
}

function parseEntry(fingerprint: unknown, text: string): RevokedEntry | undefined {
  if (typeof fingerprint !== 'string') return undefined;
  try {
    const e = JSON.parse(text) as Partial<RevokedEntry>;
    if (typeof e.user !== 'string' || typeof e.untilMs !== 'number') return undefined;
    return e.reusable ? { fingerprint, user: e.user, untilMs: e.untilMs, reusable: true } : { fingerprint, user: e.user, untilMs: e.untilMs };
  } catch {
    return undefined;
  }
}
