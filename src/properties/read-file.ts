/**
 * The one place that touches the properties file on disk; used both at start and on every
 * reload. Nothing here throws: every failure becomes a `(file)` problem.
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
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
 * Reads, decodes and parses the file. The size is checked (fstat) before any byte is read;
 * O_NONBLOCK keeps a FIFO at the path from blocking the open.
 */
export async function readSettingsFile(path: string): Promise<SettingsFileRead> {
  let fh: FileHandle;
  try {
    fh = await open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (err) {
    const code = errorCode(err);
    if (MISSING_CODES.has(code)) return { ok: false, missing: true, problems: [], warnings: [] };
    if (code === 'EISDIR') return fileProblem(path, 'is a directory, not a file');
    return fileProblem(path, `cannot be opened (${code})`);
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) return fileProblem(path, 'is a directory, not a file');
    if (!st.isFile()) return fileProblem(path, 'is not a regular file');
    if (st.size > MAX_PROPERTIES_BYTES) return fileProblem(path, `${RULES.tooLarge} (${st.size} bytes)`);
    // The file may grow after fstat: read in chunks and stop once past the limit.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(Math.max(st.size + 1, 4096), READ_CHUNK_BYTES));
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, total);
      if (bytesRead === 0) break;
      total += bytesRead;
      chunks.push(chunk.subarray(0, bytesRead));
      if (total > MAX_PROPERTIES_BYTES) return fileProblem(path, RULES.tooLarge);
    }
    return parseBytes(Buffer.concat(chunks, total));
  } catch (err) {
    return fileProblem(path, `cannot be read (${errorCode(err)})`);
  } finally {
    await fh.close().catch(() => undefined);
  }
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
      dev: number;
      ino: number;
      size: number;
      mtimeMs: number;
      ctimeMs: number;
      /** first path component of the symlink target, when the path itself is a symlink */
      linkFirstName: string | undefined;
    };

export async function probeSettingsFile(path: string): Promise<FileProbe> {
  try {
    const st = await stat(path);
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
      dev: st.dev,
      ino: st.ino,
      size: st.size,
      mtimeMs: st.mtimeMs,
      ctimeMs: st.ctimeMs,
      linkFirstName,
    };
  } catch (err) {
    const code = errorCode(err);
    return MISSING_CODES.has(code) ? { kind: 'missing' } : { kind: 'error', code };
  }
}

/** Equal keys: nothing visible to stat changed. */
export function probeKey(p: FileProbe): string {
  if (p.kind !== 'present') return p.kind === 'missing' ? 'missing' : `error:${p.code}`;
  return [p.realPath, p.isFile, p.dev, p.ino, p.size, p.mtimeMs, p.ctimeMs].join('|');
}
