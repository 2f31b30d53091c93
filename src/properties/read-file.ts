/**
 * The one place that touches the properties file on disk; used both at start and on every
 * reload. Nothing here throws: every failure becomes a `(file)` problem.
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants, type BigIntStats } from 'node:fs';
import { lstat, open, readlink, realpath, stat, type FileHandle } from 'node:fs/promises';
import {
  FILE_PROBLEM_KEY,
  MAX_PROPERTIES_BYTES,
  RULES,
  decodePropertiesBytes,
  parseTimeoutProperties,
  problem,
  type ParseResult,
  type SettingsProblem,
} from './parse.js';

export type SettingsFileRead =
  | (ParseResult & { missing: false; /** sha256 of the bytes, when they could be read */ contentHash?: string })
  | { ok: false; missing: true; problems: SettingsProblem[]; warnings: string[] };

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'unknown error';
}

function fileProblem(path: string, rule: string): SettingsFileRead {
  return { ok: false, missing: false, problems: [problem(FILE_PROBLEM_KEY, path, rule)], warnings: [] };
}

const READ_CHUNK_BYTES = 1024 * 1024;
const MISSING_CODES = new Set(['ENOENT', 'ENOTDIR']);

/**
 * What one read saw of the file, taken from the open handle itself (so it describes the very bytes
 * that were read, whatever happens to the path meanwhile).
 */
export interface ReadState {
  /** identity, size and nanosecond timestamps of the open file just before its bytes were read */
  readonly key: string;
  /** the file's identity: `dev|ino` */
  readonly file: string;
  /** its timestamps: `mtimeNs|ctimeNs` */
  readonly times: string;
  /** its size in bytes */
  readonly size: number;
  /**
   * The fstat after the read equals the one before, and exactly `size` bytes were read. False
   * means the file changed while being read: the bytes may be a mix of two versions.
   */
  readonly consistent: boolean;
}

export interface SettingsFileReadWithState {
  readonly read: SettingsFileRead;
  /** set when bytes of a regular file were read; undefined when the file was refused or absent */
  readonly state: ReadState | undefined;
}

/** Identity, size and timestamps (ns) of a file: equal keys, nothing visible to stat changed. */
export function statKey(st: BigIntStats): string {
  return [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].join('|');
}

/**
 * Reads, decodes and parses the file. The size is checked (fstat) before any byte is read;
 * O_NONBLOCK keeps a FIFO at the path from blocking the open.
 */
export async function readSettingsFile(path: string): Promise<SettingsFileRead> {
  return (await readSettingsFileWithState(path)).read;
}

/**
 * readSettingsFile, plus what the open handle looked like around the read: fstat before and after
 * the bytes are read, through the same handle, so a write that overlaps the read is detected
 * (`state.consistent` false) instead of being mistaken for the file's content.
 */
export async function readSettingsFileWithState(path: string): Promise<SettingsFileReadWithState> {
  let fh: FileHandle;
  try {
    fh = await open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (err) {
    const code = errorCode(err);
    if (MISSING_CODES.has(code)) return { read: { ok: false, missing: true, problems: [], warnings: [] }, state: undefined };
    if (code === 'EISDIR') return refused(path, 'is a directory, not a file');
    return refused(path, `cannot be opened (${code})`);
  }
  try {
    const st = await fh.stat({ bigint: true });
    if (st.isDirectory()) return refused(path, 'is a directory, not a file');
    if (!st.isFile()) return refused(path, 'is not a regular file');
    if (st.size > BigInt(MAX_PROPERTIES_BYTES)) return refused(path, `${RULES.tooLarge} (${st.size} bytes)`);
    const size = Number(st.size);
    // The file may grow after fstat: read in chunks and stop once past the limit.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(Math.max(size + 1, 4096), READ_CHUNK_BYTES));
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, total);
      if (bytesRead === 0) break;
      total += bytesRead;
      chunks.push(chunk.subarray(0, bytesRead));
      if (total > MAX_PROPERTIES_BYTES) return refused(path, RULES.tooLarge);
    }
    const key = statKey(st);
    const after = statKey(await fh.stat({ bigint: true }));
    const state: ReadState = {
      key,
      file: `${st.dev}|${st.ino}`,
      times: `${st.mtimeNs}|${st.ctimeNs}`,
      size,
      consistent: after === key && total === size,
    };
    return { read: parseBytes(Buffer.concat(chunks, total)), state };
  } catch (err) {
    return refused(path, `cannot be read (${errorCode(err)})`);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

function refused(path: string, rule: string): SettingsFileReadWithState {
  return { read: fileProblem(path, rule), state: undefined };
}

function parseBytes(bytes: Buffer): SettingsFileRead {
  const contentHash = createHash('sha256').update(bytes).digest('hex');
  const decoded = decodePropertiesBytes(bytes);
  const parsed = parseTimeoutProperties(decoded.text);
  if (decoded.warning !== undefined) parsed.warnings.unshift(decoded.warning);
  return { ...parsed, missing: false, contentHash };
}

/** What a cheap look at the path (no read) says; the watcher compares these between polls. */
export type FileProbe =
  | { kind: 'missing' }
  | { kind: 'error'; code: string }
  | {
      kind: 'present';
      realPath: string;
      isFile: boolean;
      size: number;
      /** statKey of the file the path resolves to (identity, size, ns timestamps) */
      statKey: string;
      /** first path component of the symlink target, when the path itself is a symlink */
      linkFirstName: string | undefined;
    };

export async function probeSettingsFile(path: string): Promise<FileProbe> {
  try {
    const st = await stat(path, { bigint: true });
    const realPath = await realpath(path).catch(() => path);
    let linkFirstName: string | undefined;
    const own = await lstat(path).catch(() => undefined);
    if (own?.isSymbolicLink()) {
      const target = await readlink(path).catch(() => '');
      linkFirstName = target.split('/').find((part) => part !== '' && part !== '.') ?? undefined;
    }
    return {
      kind: 'present',
      realPath,
      isFile: st.isFile(),
      size: Number(st.size),
      statKey: statKey(st),
      linkFirstName,
    };
  } catch (err) {
    const code = errorCode(err);
    return MISSING_CODES.has(code) ? { kind: 'missing' } : { kind: 'error', code };
  }
}

/**
 * Equal keys: nothing visible to stat changed. Not proof that the content did not change: a
 * truncation makes the new size visible to stat before the new mtime/ctime (Linux sets the
 * timestamps at the end of the truncate), and a rewrite within one coarse timestamp tick may not
 * move them at all.
 */
export function probeKey(p: FileProbe): string {
  if (p.kind !== 'present') return p.kind === 'missing' ? 'missing' : `error:${p.code}`;
  return [p.realPath, p.isFile, p.statKey].join('|');
}
