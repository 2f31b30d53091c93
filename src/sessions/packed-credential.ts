/**
 * One kept credential as a block of bytes in a ByteArena (see credential-set.ts for why):
 *
 *   u8 flags · u8 kind id · u32 block bytes · u32 stamp · f64 lastSeenMs · [f64 expiresAtMs]
 *   str fingerprint · [str secretFingerprint, unless it is the fingerprint] · [str csrf] · u8 replay headers · (str name, str value)…
 *
 * A str is a u16 head and its bytes: head < 0x8000 is that many Latin-1 bytes (every header value
 * Node's parser hands over); B64_32 is a 43-character base64url string kept as its 32 bytes (the
 * SHA-256 fingerprints); DOTTED is a long value ending in base64url segments joined by dots (a JWT
 * in `ptoken=…` or `Bearer …`), kept as its prefix and the segments' bytes, a quarter smaller;
 * UUID and UUID_UPPER are a UUID in hexadecimal (the usual CSRF token, e.g. Spring Security's),
 * kept as its 16 bytes; otherwise a u8 encoding and a u32 length follow (UTF-8, or long Latin-1).
 * Strings come back exactly as they went in.
 *
 * The stamp changes whenever the credential is written anew, so a shared store can tell whether
 * the version it wrote is still the one held (`written` is cleared by every new version).
 */
import type { ByteArena } from './byte-arena.js';
import type { StoredCredential } from './store.js';

const HAS_EXPIRES = 1;
const HAS_SECRET_FINGERPRINT = 2;
const HAS_CSRF = 4;
const WRITTEN = 8;
/** the secret's fingerprint is the credential's own (the usual case): kept once */
const SAME_SECRET = 16;

const AT_FLAGS = 0;
const AT_KIND = 1;
const AT_BYTES = 2;
const AT_STAMP = 6;
const AT_LAST_SEEN = 10;
const AT_EXPIRES = 18;

const B64_32 = 0xffff;
const DOTTED = 0xfffe;
const UUID = 0xfffd;
const UUID_UPPER = 0xfffc;
const LONG = 0x8000;
const LATIN1 = 0;
const UTF8 = 1;
const MAX_REPLAY_HEADERS = 255;

/** credential kinds are few (the identity module's); each is kept as one byte */
const kinds: string[] = [];
const kindIds = new Map<string, number>();
function kindId(kind: string): number {
  let id = kindIds.get(kind);
  if (id === undefined) {
    if (kinds.length > 0xff) throw new RangeError('more than 256 credential kinds');
    id = kinds.length;
    kinds.push(kind);
    kindIds.set(kind, id);
  }
  return id;
}

let lastStamp = 0;

/** Packs `c` into a new block of `arena`; returns its handle. */
export function packCredential(arena: ByteArena, c: StoredCredential): number {
  const replay = Object.entries(c.replay);
  if (replay.length > MAX_REPLAY_HEADERS) throw new RangeError(`a credential replays at most ${MAX_REPLAY_HEADERS} headers`);
  const strings = [c.fingerprint];
  let flags = 0;
  if (c.expiresAtMs !== undefined) flags |= HAS_EXPIRES;
  if (c.secretFingerprint === c.fingerprint) flags |= SAME_SECRET;
  else if (c.secretFingerprint !== undefined) {
    flags |= HAS_SECRET_FINGERPRINT;
    strings.push(c.secretFingerprint);
  }
  if (c.csrf !== undefined) {
    flags |= HAS_CSRF;
    strings.push(c.csrf);
  }
  for (const [name, value] of replay) strings.push(name, value);
  const fixed = AT_EXPIRES + (flags & HAS_EXPIRES ? 8 : 0);
  let bytes = fixed + 1;
  for (const s of strings) bytes += stringBytes(s);

  const handle = arena.alloc(bytes);
  const buf = arena.chunk(handle);
  const at = arena.offset(handle);
  buf[at + AT_FLAGS] = flags;
  buf[at + AT_KIND] = kindId(c.kind);
  buf.writeUInt32LE(bytes, at + AT_BYTES);
  lastStamp = lastStamp === 0xffffffff ? 1 : lastStamp + 1;
  buf.writeUInt32LE(lastStamp, at + AT_STAMP);
  buf.writeDoubleLE(c.lastSeenMs, at + AT_LAST_SEEN);
  if (flags & HAS_EXPIRES) buf.writeDoubleLE(c.expiresAtMs!, at + AT_EXPIRES);
  let pos = at + fixed;
  for (let i = 0; i < strings.length; i++) {
    if (i === strings.length - 2 * replay.length) buf[pos++] = replay.length;
    pos = writeString(buf, pos, strings[i]!);
  }
  if (replay.length === 0) buf[pos] = 0;
  return handle;
}

/** Gives the block back. */
export function freeCredential(arena: ByteArena, handle: number): void {
  arena.free(handle, arena.chunk(handle).readUInt32LE(arena.offset(handle) + AT_BYTES));
}

/** The credential as a plain object (its strings are new copies). */
export function unpackCredential(arena: ByteArena, handle: number): StoredCredential {
  const buf = arena.chunk(handle);
  const at = arena.offset(handle);
  const flags = buf[at + AT_FLAGS]!;
  let pos = at + AT_EXPIRES + (flags & HAS_EXPIRES ? 8 : 0);
  const next = (): string => {
    const [s, end] = readString(buf, pos);
    pos = end;
    return s;
  };
  const fingerprint = next();
  const secretFingerprint = flags & HAS_SECRET_FINGERPRINT ? next() : flags & SAME_SECRET ? fingerprint : undefined;
  const csrf = flags & HAS_CSRF ? next() : undefined;
  const replay: Record<string, string> = {};
  for (let n = buf[pos++]!; n > 0; n--) {
    const name = next();
    replay[name] = next();
  }
  const c: { -readonly [K in keyof StoredCredential]: StoredCredential[K] } = { fingerprint, kind: kinds[buf[at + AT_KIND]!]!, replay, lastSeenMs: buf.readDoubleLE(at + AT_LAST_SEEN) };
  if (flags & HAS_EXPIRES) c.expiresAtMs = buf.readDoubleLE(at + AT_EXPIRES);
  if (secretFingerprint !== undefined) c.secretFingerprint = secretFingerprint;
  if (csrf !== undefined) c.csrf = csrf;
  return c;
}

/** Whether the block is the credential with this fingerprint (no string is made). */
export function hasFingerprint(arena: ByteArena, handle: number, fingerprint: string): boolean {
  const buf = arena.chunk(handle);
  const at = arena.offset(handle);
  return stringEquals(buf, at + AT_EXPIRES + (buf[at + AT_FLAGS]! & HAS_EXPIRES ? 8 : 0), fingerprint);
}

/** The credential's fingerprint. */
export function fingerprintOf(arena: ByteArena, handle: number): string {
  const buf = arena.chunk(handle);
  const at = arena.offset(handle);
  return readString(buf, at + AT_EXPIRES + (buf[at + AT_FLAGS]! & HAS_EXPIRES ? 8 : 0))[0];
}

/** Whether the credential keeps exactly this CSRF token (no string is made). */
export function hasCsrf(arena: ByteArena, handle: number, csrf: string): boolean {
  const buf = arena.chunk(handle);
  const at = arena.offset(handle);
  const flags = buf[at + AT_FLAGS]!;
  if (!(flags & HAS_CSRF)) return false;
  let pos = skipString(buf, at + AT_EXPIRES + (flags & HAS_EXPIRES ? 8 : 0));
  if (flags & HAS_SECRET_FINGERPRINT) pos = skipString(buf, pos);
  return stringEquals(buf, pos, csrf);
}

export function setLastSeen(arena: ByteArena, handle: number, lastSeenMs: number): void {
  arena.chunk(handle).writeDoubleLE(lastSeenMs, arena.offset(handle) + AT_LAST_SEEN);
}

export function stampOf(arena: ByteArena, handle: number): number {
  return arena.chunk(handle).readUInt32LE(arena.offset(handle) + AT_STAMP);
}

export function isWritten(arena: ByteArena, handle: number): boolean {
  return (arena.chunk(handle)[arena.offset(handle) + AT_FLAGS]! & WRITTEN) !== 0;
}

export function setWritten(arena: ByteArena, handle: number, written: boolean): void {
  const buf = arena.chunk(handle);
  const at = arena.offset(handle) + AT_FLAGS;
  buf[at] = written ? buf[at]! | WRITTEN : buf[at]! & ~WRITTEN;
}

// ---- strings ----------------------------------------------------------------------------------

const BASE64URL = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/; // 43 characters whose last one carries no stray bits
const LATIN1_ONLY = /^[\x00-\xff]*$/;

function stringBytes(s: string): number {
  if (s.length === 43 && BASE64URL.test(s)) return 2 + 32;
  if (uuidHead(s) !== undefined) return 2 + 16;
  const dotted = dottedParts(s);
  if (dotted !== undefined) return dottedBytes(dotted);
  if (s.length < LONG && LATIN1_ONLY.test(s)) return 2 + s.length;
  return 2 + 1 + 4 + Buffer.byteLength(s, LATIN1_ONLY.test(s) ? 'latin1' : 'utf8');
}

function writeString(buf: Buffer, pos: number, s: string): number {
  if (s.length === 43 && BASE64URL.test(s)) {
    buf.writeUInt16LE(B64_32, pos);
    return pos + 2 + buf.write(s, pos + 2, 32, 'base64url');
  }
  const uuid = uuidHead(s);
  if (uuid !== undefined) {
    buf.writeUInt16LE(uuid, pos);
    return pos + 2 + buf.write(s.replaceAll('-', ''), pos + 2, 16, 'hex');
  }
  const dotted = dottedParts(s);
  if (dotted !== undefined) return writeDotted(buf, pos, dotted);
  const latin1 = LATIN1_ONLY.test(s);
  if (s.length < LONG && latin1) {
    buf.writeUInt16LE(s.length, pos);
    return pos + 2 + buf.write(s, pos + 2, s.length, 'latin1');
  }
  const encoding = latin1 ? 'latin1' : 'utf8';
  const length = Buffer.byteLength(s, encoding);
  buf.writeUInt16LE(LONG, pos);
  buf[pos + 2] = latin1 ? LATIN1 : UTF8;
  buf.writeUInt32LE(length, pos + 3);
  return pos + 7 + buf.write(s, pos + 7, length, encoding);
}

/** [string, position after it] */
function readString(buf: Buffer, pos: number): [string, number] {
  const head = buf.readUInt16LE(pos);
  if (head === B64_32) return [buf.toString('base64url', pos + 2, pos + 34), pos + 34];
  if (head === DOTTED) return readDotted(buf, pos);
  if (head === UUID || head === UUID_UPPER) return [readUuid(buf, pos + 2, head === UUID_UPPER), pos + 18];
  if (head < LONG) return [buf.toString('latin1', pos + 2, pos + 2 + head), pos + 2 + head];
  const length = buf.readUInt32LE(pos + 3);
  return [buf.toString(buf[pos + 2] === UTF8 ? 'utf8' : 'latin1', pos + 7, pos + 7 + length), pos + 7 + length];
}

function skipString(buf: Buffer, pos: number): number {
  const head = buf.readUInt16LE(pos);
  if (head === B64_32) return pos + 34;
  if (head === DOTTED) return readDotted(buf, pos)[1];
  if (head === UUID || head === UUID_UPPER) return pos + 18;
  if (head < LONG) return pos + 2 + head;
  return pos + 7 + buf.readUInt32LE(pos + 3);
}

const SIXBITS = new Int8Array(128).fill(-1);
for (const [i, ch] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'].entries()) SIXBITS[ch.charCodeAt(0)] = i;

function stringEquals(buf: Buffer, pos: number, s: string): boolean {
  const head = buf.readUInt16LE(pos);
  if (head === B64_32) return base64urlEquals(buf, pos + 2, s);
  if (head === UUID || head === UUID_UPPER) return uuidHead(s) === head && uuidEquals(buf, pos + 2, s);
  if (head >= LONG) return readString(buf, pos)[0] === s; // (DOTTED too: replay values, never compared)
  if (head !== s.length) return false;
  const start = pos + 2;
  for (let i = 0; i < head; i++) if (buf[start + i] !== s.charCodeAt(i)) return false;
  return true;
}

/** whether the 32 bytes at `pos` are what the 43-character base64url `s` spells */
function base64urlEquals(buf: Buffer, pos: number, s: string): boolean {
  if (s.length !== 43) return false;
  let bits = 0;
  let acc = 0;
  let j = pos;
  for (let i = 0; i < 43; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? SIXBITS[c]! : -1;
    if (v < 0) return false;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (((acc >> bits) & 0xff) !== buf[j++]) return false;
      acc &= (1 << bits) - 1;
    }
  }
  return acc === 0;
}

// ---- UUID: 8-4-4-4-12 hexadecimal digits, all lower case or all upper case (so they spell back)

const UUID_LOWER_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID_UPPER_SHAPE = /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/;
/** where the dashes are; the string's other characters are two hex digits per byte */
const UUID_DASHES = [8, 13, 18, 23];

function uuidHead(s: string): number | undefined {
  if (s.length !== 36) return undefined;
  if (UUID_LOWER_SHAPE.test(s)) return UUID;
  return UUID_UPPER_SHAPE.test(s) ? UUID_UPPER : undefined;
}

function readUuid(buf: Buffer, pos: number, upper: boolean): string {
  const hex = buf.toString('hex', pos, pos + 16);
  const s = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  return upper ? s.toUpperCase() : s;
}

/** whether the 16 bytes at `pos` are what the UUID `s` spells (its shape and case already checked) */
function uuidEquals(buf: Buffer, pos: number, s: string): boolean {
  let j = pos;
  for (let i = 0; i < 36; i += 2) {
    if (UUID_DASHES.includes(i)) i++;
    if (((hexDigit(s.charCodeAt(i)) << 4) | hexDigit(s.charCodeAt(i + 1))) !== buf[j++]) return false;
  }
  return true;
}

/** 0-15 for a hexadecimal digit of either case */
function hexDigit(code: number): number {
  return code <= 0x39 ? code - 0x30 : (code | 0x20) - 0x57;
}

// ---- DOTTED: `<prefix><segment>.<segment>…`, each segment base64url that decodes and encodes back

const DOTTED_MIN_LENGTH = 64;
const DOTTED_TAIL = /^([^]*?)([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+)$/;

interface Dotted {
  readonly prefix: string;
  readonly segments: readonly string[];
}

function dottedParts(s: string): Dotted | undefined {
  if (s.length < DOTTED_MIN_LENGTH || s.length >= LONG || !s.includes('.')) return undefined;
  const m = DOTTED_TAIL.exec(s);
  if (!m || !LATIN1_ONLY.test(m[1]!)) return undefined;
  const segments = m[2]!.split('.');
  if (segments.length > 0xff || !segments.every((seg) => Buffer.from(seg, 'base64url').toString('base64url') === seg)) return undefined;
  return { prefix: m[1]!, segments };
}

/** u16 DOTTED · u16 prefix length · prefix · u8 segments · (u16 characters · bytes)… */
function dottedBytes(d: Dotted): number {
  let bytes = 2 + 2 + d.prefix.length + 1;
  for (const seg of d.segments) bytes += 2 + Math.floor((seg.length * 6) / 8);
  return bytes;
}

function writeDotted(buf: Buffer, pos: number, d: Dotted): number {
  buf.writeUInt16LE(DOTTED, pos);
  buf.writeUInt16LE(d.prefix.length, pos + 2);
  pos += 4 + buf.write(d.prefix, pos + 4, d.prefix.length, 'latin1');
  buf[pos++] = d.segments.length;
  for (const seg of d.segments) {
    buf.writeUInt16LE(seg.length, pos);
    pos += 2 + buf.write(seg, pos + 2, Math.floor((seg.length * 6) / 8), 'base64url');
  }
  return pos;
}

function readDotted(buf: Buffer, pos: number): [string, number] {
  const prefixLength = buf.readUInt16LE(pos + 2);
  const prefix = buf.toString('latin1', pos + 4, pos + 4 + prefixLength);
  pos += 4 + prefixLength;
  const segments: string[] = [];
  for (let n = buf[pos++]!; n > 0; n--) {
    const bytes = Math.floor((buf.readUInt16LE(pos) * 6) / 8);
    segments.push(buf.toString('base64url', pos + 2, pos + 2 + bytes));
    pos += 2 + bytes;
  }
  return [prefix + segments.join('.'), pos];
}
