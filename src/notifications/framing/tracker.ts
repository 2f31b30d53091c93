/**
 * The framing of one socket under inspection: decides what the socket speaks, follows what must
 * be followed, and encodes notifications for it.
 *
 * `auto` decides per socket:
 *   - SockJS when the path looks like `<prefix>/<server-id>/<session-id>/websocket` AND the
 *     server's first message is `o` (until then the socket cannot be warned);
 *   - STOMP when the negotiated sub-protocol is `v10.stomp`/`v11.stomp`/`v12.stomp`, or when the
 *     client's first message (inside SockJS: its first string) is a CONNECT or STOMP frame;
 *   - plain JSON otherwise (also before the client said anything: today's behaviour).
 * An explicit setting skips the detection (STOMP subscriptions are still followed).
 *
 * Cost: server messages are looked at only until the open frame and the STOMP version are known
 * (at most MAX_WATCHED_SERVER_MESSAGES); client messages only when they are small text messages,
 * and on a plain-JSON socket not at all once it is decided.
 */
import type { Notification } from '../messages.js';
import type { FramingName, FramingObserver, FramingSetting, NotificationTarget, Reachability, RelayInspector } from './inspector.js';
import { jsonText } from './json.js';
import * as sockjs from './sockjs.js';
import { isConnectFrame, opensWithFollowedFrame, versionOfSubprotocol } from './stomp.js';
import { StompSession } from './stomp-session.js';


/** client messages above this are data (SEND bodies), never control frames worth reading */
export const CLIENT_CONTROL_LIMIT_BYTES = 4096;
const MAX_WATCHED_SERVER_MESSAGES = 16;

export interface TrackerOptions {
  readonly setting: FramingSetting;
  readonly path: string;
  /** the sub-protocol the upstream chose ('' for none) */
  readonly protocol: string;
  readonly isNotificationDestination: (destination: string) => boolean;
  readonly observer: FramingObserver;
}

export class FramingTracker implements RelayInspector, NotificationTarget {
  readonly clientLimitBytes = CLIENT_CONTROL_LIMIT_BYTES;
  /** `["SEND` (inside SockJS) and one byte more: enough for isDataMessage */
  readonly clientPeekBytes = 7;
  watchesServer = false;
  readonly #opts: TrackerOptions;
  /** undefined while waiting for the server's first message on a SockJS-shaped path */
  #sockjs: boolean | undefined;
  /** the client's first message decides STOMP vs JSON (unless already known) */
  #innerDecided = false;
  #stomp: StompSession | undefined;
  #watched = 0;
  #reported = false;
  #reportedUnwarnable = false;

  constructor(opts: TrackerOptions) {
    this.#opts = opts;
    const { setting, path, protocol } = opts;
    const version = versionOfSubprotocol(protocol);
    if (setting === 'auto') {
      this.#sockjs = sockjs.isSessionPath(path) ? undefined : false;
      if (version !== undefined) this.#startStomp(version);
    } else {
      this.#sockjs = setting.startsWith('sockjs-');
      if (setting.endsWith('stomp')) this.#startStomp(version);
      else this.#innerDecided = true;
    }
    this.#updateWatch();
  }

  /** client messages matter until the inner framing is known, and on STOMP sockets (SUBSCRIBE, ACK) */
  get watchesClient(): boolean {
    return !this.#innerDecided || this.#stomp !== undefined;
  }

  get framing(): FramingName | 'pending' {
    if (this.#sockjs === undefined) return 'pending';
    const inner = this.#stomp === undefined ? 'json' : 'stomp';
    return this.#sockjs ? `sockjs-${inner}` : inner;
  }

  /** decided plain JSON, or a STOMP SEND: looked at by its first bytes only */
  passesUnread(head: Buffer): boolean {
    return this.#innerDecided && (this.#stomp === undefined || isDataMessage(head, this.#sockjs === true));
  }

  clientMessage(data: Buffer, isBinary: boolean): Buffer | undefined {
    if (isBinary || data.length > CLIENT_CONTROL_LIMIT_BYTES || this.passesUnread(data)) return data;
    const text = data.toString();
    if (!this.#sockjs) {
      const kept = this.#follow(text);
      if (kept === text) return data;
      return kept === '' ? undefined : Buffer.from(kept);
    }
    const strings = sockjs.clientMessages(text);
    if (strings === undefined) return data;
    let changed = false;
    const kept: string[] = [];
    for (const s of strings) {
      const k = this.#follow(s);
      if (k !== s) changed = true;
      if (k !== '' || s === '') kept.push(k);
    }
    if (!changed) return data;
    return kept.length === 0 ? undefined : Buffer.from(sockjs.encodeClientMessages(kept));
  }

  /** the part of one client payload to forward */
  #follow(payload: string): string {
    if (!this.#innerDecided && payload.length > 0) {
      this.#innerDecided = true;
      if (isConnectFrame(payload)) this.#startStomp(undefined);
      else this.#settle();
      this.#updateWatch();
    }
    const stomp = this.#stomp;
    if (stomp === undefined || !opensWithFollowedFrame(payload)) return payload;
    const kept = stomp.followClient(payload);
    this.#updateWatch();
    return kept;
  }

  serverMessage(data: Buffer, isBinary: boolean): void {
    this.#watched++;
    if (this.#sockjs === undefined) {
      this.#sockjs = !isBinary && sockjs.isOpenFrame(data);
      if (this.#stomp !== undefined) this.#settle();
    } else if (!isBinary && this.#stomp?.wantsServerFrames) {
      const text = data.toString();
      if (this.#sockjs) for (const s of sockjs.serverMessages(text) ?? []) this.#stomp.serverFrame(s);
      else this.#stomp.serverFrame(text);
    }
    this.#updateWatch();
  }

  closed(): void {
    if (this.#sockjs !== undefined) this.#settle();
  }

  encode(notification: Notification): string[] {
    const reach = this.reachability();
    this.#settle();
    if (!reach.warnable) {
      if (!this.#reportedUnwarnable) this.#opts.observer.unwarnable();
      this.#reportedUnwarnable = true;
      return [];
    }
    const body = jsonText(notification);
    const payloads = this.#stomp === undefined ? [body] : this.#stomp.encode(body);
    const messages = this.#sockjs ? [sockjs.encodeServerMessages(payloads)] : payloads;
    this.#opts.observer.injected(payloads.length);
    return messages;
  }

  reachability(): Reachability {
    const framing = this.framing;
    if (framing === 'pending') return { framing, warnable: false, reason: 'handshake-pending' };
    if (this.#stomp !== undefined && this.#stomp.notificationSubscriptions === 0) return { framing, warnable: false, reason: 'no-notification-subscription' };
    return { framing, warnable: true };
  }

  #startStomp(version: ReturnType<typeof versionOfSubprotocol>): void {
    this.#innerDecided = true;
    this.#stomp = new StompSession(version, this.#opts.isNotificationDestination, { subscribed: (d) => this.#opts.observer.subscribed(d) });
    if (this.#sockjs !== undefined) this.#settle();
  }

  /** tells the report the framing once it is known (idempotent) */
  #settle(): void {
    const framing = this.framing;
    if (this.#reported || framing === 'pending') return;
    this.#reported = true;
    this.#opts.observer.detected(framing);
  }

  #updateWatch(): void {
    this.watchesServer = this.#watched < MAX_WATCHED_SERVER_MESSAGES && (this.#sockjs === undefined || this.#stomp?.wantsServerFrames === true);
  }
}

/** `SEND` as bytes */
const SEND_BYTES = [0x53, 0x45, 0x4e, 0x44];

/** a client STOMP message that opens with SEND: data, not worth decoding (checked on the bytes) */
function isDataMessage(data: Buffer, sockjs: boolean): boolean {
  // inside SockJS the frame follows `["`
  const at = sockjs ? 2 : 0;
  if (data.length <= at + SEND_BYTES.length) return false;
  for (let i = 0; i < SEND_BYTES.length; i++) if (data[at + i] !== SEND_BYTES[i]) return false;
  return true;
}
