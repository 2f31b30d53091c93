/**
 * Notifications for a user whose sockets may be held by any replica: the replica that claimed the
 * warning or logout writes into its own sockets and announces it; every other replica writes the
 * same notification into the sockets it holds. Each socket lives on one replica, so each gets the
 * notification once.
 */
import type { BusMessage, RedisLink } from '../sessions/redis-link.js';
import type { Notifier } from './notifier.js';

export type UserNotifications = Pick<Notifier, 'warn' | 'logout'> & {
  /**
   * Resolves once the user's last logout notification was handed to every replica (Redis took
   * the announcement). Absent when there is only this process.
   */
  logoutAnnounced?(user: string): Promise<unknown>;
};

export class ClusterNotifier implements UserNotifications {
  readonly #local: UserNotifications;
  readonly #link: RedisLink;
  readonly #announcing = new Map<string, Promise<boolean>>();

  constructor(local: UserNotifications, link: RedisLink) {
    this.#local = local;
    this.#link = link;
    link.onMessage((msg) => this.#onMessage(msg));
  }

  warn(user: string, minutesUntilTimeout: number): number {
    void this.#link.publish('notify', { kind: 'warn', user, minutes: minutesUntilTimeout });
    return this.#local.warn(user, minutesUntilTimeout);
  }

  logout(user: string, reason?: string): Promise<number> {
    const announced = this.#link.publish('notify', { kind: 'logout', user, reason: reason ?? null });
    this.#announcing.set(user, announced);
    void announced.finally(() => this.#announcing.get(user) === announced && this.#announcing.delete(user));
    return this.#local.logout(user, reason);
  }

  logoutAnnounced(user: string): Promise<unknown> {
    return this.#announcing.get(user) ?? Promise.resolve();
  }

  #onMessage(msg: BusMessage): void {
    if (msg.t !== 'notify' || msg.from === this.#link.replicaId || typeof msg['user'] !== 'string') return;
    const user = msg['user'];
    if (msg['kind'] === 'warn' && typeof msg['minutes'] === 'number') this.#local.warn(user, msg['minutes']);
    else if (msg['kind'] === 'logout') this.#local.logout(user, typeof msg['reason'] === 'string' ? msg['reason'] : undefined).catch(() => undefined);
  }
}
