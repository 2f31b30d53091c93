/**
 * Real STOMP clients for tests: @stomp/stompjs over a `ws` WebSocket (sub-protocols v12/v11/v10)
 * or over sockjs-client (WebSocket transport), made strict: every raw message the client receives
 * is checked (a valid sequence of STOMP frames; inside SockJS a valid `o`/`h`/`a[...]`/`c[...]`
 * frame whose strings are STOMP frames), and every ERROR frame, unhandled message, unhandled frame
 * or socket error is recorded as a problem.
 */
import { Client, type IMessage, type StompSubscription } from '@stomp/stompjs';
import SockJS from 'sockjs-client';
import WebSocket from 'ws';
import { parseStrict } from './stomp-upstream.js';

export interface StrictStompClient {
  readonly client: Client;
  /** raw WebSocket (or SockJS transport) messages received, in order */
  readonly raw: string[];
  /** anything a strict client would complain about */
  readonly problems: string[];
  /** messages delivered per destination subscribed */
  readonly delivered: Map<string, IMessage[]>;
  subscribe(destination: string, opts?: { ack?: 'auto' | 'client' | 'client-individual'; ackEach?: boolean }): StompSubscription;
  readonly closed: Promise<void>;
  close(): Promise<void>;
}

export interface StrictClientOptions {
  /** ws://host:port/path (plain) or http://host:port/prefix (SockJS) */
  readonly url: string;
  readonly sockjs: boolean;
  readonly headers: Record<string, string>;
}

const STOMP_SUBPROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];
const SERVER_COMMANDS = new Set(['CONNECTED', 'MESSAGE', 'RECEIPT']);

function checkStomp(text: string, problems: string[]): void {
  try {
    for (const f of parseStrict(text)) if (!SERVER_COMMANDS.has(f.command)) problems.push(`server frame ${f.command}: ${JSON.stringify(f.headers)}`);
  } catch (err) {
    problems.push(`malformed STOMP: ${(err as Error).message} in ${JSON.stringify(text.slice(0, 120))}`);
  }
}

function checkSockJs(text: string, problems: string[]): void {
  if (text === 'o' || text === 'h') return;
  const kind = text[0];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.slice(1));
  } catch {
    problems.push(`malformed SockJS frame ${JSON.stringify(text.slice(0, 120))}`);
    return;
  }
  if (kind === 'c' && Array.isArray(parsed)) return;
  if (kind !== 'a' || !Array.isArray(parsed) || !parsed.every((s) => typeof s === 'string')) {
    problems.push(`malformed SockJS frame ${JSON.stringify(text.slice(0, 120))}`);
    return;
  }
  for (const s of parsed as string[]) checkStomp(s, problems);
}

export async function openStrictClient(opts: StrictClientOptions): Promise<StrictStompClient> {
  const raw: string[] = [];
  const problems: string[] = [];
  const delivered = new Map<string, IMessage[]>();
  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => { markClosed = resolve; });

  const factory = (): unknown => {
    if (opts.sockjs) {
      const sock = new SockJS(opts.url, undefined, { transports: ['websocket'], transportOptions: { websocket: { headers: opts.headers } } } as never);
      const internal = sock as unknown as { _transportMessage(msg: string): void };
      const original = internal._transportMessage;
      internal._transportMessage = function (this: unknown, msg: string) {
        raw.push(msg);
        checkSockJs(msg, problems);
        original.call(this, msg);
      };
      return sock;
    }
    const ws = new WebSocket(opts.url, STOMP_SUBPROTOCOLS, { headers: opts.headers });
    ws.on('message', (data) => {
      const text = String(data);
      raw.push(text);
      checkStomp(text, problems);
    });
    return ws;
  };

  const client = new Client({
    webSocketFactory: factory as never,
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
    debug: () => undefined,
    onStompError: (frame) => problems.push(`ERROR frame: ${frame.headers.message ?? ''}`),
    onUnhandledMessage: (m) => problems.push(`unhandled MESSAGE on ${m.headers.subscription}`),
    onUnhandledFrame: (f) => problems.push(`unhandled frame ${f.command}`),
    onUnhandledReceipt: (f) => problems.push(`unhandled RECEIPT ${f.headers['receipt-id']}`),
    onWebSocketError: () => problems.push('socket error'),
    onWebSocketClose: () => markClosed(),
  });
  const connected = new Promise<void>((resolve, reject) => {
    client.onConnect = () => resolve();
    client.onWebSocketClose = () => {
      markClosed();
      reject(new Error(`closed before CONNECTED; problems: ${problems.join('; ')}`));
    };
  });
  client.activate();
  await connected;
  client.onWebSocketClose = () => markClosed();

  return {
    client,
    raw,
    problems,
    delivered,
    closed,
    subscribe(destination, sub = {}) {
      const list: IMessage[] = [];
      delivered.set(destination, list);
      const headers: Record<string, string> = sub.ack === undefined ? {} : { ack: sub.ack };
      return client.subscribe(destination, (m) => {
        list.push(m);
        if (sub.ackEach === true) m.ack();
      }, headers);
    },
    close: () => client.deactivate(),
  };
}
