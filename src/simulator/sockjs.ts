/**
 * Panopticon simulator: the SockJS server side, WebSocket transport only (what `sockjs-client`
 * uses when WebSocket works), written from the SockJS protocol description.
 *
 *   GET <prefix>/info                               {"websocket":true,"cookie_needed":false,...}
 *   GET <prefix>/<server-id>/<session-id>/websocket  frames: o (open), h (heartbeat every
 *                                                    heartbeatMs), a["msg",...] (messages),
 *                                                    c[code,"reason"] (close)
 * The client sends a JSON array of strings (or one JSON string) per WebSocket message. Anything
 * else is broken framing: the session closes at once. HTTP transports (xhr, eventsource, ...) are
 * not offered; `sockjs-client` does not need them when the WebSocket opens.
 */
import { randomInt } from 'node:crypto';
import type { WebSocket } from 'ws';
import type { TextLink } from './stomp-session.js';

export const SOCKJS_HEARTBEAT_MS = 25_000;
const BROKEN_FRAMING_CLOSE = { code: 1002, reason: 'broken SockJS framing' } as const;

/** The /info answer. */
export function sockJsInfo(): Record<string, unknown> {
  return { websocket: true, cookie_needed: false, origins: ['*:*'], entropy: randomInt(2 ** 31) };
}

/** Server and session ids are path segments without dots (SockJS protocol). */
export function validSockJsIds(serverId: string, sessionId: string): boolean {
  return /^[^./]+$/.test(serverId) && /^[^./]+$/.test(sessionId);
}

/** The strings one client message carries, or undefined when it is not SockJS framing. */
export function decodeClientMessage(text: string): string[] | undefined {
  if (text === '') return [];
  let value: unknown;
  try { value = JSON.parse(text); } catch { return undefined; }
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  return undefined;
}

export function encodeMessages(messages: readonly string[]): string {
  return `a${JSON.stringify(messages)}`;
}

export function encodeClose(code: number, reason: string): string {
  return `c${JSON.stringify([code, reason])}`;
}

/** A SockJS session over one WebSocket: a text link for STOMP, closable like a socket. */
export class SockJsSession implements TextLink {
  private readonly heartbeat: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly ws: WebSocket, heartbeatMs: number, private readonly onBrokenFraming: (reason: string) => void) {
    ws.send('o');
    this.heartbeat = setInterval(() => { if (ws.readyState === ws.OPEN) ws.send('h'); }, heartbeatMs);
    ws.once('close', () => { this.closed = true; clearInterval(this.heartbeat); });
  }

  send(text: string): void {
    if (!this.closed && this.ws.readyState === this.ws.OPEN) this.ws.send(encodeMessages([text]));
  }

  /** Sends the SockJS close frame, then ends the WebSocket. */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(encodeClose(code, reason));
    this.ws.close(1000, 'sockjs session closed');
  }

  terminate(): void {
    this.closed = true;
    this.ws.terminate();
  }

  once(event: 'close', listener: () => void): void {
    this.ws.once(event, () => listener());
  }

  onClose(listener: () => void): void {
    this.once('close', listener);
  }

  onText(listener: (data: Buffer) => void): void {
    this.ws.on('message', (data, isBinary) => {
      const messages = isBinary ? undefined : decodeClientMessage(data.toString());
      if (messages === undefined) {
        this.onBrokenFraming('a client message that is not a JSON array of strings');
        this.closed = true;
        this.ws.close(BROKEN_FRAMING_CLOSE.code, BROKEN_FRAMING_CLOSE.reason);
        return;
      }
      for (const message of messages) listener(Buffer.from(message));
    });
  }
}
