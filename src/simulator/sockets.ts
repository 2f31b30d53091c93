/**
 * Panopticon simulator: the WebSockets of the JSON personality and the bookkeeping that closes
 * every socket (JSON, STOMP, SockJS) on logout.
 *
 *   <context>/server/ws/notifications  sends nothing by itself; answers a text "ping" with "pong"
 *   <context>/server/ws/data           pushes {"tile":"sales","value":n,"at":iso} every dataIntervalMs
 * (the STOMP personalities are in stomp-routes.ts)
 */
import type { WebSocket } from 'ws';
import type { TextLink } from './stomp-session.js';

export type SocketKind = 'notifications' | 'data' | 'stomp';

/** What the registry needs to end a socket: a WebSocket, or a SockJS session over one. */
export interface ClosableSocket {
  close(code: number, reason: string): void;
  terminate(): void;
  once(event: 'close', listener: () => void): unknown;
}

/** Close code and reason used when the socket's login ends. */
export const LOGGED_OUT_CLOSE = { code: 4001, reason: 'logged out' } as const;

interface Tracked {
  readonly kind: SocketKind;
  readonly username: string;
  /** undefined for sockets opened with Basic credentials */
  readonly loginId: string | undefined;
}

export class SocketRegistry {
  private readonly open = new Map<ClosableSocket, Tracked>();

  add(ws: ClosableSocket, info: Tracked): void {
    this.open.set(ws, info);
    ws.once('close', () => this.open.delete(ws));
  }

  private closeWhere(match: (info: Tracked) => boolean): number {
    let closed = 0;
    for (const [ws, info] of this.open) {
      if (!match(info)) continue;
      this.open.delete(ws);
      ws.close(LOGGED_OUT_CLOSE.code, LOGGED_OUT_CLOSE.reason);
      closed += 1;
    }
    return closed;
  }

  closeLogin(loginId: string): number {
    return this.closeWhere((info) => info.loginId === loginId);
  }

  closeUser(username: string): number {
    return this.closeWhere((info) => info.username === username);
  }

  /** Drops every socket without a closing handshake (the server "crashed"). */
  terminateAll(): void {
    for (const ws of this.open.keys()) ws.terminate();
    this.open.clear();
  }

  /** Polite close of everything (shutdown); stragglers are cut after closeWaitMs. */
  closeAll(code: number, reason: string, closeWaitMs: number): void {
    for (const ws of this.open.keys()) {
      ws.close(code, reason);
      setTimeout(() => ws.terminate(), closeWaitMs).unref();
    }
    this.open.clear();
  }

  counts(): Record<SocketKind, number> {
    const out: Record<SocketKind, number> = { notifications: 0, data: 0, stomp: 0 };
    for (const info of this.open.values()) out[info.kind] += 1;
    return out;
  }
}

/** A slowly wandering sales figure for the live tile. */
export function nextSalesValue(previous: number): number {
  const step = Math.round((Math.random() - 0.5) * 40);
  return Math.max(0, previous + step);
}

export function startDataFeed(ws: WebSocket, dataIntervalMs: number): void {
  let value = 1000 + Math.round(Math.random() * 200);
  const timer = setInterval(() => {
    if (ws.readyState !== ws.OPEN) return;
    value = nextSalesValue(value);
    ws.send(JSON.stringify({ tile: 'sales', value, at: new Date().toISOString() }));
  }, dataIntervalMs);
  ws.once('close', () => clearInterval(timer));
}

export function answerPings(ws: WebSocket): void {
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.toString() === 'ping') ws.send('pong');
  });
}

/** A plain WebSocket as a text link (STOMP directly over WebSocket). */
export function webSocketLink(ws: WebSocket): TextLink {
  return {
    send: (text) => { if (ws.readyState === ws.OPEN) ws.send(text); },
    close: (code, reason) => ws.close(code, reason),
    onText: (listener) => ws.on('message', (data) => listener(Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer))),
    onClose: (listener) => ws.once('close', () => listener()),
  };
}
