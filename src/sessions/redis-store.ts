/**
 * Session state shared by several replicas through Redis.
 *
 * Each replica keeps a full local copy (a MemorySessionStore) that the engine and the request path
 * read and write synchronously; Redis is where the copies meet:
 *   - changes are marked dirty and written every `flushMs` (per user the latest state; one round
 *     of pipelined scripts), then announced on the event channel so every replica merges them;
 *   - warn/logout claims are atomic scripts on the user's record, so one replica acts per idle
 *     period; the logout winner receives the user's credentials (sealed with the state key);
 *   - while Redis is unreachable the local copy goes on; dirty users wait, claims are deferred;
 *     when Redis is back the replica writes what it holds (all of it when Redis came back empty),
 *     reads everything back (latest activity wins) and retries the deferred claims.
 */
import type pino from 'pino';
import type { Clock } from './clock.js';
import { storedCredential } from './credential-set.js';
import { MemorySessionStore } from './memory-store.js';
import type { RedisLink, BusMessage } from './redis-link.js';
import { withScripts, type ScriptedClient } from './redis-scripts.js';
import type { SecretBox } from './secret-box.js';
import type {
  ClaimAction,
  RequestNote,
  SessionRecord,
  SessionSnapshot,
  SessionStore,
  StoreListener,
  StoredCredential,
} from './store.js';

export interface RedisStoreOptions {
  link: RedisLink;
  box: SecretBox;
  clock: Clock;
  flushMs: number;
  logger: pino.Logger;
}

/** How long a user's record lives in Redis after its last write. */
const RECORD_TTL_MS = 8 * 24 * 3_600_000;
/** claims sent to Redis at once (the rest wait their turn in this process) */
const MAX_CLAIMS_IN_FLIGHT = 256;
/** users written per pipeline */
const WRITE_BATCH = 500;
/** users per announcement on the event channel (keeps messages small) */
const ANNOUNCE_BATCH = 1000;
/** users read back per round when reconciling */
const LOAD_BATCH = 500;
/**
 * After Redis comes back, claims wait this long (plus one flush interval) so that the other
 * replicas, which notice within about a second, have written what they saw meanwhile: otherwise
 * activity seen only elsewhere during the outage could lose to a stale deadline here.
 */
const RECONCILE_GRACE_MS = 2500;

/** A user's state as announced to the other replicas (no secrets). */
interface Announced {
  u: string;
  first: number;
  idle: number;
  last?: RequestNote;
  out?: number;
  warn?: number;
  newSession?: boolean;
  /** a retraction: `idle` is the shared idle start it left; it covers local activity up to `cut` */
  cut?: number;
}

/** one credential version sent to Redis in a batch */
interface SealedVersion {
  readonly user: string;
  readonly fingerprint: string;
  readonly stamp: number;
}

interface Retraction {
  to: RequestNote;
  cutMs: number;
}

export class RedisSessionStore implements SessionStore {
  readonly #local = new MemorySessionStore();
  readonly #link: RedisLink;
  readonly #redis: ScriptedClient;
  readonly #box: SecretBox;
  readonly #clock: Clock;
  readonly #logger: pino.Logger;
  readonly #flushMs: number;
  /** users whose state must be written */
  #dirty = new Set<string>();
  /** users who started a new session since their last write (their old credentials go) */
  readonly #newSession = new Set<string>();
  /** users this copy last knew as logged out (a change to "not logged out" is a new session) */
  readonly #knownOut = new Set<string>();
  /** logged-out users this replica dropped; their keys go too */
  readonly #forgotten = new Set<string>();
  /** retractions waiting to be written (per user: the latest `to`, the widest cover) */
  #retractions = new Map<string, Retraction>();
  /** users whose claim could not be made while Redis was unreachable */
  readonly #deferred = new Set<string>();
  #listener: StoreListener | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  /** claims are deferred until then (just after Redis came back) */
  #settledAtMs = 0;
  #graceTimer: NodeJS.Timeout | undefined;
  #claimsInFlight = 0;
  readonly #claimWaiters: Array<() => void> = [];
  #flushing: Promise<void> | undefined;

  constructor(opts: RedisStoreOptions) {
    this.#link = opts.link;
    this.#redis = withScripts(opts.link.cmd);
    this.#box = opts.box;
    this.#clock = opts.clock;
    this.#logger = opts.logger;
    this.#flushMs = opts.flushMs;
    this.#link.onMessage((msg) => this.#onMessage(msg));
    this.#link.onUp((info) => this.#reconcile(info.emptied, info.reconnect));
    this.#flushTimer = setInterval(() => void this.flush(), this.#flushMs);
    this.#flushTimer.unref();
  }

  // ---- the local copy (synchronous) ----------------------------------------------------------

  get size(): number {
    return this.#local.size;
  }

  get(user: string): SessionRecord | undefined {
    return this.#local.get(user);
  }

  ensure(user: string, nowMs: number): SessionRecord {
    const existing = this.#local.get(user);
    if (existing) return existing;
    this.#dirty.add(user);
    return this.#local.ensure(user, nowMs);
  }

  recordActivity(user: string, note: RequestNote): SessionRecord {
    this.#dirty.add(user);
    return this.#local.recordActivity(user, note);
  }

  noteChanged(user: string): void {
    const record = this.#local.get(user);
    if (record?.loggedOutAtMs !== undefined) this.#knownOut.add(user);
    else if (this.#knownOut.delete(user)) this.#newSession.add(user); // the old credentials go in Redis too
    this.#dirty.add(user);
  }

  watch(listener: StoreListener): void {
    this.#listener = listener;
  }

  delete(user: string): void {
    this.#local.delete(user);
    this.#dirty.delete(user);
    this.#knownOut.delete(user);
    this.#forgotten.add(user);
  }

  all(): IterableIterator<SessionRecord> {
    return this.#local.all();
  }

  schedule(user: string, atMs: number): void {
    this.#local.schedule(user, atMs);
  }

  unschedule(user: string): void {
    this.#local.unschedule(user);
  }

  scheduledAtMs(user: string): number | undefined {
    return this.#local.scheduledAtMs(user);
  }

  nextDueAtMs(): number | undefined {
    return this.#local.nextDueAtMs();
  }

  takeDue(nowMs: number, limit: number): string[] {
    return this.#local.takeDue(nowMs, limit);
  }

  clearSchedule(): void {
    this.#local.clearSchedule();
  }

  claimed(user: string, action: ClaimAction, periodMs: number): boolean {
    return this.#local.claimed(user, action, periodMs);
  }

  retract(user: string, to: RequestNote, coveredUntilMs: number): void {
    const record = this.#local.get(user);
    if (!record) return;
    const pending = this.#retractions.get(user);
    this.#retractions.set(user, {
      to: pending && pending.to.atMs > to.atMs ? pending.to : to,
      cutMs: Math.max(pending?.cutMs ?? 0, coveredUntilMs),
    });
    // this copy already went back further (another replica's retraction): `to` is real activity
    if (to.atMs > record.idleSinceMs) this.#moveIdle(record, to.atMs, to);
    this.#dirty.add(user);
  }

  exportSnapshots(): SessionSnapshot[] {
    return this.#local.exportSnapshots();
  }

  importSnapshots(snapshots: readonly SessionSnapshot[]): void {
    this.#local.importSnapshots(snapshots);
    for (const s of snapshots) this.#dirty.add(s.user);
  }

  // ---- claims (asynchronous) -----------------------------------------------------------------

  async claim(user: string, action: ClaimAction, periodMs: number, force = false): Promise<boolean> {
    if (this.#local.claimed(user, action, periodMs)) return false;
    if (!this.#link.up || (!force && Date.now() < this.#settledAtMs)) return this.#defer(user);
    // Activity another replica saw in the last moments may not be written yet: give it one
    // flush interval (and a little) to land before deciding; then write ours.
    if (!force) await this.#sleep(this.#flushMs + 50);
    try {
      await this.flush();
      const key = this.#keys(user);
      const answer = await this.#limited(() => this.#redis.stpClaim(key.record, key.creds, action, String(periodMs), force ? '1' : '0', String(this.#clock.now()), this.#link.replicaId));
      return this.#applyClaim(user, action, periodMs, answer);
    } catch (err) {
      this.#logger.debug({ err, user, action }, 'claim deferred: Redis did not answer');
      return this.#defer(user);
    }
  }

  #applyClaim(user: string, action: ClaimAction, periodMs: number, answer: string[]): boolean {
    const record = this.#local.get(user);
    if (!record) return false;
    const [kind, value, ...rest] = answer;
    const sharedMs = Number(value);
    if (kind === 'moved') {
      this.#adoptIdle(record, sharedMs, undefined);
      return false;
    }
    if (kind === 'taken') {
      if (sharedMs > record.idleSinceMs) this.#adoptIdle(record, sharedMs, undefined);
      this.#local.claim(user, action, record.idleSinceMs);
      const outMs = rest[0] ? Number(rest[0]) : undefined;
      if (action === 'logout' && outMs !== undefined && outMs >= record.idleSinceMs && record.loggedOutAtMs === undefined) {
        record.loggedOutAtMs = outMs;
        this.#knownOut.add(user);
      }
      return false;
    }
    // won (a forced logout may have claimed a later period than this copy showed)
    if (sharedMs > record.idleSinceMs) this.#adoptIdle(record, sharedMs, undefined);
    this.#local.claim(user, action, sharedMs > periodMs ? sharedMs : periodMs);
    for (let i = 0; i + 1 < rest.length; i += 2) this.#adoptCredential(record, rest[i + 1]!);
    return true;
  }

  /** At most MAX_CLAIMS_IN_FLIGHT claims wait for Redis at once, so a burst does not swamp the connection. */
  async #limited<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#claimsInFlight >= MAX_CLAIMS_IN_FLIGHT) await new Promise<void>((resolve) => this.#claimWaiters.push(resolve));
    this.#claimsInFlight++;
    try {
      return await fn();
    } finally {
      this.#claimsInFlight--;
      this.#claimWaiters.shift()?.();
    }
  }

  #defer(user: string): false {
    this.#deferred.add(user);
    return false;
  }

  #adoptCredential(record: SessionRecord, sealed: string): void {
    try {
      const c = this.#box.openJson<StoredCredential>(sealed);
      if (record.credentials.has(c.fingerprint)) return;
      record.credentials.set(c.fingerprint, storedCredential(c, c.lastSeenMs ?? this.#clock.now()));
      record.credentials.markWritten(c.fingerprint);
    } catch (err) {
      this.#logger.error({ event: 'credential-unreadable', user: record.user, error: (err as Error).message }, 'a stored credential does not open with this replica\'s PROXY_STATE_KEY (every replica needs the same key)');
    }
  }

  // ---- writing -------------------------------------------------------------------------------

  /** Writes every dirty user now (one pipelined round) and announces them. Never throws. */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing.then(() => (this.#dirty.size > 0 ? this.flush() : undefined));
    if (!this.#link.up || (this.#dirty.size === 0 && this.#forgotten.size === 0)) return Promise.resolve();
    this.#flushing = this.#writeDirty().finally(() => (this.#flushing = undefined));
    return this.#flushing;
  }

  async #writeDirty(): Promise<void> {
    const users = [...this.#dirty];
    this.#dirty = new Set();
    const forgotten = [...this.#forgotten];
    this.#forgotten.clear();
    for (let i = 0; i < users.length; i += WRITE_BATCH) {
      const batch = users.slice(i, i + WRITE_BATCH);
      if (!(await this.#writeBatch(batch))) {
        // Redis went away mid-write: the rest is written again next time (writes are idempotent)
        for (const u of users.slice(i)) this.#dirty.add(u);
        for (const u of forgotten) this.#forgotten.add(u);
        return;
      }
    }
    for (const user of forgotten) {
      const key = this.#keys(user);
      try {
        if (await this.#redis.stpForget(key.record, key.creds)) await this.#redis.zrem(this.#link.key('users'), user);
      } catch {
        this.#forgotten.add(user);
      }
    }
  }

  /** One pipeline of record writes; announced to the other replicas once written. */
  async #writeBatch(users: readonly string[]): Promise<boolean> {
    const announced: Announced[] = [];
    const commands: Array<[string, ...string[]]> = [];
    /** credential versions written by this batch, marked once Redis took it */
    const sealedNow: SealedVersion[] = [];
    const scores: string[] = [];
    /** index of each retraction's answer in the pipeline, by user */
    const retracted = new Map<string, { at: number; r: Retraction }>();
    for (const user of users) {
      const record = this.#local.get(user);
      if (!record) continue;
      const newSession = this.#newSession.has(user);
      const key = this.#keys(user);
      const r = this.#retractions.get(user);
      if (r) {
        this.#retractions.delete(user);
        retracted.set(user, { at: commands.length, r });
        commands.push(['stpRetract', key.record, String(r.to.atMs), String(r.cutMs), JSON.stringify(r.to), String(RECORD_TTL_MS)]);
      }
      commands.push(['stpTouch', key.record, key.creds, ...this.#touchArgs(record, newSession, sealedNow)]);
      scores.push(String(record.idleSinceMs), user);
    }
    if (scores.length > 0) commands.push(['zadd', this.#link.key('users'), ...scores]);
    let results: unknown[];
    try {
      results = await this.#link.pipelined(commands);
    } catch {
      for (const [user, { r }] of retracted) if (!this.#retractions.has(user)) this.#retractions.set(user, r);
      return false;
    }
    for (const user of users) {
      const record = this.#local.get(user);
      if (!record) continue;
      const done = retracted.get(user);
      if (done) this.#applyRetraction(record, results[done.at] as string[], done.r);
      const a = this.#announce(record, this.#newSession.has(user));
      if (done) a.cut = done.r.cutMs;
      announced.push(a);
    }
    for (const a of announced) this.#newSession.delete(a.u);
    for (const v of sealedNow) this.#local.get(v.user)?.credentials.markWritten(v.fingerprint, v.stamp);
    // an announcement Redis did not take is sent again with the next write (writes are idempotent)
    const sent = await Promise.all(Array.from({ length: Math.ceil(announced.length / ANNOUNCE_BATCH) }, (_, k) => this.#link.publish('act', { users: announced.slice(k * ANNOUNCE_BATCH, (k + 1) * ANNOUNCE_BATCH) })));
    return sent.every(Boolean);
  }

  #touchArgs(record: SessionRecord, newSession: boolean, sealedNow: SealedVersion[]): string[] {
    const user = record.user;
    const warn = this.#local.claimed(user, 'warn', record.idleSinceMs) ? String(record.idleSinceMs) : '';
    const logout = this.#local.claimed(user, 'logout', record.idleSinceMs) ? String(record.idleSinceMs) : '';
    const args = [
      String(record.firstSeenMs),
      String(record.idleSinceMs),
      record.lastActivity ? JSON.stringify(record.lastActivity) : '',
      record.loggedOutAtMs === undefined ? '' : String(record.loggedOutAtMs),
      warn,
      logout,
      newSession ? '1' : '0',
      String(RECORD_TTL_MS),
    ];
    // sealing is not free: each version of a credential is sealed and written once
    for (const { credential, stamp } of record.credentials.unwritten()) {
      args.push(credential.fingerprint, this.#box.sealJson(credential));
      sealedNow.push({ user: record.user, fingerprint: credential.fingerprint, stamp });
    }
    return args;
  }

  #announce(record: SessionRecord, newSession: boolean): Announced {
    const a: Announced = { u: record.user, first: record.firstSeenMs, idle: record.idleSinceMs };
    if (record.lastActivity) a.last = record.lastActivity;
    if (record.loggedOutAtMs !== undefined) a.out = record.loggedOutAtMs;
    if (this.#local.claimed(record.user, 'warn', record.idleSinceMs)) a.warn = record.idleSinceMs;
    if (newSession) a.newSession = true;
    return a;
  }

  // ---- reading -------------------------------------------------------------------------------

  #onMessage(msg: BusMessage): void {
    if (msg.t !== 'act' || msg.from === this.#link.replicaId || !Array.isArray(msg['users'])) return;
    for (const a of msg['users'] as Announced[]) {
      if (typeof a?.u !== 'string' || typeof a.idle !== 'number') continue;
      this.#merge(a);
    }
  }

  /** Merges another replica's view of a user into the local copy (latest activity wins). */
  #merge(a: Announced): void {
    let record = this.#local.get(a.u);
    if (!record) record = this.#local.ensure(a.u, a.first);
    if (a.idle > record.idleSinceMs) this.#adoptIdle(record, a.idle, a.last);
    else if (a.cut !== undefined && a.idle < record.idleSinceMs && record.idleSinceMs <= a.cut && record.loggedOutAtMs === undefined) {
      // another replica's retraction covers what this copy counted: the idle period goes back
      this.#moveIdle(record, a.idle, a.last);
      this.#local.unschedule(a.u);
    }
    if (a.warn !== undefined && a.warn === record.idleSinceMs) this.#local.claim(a.u, 'warn', a.warn);
    if (a.out !== undefined && record.loggedOutAtMs === undefined && a.out >= record.idleSinceMs) {
      record.loggedOutAtMs = a.out;
      this.#knownOut.add(a.u);
      this.#local.claim(a.u, 'logout', record.idleSinceMs);
    }
    this.#listener?.changed(a.u);
  }

  /** Later activity seen elsewhere: the idle period moves; a logged-out record starts a new session. */
  #adoptIdle(record: SessionRecord, idleMs: number, last: RequestNote | undefined): void {
    if (record.loggedOutAtMs !== undefined && idleMs > record.loggedOutAtMs) {
      record.loggedOutAtMs = undefined;
      this.#knownOut.delete(record.user);
      record.credentials.clear();
      this.#local.unschedule(record.user);
    }
    record.idleSinceMs = idleMs;
    if (last && last.atMs === idleMs) {
      record.lastActivity = last;
      record.recent.push(last);
    }
  }

  /** Redis answered this replica's retraction (see RETRACT in redis-scripts.ts). */
  #applyRetraction(record: SessionRecord, answer: string[] | undefined, r: Retraction): void {
    const [kind, value] = answer ?? [];
    const sharedMs = Number(value);
    if (!Number.isFinite(sharedMs) || kind === 'out') return;
    if (sharedMs > record.idleSinceMs) this.#adoptIdle(record, sharedMs, undefined);
    else if (kind === 'set' && sharedMs < record.idleSinceMs && record.idleSinceMs <= r.cutMs) {
      this.#moveIdle(record, sharedMs, undefined);
      this.#local.unschedule(record.user);
      this.#listener?.changed(record.user);
    }
  }

  /** The idle start becomes `idleMs` (either way); the request note goes with it when it is the one. */
  #moveIdle(record: SessionRecord, idleMs: number, note: RequestNote | undefined): void {
    record.idleSinceMs = idleMs;
    if (note && note.atMs === idleMs) record.lastActivity = note;
  }

  /** Redis is reachable again: write what we hold, read everything back, retry deferred claims. */
  async #reconcile(emptied: boolean, reconnect: boolean): Promise<void> {
    if (emptied) {
      // Redis lost everything (or is new): every replica writes all it holds; the merge rules
      // make the replicas' writes agree whatever their order.
      for (const record of this.#local.all()) {
        record.credentials.forgetWritten();
        this.#dirty.add(record.user);
      }
    }
    const graceMs = reconnect ? RECONCILE_GRACE_MS + this.#flushMs : 0;
    this.#settledAtMs = Date.now() + graceMs;
    await this.flush();
    await this.#loadAll();
    this.#listener?.reloaded();
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    this.#graceTimer = setTimeout(() => void this.#retryDeferred(), graceMs);
    this.#graceTimer.unref();
  }

  /** The grace after a reconnect is over: read back once more, then decide the deferred claims. */
  async #retryDeferred(): Promise<void> {
    if (!this.#link.up) return;
    try {
      await this.flush();
      await this.#loadAll();
    } catch {
      return; // Redis went away again: the next reconcile retries
    }
    const deferred = [...this.#deferred];
    this.#deferred.clear();
    for (const user of deferred) this.#listener?.changed(user);
  }

  async #loadAll(): Promise<void> {
    const users = await this.#redis.zrange(this.#link.key('users'), 0, -1);
    for (let i = 0; i < users.length; i += LOAD_BATCH) {
      const batch = users.slice(i, i + LOAD_BATCH);
      const rows = await Promise.all(batch.map((u) => this.#redis.hgetall(this.#keys(u).record)));
      rows.forEach((row, j) => {
        const u = batch[j]!;
        if (!row['idle']) return;
        const a: Announced = { u, first: Number(row['first'] ?? row['idle']), idle: Number(row['idle']) };
        if (row['last']) a.last = safeJson<RequestNote>(row['last']);
        if (row['out']) a.out = Number(row['out']);
        if (row['warn']) a.warn = Number(row['warn']);
        this.#merge(a);
        if (row['logout'] && Number(row['logout']) === this.#local.get(u)?.idleSinceMs) this.#local.claim(u, 'logout', Number(row['logout']));
      });
    }
  }

  // ---- helpers -------------------------------------------------------------------------------

  #keys(user: string): { record: string; creds: string } {
    const record = `${this.#link.prefix}u:{${user}}`;
    return { record, creds: `${record}:c` };
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.#clock.setTimer(resolve, ms));
  }

  /** Users waiting to be written (for tests and the metric). */
  get pendingWrites(): number {
    return this.#dirty.size;
  }

  close(): void {
    if (this.#flushTimer) clearInterval(this.#flushTimer);
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    this.#flushTimer = undefined;
  }
}

function safeJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
