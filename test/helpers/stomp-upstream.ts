/**
 * A strict STOMP server for tests, standing in for a Spring-style dashboard server:
 *   - `<context>/stomp`: STOMP 1.2 over a plain WebSocket (sub-protocol `v12.stomp` when offered);
 *   - `<context>/sockjs/<server-id>/<session-id>/websocket`: the same broker inside SockJS
 *     framing (`o`, `a[...]`, `c[...]`), and `<context>/sockjs/info`;
 *   - any other HTTP request: `200 {"ok":true}` (the proxy's logout call, activity requests).
 * Like real brokers it answers an ACK/NACK for a message it never sent, an unknown command or a
 * malformed frame with an ERROR frame and closes the session. Every frame it receives is kept.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';

export interface Frame { command: string; headers: Record<string, string>; body: string }

/**
 * Strict parser of one message's frames (STOMP 1.2, LF or CR LF, heart-beat EOLs between
 * frames). Throws on anything malformed, including trailing bytes that are not a whole frame.
 */
export function parseStrict(text: string): Frame[] {
  const frames: Frame[] = [];
  let pos = 0;
  for (;;) {
    while (text[pos] === '\n' || (text[pos] === '\r' && text[pos + 1] === '\n')) pos += text[pos] === '\r' ? 2 : 1;
    if (pos >= text.length) return frames;
    const headEnd = text.indexOf('\n\n', pos);
    if (headEnd === -1) throw new Error(`frame without end of headers: ${JSON.stringify(text.slice(pos, pos + 80))}`);
    const [command, ...lines] = text.slice(pos, headEnd).split('\n').map((l) => l.replace(/\r$/, ''));
    if (!/^[A-Z]+$/.test(command!)) throw new Error(`bad command line ${JSON.stringify(command)}`);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Error(`bad header line ${JSON.stringify(line)}`);
      const name = line.slice(0, colon);
      if (!(name in headers)) headers[name] = line.slice(colon + 1);
    }
    const bodyStart = headEnd + 2;
    let end: number;
    if (headers['content-length'] !== undefined) {
      const bytes = Buffer.from(text.slice(bodyStart));
      const length = Number(headers['content-length']);
      if (bytes[length] !== 0) throw new Error(`content-length ${length} does not end at a NUL`);
      end = bodyStart + bytes.subarray(0, length).toString().length;
    } else {
      end = text.indexOf('\0', bodyStart);
      if (end === -1) throw new Error('frame without NUL');
    }
    frames.push({ command: command!, headers, body: text.slice(bodyStart, end) });
    pos = end + 1;
  }
}

export function frameText(command: string, headers: Record<string, string>, body = ''): string {
  return `${command}\n${Object.entries(headers).map(([k, v]) => `${k}:${v}`).join('\n')}\n\n${body}\0`;
}

interface Subscription { id: string; destination: string; ack: string }

/** One STOMP session on the server side (plain or inside SockJS). */
export class BrokerSession {
  readonly received: Frame[] = [];
  readonly subscriptions = new Map<string, Subscription>();
  readonly errors: string[] = [];
  readonly #sentAckIds = new Set<string>();
  #nextId = 1;

  constructor(readonly ws: WebSocket, readonly sockjs: boolean, readonly path: string) {}

  /** Sends one MESSAGE to every subscription of `destination`; returns how many. */
  push(destination: string, body: string): number {
    let n = 0;
    for (const sub of this.subscriptions.values()) {
      if (sub.destination !== destination) continue;
      this.sendFrames([this.#message(sub, body)]);
      n++;
    }
    return n;
  }

  /**
   * Sends a MESSAGE to the (first) subscription of `destination` as a fragmented WebSocket
   * message: the first half now, the rest when `finish()` is called.
   */
  pushFragmented(destination: string, body: string): { finish(): void } {
    const sub = [...this.subscriptions.values()].find((s) => s.destination === destination);
    if (sub === undefined) throw new Error(`no subscription to ${destination}`);
    const text = this.#wrap([this.#message(sub, body)]);
    const half = Math.floor(text.length / 2);
    this.ws.send(text.slice(0, half), { fin: false });
    return { finish: () => this.ws.send(text.slice(half), { fin: true }) };
  }

  #message(sub: Subscription, body: string): string {
    const messageId = `srv-${this.#nextId++}`;
    const headers: Record<string, string> = { subscription: sub.id, destination: sub.destination, 'message-id': messageId, 'content-type': 'text/plain' };
    if (sub.ack !== 'auto') {
      headers.ack = `ack-${messageId}`;
      this.#sentAckIds.add(headers.ack);
    }
    return frameText('MESSAGE', headers, body);
  }

  sendFrames(frames: string[]): void {
    this.ws.send(this.#wrap(frames));
  }

  #wrap(frames: string[]): string {
    return this.sockjs ? 'a' + JSON.stringify(frames) : frames.join('');
  }

  /** handles one client WebSocket message */
  onMessage(text: string): void {
    let payloads: string[];
    if (this.sockjs) {
      const parsed = JSON.parse(text) as unknown;
      payloads = typeof parsed === 'string' ? [parsed] : (parsed as string[]);
    } else {
      payloads = [text];
    }
    for (const payload of payloads) {
      let frames: Frame[];
      try {
        frames = parseStrict(payload);
      } catch (err) {
        this.#fail(`malformed frame: ${(err as Error).message}`);
        return;
      }
      for (const f of frames) this.#handle(f);
    }
  }

  #handle(f: Frame): void {
    this.received.push(f);
    switch (f.command) {
      case 'CONNECT':
      case 'STOMP':
        this.sendFrames([frameText('CONNECTED', { version: '1.2', 'heart-beat': '0,0', server: 'test-broker/1' })]);
        return;
      case 'SUBSCRIBE':
        this.subscriptions.set(f.headers.id!, { id: f.headers.id!, destination: f.headers.destination!, ack: f.headers.ack ?? 'auto' });
        return;
      case 'UNSUBSCRIBE':
        this.subscriptions.delete(f.headers.id!);
        return;
      case 'ACK':
      case 'NACK':
        if (!this.#sentAckIds.has(f.headers.id ?? '')) this.#fail(`${f.command} for a message this server never sent: ${f.headers.id}`);
        return;
      case 'SEND':
        return;
      case 'DISCONNECT':
        if (f.headers.receipt !== undefined) this.sendFrames([frameText('RECEIPT', { 'receipt-id': f.headers.receipt })]);
        return;
      default:
        this.#fail(`unknown command ${f.command}`);
    }
  }

  #fail(message: string): void {
    this.errors.push(message);
    this.sendFrames([frameText('ERROR', { message: message.replace(/[\n:]/g, ' ') })]);
    this.ws.close(1002, 'stomp error');
  }
}

export interface StompUpstream {
  readonly url: string;
  readonly sessions: BrokerSession[];
  /** HTTP requests seen: method and path */
  readonly requests: string[];
  /** the first session on a path matching `pattern` not handed out before (already open or future) */
  session(pattern: RegExp): Promise<BrokerSession>;
  close(): Promise<void>;
}

export async function startStompUpstream(context = '/panopticon'): Promise<StompUpstream> {
  const sessions: BrokerSession[] = [];
  const requests: string[] = [];
  const waiters: Array<{ pattern: RegExp; resolve: (s: BrokerSession) => void }> = [];
  const handedOut = new Set<BrokerSession>();
  const sockjsPath = new RegExp(`^${context}/sockjs/[^/.]+/[^/.]+/websocket$`);

  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => (offered.has('v12.stomp') ? 'v12.stomp' : false),
  });
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    requests.push(`${req.method} ${path}`);
    req.resume();
    res.setHeader('content-type', 'application/json');
    if (path === `${context}/sockjs/info`) {
      res.end(JSON.stringify({ websocket: true, cookie_needed: false, origins: ['*:*'], entropy: 42 }));
      return;
    }
    res.end('{"ok":true}');
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0]!;
    const isSockjs = sockjsPath.test(path);
    if (!isSockjs && path !== `${context}/stomp`) {
      socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const session = new BrokerSession(ws, isSockjs, path);
      sessions.push(session);
      ws.on('message', (data) => session.onMessage(String(data)));
      if (isSockjs) ws.send('o');
      const waiter = waiters.find((w) => w.pattern.test(path));
      if (waiter !== undefined) {
        waiters.splice(waiters.indexOf(waiter), 1);
        handedOut.add(session);
        waiter.resolve(session);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    sessions,
    requests,
    session(pattern) {
      const open = sessions.find((s) => !handedOut.has(s) && pattern.test(s.path));
      if (open !== undefined) {
        handedOut.add(open);
        return Promise.resolve(open);
      }
      return new Promise((resolve) => waiters.push({ pattern, resolve }));
    },
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
