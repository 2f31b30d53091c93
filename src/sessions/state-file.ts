/**
 * Saving the proxy's state so a restart loses nobody's timer or pending logout. The file holds
 * credentials (to finish logouts), so it is written with mode 0600, atomically: a temporary file
 * is written and synced, then renamed over the old one. With a state key (PROXY_STATE_KEY) the
 * whole file is sealed with AES-256-GCM; a plain file from before the key was set is still read.
 */
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { LogoutJob } from '../logout/queue.js';
import type { RevokedEntry } from '../logout/revoked.js';
import type { SessionSnapshot } from './store.js';
import { isSealed, type SecretBox } from './secret-box.js';

export const STATE_FILE_NAME = 'session-state.json';
export const STATE_VERSION = 1;

export interface ProxyState {
  readonly version: typeof STATE_VERSION;
  readonly savedAtMs: number;
  readonly sessions: readonly SessionSnapshot[];
  readonly pendingLogouts: readonly LogoutJob[];
  readonly revoked: readonly RevokedEntry[];
}

export type LoadResult =
  | { readonly kind: 'missing' }
  | { readonly kind: 'loaded'; readonly state: ProxyState }
  | { readonly kind: 'corrupt'; readonly error: string; readonly movedTo: string | undefined };

export class StateFile {
  readonly path: string;
  readonly #dir: string;
  #seq = 0;

  readonly #box: SecretBox | undefined;

  constructor(dir: string, box?: SecretBox) {
    this.#dir = dir;
    this.#box = box;
    this.path = join(dir, STATE_FILE_NAME);
  }

  /** Reads the saved state. A corrupt file is moved aside (never deleted) so the proxy can start empty. */
  async load(nowMs: number): Promise<LoadResult> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
      return this.#moveAside(`cannot read ${this.path}: ${(err as Error).message}`, nowMs);
    }
    try {
      if (isSealed(text)) {
        if (!this.#box) throw new Error('state file is encrypted but no PROXY_STATE_KEY is set');
        text = this.#box.open(text);
      }
      return { kind: 'loaded', state: parseState(text) };
    } catch (err) {
      return this.#moveAside((err as Error).message, nowMs);
    }
  }

  async save(state: ProxyState): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp-${process.pid}-${this.#seq++}`;
    const handle = await open(tmp, 'w', 0o600);
    try {
      const json = JSON.stringify(state);
      await handle.writeFile(this.#box ? this.#box.seal(json) : json);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(tmp, this.path);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }

  async #moveAside(error: string, nowMs: number): Promise<LoadResult> {
    const target = `${this.path}.corrupt-${nowMs}`;
    try {
      await rename(this.path, target);
      return { kind: 'corrupt', error, movedTo: target };
    } catch {
      return { kind: 'corrupt', error, movedTo: undefined };
    }
  }
}

/** Parses and checks a saved state; throws an Error naming what is wrong. */
export function parseState(text: string): ProxyState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`state file is not JSON: ${(err as Error).message}`);
  }
  const s = raw as Partial<ProxyState> | null;
  if (!s || typeof s !== 'object') throw new Error('state file does not hold an object');
  if (s.version !== STATE_VERSION) throw new Error(`state file version ${JSON.stringify(s.version)} is not ${STATE_VERSION}`);
  if (!Array.isArray(s.sessions) || !Array.isArray(s.pendingLogouts) || !Array.isArray(s.revoked)) {
    throw new Error('state file lacks the sessions, pendingLogouts or revoked lists');
  }
  s.sessions.forEach((x, i) => {
    if (typeof x?.user !== 'string' || !isNum(x.idleSinceMs) || !isNum(x.firstSeenMs) || !Array.isArray(x.credentials) || !Array.isArray(x.recent)) {
      throw new Error(`state file: session #${i} is malformed`);
    }
  });
  s.pendingLogouts.forEach((j, i) => {
    if (typeof j?.user !== 'string' || typeof j.fingerprint !== 'string' || typeof j.replay !== 'object' || !isNum(j.enqueuedAtMs) || !isNum(j.attempts) || (j.csrf !== undefined && typeof j.csrf !== 'string')) {
      throw new Error(`state file: pending logout #${i} is malformed`);
    }
  });
  s.revoked.forEach((r, i) => {
    if (typeof r?.fingerprint !== 'string' || !isNum(r.untilMs)) throw new Error(`state file: revoked credential #${i} is malformed`);
  });
  return s as ProxyState;
}

function isNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}
