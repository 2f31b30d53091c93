/**
 * Panopticon simulator: one STOMP 1.2 session, as a Spring message broker would run it, over any
 * text link (a plain WebSocket or a SockJS session).
 *
 *   CONNECT/STOMP  → CONNECTED (version 1.2, heart-beat negotiated, user-name)
 *   SUBSCRIBE      /topic/data/**   → a MESSAGE with a live sales figure every dataIntervalMs
 *                  anything else (e.g. /user/queue/notifications) → accepted, the server sends nothing
 *   UNSUBSCRIBE, SEND, BEGIN/COMMIT/ABORT, DISCONNECT (+ receipt) as the specification says
 *   ACK/NACK       only for a message this server sent with an `ack` header and not yet acknowledged
 *
 * Strict: a malformed frame, a frame before CONNECT, a missing header, a duplicate or unknown
 * subscription id, or an ACK/NACK for an unknown message id gets an ERROR frame and the session
 * ends (each one is recorded as a protocol error for the tests to read).
 */
import { randomUUID } from 'node:crypto';
import { StompReader, StompSyntaxError, encodeFrame, type StompFrame } from './stomp-frames.js';
import { nextSalesValue } from './sockets.js';

/** What a STOMP session needs from the transport under it. */
export interface TextLink {
  send(text: string): void;
  /** ends the transport (after an ERROR, a DISCONNECT, or a logout) */
  close(code: number, reason: string): void;
  onText(listener: (data: Buffer) => void): void;
  onClose(listener: () => void): void;
}

export interface StompSessionOptions {
  username: string;
  dataIntervalMs: number;
  /** the server's heart-beat offer (ms); 0 = none */
  heartBeatMs: number;
  /** called with the reason of every ERROR frame this session sends */
  onProtocolError(reason: string): void;
}

export const DATA_DESTINATION_PREFIX = '/topic/data/';
const ACK_MODES = new Set(['auto', 'client', 'client-individual']);
const PROTOCOL_ERROR_CLOSE = { code: 1002, reason: 'STOMP protocol error' } as const;

interface Subscription {
  readonly destination: string;
  readonly ack: string;
}

class StompError extends Error {}

function need(frame: StompFrame, name: string): string {
  const value = frame.headers[name];
  if (value === undefined || value === '') throw new StompError(`${frame.command} without a "${name}" header`);
  return value;
}

/** Negotiated interval: 0 when either side does not want it, else the larger of the two. */
function negotiate(mine: number, theirs: number): number {
  return mine === 0 || theirs === 0 ? 0 : Math.max(mine, theirs);
}

export class StompSession {
  private readonly reader = new StompReader();
  private readonly subscriptions = new Map<string, Subscription>();
  /** message ids sent with an `ack` header and not yet acknowledged */
  private readonly awaitingAck = new Set<string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private connected = false;
  private ended = false;
  private salesValue = 1000 + Math.round(Math.random() * 200);
  private messageCount = 0;
  private readonly sessionId = randomUUID();

  constructor(private readonly link: TextLink, private readonly opts: StompSessionOptions) {
    link.onText((data) => this.receive(data));
    link.onClose(() => this.stop());
  }

  private receive(data: Buffer): void {
    if (this.ended) return;
    try {
      for (const frame of this.reader.push(data)) {
        this.handle(frame);
        if (this.ended) return;
      }
    } catch (err) {
      if (err instanceof StompError || err instanceof StompSyntaxError) this.fail(err.message);
      else throw err;
    }
  }

  private handle(frame: StompFrame): void {
    if (!this.connected && frame.command !== 'CONNECT' && frame.command !== 'STOMP') throw new StompError(`${frame.command} before CONNECT`);
    switch (frame.command) {
      case 'CONNECT':
      case 'STOMP': return this.connect(frame);
      case 'SUBSCRIBE': this.subscribe(frame); break;
      case 'UNSUBSCRIBE':
        if (!this.subscriptions.delete(need(frame, 'id'))) throw new StompError(`UNSUBSCRIBE of unknown subscription id ${JSON.stringify(frame.headers['id'])}`);
        break;
      case 'ACK':
      case 'NACK': {
        const id = need(frame, 'id');
        if (!this.awaitingAck.delete(id)) throw new StompError(`${frame.command} for unknown message id ${JSON.stringify(id)}`);
        break;
      }
      case 'SEND': need(frame, 'destination'); break;
      case 'BEGIN': case 'COMMIT': case 'ABORT': need(frame, 'transaction'); break;
      case 'DISCONNECT':
        this.receipt(frame);
        this.link.close(1000, 'disconnected');
        this.stop();
        return;
    }
    this.receipt(frame);
  }

  private receipt(frame: StompFrame): void {
    const receipt = frame.headers['receipt'];
    if (receipt !== undefined) this.link.send(encodeFrame('RECEIPT', { 'receipt-id': receipt }));
  }

  private connect(frame: StompFrame): void {
    if (this.connected) throw new StompError('second CONNECT on one session');
    const versions = (frame.headers['accept-version'] ?? '1.0').split(',').map((v) => v.trim());
    if (!versions.includes('1.2')) throw new StompError(`this server speaks STOMP 1.2; the client accepts ${versions.join(',')}`);
    const [cx, cy] = (frame.headers['heart-beat'] ?? '0,0').split(',').map((v) => Number(v.trim()));
    if (!Number.isInteger(cx) || !Number.isInteger(cy) || cx! < 0 || cy! < 0) throw new StompError(`bad heart-beat header ${JSON.stringify(frame.headers['heart-beat'])}`);
    this.connected = true;
    const serverBeat = this.opts.heartBeatMs;
    this.link.send(encodeFrame('CONNECTED', {
      version: '1.2',
      'heart-beat': `${serverBeat},${serverBeat}`,
      server: 'PanopticonSimulator/1.0',
      session: this.sessionId,
      'user-name': this.opts.username,
    }));
    const sendEveryMs = negotiate(serverBeat, cy!);
    if (sendEveryMs > 0) this.every(sendEveryMs, () => this.link.send('\n'));
    this.every(this.opts.dataIntervalMs, () => this.pushData());
  }

  private subscribe(frame: StompFrame): void {
    const id = need(frame, 'id');
    const destination = need(frame, 'destination');
    const ack = frame.headers['ack'] ?? 'auto';
    if (!ACK_MODES.has(ack)) throw new StompError(`unknown ack mode ${JSON.stringify(ack)}`);
    if (this.subscriptions.has(id)) throw new StompError(`subscription id ${JSON.stringify(id)} is already in use`);
    this.subscriptions.set(id, { destination, ack });
  }

  private pushData(): void {
    this.salesValue = nextSalesValue(this.salesValue);
    const body = JSON.stringify({ tile: 'sales', value: this.salesValue, at: new Date().toISOString() });
    for (const [id, sub] of this.subscriptions) {
      if (!sub.destination.startsWith(DATA_DESTINATION_PREFIX)) continue;
      this.messageCount += 1;
      const messageId = `${this.sessionId}-${this.messageCount}`;
      const headers: Record<string, string> = { destination: sub.destination, 'message-id': messageId, subscription: id, 'content-type': 'application/json' };
      if (sub.ack !== 'auto') {
        headers['ack'] = messageId;
        this.awaitingAck.add(messageId);
      }
      this.link.send(encodeFrame('MESSAGE', headers, body));
    }
  }

  private fail(reason: string): void {
    this.opts.onProtocolError(reason);
    this.link.send(encodeFrame('ERROR', { message: reason.slice(0, 200), 'content-type': 'text/plain' }, reason));
    this.link.close(PROTOCOL_ERROR_CLOSE.code, PROTOCOL_ERROR_CLOSE.reason);
    this.stop();
  }

  private every(ms: number, fn: () => void): void {
    this.timers.push(setInterval(() => { if (!this.ended) fn(); }, ms));
  }

  private stop(): void {
    this.ended = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers.length = 0;
  }
}
