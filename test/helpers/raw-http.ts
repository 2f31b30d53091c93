/**
 * Bytes on a plain TCP socket, for requests no HTTP client will send (NUL bytes, two
 * Content-Length headers, broken request lines). The answer is parsed just enough to read the
 * status line, the headers and the body.
 */
import net from 'node:net';

export interface RawAnswer {
  /** everything received, as latin1 text */
  readonly text: string;
  /** the status code of the first response, or undefined when nothing HTTP-like came back */
  readonly status: number | undefined;
  /** header names lower-cased; repeated headers joined with ', ' */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** true when the server closed the connection (rather than our waiting time running out) */
  readonly closedByServer: boolean;
}

export interface RawOptions {
  /** give up waiting for more bytes after this long (default 2000 ms) */
  readonly waitMs?: number;
  /**
   * end our side after writing (default false). Node answers nothing to a request whose client
   * half-closed before the answer was ready, so only use it where the answer is immediate.
   */
  readonly halfClose?: boolean;
}

/** Sends `bytes` on a fresh connection and collects the answer until the server closes or waitMs. */
export function rawExchange(port: number, bytes: string | Buffer, opts: RawOptions = {}): Promise<RawAnswer> {
  const waitMs = opts.waitMs ?? 2000;
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (closedByServer: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(parseAnswer(Buffer.concat(chunks).toString('latin1'), closedByServer));
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      // one complete response is enough: stop as soon as its body is in
      if (completeResponse(Buffer.concat(chunks).toString('latin1'))) finish(true);
    });
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
    socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes, () => {
      if (opts.halfClose === true) socket.end();
    });
  });
}

function completeResponse(text: string): boolean {
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end));
  return length !== null && text.length - (end + 4) >= Number(length[1]);
}

export function parseAnswer(text: string, closedByServer: boolean): RawAnswer {
  const m = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n/.exec(text);
  const headers: Record<string, string> = {};
  const end = text.indexOf('\r\n\r\n');
  if (m && end !== -1) {
    for (const line of text.slice(m[0].length, end).split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
  }
  return { text, status: m ? Number(m[1]) : undefined, headers, body: end === -1 ? '' : text.slice(end + 4), closedByServer };
}

/** A request head from a request line and header lines (CRLF-joined, blank line appended). */
export function head(requestLine: string, ...headerLines: string[]): string {
  return [requestLine, ...headerLines, '', ''].join('\r\n');
}
