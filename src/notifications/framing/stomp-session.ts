/**
 * One STOMP session seen by the proxy: which of the client's subscriptions are notification
 * subscriptions, and the MESSAGE frames to inject on them.
 *
 * - SUBSCRIBE/UNSUBSCRIBE are followed by id; only destinations the notification rule accepts
 *   are kept, so nothing is ever injected into a data subscription.
 * - ACK/NACK for an injected message are cut out of the client's message: the server never sent
 *   that message and may answer an unknown id with ERROR and close the session. In `client`
 *   (cumulative) mode the server's own messages before the injected one are acknowledged by the
 *   client's next ACK of a real message, as the mode intends.
 */
import { randomBytes } from 'node:crypto';
import { encodeMessage, parseFrames, versionOfHeader, type StompFrame, type StompVersion } from './stomp.js';

export interface StompObserver {
  subscribed(destination: string): void;
}

interface NotificationSubscription {
  readonly destination: string;
  /** `client`/`client-individual` subscriptions get an `ack` header (1.2) */
  readonly acked: boolean;
}

/** injected ids remembered for ACK/NACK filtering (a client acknowledges soon or never) */
const REMEMBERED_IDS = 256;
const PROCESS_TAG = randomBytes(4).toString('hex');
let nextMessageNumber = 1;

export class StompSession {
  #version: StompVersion;
  /** true once the version came from the handshake or CONNECTED (not a guess from CONNECT) */
  #versionSettled: boolean;
  readonly #isNotification: (destination: string) => boolean;
  readonly #observer: StompObserver;
  readonly #subscriptions = new Map<string, NotificationSubscription>();
  readonly #injectedIds = new Set<string>();

  constructor(version: StompVersion | undefined, isNotification: (destination: string) => boolean, observer: StompObserver) {
    this.#version = version ?? '1.2';
    this.#versionSettled = version !== undefined;
    this.#isNotification = isNotification;
    this.#observer = observer;
  }

  get notificationSubscriptions(): number {
    return this.#subscriptions.size;
  }

  /** true while the server's CONNECTED frame is still needed to learn the version */
  get wantsServerFrames(): boolean {
    return !this.#versionSettled;
  }

  /** Reads a server frame while the version is unknown (only CONNECTED matters). */
  serverFrame(text: string): void {
    if (!text.startsWith('CONNECTED')) return;
    const frame = parseFrames(text, '1.0')[0];
    if (frame === undefined || frame.command !== 'CONNECTED') return;
    this.#version = versionOfHeader(frame.headers.get('version'));
    this.#versionSettled = true;
  }

  /**
   * Follows the frames of one client message. Returns the text to forward: `text` itself when
   * nothing was cut out, the remaining frames otherwise ('' = nothing left to forward).
   */
  followClient(text: string): string {
    const frames = parseFrames(text, this.#version);
    let cut: StompFrame[] | undefined;
    for (const frame of frames) {
      if (this.#follow(frame)) (cut ??= []).push(frame);
    }
    if (cut === undefined) return text;
    let out = '';
    let pos = 0;
    for (const frame of cut) {
      out += text.slice(pos, frame.start);
      pos = frame.end;
    }
    out += text.slice(pos);
    return out.replace(/^[\r\n]+$/, '');
  }

  /** true when the frame must not reach the server */
  #follow(frame: StompFrame): boolean {
    const h = frame.headers;
    switch (frame.command) {
      case 'CONNECT':
      case 'STOMP':
        if (!this.#versionSettled) this.#version = versionOfHeader(h.get('accept-version'));
        return false;
      case 'SUBSCRIBE': {
        const id = h.get('id') ?? h.get('destination');
        const destination = h.get('destination');
        if (id === undefined || destination === undefined) return false;
        this.#observer.subscribed(destination);
        if (this.#isNotification(destination)) {
          const ack = h.get('ack');
          this.#subscriptions.set(id, { destination, acked: ack === 'client' || ack === 'client-individual' });
        } else {
          this.#subscriptions.delete(id);
        }
        return false;
      }
      case 'UNSUBSCRIBE': {
        const id = h.get('id') ?? h.get('destination');
        if (id !== undefined) this.#subscriptions.delete(id);
        return false;
      }
      case 'ACK':
      case 'NACK':
        return this.#isInjected(h.get('id')) || this.#isInjected(h.get('message-id'));
      default:
        return false;
    }
  }

  #isInjected(id: string | undefined): boolean {
    return id !== undefined && this.#injectedIds.has(id);
  }

  /** One MESSAGE frame per notification subscription, each with a fresh message-id. */
  encode(body: string): string[] {
    const frames: string[] = [];
    for (const [subscription, sub] of this.#subscriptions) {
      const messageId = `session-timeout-proxy-${PROCESS_TAG}-${nextMessageNumber++}`;
      this.#remember(messageId);
      const ack = sub.acked && this.#version === '1.2' ? messageId : undefined;
      frames.push(encodeMessage({ subscription, destination: sub.destination, messageId, ack, body }, this.#version));
    }
    return frames;
  }

  #remember(id: string): void {
    this.#injectedIds.add(id);
    if (this.#injectedIds.size > REMEMBERED_IDS) {
      const oldest = this.#injectedIds.values().next().value;
      if (oldest !== undefined) this.#injectedIds.delete(oldest);
    }
  }
}
