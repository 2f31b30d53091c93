/**
 * The two small interfaces between a relay and the framing of one socket under inspection (a
 * notification socket). Whatever the relay looks like (whole `ws` messages today, raw frames
 * later), it only has to:
 *   - hand over client→server text messages no larger than `clientLimitBytes` (bigger ones are
 *     data, forwarded unread) and forward what comes back;
 *   - hand over complete server→client messages while `watchesServer` is true (the handshake's
 *     first frames), and after that only know where each message ends;
 *   - write what `encode` returns between two whole server messages, never inside one.
 */
import type { Notification } from '../messages.js';

export type FramingName = 'json' | 'stomp' | 'sockjs-json' | 'sockjs-stomp';
/** PROXY_NOTIFY_FRAMING: detect per socket, or one framing for every notification socket */
export type FramingSetting = 'auto' | FramingName;
export const FRAMING_SETTINGS: readonly FramingSetting[] = ['auto', 'json', 'stomp', 'sockjs-json', 'sockjs-stomp'];

/** what a relay consults for a socket under inspection */
export interface RelayInspector {
  /** client messages larger than this are never read (control frames are small) */
  readonly clientLimitBytes: number;
  /** false once no client message needs to be read any more (a socket decided to be plain JSON): they pass unread */
  readonly watchesClient: boolean;
  /** how many payload bytes `passesUnread` needs to see (fewer when the message is shorter) */
  readonly clientPeekBytes: number;
  /**
   * True when a client text message opening with `head` (its first clientPeekBytes bytes,
   * unmasked) would be forwarded unread anyway (a STOMP SEND): it may pass as bytes, unheld.
   */
  passesUnread(head: Buffer): boolean;
  /** true while server messages are still needed (open frame, CONNECTED) */
  readonly watchesServer: boolean;
  /** A whole client→server message; returns what to forward (itself, rewritten, or undefined to drop it). */
  clientMessage(data: Buffer, isBinary: boolean): Buffer | undefined;
  /** A whole server→client message, while watchesServer. */
  serverMessage(data: Buffer, isBinary: boolean): void;
  /** the socket closed */
  closed(): void;
}

export type Reachability =
  | { readonly framing: FramingName; readonly warnable: true }
  | { readonly framing: FramingName | 'pending'; readonly warnable: false; readonly reason: UnwarnableReason };

export type UnwarnableReason = 'no-notification-subscription' | 'handshake-pending';

/** what the notifier asks of a socket */
export interface NotificationTarget {
  /** The WebSocket text messages that carry `notification` here, in order; empty = cannot be warned here. */
  encode(notification: Notification): string[];
  reachability(): Reachability;
}

/** what a socket's framing tells the report (per path shape) */
export interface FramingObserver {
  detected(framing: FramingName): void;
  subscribed(destination: string): void;
  injected(messages: number): void;
  unwarnable(): void;
}
