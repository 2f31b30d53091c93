/**
 * Registry of open downstream (browser-side) WebSockets, with the request each came from.
 * The proxy adds a socket when the upgrade succeeds and removes it when it closes; the timeout
 * engine looks sockets up by user to push notifications and to close them at logout.
 */
import type { WebSocket } from 'ws';

export interface RegisteredSocket {
  readonly id: number;
  readonly socket: WebSocket;
  /** request path without the query string */
  readonly path: string;
  /** request headers as received (never logged) */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** user name once known; undefined for anonymous sockets */
  user: string | undefined;
  readonly openedAtMs: number;
}

export class SocketRegistry {
  #nextId = 1;
  readonly #byId = new Map<number, RegisteredSocket>();
  readonly #byUser = new Map<string, Set<RegisteredSocket>>();

  add(entry: Omit<RegisteredSocket, 'id'>): RegisteredSocket {
    const rec: RegisteredSocket = { ...entry, id: this.#nextId++ };
    this.#byId.set(rec.id, rec);
    if (rec.user !== undefined) this.#index(rec);
    return rec;
  }

  /** Sets or changes the user of a registered socket (identity may resolve after the upgrade). */
  setUser(rec: RegisteredSocket, user: string | undefined): void {
    if (rec.user === user) return;
    this.#unindex(rec);
    rec.user = user;
    if (user !== undefined) this.#index(rec);
  }

  remove(rec: RegisteredSocket): void {
    if (!this.#byId.delete(rec.id)) return;
    this.#unindex(rec);
  }

  /** Every open socket of the user, optionally only those whose path passes the filter. */
  byUser(user: string, pathFilter?: (path: string) => boolean): RegisteredSocket[] {
    const set = this.#byUser.get(user);
    if (!set) return [];
    const out: RegisteredSocket[] = [];
    for (const rec of set) if (!pathFilter || pathFilter(rec.path)) out.push(rec);
    return out;
  }

  countByUser(user: string): number {
    return this.#byUser.get(user)?.size ?? 0;
  }

  /** Open sockets per user (for the other replicas' view). */
  countsByUser(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [user, set] of this.#byUser) out.set(user, set.size);
    return out;
  }

  get size(): number {
    return this.#byId.size;
  }

  all(): IterableIterator<RegisteredSocket> {
    return this.#byId.values();
  }

  #index(rec: RegisteredSocket): void {
    let set = this.#byUser.get(rec.user!);
    if (!set) this.#byUser.set(rec.user!, (set = new Set()));
    set.add(rec);
  }

  #unindex(rec: RegisteredSocket): void {
    if (rec.user === undefined) return;
    const set = this.#byUser.get(rec.user);
    if (!set) return;
    set.delete(rec);
    if (set.size === 0) this.#byUser.delete(rec.user);
  }
}
