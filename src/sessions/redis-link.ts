/**
 * The replicas' connection to Redis: one client for commands, one for the event channel, whether
 * Redis answers right now, and the events the replicas tell each other.
 *
 * Commands never queue while Redis is unreachable (they fail at once), so nothing that calls
 * Redis can hold up a request. A PING every second notices a Redis that stopped answering without
 * closing the connection (two missed in a row). Up/down transitions are logged once each, and on every "up" the parts
 * that share state reconcile (told whether Redis came back empty).
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type pino from 'pino';
import type { DeploymentConfig } from '../config/deployment.js';

export type RedisClient = Redis | Cluster;

/** A message on the event channel; `from` is the sending replica. */
export interface BusMessage {
  readonly t: string;
  readonly from: string;
  readonly [field: string]: unknown;
}

export interface UpInfo {
  /**
   * Redis does not hold what this replica wrote before (first contact, or Redis restarted
   * empty): the replica writes everything it holds again.
   */
  readonly emptied: boolean;
  /** Redis was reached before (this is a reconnect after an outage, not the first contact) */
  readonly reconnect: boolean;
}

export type RedisLinkConfig = Pick<DeploymentConfig, 'redisUrl' | 'redisPrefix' | 'redisSentinels' | 'redisSentinelName' | 'redisClusterNodes'>;

const PING_MS = 1000;
const COMMAND_TIMEOUT_MS = 2000;
const PINGS_MISSED_FOR_DOWN = 2;

export class RedisLink {
  readonly replicaId: string;
  readonly prefix: string;
  readonly cmd: RedisClient;
  readonly #sub: RedisClient;
  readonly #logger: pino.Logger;
  readonly #channel: string;
  readonly #upHandlers: Array<(info: UpInfo) => Promise<void>> = [];
  readonly #messageHandlers: Array<(msg: BusMessage) => void> = [];
  readonly #downHandlers: Array<() => void> = [];
  #up = false;
  /** the epoch marker this replica last saw; a different one means Redis lost its data */
  #epoch: string | undefined;
  #reconciling: Promise<void> | undefined;
  #pinger: NodeJS.Timeout | undefined;
  #failedPings = 0;
  /** the client's last connection error (e.g. WRONGPASS, a certificate not trusted) */
  #lastError: string | undefined;
  /** the reason last logged while Redis was never reached (logged once per distinct reason) */
  #unreachableLogged: string | undefined;
  readonly #secrets: string[];
  #closed = false;
  /** transitions to "down" since start (for the metric) */
  downTransitions = 0;

  constructor(config: RedisLinkConfig, logger: pino.Logger, replicaId = defaultReplicaId()) {
    this.replicaId = replicaId;
    this.prefix = config.redisPrefix;
    this.#channel = `${config.redisPrefix}events`;
    this.#logger = logger;
    this.#secrets = [config.redisUrl.password, decodeURIComponent(config.redisUrl.password)].filter((x) => x.length > 0);
    this.cmd = createClient(config, { enableOfflineQueue: false, commandTimeout: COMMAND_TIMEOUT_MS, connectionName: `stp-${replicaId}` });
    this.#sub = createClient(config, { enableOfflineQueue: true, connectionName: `stp-${replicaId}-events` }, true);
    // errors are reported once per transition (below), not per reconnect attempt
    this.cmd.on('error', (err: Error) => (this.#lastError = err.message));
    this.#sub.on('error', () => undefined);
    this.cmd.on('ready', () => void this.#check());
    this.cmd.on('close', () => this.#setDown('connection closed'));
    if (this.#sub instanceof Cluster) {
      // Sharded pub/sub (Redis 7): the channel lives on the node owning its slot, so publisher and
      // subscribers meet on one node. A plain PUBLISH would cross the cluster bus, and a logout
      // notification could arrive after the upstream logout had already cut the user's sockets.
      this.#sub.on('smessage', (_channel: string, text: string) => this.#onMessage(text));
      void this.#sub.ssubscribe(this.#channel).catch(() => undefined);
    } else {
      this.#sub.on('message', (_channel: string, text: string) => this.#onMessage(text));
      void this.#sub.subscribe(this.#channel).catch(() => undefined);
    }
    this.#pinger = setInterval(() => void this.#check(), PING_MS);
    this.#pinger.unref();
  }

  /** Redis answered the last check. */
  get up(): boolean {
    return this.#up;
  }

  /** `prefix` + parts joined by `:` */
  key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  /** Called (in registration order) each time Redis becomes reachable; may write and read. */
  onUp(handler: (info: UpInfo) => Promise<void>): void {
    this.#upHandlers.push(handler);
  }

  onDown(handler: () => void): void {
    this.#downHandlers.push(handler);
  }

  onMessage(handler: (msg: BusMessage) => void): void {
    this.#messageHandlers.push(handler);
  }

  /**
   * Sends an event to every replica (this one receives it too). Never throws: resolves false when
   * Redis did not take it (the caller decides whether to send it again).
   */
  publish(t: string, body: Record<string, unknown>): Promise<boolean> {
    const text = JSON.stringify({ ...body, t, from: this.replicaId });
    const sent = this.cmd instanceof Cluster ? this.cmd.spublish(this.#channel, text) : this.cmd.publish(this.#channel, text);
    return sent.then(() => true, () => false);
  }

  /**
   * Sends commands as one pipeline (one round trip) and resolves with their results; rejects with
   * the first command's error. On a Cluster the commands go out together, one per key's node.
   */
  async pipelined(commands: ReadonlyArray<readonly [string, ...Array<string | number>]>): Promise<unknown[]> {
    if (commands.length === 0) return [];
    if (this.cmd instanceof Cluster) {
      const client = this.cmd as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
      return Promise.all(commands.map(([name, ...args]) => client[name]!(...args)));
    }
    const results = (await this.cmd.pipeline(commands.map((c) => [...c])).exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0];
    return results.map(([, value]) => value);
  }

  /** Resolves when Redis was reached and reconciled, or after `timeoutMs` (false: still down). */
  async waitUntilUp(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#up && Date.now() < deadline && !this.#closed) {
      await new Promise((r) => setTimeout(r, 25));
    }
    await this.#reconciling;
    return this.#up;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#pinger) clearInterval(this.#pinger);
    await this.#reconciling?.catch(() => undefined);
    await Promise.allSettled([this.cmd.quit(), this.#sub.quit()]);
    this.cmd.disconnect();
    this.#sub.disconnect();
  }

  async #check(): Promise<void> {
    if (this.#closed || this.#reconciling) return;
    try {
      await this.cmd.ping();
      this.#failedPings = 0;
    } catch (err) {
      // one slow answer on a busy machine is not an outage; a closed connection is reported at once
      if (++this.#failedPings >= PINGS_MISSED_FOR_DOWN) this.#setDown(this.#reason(err as Error));
      if (this.#epoch === undefined && this.#failedPings >= PINGS_MISSED_FOR_DOWN) this.#neverReached(this.#reason(err as Error));
      return;
    }
    if (!this.#up) await this.#becomeUp();
  }

  #becomeUp(): Promise<void> {
    this.#reconciling ??= (async () => {
      try {
        // the marker key disappears with everything else when Redis restarts empty
        const key = this.key('epoch');
        const mine = `${Date.now()}-${this.replicaId}`;
        const epoch = (await this.cmd.set(key, mine, 'NX')) === 'OK' ? mine : ((await this.cmd.get(key)) ?? mine);
        const joined = this.#epoch === undefined;
        const info: UpInfo = { emptied: epoch !== this.#epoch, reconnect: !joined };
        this.#epoch = epoch;
        this.#up = true;
        for (const handler of this.#upHandlers) await handler(info);
        const msg = joined ? 'Redis reachable: joined the shared state' : info.emptied ? 'Redis reachable again but empty: re-seeded it from this replica' : 'Redis reachable again: shared state reconciled';
        this.#logger.info({ event: 'redis-up', replica: this.replicaId, emptied: info.emptied && !joined }, msg);
      } catch (err) {
        this.#setDown((err as Error).message);
      } finally {
        this.#reconciling = undefined;
      }
    })();
    return this.#reconciling;
  }

  /** The error to report: the connection's own (WRONGPASS, TLS) rather than a bare "closed"; never a password. */
  #reason(err: Error): string {
    let text = this.#lastError && this.#lastError !== err.message ? `${err.message} (${this.#lastError})` : err.message;
    for (const secret of this.#secrets) text = text.split(secret).join('***');
    return text;
  }

  /** Redis was never reached since start: said once per distinct reason (the proxy serves meanwhile). */
  #neverReached(reason: string): void {
    if (this.#unreachableLogged === reason || this.#closed) return;
    this.#unreachableLogged = reason;
    this.#logger.error({ event: 'redis-unreachable', replica: this.replicaId, error: reason }, `Redis cannot be reached (${reason}): proxying goes on, /readyz says degraded; check PROXY_REDIS_URL (user, password, TLS and its CA)`);
  }

  #setDown(reason: string): void {
    if (!this.#up || this.#closed) return;
    this.#up = false;
    this.downTransitions++;
    this.#logger.warn({ event: 'redis-down', replica: this.replicaId, error: reason }, 'Redis unreachable: proxying goes on; timing continues locally, writes are queued, warnings and logouts wait for Redis');
    for (const handler of this.#downHandlers) handler();
  }

  #onMessage(text: string): void {
    let msg: BusMessage;
    try {
      msg = JSON.parse(text) as BusMessage;
    } catch {
      return;
    }
    if (typeof msg?.t !== 'string' || typeof msg.from !== 'string') return;
    for (const handler of this.#messageHandlers) {
      try {
        handler(msg);
      } catch (err) {
        this.#logger.error({ err, event: 'redis-message-failed', type: msg.t }, 'could not apply an event from another replica');
      }
    }
  }
}

function defaultReplicaId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`;
}

/** An ioredis client for a plain URL, Sentinels, or a Cluster. */
function createClient(config: RedisLinkConfig, extra: Partial<RedisOptions>, events = false): RedisClient {
  const url = config.redisUrl;
  const tls = url.protocol === 'rediss:' ? { servername: url.hostname } : undefined;
  const auth: Partial<RedisOptions> = {
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
  };
  const common: RedisOptions = {
    ...auth,
    ...extra,
    tls,
    lazyConnect: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(100 * times, 1000),
  };
  if (config.redisClusterNodes.length > 0) {
    return new Cluster(config.redisClusterNodes.map((n) => ({ host: n.host, port: n.port })), {
      redisOptions: common,
      enableOfflineQueue: extra.enableOfflineQueue,
      shardedSubscribers: events, // the event channel is sharded pub/sub on a Cluster (see the constructor)
      clusterRetryStrategy: (times) => Math.min(100 * times, 1000),
    });
  }
  const db = Number(url.pathname.replace(/^\//, '') || '0');
  if (config.redisSentinels.length > 0) {
    return new Redis({
      ...common,
      db,
      sentinels: config.redisSentinels.map((n) => ({ host: n.host, port: n.port })),
      name: config.redisSentinelName,
      sentinelRetryStrategy: (times) => Math.min(100 * times, 1000),
    });
  }
  return new Redis({ ...common, db, host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 6379) });
}
