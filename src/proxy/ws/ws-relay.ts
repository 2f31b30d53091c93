/**
 * Relays one WebSocket pair: client side ("down") <-> upstream side ("up").
 *
 * - Messages travel as received: the Buffer plus its binary flag, so text stays text and binary
 *   stays binary without any decoding.
 * - A socket under inspection (a notification socket) has a RelayInspector: it reads small client
 *   messages (and may cut out an ACK for an injected message) and the server's first messages.
 *   Messages are relayed whole, so anything written into the client socket between two of them
 *   (an injected notification) never lands inside a fragmented message.
 * - Ping/pong is per hop: ws answers pings on each side itself; they are not relayed.
 * - Keep-alive: heartbeat() (called for every pair by one interval, see ws-keepalive.ts) pings
 *   both sides; a side that neither answered nor sent anything since the previous heartbeat is
 *   dead (a peer that vanished without a FIN, or one that stopped reading altogether) and is
 *   terminated, which closes its partner too. A side the relay has paused cannot be read, so it
 *   is not judged while paused.
 * - Back-pressure: when one side has more than maxBufferedBytes queued, the other side's socket
 *   is paused; it resumes once the queue fell to half of that. With a message limit of
 *   maxPayload, memory per direction stays around maxBufferedBytes + maxPayload.
 * - Close codes and reasons travel both ways. 1005 ("no code") and 1006 ("connection lost")
 *   cannot be put in a close frame: 1005 becomes 1000; a lost upstream becomes 1011, a lost
 *   client becomes 1001 (going away), unless an error says better (1009 for an oversized
 *   message or frame, 1007 for bad UTF-8, 1008 for too many fragments, 1002 for other protocol
 *   errors).
 */
import WebSocket from 'ws';
import type { RelayInspector } from '../../notifications/framing/inspector.js';
import type { EarlyMessage } from './ws-upstream.js';

const AS_BINARY = { binary: true } as const;
const AS_TEXT = { binary: false } as const;

const NORMAL_CLOSURE = 1000;
const GOING_AWAY = 1001;
const PROTOCOL_ERROR = 1002;
const NO_STATUS = 1005;
const ABNORMAL = 1006;
const INVALID_PAYLOAD = 1007;
const POLICY_VIOLATION = 1008;
const TOO_BIG = 1009;
const INTERNAL_ERROR = 1011;

const UPSTREAM_LOST_REASON = 'upstream connection lost';
const CLIENT_LOST_REASON = 'client connection lost';

/**
 * ws errors whose close status is not 1002; ws closes the failing side with these itself, and the
 * partner must hear the same. (A length announced beyond 2^53-1 is "too big" as well as one
 * beyond maxPayload.)
 */
const STATUS_BY_WS_ERROR: Readonly<Record<string, number>> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: TOO_BIG,
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: TOO_BIG,
  WS_ERR_INVALID_UTF8: INVALID_PAYLOAD,
  WS_ERR_TOO_MANY_BUFFERED_PARTS: POLICY_VIOLATION,
};

/** the close status an error on a socket stands for, when ws reports it as a protocol failure */
function statusForError(err: Error & { code?: string }): number | undefined {
  const code = err.code;
  if (code === undefined || !code.startsWith('WS_ERR_')) return undefined;
  return STATUS_BY_WS_ERROR[code] ?? PROTOCOL_ERROR;
}

function isSendable(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== NO_STATUS && code !== ABNORMAL) || (code >= 3000 && code <= 4999);
}

export type Side = 'client' | 'upstream';

export interface RelayEvents {
  /** the client side closed (always called once); `code` is what the client side reported */
  onClosed(code: number): void;
  onError(side: Side, err: Error): void;
  /** a side missed a heartbeat and was terminated */
  onUnresponsive(side: Side): void;
}

/** Liveness of one side between two heartbeats. */
class Liveness {
  /** something (a pong or a message) arrived since the last ping */
  heard = true;
  readonly heardFrom = (): void => {
    this.heard = true;
  };
}

export class SocketPair {
  readonly #down: WebSocket;
  readonly #up: WebSocket;
  readonly #highWaterBytes: number;
  readonly #lowWaterBytes: number;
  readonly #events: RelayEvents;
  readonly #inspector: RelayInspector | undefined;
  #downPaused = false;
  #upPaused = false;
  #downErrorStatus: number | undefined;
  #upErrorStatus: number | undefined;
  readonly #downLiveness = new Liveness();
  readonly #upLiveness = new Liveness();

  constructor(down: WebSocket, up: WebSocket, maxBufferedBytes: number, events: RelayEvents, inspector?: RelayInspector) {
    this.#down = down;
    this.#inspector = inspector;
    this.#up = up;
    this.#highWaterBytes = maxBufferedBytes;
    this.#lowWaterBytes = Math.floor(maxBufferedBytes / 2);
    this.#events = events;
    down.on('message', this.#fromDown);
    up.on('message', this.#fromUp);
    down.on('close', this.#downClosed);
    up.on('close', this.#upClosed);
    down.on('error', this.#downFailed);
    up.on('error', this.#upFailed);
    down.on('pong', this.#downLiveness.heardFrom);
    up.on('pong', this.#upLiveness.heardFrom);
  }

  /**
   * One keep-alive round: terminates a side that was pinged last round and has not been heard
   * from since (its partner is then closed as for a lost connection), and pings the others.
   */
  heartbeat(): void {
    if (this.#beat(this.#down, this.#downLiveness, this.#downPaused)) this.#events.onUnresponsive('client');
    else if (this.#beat(this.#up, this.#upLiveness, this.#upPaused)) this.#events.onUnresponsive('upstream');
  }

  /** true when `socket` was found dead and terminated */
  #beat(socket: WebSocket, liveness: Liveness, pausedByRelay: boolean): boolean {
    if (socket.readyState !== WebSocket.OPEN) return false;
    if (pausedByRelay) {
      liveness.heard = true; // its answers cannot be read while paused
      return false;
    }
    if (!liveness.heard) {
      socket.terminate();
      return true;
    }
    liveness.heard = false;
    socket.ping();
    return false;
  }

  /** Passes on what the upstream sent before the pair existed (kept in order). */
  deliverEarly(early: readonly EarlyMessage[]): void {
    for (const m of early) this.#fromUp(m.data, m.isBinary);
  }

  /** The upstream closed before the pair existed: close the client side the same way. */
  upstreamClosedEarly(code: number, reason: Buffer): void {
    this.#upClosed(code, reason);
  }

  /** The upstream was paused while the client side was set up; let it flow. */
  resumeUpstream(): void {
    if (!this.#upPaused) this.#up.resume();
  }

  readonly #fromDown = (message: Buffer, isBinary: boolean): void => {
    this.#downLiveness.heard = true;
    const up = this.#up;
    if (up.readyState !== WebSocket.OPEN) return;
    const inspector = this.#inspector;
    const data = inspector !== undefined && message.length <= inspector.clientLimitBytes ? inspector.clientMessage(message, isBinary) : message;
    if (data === undefined) return;
    up.send(data, isBinary ? AS_BINARY : AS_TEXT, this.#upFlushed);
    if (!this.#downPaused && up.bufferedAmount > this.#highWaterBytes) {
      this.#downPaused = true;
      this.#down.pause();
    }
  };

  readonly #fromUp = (data: Buffer, isBinary: boolean): void => {
    this.#upLiveness.heard = true;
    const down = this.#down;
    if (down.readyState !== WebSocket.OPEN) return;
    if (this.#inspector?.watchesServer === true) this.#inspector.serverMessage(data, isBinary);
    down.send(data, isBinary ? AS_BINARY : AS_TEXT, this.#downFlushed);
    if (!this.#upPaused && down.bufferedAmount > this.#highWaterBytes) {
      this.#upPaused = true;
      this.#up.pause();
    }
  };

  // send callbacks run when a frame left the process, so the queue only shrinks here
  readonly #upFlushed = (): void => {
    if (this.#downPaused && this.#up.bufferedAmount <= this.#lowWaterBytes) {
      this.#downPaused = false;
      this.#down.resume();
    }
  };

  readonly #downFlushed = (): void => {
    if (this.#upPaused && this.#down.bufferedAmount <= this.#lowWaterBytes) {
      this.#upPaused = false;
      this.#up.resume();
    }
  };

  readonly #downClosed = (code: number, reason: Buffer): void => {
    this.#inspector?.closed();
    closeWith(this.#up, code, reason, this.#downErrorStatus, GOING_AWAY, CLIENT_LOST_REASON);
    this.#events.onClosed(code);
  };

  readonly #upClosed = (code: number, reason: Buffer): void => {
    closeWith(this.#down, code, reason, this.#upErrorStatus, INTERNAL_ERROR, UPSTREAM_LOST_REASON);
  };

  readonly #downFailed = (err: Error): void => {
    this.#downErrorStatus ??= statusForError(err);
    this.#events.onError('client', err);
  };

  readonly #upFailed = (err: Error): void => {
    this.#upErrorStatus ??= statusForError(err);
    this.#events.onError('upstream', err);
  };
}

/** Closes `target` because its partner closed with `code`/`reason`. */
function closeWith(target: WebSocket, code: number, reason: Buffer, errorStatus: number | undefined, lostStatus: number, lostReason: string): void {
  const state = target.readyState;
  if (state === WebSocket.CLOSED) return;
  if (state === WebSocket.CONNECTING) {
    target.terminate();
    return;
  }
  // a paused socket would never read the peer's closing frame
  target.resume();
  if (state === WebSocket.CLOSING) return;
  let status: number;
  let text: Buffer | string = reason;
  if (code === NO_STATUS) {
    status = NORMAL_CLOSURE;
  } else if (code === ABNORMAL || !isSendable(code)) {
    status = errorStatus ?? lostStatus;
    text = errorStatus === undefined ? lostReason : '';
  } else {
    status = code;
  }
  try {
    target.close(status, text);
  } catch {
    target.terminate();
  }
}
