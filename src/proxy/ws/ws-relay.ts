/**
 * Relays one WebSocket pair as bytes, after both handshakes: client side ("down") <-> upstream
 * side ("up"). Frames pass unchanged — client frames stay masked (the proxy is the upstream's
 * client, and a masked frame is what a client sends), server frames stay unmasked, compressed
 * frames stay compressed — and the proxy reads frame headers only:
 *   - limits: a message above maxMessageBytes closes both sides with 1009; frames RFC 6455
 *     forbids (unmasked from the client, masked from the server, unknown opcode, RSV bits without
 *     an extension, oversized or fragmented control frames, a continuation out of place) with 1002;
 *   - message boundaries, so a frame the proxy writes itself (a notification, a keep-alive ping,
 *     a close) never lands inside a frame, and a data frame never inside a fragmented message;
 *   - close frames: forwarded; nothing that follows one is forwarded. A side that goes away
 *     without one gets its partner a close (1001 toward the upstream, 1011 toward the client).
 * On a socket under inspection (a notification socket) the client's small, whole text frames are
 * held until complete, unmasked and shown to the inspector (which may cut an ACK out) while it
 * watches the client (not at all on a socket decided to be plain JSON) — except those whose first
 * few payload bytes (the only ones unmasked) show a message it does not read (a STOMP SEND):
 * they pass as bytes. The server's first
 * whole messages are shown while it watches. Nothing else is unmasked or decoded. What one read
 * yields is written to the partner corked (one writev, however many frames were held or injected).
 * A plain-TCP upstream reads into a reused buffer (shared-reads.ts): what the relay keeps of a
 * chunk past onData is copied, and a chunk whose written bytes are still queued is not reused.
 * Back-pressure: a side whose partner has more than maxBufferedBytes queued is paused until the
 * partner drained. Keep-alive: heartbeat() pings both sides (between frames); a side not heard
 * from since the previous heartbeat is dropped.
 */
import type { Socket } from 'node:net';
import type { RelayInspector } from '../../notifications/framing/inspector.js';
import type { SharedReads } from './shared-reads.js';
import {
  closeCodeOf, closePayload, encodeFrame, isControl, isKnownOpcode, payloadOf, readHeader, unmaskedHead, FrameHeader,
  OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_TEXT,
} from './frames.js';

export type Side = 'client' | 'upstream';

export interface RelayEvents {
  /** the client side closed (always called once); `code` is what the client side reported */
  onClosed(code: number): void;
  onError(side: Side, err: Error): void;
  /** a side missed a heartbeat and was terminated */
  onUnresponsive(side: Side): void;
}

const GOING_AWAY = 1001;
const PROTOCOL_ERROR = 1002;
const INVALID_PAYLOAD = 1007;
const POLICY_VIOLATION = 1008;
const TOO_BIG = 1009;
const INTERNAL_ERROR = 1011;
/** server messages larger than this are not shown to a watching inspector */
const WATCH_LIMIT_BYTES = 64 * 1024;
/** how long a side may take to close after the closing handshake started */
const CLOSE_GRACE_MS = 1000;
const EMPTY = Buffer.alloc(0);

export interface RawPairOptions {
  readonly maxMessageBytes: number;
  readonly maxBufferedBytes: number;
  /** permessage-deflate was negotiated: RSV1 is allowed on the first frame of a data message */
  readonly deflate: boolean;
  readonly inspector: RelayInspector | undefined;
  /** the upstream socket reads into one reused buffer (plain TCP); undefined: its 'data' events */
  readonly upstreamReads: SharedReads | undefined;
}

interface Queued { readonly frame: Buffer; readonly control: boolean; readonly cb: ((err?: Error | null) => void) | undefined }

/** One direction: bytes from `source` to `target`. */
class Direction {
  #partial: Buffer | undefined;
  /** the header of the frame being relayed (the slot below), undefined between frames */
  #header: FrameHeader | undefined;
  readonly #slot = new FrameHeader();
  #remaining = 0;
  #inMessage = false;
  #messageBytes = 0;
  /** bytes of a frame held for the inspector (client side) */
  #held: Buffer[] | undefined;
  /** payload copy of a server message shown to a watching inspector */
  #watched: Buffer[] | undefined;
  /** a close frame's payload being collected */
  #closing: Buffer[] | undefined;
  readonly #queue: Queued[] = [];
  /** the source sent a close frame (its code); nothing after it is forwarded */
  closeCode: number | undefined;
  /** a close frame was handed to the target (by the source or the proxy, maybe still queued) */
  closeWritten = false;
  /** a close frame went out: nothing more is written */
  #closeOut = false;
  /** a frame other than a ping arrived since the last heartbeat */
  heard = true;
  paused = false;

  constructor(
    readonly source: Socket,
    readonly target: Socket,
    readonly fromClient: boolean,
    readonly pair: RawPair,
    /** chunks come from a reused read buffer: bytes kept past onData (other than queued writes) are copied */
    readonly sharedReads: boolean,
  ) {}

  /** true between frames (and, for data, between messages) */
  #atBoundary(control: boolean): boolean {
    return this.#remaining === 0 && this.#partial === undefined && this.#held === undefined && this.#header === undefined && (control || !this.#inMessage);
  }

  /** Writes a frame of the proxy's own at the next place it may go. */
  inject(frame: Buffer, control: boolean, cb?: (err?: Error | null) => void): void {
    if (this.closeWritten) {
      cb?.(new Error('closing'));
      return;
    }
    const close = frame[0] === (0x80 | OP_CLOSE);
    if (close) this.closeWritten = true;
    if (this.#queue.length === 0 && this.#atBoundary(control)) {
      this.#write(frame, cb);
      if (close) this.#closeOut = true;
    } else {
      this.#queue.push({ frame, control, cb });
    }
  }

  #flushQueue(): void {
    while (this.#queue.length > 0 && this.#atBoundary(this.#queue[0]!.control)) {
      const q = this.#queue.shift()!;
      this.#write(q.frame, q.cb);
      if (q.frame[0] === (0x80 | OP_CLOSE)) this.#closeOut = true;
    }
  }

  #write(bytes: Buffer, cb?: (err?: Error | null) => void): void {
    if (this.target.destroyed || this.#closeOut) {
      cb?.(new Error('closed'));
      return;
    }
    if (bytes.length > 0 || cb !== undefined) this.target.write(bytes, cb);
  }

  readonly onData = (chunk: Buffer): void => {
    if (this.closeCode !== undefined) return;
    let buf = chunk;
    if (this.#partial !== undefined) {
      buf = Buffer.concat([this.#partial, chunk]);
      this.#partial = undefined;
    }
    // where one chunk may yield several writes (held client frames, frames queued behind a
    // message) they leave corked, in one writev; otherwise it is one write per chunk anyway
    const target = this.target;
    const cork = this.#queue.length > 0 || (this.fromClient && this.pair.inspector?.watchesClient === true);
    if (!cork) this.#scan(buf);
    else {
      target.cork();
      try {
        this.#scan(buf);
      } finally {
        target.uncork();
      }
    }
    this.pair.backPressure(this);
  };

  #scan(buf: Buffer): void {
    const inspector = this.pair.inspector;
    let pos = 0;
    let from = 0;
    while (pos < buf.length) {
      if (this.#remaining > 0) {
        if (this.#header?.opcode !== OP_PING) this.heard = true;
        const take = Math.min(this.#remaining, buf.length - pos);
        // a payload that only passes through is not sliced
        if (this.#held !== undefined || this.#watched !== undefined || this.#closing !== undefined) this.#keep(buf.subarray(pos, pos + take));
        pos += take;
        this.#remaining -= take;
        if (this.#remaining > 0) break;
      } else {
        if (this.#queue.length > 0 && this.#header === undefined) {
          this.#write(buf.subarray(from, pos));
          from = pos;
          this.#flushQueue();
        }
        if (this.#header === undefined) {
          const h = this.#slot;
          if (!readHeader(buf, pos, h)) {
            this.#partial = Buffer.from(buf.subarray(pos));
            break;
          }
          const problem = this.#check(h);
          if (problem !== undefined) {
            this.#write(buf.subarray(from, pos));
            this.pair.fail(problem);
            return;
          }
          this.#header = h;
          this.#remaining = h.payloadBytes;
          // a peer that only pings (and never reads the pongs) is not thereby alive
          if (h.opcode !== OP_PING) this.heard = true;
          else if (this.pair.pingsUnread(this, h.headerBytes + h.payloadBytes)) return;
          const wholeText = h.fin && h.opcode === OP_TEXT && !h.rsv1;
          if (this.fromClient && inspector?.watchesClient === true && wholeText && h.payloadBytes <= inspector.clientLimitBytes && !passesUnread(inspector, buf, pos, h)) {
            this.#write(buf.subarray(from, pos));
            this.#held = [this.#kept(buf.subarray(pos, pos + h.headerBytes))];
          } else if (!this.fromClient && inspector?.watchesServer === true && h.fin && !h.rsv1 && (h.opcode === OP_TEXT || h.opcode === OP_BINARY) && h.payloadBytes <= WATCH_LIMIT_BYTES) {
            this.#watched = [];
          } else if (h.opcode === OP_CLOSE) {
            // held like an inspected frame: it is checked, and may be rewritten
            this.#write(buf.subarray(from, pos));
            this.#closing = [this.#kept(buf.subarray(pos, pos + h.headerBytes))];
          }
          pos += h.headerBytes;
        }
      }
      if (this.#remaining === 0 && this.#header !== undefined) {
        const h = this.#header;
        this.#header = undefined;
        if (this.#held !== undefined) {
          this.#releaseHeld(h);
          from = pos;
        } else if (this.#closing !== undefined) {
          const frame = Buffer.concat(this.#closing);
          this.#closing = undefined;
          const payload = payloadOf(frame, h);
          const problem = closeProblem(payload);
          if (problem !== undefined) {
            this.pair.fail(problem);
            return;
          }
          // a close without a code reaches the partner as 1000 (1005 cannot be sent)
          this.#write(payload.length === 0 ? encodeFrame(OP_CLOSE, closePayload(1000, ''), this.fromClient) : frame);
          this.#closeOut = true;
          this.closeCode = closeCodeOf(payload);
          this.closeWritten = true;
          this.pair.closeSeen(this);
          return;
        } else if (this.#watched !== undefined) {
          inspector?.serverMessage(Buffer.concat(this.#watched), h.opcode === OP_BINARY);
          this.#watched = undefined;
        }
        from = this.#flushQueueAfterFrame(buf, from, pos);
      }
    }
    if (this.#held === undefined && this.#closing === undefined && from < pos) this.#write(from === 0 && pos === buf.length ? buf : buf.subarray(from, pos));
  }

  /** a part of a payload the proxy holds, watches or collects (a close) */
  #keep(part: Buffer): void {
    if (this.#held !== undefined) this.#held.push(this.#kept(part));
    if (this.#watched !== undefined) this.#watched.push(Buffer.from(part));
    if (this.#closing !== undefined) this.#closing.push(this.#kept(part));
  }

  /** bytes of the current chunk kept past onData (copied when the chunk's memory is reused) */
  #kept(part: Buffer): Buffer {
    return this.sharedReads ? Buffer.from(part) : part;
  }

  /** after a frame: writes what was scanned so far and the queued frames that may go now; returns where unwritten bytes start */
  #flushQueueAfterFrame(buf: Buffer, from: number, pos: number): number {
    if (this.#queue.length === 0 || !this.#atBoundary(this.#queue[0]!.control)) return from;
    this.#write(buf.subarray(from, pos));
    this.#flushQueue();
    return pos;
  }

  #releaseHeld(h: FrameHeader): void {
    const frame = Buffer.concat(this.#held!);
    this.#held = undefined;
    const payload = payloadOf(frame, h);
    const kept = this.pair.inspector!.clientMessage(payload, false);
    if (kept === payload) this.#write(frame);
    else if (kept !== undefined) this.#write(encodeFrame(OP_TEXT, kept, true));
  }

  /** the close status for a frame this side must not send, or undefined when it is fine */
  #check(h: FrameHeader): number | undefined {
    if (h.rsvOther || !isKnownOpcode(h.opcode) || h.masked !== this.fromClient) return PROTOCOL_ERROR;
    if (isControl(h.opcode)) return !h.fin || h.payloadBytes > 125 || h.rsv1 ? PROTOCOL_ERROR : undefined;
    if (h.opcode === OP_CONTINUATION) {
      if (!this.#inMessage || h.rsv1) return PROTOCOL_ERROR;
      this.#messageBytes += h.payloadBytes;
    } else {
      if (this.#inMessage || (h.rsv1 && !this.pair.deflate)) return PROTOCOL_ERROR;
      this.#messageBytes = h.payloadBytes;
    }
    if (this.#messageBytes > this.pair.maxMessageBytes) return TOO_BIG;
    this.#inMessage = !h.fin;
    return undefined;
  }
}

/**
 * True when the client frame at `pos` need not be held for the inspector: its first payload
 * bytes (in this chunk) show a message the inspector forwards unread (a STOMP SEND). When they
 * are not all here yet the frame is held as usual.
 */
function passesUnread(inspector: RelayInspector, buf: Buffer, pos: number, h: FrameHeader): boolean {
  const payloadAt = pos + h.headerBytes;
  const peek = Math.min(h.payloadBytes, inspector.clientPeekBytes);
  return buf.length - payloadAt >= peek && inspector.passesUnread(unmaskedHead(buf, payloadAt, peek));
}

/** the close status for a close frame that breaks RFC 6455 (bad code, 1-byte payload, reason not UTF-8) */
function closeProblem(payload: Buffer): number | undefined {
  if (payload.length === 0) return undefined;
  if (payload.length === 1) return PROTOCOL_ERROR;
  const code = payload.readUInt16BE(0);
  const valid = (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
  if (!valid) return PROTOCOL_ERROR;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(payload.subarray(2));
  } catch {
    return INVALID_PAYLOAD;
  }
  return undefined;
}

/** The client side as the registry and the notifier see it (the subset of a `ws` socket they use). */
export class RawClientSocket {
  readonly CONNECTING = 0 as const;
  readonly OPEN = 1 as const;
  readonly #pair: RawPair;

  constructor(pair: RawPair) {
    this.#pair = pair;
  }

  get readyState(): 0 | 1 | 2 | 3 {
    return this.#pair.readyState;
  }

  /** the relay stopped reading the client (back-pressure) */
  get isPaused(): boolean {
    return this.#pair.toUpstream.paused;
  }

  get bufferedAmount(): number {
    return this.#pair.down.writableLength;
  }

  /** Sends a text message (a notification) between two whole messages of the upstream. */
  send(text: string, cb?: (err?: Error | null) => void): void {
    this.#pair.toClient.inject(encodeFrame(OP_TEXT, Buffer.from(text), false), false, cb);
  }

  close(code: number, reason: string): void {
    this.#pair.closeBoth(code, reason);
  }

  /** Reads both sides again (a side held back would never read its peer's closing frame). */
  resume(): void {
    this.#pair.down.resume();
    this.#pair.up.resume();
  }

  terminate(): void {
    this.#pair.terminate();
  }
}

export class RawPair {
  readonly down: Socket;
  readonly up: Socket;
  readonly toClient: Direction;
  readonly toUpstream: Direction;
  readonly client: RawClientSocket;
  readonly inspector: RelayInspector | undefined;
  readonly deflate: boolean;
  readonly maxMessageBytes: number;
  readonly #highWaterBytes: number;
  readonly #events: RelayEvents;
  #closedReported = false;
  #unreadPingBytes = 0;
  #failStatus: number | undefined;
  readyState: 0 | 1 | 2 | 3 = 1;

  constructor(down: Socket, up: Socket, opts: RawPairOptions, events: RelayEvents) {
    this.down = down;
    this.up = up;
    this.inspector = opts.inspector;
    this.deflate = opts.deflate;
    this.maxMessageBytes = opts.maxMessageBytes;
    this.#highWaterBytes = opts.maxBufferedBytes;
    this.#events = events;
    this.toClient = new Direction(up, down, false, this, opts.upstreamReads !== undefined);
    this.toUpstream = new Direction(down, up, true, this, false);
    this.client = new RawClientSocket(this);
    down.setNoDelay(true);
    up.setNoDelay(true);
    down.on('data', this.toUpstream.onData);
    if (opts.upstreamReads === undefined) up.on('data', this.toClient.onData);
    else {
      opts.upstreamReads.sink = (chunk) => {
        this.toClient.onData(chunk);
        return down.writableLength > 0;
      };
    }
    down.on('error', (err) => events.onError('client', err));
    up.on('error', (err) => events.onError('upstream', err));
    down.on('close', () => this.#sideGone(this.toUpstream, GOING_AWAY, 'client connection lost'));
    up.on('close', () => this.#sideGone(this.toClient, INTERNAL_ERROR, 'upstream connection lost'));
    down.on('end', () => this.#sideGone(this.toUpstream, GOING_AWAY, 'client connection lost'));
    up.on('end', () => this.#sideGone(this.toClient, INTERNAL_ERROR, 'upstream connection lost'));
  }

  /** Passes what the upstream sent with its 101 answer, then lets both sides flow. */
  start(upstreamHead: Buffer): void {
    if (upstreamHead.length > 0) this.toClient.onData(upstreamHead);
    this.up.resume();
    this.down.resume();
  }

  /**
   * Counts a ping from `d`'s source while that source does not read what it is sent (its
   * partner is held back for it): the pongs would only pile up, so past maxBufferedBytes of such
   * pings the pair is closed (1008). True when it was.
   */
  pingsUnread(d: Direction, bytes: number): boolean {
    const back = d === this.toUpstream ? this.toClient : this.toUpstream;
    if (!back.paused) {
      this.#unreadPingBytes = 0;
      return false;
    }
    this.#unreadPingBytes += bytes;
    if (this.#unreadPingBytes <= this.#highWaterBytes) return false;
    this.fail(POLICY_VIOLATION);
    d.source.destroy();
    return true;
  }

  /** pauses a source whose target has too much queued, until the target drained */
  backPressure(d: Direction): void {
    if (d.paused || d.target.writableLength <= this.#highWaterBytes) return;
    d.paused = true;
    d.source.pause();
    d.target.once('drain', () => {
      d.paused = false;
      if (!d.source.destroyed) d.source.resume();
    });
  }

  heartbeat(): void {
    if (this.#beat(this.toUpstream)) this.#events.onUnresponsive('client');
    else if (this.#beat(this.toClient)) this.#events.onUnresponsive('upstream');
  }

  /** `fromSide` is the direction whose source is pinged */
  #beat(fromSide: Direction): boolean {
    if (this.readyState !== 1) return false;
    const toSource = fromSide === this.toUpstream ? this.toClient : this.toUpstream;
    if (fromSide.paused) {
      fromSide.heard = true; // its answers cannot be read while the relay holds it back
      return false;
    }
    if (!fromSide.heard) {
      fromSide.source.destroy();
      return true;
    }
    fromSide.heard = false;
    toSource.inject(encodeFrame(OP_PING, EMPTY, toSource === this.toUpstream), true);
    return false;
  }

  /** a side sent a close frame: it was forwarded; the partner's answer ends the handshake */
  closeSeen(d: Direction): void {
    this.readyState = 2;
    const other = d === this.toUpstream ? this.toClient : this.toUpstream;
    if (other.closeCode !== undefined) this.#endBoth();
    else setTimeout(() => this.#endBoth(), CLOSE_GRACE_MS).unref();
  }

  /** A frame broke the rules: both sides are closed with `status`. */
  fail(status: number): void {
    this.#failStatus ??= status;
    this.closeBoth(status, '');
  }

  closeBoth(code: number, reason: string): void {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    const payload = closePayload(code, reason);
    this.toClient.inject(encodeFrame(OP_CLOSE, payload, false), true);
    this.toUpstream.inject(encodeFrame(OP_CLOSE, payload, true), true);
    setTimeout(() => this.#endBoth(), CLOSE_GRACE_MS).unref();
  }

  #endBoth(): void {
    this.down.end();
    this.up.end();
    setTimeout(() => this.terminate(), CLOSE_GRACE_MS).unref();
  }

  terminate(): void {
    this.down.destroy();
    this.up.destroy();
  }

  /** a side's connection ended or broke: its partner hears a close (unless it already did) */
  #sideGone(from: Direction, status: number, reason: string): void {
    const partner = from.target;
    if (!from.closeWritten && !partner.destroyed) {
      from.inject(encodeFrame(OP_CLOSE, closePayload(this.#failStatus ?? status, this.#failStatus === undefined ? reason : ''), from === this.toUpstream), true);
    }
    if (!partner.destroyed) partner.end();
    setTimeout(() => partner.destroy(), CLOSE_GRACE_MS).unref();
    if (from === this.toUpstream && !this.#closedReported && this.down.destroyed) {
      this.#closedReported = true;
      this.readyState = 3;
      this.inspector?.closed();
      this.#events.onClosed(this.toUpstream.closeCode ?? 1006);
    }
  }
}
