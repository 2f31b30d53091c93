/**
 * WebSocket frame headers (RFC 6455 §5.2), read and written without touching payloads:
 *
 *   byte 0: FIN, RSV1-3, opcode · byte 1: MASK, length (7 bits; 126 -> 16-bit, 127 -> 64-bit)
 *   then the extended length, then the 4-byte masking key when MASK is set, then the payload.
 */
import { randomBytes as cryptoRandom } from 'node:crypto';

export const OP_CONTINUATION = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

/** One frame's header; a reader keeps one and reads header after header into it (no object per frame). */
export class FrameHeader {
  fin = false;
  rsv1 = false;
  /** RSV2 or RSV3 set (never valid here) */
  rsvOther = false;
  opcode = 0;
  masked = false;
  headerBytes = 0;
  payloadBytes = 0;
}

/** true for the opcodes RFC 6455 defines */
export function isKnownOpcode(opcode: number): boolean {
  return opcode <= OP_BINARY || (opcode >= OP_CLOSE && opcode <= OP_PONG);
}

export function isControl(opcode: number): boolean {
  return opcode >= OP_CLOSE;
}

/**
 * Reads the header of the frame starting at `at` in `buf` into `out`; false (and `out` left
 * as it was) when `buf` ends inside the header. A 64-bit length beyond 2^53 - 1 reads as
 * Infinity (always over any limit).
 */
export function readHeader(buf: Buffer, at: number, out: FrameHeader): boolean {
  const available = buf.length - at;
  if (available < 2) return false;
  const b0 = buf[at]!;
  const b1 = buf[at + 1]!;
  const masked = (b1 & 0x80) !== 0;
  let length = b1 & 0x7f;
  let headerBytes = 2;
  if (length === 126) {
    if (available < 4) return false;
    length = buf.readUInt16BE(at + 2);
    headerBytes = 4;
  } else if (length === 127) {
    if (available < 10) return false;
    const high = buf.readUInt32BE(at + 2);
    length = high > 0x1fffff ? Infinity : high * 2 ** 32 + buf.readUInt32BE(at + 6);
    headerBytes = 10;
  }
  if (masked) headerBytes += 4;
  if (available < headerBytes) return false;
  out.fin = (b0 & 0x80) !== 0;
  out.rsv1 = (b0 & 0x40) !== 0;
  out.rsvOther = (b0 & 0x30) !== 0;
  out.opcode = b0 & 0x0f;
  out.masked = masked;
  out.headerBytes = headerBytes;
  out.payloadBytes = length;
  return true;
}

/** Copies the payload of a complete frame, unmasked. */
export function payloadOf(frame: Buffer, header: FrameHeader): Buffer {
  const payload = Buffer.from(frame.subarray(header.headerBytes, header.headerBytes + header.payloadBytes));
  if (header.masked) {
    const key = frame.subarray(header.headerBytes - 4, header.headerBytes);
    for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i & 3]!;
  }
  return payload;
}

/** A copy of the first `bytes` payload bytes of a masked frame whose payload starts at `payloadAt` in `buf`, unmasked. */
export function unmaskedHead(buf: Buffer, payloadAt: number, bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  const keyAt = payloadAt - 4;
  for (let i = 0; i < bytes; i++) out[i] = buf[payloadAt + i]! ^ buf[keyAt + (i & 3)]!;
  return out;
}

/** One FIN frame; masked (with a random key) when it goes to the upstream, as a client's must be. */
export function encodeFrame(opcode: number, payload: Buffer, mask: boolean, maskKey?: Buffer): Buffer {
  const n = payload.length;
  const lengthBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const headerBytes = 2 + lengthBytes + (mask ? 4 : 0);
  const out = Buffer.allocUnsafe(headerBytes + n);
  out[0] = 0x80 | opcode;
  out[1] = (mask ? 0x80 : 0) | (lengthBytes === 0 ? n : lengthBytes === 2 ? 126 : 127);
  if (lengthBytes === 2) out.writeUInt16BE(n, 2);
  else if (lengthBytes === 8) {
    out.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    out.writeUInt32BE(n >>> 0, 6);
  }
  if (mask) {
    const key = maskKey ?? randomMaskKey();
    key.copy(out, 2 + lengthBytes);
    for (let i = 0; i < n; i++) out[headerBytes + i] = payload[i]! ^ key[i & 3]!;
  } else {
    payload.copy(out, headerBytes);
  }
  return out;
}

/** A close frame's payload: the status code and a UTF-8 reason cut to fit 125 bytes. */
export function closePayload(code: number, reason: string | Buffer): Buffer {
  let text = typeof reason === 'string' ? Buffer.from(reason) : reason;
  if (text.length > 123) text = text.subarray(0, 123);
  const out = Buffer.allocUnsafe(2 + text.length);
  out.writeUInt16BE(code, 0);
  text.copy(out, 2);
  return out;
}

/** The status code of a close frame's (unmasked) payload; 1005 when it carries none. */
export function closeCodeOf(payload: Buffer): number {
  return payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
}

let pool = Buffer.alloc(0);
let poolAt = 0;
function randomMaskKey(): Buffer {
  if (poolAt + 4 > pool.length) {
    pool = cryptoRandom(4096);
    poolAt = 0;
  }
  const key = pool.subarray(poolAt, poolAt + 4);
  poolAt += 4;
  return key;
}
