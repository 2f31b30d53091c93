/**
 * Registry of open downstream (browser-side) WebSockets, with the request each came from.
 * The proxy adds a socket when the upgrade succeeds and removes it when it closes; the timeout
 * engine looks sockets up by user to push notifications and to close them at logout.
 */
import type { WebSocket } from 'ws';

/** what the registry's users need of a client socket (a `ws` socket, or the byte relay's client side) */
export type ClientSocket = Pick<WebSocket, 'readyState' | 'OPEN' | 'CONNECTING' | 'bufferedAmount' | 'isPaused' | 'resume' | 'terminate'> & {
  send(data: string, cb?: (err?: Error | null) => void): void;
  close(code: number, reason: string): void;
};
import type { NotificationTarget, Reachability } from './framing/inspector.js';

export interface RegisteredSocket {
  readonly id: number;
  readonly socket: ClientSocket;
  /** request path without the query string */
  readonly path: string;
  /** request headers as received (never logged) */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** user name once known; undefined for anonymous sockets */
  user: string | undefined;
  readonly openedAtMs: number;
  /** how notifications are encoded for this socket (notification sockets only; else plain JSON) */
  readonly framing?: NotificationTarget;
}

/** Whether a user can be warned, as the admin sessions view shows it. */
export interface UserReachability {
  /** notification sockets on which a warning can be written now */
  readonly warnableSockets: number;
  /** notification sockets that cannot carry a warning, and why */
  readonly unwarnableSockets: ReadonlyArray<{ readonly path: string } & Reachability>;
  /** the last SockJS/CometD HTTP transport the user was seen on (no warning can be injected there) */
  readonly httpTransport: { readonly transport: string; readonly atMs: number } | null;
}

/** users whose HTTP transport is remembered at most (the least recently seen are forgotten) */
const MAX_HTTP_TRANSPORT_USERS = 100_000;

export class SocketRegistry {
  #nextId = 1;
  readonly #byId = new Map<number, RegisteredSocket>();
  readonly #byUser = new Map<string, Set<RegisteredSocket>>();
  readonly #httpTransport = new Map<string, { transport: string; atMs: number }>();

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

  /**
   * Notes that `user` used an HTTP transport (SockJS xhr/eventsource/..., CometD long polling):
   * warnings are only written into WebSockets, so such a user cannot be warned there.
   */
  noteHttpTransport(user: string, transport: string, atMs: number): void {
    // re-inserted so the map stays in last-seen order and the oldest entry goes first
    this.#httpTransport.delete(user);
    this.#httpTransport.set(user, { transport, atMs });
    if (this.#httpTransport.size > MAX_HTTP_TRANSPORT_USERS) {
      const oldest = this.#httpTransport.keys().next().value;
      if (oldest !== undefined) this.#httpTransport.delete(oldest);
    }
  }

  /** Where `user` can be warned: the user's notification sockets (those with a framing tracker). */
  reachability(user: string): UserReachability {
    let warnableSockets = 0;
    const unwarnableSockets: Array<{ path: string } & Reachability> = [];
    for (const rec of this.byUser(user)) {
      const reach = rec.framing?.reachability();
      if (reach === undefined) continue;
      if (reach.warnable) warnableSockets++;
      else unwarnableSockets.push({ path: rec.path, ...reach });
    }
    return { warnableSockets, unwarnableSockets, httpTransport: this.#httpTransport.get(user) ?? null };
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
