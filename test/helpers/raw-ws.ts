/**
 * A WebSocket client made of a raw TCP socket, for frames no WebSocket library will send:
 * reserved opcodes, unmasked client frames, broken UTF-8, lengths that lie. Also the reading side:
 * the close frame the server answers with.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';

export interface RawWebSocket {
  readonly socket: net.Socket;
  /** bytes received after the 101 answer */
  received(): Buffer;
  /** resolves when the server closed the TCP connection */
  readonly ended: Promise<void>;
}

/** Opens a TCP connection, sends the upgrade request and waits for the 101 answer. */
export function rawUpgrade(port: number, path: string, extraHeaders: string[] = []): Promise<RawWebSocket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buffered = Buffer.alloc(0);
    let upgraded = false;
    const ended = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (upgraded) return;
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      const headText = buffered.subarray(0, end).toString('latin1');
      if (!headText.startsWith('HTTP/1.1 101')) {
        socket.destroy();
        reject(new Error(`upgrade refused: ${headText.split('\r\n')[0]}`));
        return;
      }
      upgraded = true;
      buffered = buffered.subarray(end + 4);
      resolve({ socket, received: () => buffered, ended });
    });
    socket.once('close', () => {
      if (!upgraded) reject(new Error('connection closed before the 101 answer'));
    });
    socket.write([
      `GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`, 'Sec-WebSocket-Version: 13', ...extraHeaders, '', '',
    ].join('\r\n'));
  });
}

export interface FrameOptions {
  fin?: boolean;
  /** RSV1..3 as a 3-bit number */
  rsv?: number;
  /** default true: clients must mask */
  masked?: boolean;
  /** a length to announce instead of the payload's real one */
  announcedLength?: bigint;
}

/** Encodes one frame. */
export function frame(opcode: number, payload: Buffer, opts: FrameOptions = {}): Buffer {
  const masked = opts.masked ?? true;
  const length = opts.announcedLength ?? BigInt(payload.length);
  const first = ((opts.fin ?? true) ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | (opcode & 0x0f);
  let lengthBytes: Buffer;
  if (length < 126n) {
    lengthBytes = Buffer.from([(masked ? 0x80 : 0) | Number(length)]);
  } else if (length < 65536n) {
    lengthBytes = Buffer.alloc(3);
    lengthBytes[0] = (masked ? 0x80 : 0) | 126;
    lengthBytes.writeUInt16BE(Number(length), 1);
  } else {
    lengthBytes = Buffer.alloc(9);
    lengthBytes[0] = (masked ? 0x80 : 0) | 127;
    lengthBytes.writeBigUInt64BE(length, 1);
  }
  if (!masked) return Buffer.concat([Buffer.from([first]), lengthBytes, payload]);
  const mask = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= mask[i % 4]!;
  return Buffer.concat([Buffer.from([first]), lengthBytes, mask, body]);
}

export const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** The code of the first close frame in server-to-client bytes (unmasked), if any. */
export function closeCodeIn(bytes: Buffer): number | undefined {
  let at = 0;
  while (at + 2 <= bytes.length) {
    const opcode = bytes[at]! & 0x0f;
    let length = bytes[at + 1]! & 0x7f;
    let offset = at + 2;
    if (length === 126) {
      if (offset + 2 > bytes.length) return undefined;
      length = bytes.readUInt16BE(offset);
      offset += 2;
    } else if (length === 127) {
      if (offset + 8 > bytes.length) return undefined;
      length = Number(bytes.readBigUInt64BE(offset));
      offset += 8;
    }
    if (opcode === OPCODE.close) return length >= 2 && offset + 2 <= bytes.length ? bytes.readUInt16BE(offset) : 1005;
    at = offset + length;
  }
  return undefined;
}
