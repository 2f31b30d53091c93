/**
 * Pushes notifications into a user's open browser sockets and closes them at logout. It writes
 * into the downstream sockets the proxy registered, so the frames reach every tab in order with
 * the frames relayed from the upstream.
 */
import picomatch from 'picomatch';
import type { WebSocket } from 'ws';
import type { RegisteredSocket, SocketRegistry } from './registry.js';
import { logoutNotification, plainJsonFraming, timeoutNotification, type Framing, type Notification } from './messages.js';

export interface NotifierOptions {
  registry: SocketRegistry;
  /** globs of socket paths that get notifications; empty = every proxied socket of the user */
  notifyPaths: readonly string[];
  framing?: Framing;
  /** how long to wait for a frame to flush before closing anyway */
  closeAfterMs?: number;
}

export const SOCKET_CLOSE_CODE_LOGOUT = 1000;

export class Notifier {
  readonly #registry: SocketRegistry;
  readonly #isNotifyPath: ((path: string) => boolean) | undefined;
  readonly #framing: Framing;
  readonly #closeAfterMs: number;

  constructor(opts: NotifierOptions) {
    this.#registry = opts.registry;
    this.#isNotifyPath = opts.notifyPaths.length > 0 ? picomatch([...opts.notifyPaths], { dot: true }) : undefined;
    this.#framing = opts.framing ?? plainJsonFraming;
    this.#closeAfterMs = opts.closeAfterMs ?? 2000;
  }

  /** Sockets of the user that receive notifications. */
  notifySockets(user: string): RegisteredSocket[] {
    return this.#registry.byUser(user, this.#isNotifyPath);
  }

  /** Sends the timeout warning; returns how many sockets it was written to. */
  warn(user: string, minutesUntilTimeout: number): number {
    return this.#sendAll(this.notifySockets(user), timeoutNotification(minutesUntilTimeout));
  }

  /**
   * Sends the logout notification to the notification sockets, then closes every socket of the
   * user once the frame is flushed. Resolves when all are closed (or the flush wait ran out).
   */
  async logout(user: string, reason?: string): Promise<number> {
    const targets = this.notifySockets(user);
    const all = this.#registry.byUser(user);
    const flushed = targets.map((rec) => this.#send(rec, logoutNotification(reason)));
    const sent = (await Promise.all(flushed)).filter(Boolean).length;
    for (const rec of all) closeQuietly(rec.socket, reason ?? 'Logged out due to session timeout');
    return sent;
  }

  #sendAll(targets: RegisteredSocket[], message: Notification): number {
    let n = 0;
    for (const rec of targets) {
      if (rec.socket.readyState !== rec.socket.OPEN) continue;
      rec.socket.send(this.#framing.encode(message, rec.path), () => undefined);
      n++;
    }
    return n;
  }

  #send(rec: RegisteredSocket, message: Notification): Promise<boolean> {
    if (rec.socket.readyState !== rec.socket.OPEN) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), this.#closeAfterMs);
      rec.socket.send(this.#framing.encode(message, rec.path), (err) => {
        clearTimeout(timer);
        resolve(!err);
      });
    });
  }
}

function closeQuietly(socket: WebSocket, reason: string): void {
  try {
    if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) {
      socket.close(SOCKET_CLOSE_CODE_LOGOUT, reason.slice(0, 120));
    }
  } catch {
    socket.terminate();
  }
}
