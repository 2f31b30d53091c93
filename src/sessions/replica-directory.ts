/**
 * Which replicas are running, which sockets each holds, and which timeout settings each read.
 * Every replica writes a small heartbeat hash (`<prefix>replica:<id>`, expiring) every couple of
 * seconds and reads the others'; the admin API uses it to say which replica holds each user's
 * sockets, and a replica whose settings differ from another's is logged once per difference.
 */
import type pino from 'pino';
import type { TimeoutSettings } from '../properties/settings.js';
import type { RedisLink } from './redis-link.js';

export interface ReplicaDirectoryOptions {
  link: RedisLink;
  logger: pino.Logger;
  settings(): TimeoutSettings;
  /** open sockets of this replica, by user */
  socketsByUser(): Map<string, number>;
  intervalMs?: number;
}

interface Peer {
  settings: string;
  sockets: Record<string, number>;
}

const DEFAULT_INTERVAL_MS = 2000;

export class ReplicaDirectory {
  readonly #opts: ReplicaDirectoryOptions;
  readonly #intervalMs: number;
  #peers = new Map<string, Peer>();
  readonly #warned = new Set<string>();
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: ReplicaDirectoryOptions) {
    this.#opts = opts;
    this.#intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.#timer = setInterval(() => void this.beat(), this.#intervalMs);
    this.#timer.unref();
    opts.link.onUp(() => this.beat());
  }

  get replicaId(): string {
    return this.#opts.link.replicaId;
  }

  /** Open sockets of the user per replica (this one counted live, the others as of their last beat). */
  socketsByReplica(user: string): Record<string, number> {
    const out: Record<string, number> = {};
    const mine = this.#opts.socketsByUser().get(user);
    if (mine) out[this.replicaId] = mine;
    for (const [id, peer] of this.#peers) {
      const n = peer.sockets[user];
      if (n) out[id] = n;
    }
    return out;
  }

  /** Replicas seen in the last few beats, this one first. */
  replicas(): string[] {
    return [this.replicaId, ...[...this.#peers.keys()].sort()];
  }

  /** Writes this replica's heartbeat and reads the others'. Never throws. */
  async beat(): Promise<void> {
    const { link } = this.#opts;
    if (!link.up) return;
    const redis = link.cmd;
    const nowMs = Date.now();
    const ttlMs = this.#intervalMs * 3;
    const me = link.key('replica', this.replicaId);
    const mySettings = settingsText(this.#opts.settings());
    try {
      await Promise.all([
        redis.hset(me, 'settings', mySettings, 'sockets', JSON.stringify(Object.fromEntries(this.#opts.socketsByUser()))),
        redis.pexpire(me, ttlMs),
        redis.zadd(link.key('replicas'), nowMs, this.replicaId),
        redis.zremrangebyscore(link.key('replicas'), '-inf', nowMs - ttlMs),
      ]);
      const ids = (await redis.zrange(link.key('replicas'), 0, -1)).filter((id) => id !== this.replicaId);
      const rows = await Promise.all(ids.map((id) => redis.hgetall(link.key('replica', id))));
      const peers = new Map<string, Peer>();
      ids.forEach((id, i) => {
        const row = rows[i]!;
        if (!row['settings']) return;
        peers.set(id, { settings: row['settings'], sockets: parseSockets(row['sockets']) });
      });
      this.#peers = peers;
      for (const [id, peer] of peers) {
        const pair = `${id}\n${peer.settings}\n${mySettings}`;
        if (peer.settings === mySettings || this.#warned.has(pair)) continue;
        this.#warned.add(pair);
        this.#opts.logger.warn(
          { event: 'replica-settings-differ', replica: this.replicaId, settings: mySettings, otherReplica: id, otherSettings: peer.settings },
          `replicas read different timeout settings: ${this.replicaId} has ${mySettings}, ${id} has ${peer.settings} (each replica should mount the same Panopticon.properties)`,
        );
      }
    } catch {
      // Redis went away mid-beat: the link reports it; the next beat tries again
    }
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

export function settingsText(s: TimeoutSettings): string {
  return `enabled=${s.enabled} minutes=${s.timeoutMinutes} notificationMinutes=${s.notifyBeforeMinutes} exempt=${[...s.exemptUsers].sort().join(',')}`;
}

function parseSockets(text: string | undefined): Record<string, number> {
  try {
    const v = JSON.parse(text ?? '{}') as unknown;
    return v && typeof v === 'object' ? (v as Record<string, number>) : {};
  } catch {
    return {};
  }
}
