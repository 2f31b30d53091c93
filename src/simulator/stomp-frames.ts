/**
 * Panopticon simulator: a strict STOMP 1.2 frame reader and writer for its server side.
 *
 * The reader keeps the bytes of an unfinished frame between WebSocket messages, skips heart-beats
 * (bare end-of-lines between frames), honours `content-length` (octets) and unescapes header
 * values (not in CONNECT/STOMP, as the specification says). Anything that is not a well-formed
 * client frame is a `StompSyntaxError`: the server answers it with ERROR.
 */

export interface StompFrame {
  readonly command: string;
  /** first occurrence of each header wins */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export class StompSyntaxError extends Error {}

const NUL = 0;
const LF = 0x0a;
const CR = 0x0d;

export const CLIENT_COMMANDS: ReadonlySet<string> = new Set([
  'CONNECT', 'STOMP', 'SEND', 'SUBSCRIBE', 'UNSUBSCRIBE', 'ACK', 'NACK', 'BEGIN', 'COMMIT', 'ABORT', 'DISCONNECT',
]);

/** Largest frame the simulator accepts (a client frame, so small). */
export const MAX_FRAME_BYTES = 64 * 1024;

const UNESCAPES: Record<string, string> = { n: '\n', c: ':', '\\': '\\', r: '\r' };

function unescapeHeader(raw: string): string {
  return raw.replace(/\\(.?)/g, (_all, ch: string) => {
    const out = UNESCAPES[ch];
    if (out === undefined) throw new StompSyntaxError(`undefined escape sequence "\\${ch}" in a header`);
    return out;
  });
}

function escapeHeader(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/:/g, '\\c').replace(/\r/g, '\\r');
}

function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

/** One frame (headers, no NUL yet) from the bytes before the blank line; `rest` starts at the body. */
function parseHead(head: string): { command: string; headers: Record<string, string> } {
  const lines = head.split('\n').map(stripCr);
  const command = lines[0] ?? '';
  if (!CLIENT_COMMANDS.has(command)) throw new StompSyntaxError(`unknown command ${JSON.stringify(command.slice(0, 40))}`);
  const escaped = command !== 'CONNECT' && command !== 'STOMP';
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new StompSyntaxError(`malformed header line ${JSON.stringify(line.slice(0, 60))}`);
    const name = escaped ? unescapeHeader(line.slice(0, colon)) : line.slice(0, colon);
    const value = escaped ? unescapeHeader(line.slice(colon + 1)) : line.slice(colon + 1);
    if (!(name in headers)) headers[name] = value;
  }
  return { command, headers };
}

/** Reads client frames out of successive WebSocket messages. */
export class StompReader {
  private pending: Buffer = Buffer.alloc(0);

  /** Every complete frame in the bytes so far; throws StompSyntaxError on malformed input. */
  push(chunk: Buffer): StompFrame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: StompFrame[] = [];
    for (;;) {
      let start = 0;
      while (start < this.pending.length && (this.pending[start] === LF || this.pending[start] === CR)) start += 1;
      this.pending = this.pending.subarray(start);
      if (this.pending.length === 0) return frames;
      const frame = this.takeFrame();
      if (!frame) {
        if (this.pending.length > MAX_FRAME_BYTES) throw new StompSyntaxError(`frame larger than ${MAX_FRAME_BYTES} bytes`);
        return frames;
      }
      frames.push(frame);
    }
  }

  private takeFrame(): StompFrame | undefined {
    const buf = this.pending;
    const lflf = buf.indexOf('\n\n');
    const crlf = buf.indexOf('\n\r\n');
    const candidates = [lflf === -1 ? undefined : { at: lflf, len: 2 }, crlf === -1 ? undefined : { at: crlf, len: 3 }]
      .filter((c): c is { at: number; len: number } => c !== undefined)
      .sort((a, b) => a.at - b.at);
    const blank = candidates[0];
    if (!blank) {
      if (buf.indexOf(NUL) !== -1) throw new StompSyntaxError('frame ended before its blank line');
      return undefined;
    }
    const headText = buf.subarray(0, blank.at).toString('utf8');
    if (headText.includes('\0')) throw new StompSyntaxError('NUL inside the frame headers');
    const { command, headers } = parseHead(headText);
    const bodyStart = blank.at + blank.len;
    const lengthHeader = headers['content-length'];
    let bodyEnd: number;
    if (lengthHeader !== undefined) {
      if (!/^\d+$/.test(lengthHeader)) throw new StompSyntaxError(`bad content-length ${JSON.stringify(lengthHeader)}`);
      bodyEnd = bodyStart + Number(lengthHeader);
      if (buf.length <= bodyEnd) return undefined;
      if (buf[bodyEnd] !== NUL) throw new StompSyntaxError('no NUL after content-length octets');
    } else {
      bodyEnd = buf.indexOf(NUL, bodyStart);
      if (bodyEnd === -1) return undefined;
    }
    this.pending = buf.subarray(bodyEnd + 1);
    return { command, headers, body: Buffer.from(buf.subarray(bodyStart, bodyEnd)) };
  }
}

/** A server frame as text (CONNECTED headers are not escaped; others are). */
export function encodeFrame(command: string, headers: Readonly<Record<string, string>>, body = ''): string {
  const escape = command === 'CONNECTED' ? (v: string) => v : escapeHeader;
  const lines = [command];
  for (const [name, value] of Object.entries(headers)) lines.push(`${escape(name)}:${escape(value)}`);
  if (body !== '' && !('content-length' in headers)) lines.push(`content-length:${Buffer.byteLength(body)}`);
  return `${lines.join('\n')}\n\n${body}\0`;
}
