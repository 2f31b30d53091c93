/**
 * Pushes notifications into a user's open browser sockets and closes them at logout. It writes
 * into the downstream sockets the proxy registered, so the frames reach every tab in order with
 * the frames relayed from the upstream (whole messages only: the relay never interleaves).
 * Each socket's framing (plain JSON, STOMP MESSAGE, SockJS) encodes the notification for it; a
 * socket that cannot be warned (a STOMP socket without a notification subscription) is skipped.
 */
import picomatch from 'picomatch';
import type { ClientSocket, RegisteredSocket, SocketRegistry } from './registry.js';
import { logoutNotification, timeoutNotification, type Notification } from './messages.js';
import { jsonText } from './framing/json.js';
import { FramingPolicy } from './framing/policy.js';
import { FramingReport } from './framing/report.js';
import type { FramingSetting } from './framing/inspector.js';
import type { FramingTracker } from './framing/tracker.js';

export interface NotifierOptions {
  registry: SocketRegistry;
  /** globs of socket paths that get notifications; empty = every proxied socket of the user */
  notifyPaths: readonly string[];
  /** PROXY_NOTIFY_FRAMING (default auto) */
  framing?: FramingSetting;
  /** PROXY_NOTIFY_DESTINATIONS (default: any destination containing "notification") */
  destinations?: readonly string[];
  /** where what was learned about the sockets is counted */
  report?: FramingReport;
  /** how long to wait for a frame to flush before closing anyway */
  closeAfterMs?: number;
}

export const SOCKET_CLOSE_CODE_LOGOUT = 1000;

export class Notifier {
  readonly #registry: SocketRegistry;
  readonly #isNotifyPath: ((path: string) => boolean) | undefined;
  readonly #framings: FramingPolicy;
  readonly #closeAfterMs: number;

  constructor(opts: NotifierOptions) {
    this.#registry = opts.registry;
    this.#isNotifyPath = opts.notifyPaths.length > 0 ? picomatch([...opts.notifyPaths], { dot: true }) : undefined;
    this.#framings = new FramingPolicy({ setting: opts.framing ?? 'auto', destinations: opts.destinations ?? [], report: opts.report ?? new FramingReport() });
    this.#closeAfterMs = opts.closeAfterMs ?? 2000;
  }

  /**
   * The framing tracker for a new socket, when it is a notification socket (only those are
   * inspected); `protocol` is the sub-protocol the upstream chose ('' for none).
   */
  trackerFor(path: string, protocol: string): FramingTracker | undefined {
    return this.inspects(path) ? this.#framings.trackerFor(path, protocol) : undefined;
  }

  /** true for a notification socket (the only ones inspected) */
  inspects(path: string): boolean {
    return this.#isNotifyPath === undefined || this.#isNotifyPath(path);
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
      const texts = encodeFor(rec, message);
      for (const text of texts) rec.socket.send(text, () => undefined);
      if (texts.length > 0) n++;
    }
    return n;
  }

  /** resolves true once the socket's last notification message was flushed */
  #send(rec: RegisteredSocket, message: Notification): Promise<boolean> {
    if (rec.socket.readyState !== rec.socket.OPEN) return Promise.resolve(false);
    const texts = encodeFor(rec, message);
    if (texts.length === 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), this.#closeAfterMs);
      texts.forEach((text, i) => rec.socket.send(text, i < texts.length - 1 ? undefined : (err) => {
        clearTimeout(timer);
        resolve(!err);
      }));
    });
  }
}

/** the messages that carry `message` on this socket (plain JSON when it has no tracker) */
function encodeFor(rec: RegisteredSocket, message: Notification): string[] {
  return rec.framing === undefined ? [jsonText(message)] : rec.framing.encode(message);
}

function closeQuietly(socket: ClientSocket, reason: string): void {
  try {
    if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) {
      socket.close(SOCKET_CLOSE_CODE_LOGOUT, reason.slice(0, 120));
    }
  } catch {
    socket.terminate();
  }
}
