/**
 * STOMP 1.0–1.2 as far as an injecting proxy needs it: reading the client's small control
 * frames (CONNECT/STOMP, SUBSCRIBE, UNSUBSCRIBE, ACK, NACK) and writing one MESSAGE frame.
 *
 * A frame is a command line, `name:value` header lines, an empty line, the body and a NUL.
 * Lines end with LF (1.2 also CR LF); bare end-of-lines between frames are heart-beats. Header
 * values are escaped in 1.1/1.2 except in CONNECT/CONNECTED; the first of repeated headers wins.
 */

export type StompVersion = '1.0' | '1.1' | '1.2';

export interface StompFrame {
  readonly command: string;
  readonly headers: ReadonlyMap<string, string>;
  /** offsets of the frame in the parsed text (heart-beats before it excluded) */
  readonly start: number;
  readonly end: number;
}

const NUL = '\0';
const SUBPROTOCOL = /^v1([012])\.stomp$/;
/** the client commands a proxy follows; a message opening with another (SEND...) is not read */
const FOLLOWED_COMMANDS = ['CONNECT', 'STOMP', 'SUBSCRIBE', 'UNSUBSCRIBE', 'ACK', 'NACK'];

/** The STOMP version a negotiated WebSocket sub-protocol stands for (`v12.stomp` -> 1.2). */
export function versionOfSubprotocol(protocol: string | undefined): StompVersion | undefined {
  const m = protocol === undefined ? null : SUBPROTOCOL.exec(protocol);
  return m ? (`1.${m[1]}` as StompVersion) : undefined;
}

/** The highest version in an `accept-version` / `version` header value, 1.0 when absent. */
export function versionOfHeader(value: string | undefined): StompVersion {
  if (value === undefined) return '1.0';
  const offered = value.split(',').map((v) => v.trim());
  if (offered.includes('1.2')) return '1.2';
  if (offered.includes('1.1')) return '1.1';
  return '1.0';
}

function skipHeartbeats(text: string, from: number): number {
  let i = from;
  while (i < text.length && (text.charCodeAt(i) === 10 || text.charCodeAt(i) === 13)) i++;
  return i;
}

/** True when the text (after heart-beats) starts with the command line `command`. */
export function startsWithCommand(text: string, commands: readonly string[]): boolean {
  const i = skipHeartbeats(text, 0);
  for (const c of commands) {
    if (text.startsWith(c, i)) {
      const next = text.charCodeAt(i + c.length);
      if (next === 10 || next === 13) return true;
    }
  }
  return false;
}

/** True when the text opens with a client CONNECT or STOMP frame. */
export function isConnectFrame(text: string): boolean {
  return startsWithCommand(text, ['CONNECT', 'STOMP']);
}

/**
 * True when a client payload opens with a frame the proxy follows. Clients send one frame per
 * message (stompjs, Spring's clients), so a message opening with SEND is data and is not read.
 */
export function opensWithFollowedFrame(text: string): boolean {
  return startsWithCommand(text, FOLLOWED_COMMANDS);
}

const UNESCAPES: Readonly<Record<string, string>> = { n: '\n', c: ':', '\\': '\\', r: '\r' };

function unescapeValue(value: string, version: StompVersion): string {
  if (version === '1.0' || !value.includes('\\')) return value;
  return value.replace(/\\(.)/g, (whole, ch: string) => (ch === 'r' && version !== '1.2' ? whole : UNESCAPES[ch] ?? whole));
}

function escapeValue(value: string, version: StompVersion): string {
  if (version === '1.0') return value;
  let out = value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/:/g, '\\c');
  if (version === '1.2') out = out.replace(/\r/g, '\\r');
  return out;
}

/**
 * Reads every complete frame of one message. Frames whose end is not in the text (a frame
 * split over messages) are not returned. Never throws; garbage yields no frames.
 */
export function parseFrames(text: string, version: StompVersion): StompFrame[] {
  const frames: StompFrame[] = [];
  let pos = skipHeartbeats(text, 0);
  while (pos < text.length) {
    const frame = parseOne(text, pos, version);
    if (frame === undefined) break;
    frames.push(frame);
    pos = skipHeartbeats(text, frame.end);
  }
  return frames;
}

function lineEnd(text: string, from: number): { end: number; next: number } | undefined {
  const lf = text.indexOf('\n', from);
  if (lf === -1) return undefined;
  return { end: lf > from && text.charCodeAt(lf - 1) === 13 ? lf - 1 : lf, next: lf + 1 };
}

function parseOne(text: string, start: number, version: StompVersion): StompFrame | undefined {
  const first = lineEnd(text, start);
  if (first === undefined) return undefined;
  const command = text.slice(start, first.end);
  const raw = command === 'CONNECT' || command === 'STOMP' || command === 'CONNECTED';
  const headers = new Map<string, string>();
  let pos = first.next;
  for (;;) {
    const line = lineEnd(text, pos);
    if (line === undefined) return undefined;
    if (line.end === pos) {
      pos = line.next;
      break;
    }
    const header = text.slice(pos, line.end);
    const colon = header.indexOf(':');
    if (colon > 0) {
      const name = raw ? header.slice(0, colon) : unescapeValue(header.slice(0, colon), version);
      if (!headers.has(name)) headers.set(name, raw ? header.slice(colon + 1) : unescapeValue(header.slice(colon + 1), version));
    }
    pos = line.next;
  }
  // content-length counts octets; the body is only skipped, so a UTF-8 length check suffices
  const length = headers.get('content-length');
  let nul: number;
  if (length !== undefined && /^\d+$/.test(length)) {
    nul = bodyEndByOctets(text, pos, Number(length));
    if (nul === -1 || text.charCodeAt(nul) !== 0) return undefined;
  } else {
    nul = text.indexOf(NUL, pos);
    if (nul === -1) return undefined;
  }
  return { command, headers, start, end: nul + 1 };
}

/** index in `text` after `octets` UTF-8 bytes starting at `from`, or -1 when the text is shorter */
function bodyEndByOctets(text: string, from: number, octets: number): number {
  let bytes = 0;
  let i = from;
  while (bytes < octets) {
    if (i >= text.length) return -1;
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4;
      i++;
    } else bytes += 3;
    i++;
  }
  return bytes === octets ? i : -1;
}

export interface OutgoingMessage {
  readonly subscription: string;
  readonly destination: string;
  readonly messageId: string;
  /** the `ack` header (1.2, subscriptions in client or client-individual mode) */
  readonly ack: string | undefined;
  readonly body: string;
}

/** One NUL-terminated MESSAGE frame carrying a JSON body. */
export function encodeMessage(m: OutgoingMessage, version: StompVersion): string {
  const lines = [
    'MESSAGE',
    `subscription:${escapeValue(m.subscription, version)}`,
    `destination:${escapeValue(m.destination, version)}`,
    `message-id:${escapeValue(m.messageId, version)}`,
  ];
  if (m.ack !== undefined) lines.push(`ack:${escapeValue(m.ack, version)}`);
  lines.push('content-type:application/json', `content-length:${Buffer.byteLength(m.body)}`, '', m.body);
  return lines.join('\n') + NUL;
}
