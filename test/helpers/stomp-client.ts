/**
 * Real STOMP clients for tests: `@stomp/stompjs` (the library browsers use) over a plain WebSocket
 * or over SockJS framing, recording everything a strict client would complain about.
 *
 *   sockJsOverWs(url, headers)  a WebSocket-like object that speaks SockJS's websocket transport
 *                               (o, h, a[...], c[...]) and records any frame that is not SockJS
 *   connectStomp(t, factory)    an activated stompjs Client with recorders: MESSAGE frames per
 *                               subscription, ERROR frames, unhandled messages/frames, closes
 */
import { Client, type IFrame, type IMessage, type IStompSocket } from '@stomp/stompjs';
import type { Test } from 'tap';
import { WebSocket } from 'ws';

export const STOMP_SUBPROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];

/** SockJS's WebSocket transport on top of `ws`, shaped like a browser WebSocket for stompjs. */
export class SockJsOverWs implements IStompSocket {
  onclose: ((ev?: unknown) => unknown) | null = null;
  onerror: ((ev: unknown) => unknown) | null = null;
  onmessage: ((ev: { data: string }) => unknown) | null = null;
  onopen: ((ev?: unknown) => unknown) | null = null;
  binaryType = 'arraybuffer';
  readyState = 0;
  /** every text frame as received */
  readonly rawFrames: string[] = [];
  /** frames that are not SockJS framing (must stay empty) */
  readonly malformed: string[] = [];
  /** the c[code,reason] frame, if one came */
  closeFrame: { code: number; reason: string } | undefined;
  private readonly ws: WebSocket;

  constructor(readonly url: string, headers: Record<string, string>) {
    this.ws = new WebSocket(url, { headers });
    this.ws.on('message', (data) => this.receive(data.toString()));
    this.ws.on('error', (err) => this.onerror?.(err));
    this.ws.on('close', (code, reason) => {
      this.readyState = 3;
      this.onclose?.(this.closeFrame ?? { code, reason: reason.toString() });
    });
  }

  private receive(text: string): void {
    this.rawFrames.push(text);
    if (text === 'o' && this.readyState === 0) {
      this.readyState = 1;
      this.onopen?.();
    } else if (text === 'h') {
      // heartbeat
    } else if (text.startsWith('a[')) {
      let messages: unknown;
      try { messages = JSON.parse(text.slice(1)); } catch { messages = undefined; }
      if (!Array.isArray(messages) || !messages.every((m) => typeof m === 'string')) {
        this.malformed.push(text);
        return;
      }
      for (const data of messages as string[]) this.onmessage?.({ data });
    } else if (text.startsWith('c[')) {
      const [code, reason] = JSON.parse(text.slice(1)) as [number, string];
      this.closeFrame = { code, reason };
    } else {
      this.malformed.push(text);
    }
  }

  send(data: unknown): void {
    this.ws.send(JSON.stringify([typeof data === 'string' ? data : Buffer.from(data as ArrayBuffer).toString()]));
  }

  close(): void {
    this.readyState = 2;
    this.ws.close();
  }
}

export interface StompRecorder {
  readonly client: Client;
  /** MESSAGE frames per subscription id, oldest first */
  readonly messages: Map<string, IMessage[]>;
  /** ERROR frames, unhandled messages/receipts/frames, socket errors: must stay empty */
  readonly problems: string[];
  readonly closes: Array<{ code: number; reason: string }>;
  /** resolves once CONNECTED arrived */
  readonly connected: Promise<IFrame>;
  /** subscribes and records what arrives for this subscription */
  subscribe(destination: string, headers?: Record<string, string>): string;
}

/** An activated stompjs client (no reconnect) that records what it sees; deactivated in teardown. */
export function connectStomp(t: Test, webSocketFactory: () => IStompSocket): StompRecorder {
  const messages = new Map<string, IMessage[]>();
  const problems: string[] = [];
  const closes: Array<{ code: number; reason: string }> = [];
  let resolveConnected!: (frame: IFrame) => void;
  const connected = new Promise<IFrame>((resolve) => { resolveConnected = resolve; });
  const client = new Client({
    webSocketFactory,
    reconnectDelay: 0,
    heartbeatIncoming: 10_000,
    heartbeatOutgoing: 10_000,
    onConnect: (frame) => resolveConnected(frame),
    onStompError: (frame) => problems.push(`ERROR: ${frame.headers['message'] ?? frame.body}`),
    onUnhandledMessage: (message) => problems.push(`MESSAGE for no subscription: ${message.headers['subscription']}`),
    onUnhandledReceipt: (frame) => problems.push(`unhandled RECEIPT ${frame.headers['receipt-id']}`),
    onUnhandledFrame: (frame) => problems.push(`unhandled frame ${frame.command}`),
    onWebSocketClose: (event: { code: number; reason: string }) => closes.push({ code: event.code, reason: String(event.reason) }),
  });
  client.activate();
  t.teardown(() => client.deactivate({ force: true }));
  return {
    client,
    messages,
    problems,
    closes,
    connected,
    subscribe(destination, headers = {}) {
      const sub = client.subscribe(destination, (message) => {
        const list = messages.get(sub.id) ?? [];
        list.push(message);
        messages.set(sub.id, list);
      }, headers);
      return sub.id;
    },
  };
}

/** A plain WebSocket offering the STOMP sub-protocols (what stompjs does with brokerURL). */
export function stompWebSocket(url: string, headers: Record<string, string>): IStompSocket {
  const ws = new WebSocket(url, STOMP_SUBPROTOCOLS, { headers });
  return ws as unknown as IStompSocket;
}
