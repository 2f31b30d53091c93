/**
 * Keeps the timeout settings in step with Panopticon.properties while the proxy runs.
 *
 * Two ways of noticing a change, because fs.watch alone misses some (network file systems,
 * replaced directories, symlink swaps):
 *   - fs.watch on the file's directory and on the directory the path resolves to (so a
 *     Kubernetes ConfigMap `..data` symlink swap is seen), debounced;
 *   - a poll every pollMs comparing (realpath, dev, ino, size, mtime, ctime), and, for files of
 *     at most 1 MiB, the content hash as well (catches same-size writes within one mtime tick).
 *
 * A half-written file is never applied (nor reported as invalid). Timestamps cannot prove that: a
 * check may run while a writer's truncate is still inside the kernel, and Linux makes the new size
 * (0) visible to stat before it sets the new mtime/ctime, so an empty file with an old mtime and
 * an unchanged stat before and after the read is a real, observable state. So nothing is trusted
 * from a single look: every read goes through one open handle with fstat before and after it (a
 * read that overlaps a write is thrown away), and a new state (file identity, size, ns timestamps
 * and content hash) is applied only once a second read, at least debounceMs later, found exactly
 * the same state. An empty file must rest for EMPTY_SETTLE_MS instead, and content that changed
 * while identity and timestamps did not (a truncate in progress) for UNEXPLAINED_SETTLE_MS. A
 * file that keeps changing is applied once it rests. Bad content never replaces the last good
 * settings.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { DEFAULT_SETTINGS, type SettingsSource, type TimeoutSettings } from './settings.js';
import { freezeSettings } from './frozen.js';
import { describeProblem, settingsDiff, settingsEqual, type SettingsProblem } from './parse.js';
import { probeKey, probeSettingsFile, readSettingsFileWithState, type FileProbe, type SettingsFileRead } from './read-file.js';

export { readSettingsFile, type SettingsFileRead } from './read-file.js';

export interface PropertiesWatcherOptions {
  readonly path: string;
  readonly pollMs: number;
  readonly logger: Logger;
  /** how long a changed file must stay exactly the same before it is applied (default: min(100, pollMs)) */
  readonly debounceMs?: number;
  /** false = poll only (tests use it to prove the poll alone is enough) */
  readonly fsEvents?: boolean;
}

export interface WatcherStats {
  /** successful reads of changed file content after start */
  readonly reloads: number;
  /** reads that were refused (invalid content, unreadable, directory, too large), start included */
  readonly reloadErrors: number;
}

type ChangeListener = (next: TimeoutSettings, previous: TimeoutSettings) => void;
type ReloadErrorListener = (problems: readonly SettingsProblem[]) => void;

/** Files up to this size are hashed on every poll even when stat shows no change. */
const HASH_EVERY_POLL_MAX_BYTES = 1024 * 1024;
/** Delay from an fs event to the first look (events of one write arrive in a burst). */
const EVENT_LOOK_MS = 10;
/** At start, a read that overlapped a write is retried this many times, this far apart. */
const INITIAL_READ_TRIES = 5;
const INITIAL_RETRY_MS = 10;
/**
 * How long an empty file must rest before it is applied (or debounceMs, if longer): every in-place
 * rewrite passes through an empty file, for as long as the writer takes from truncate to write.
 */
const EMPTY_SETTLE_MS = 1000;
/**
 * How long content that changed while the file's identity and timestamps did not must rest (or
 * debounceMs, if longer). That is a truncate still inside the kernel (Linux shows the new size
 * before it sets the new mtime/ctime), or a rewrite within one coarse timestamp tick; the wait
 * must outlast any truncate (microseconds to milliseconds) and keep every edit applied within the
 * two seconds operators are promised.
 */
const UNEXPLAINED_SETTLE_MS = 1000;

interface DirWatch {
  readonly watcher: FSWatcher;
  readonly ino: number;
}

export class PropertiesWatcher implements SettingsSource {
  readonly path: string;
  readonly #log: Logger;
  readonly #pollMs: number;
  readonly #debounceMs: number;
  readonly #fsEvents: boolean;
  readonly #lookMs: number;

  #current: TimeoutSettings = freezeSettings(DEFAULT_SETTINGS);
  #loadedFromFile = false;
  #reloads = 0;
  #reloadErrors = 0;
  readonly #changeListeners = new Set<ChangeListener>();
  readonly #errorListeners = new Set<ReloadErrorListener>();

  #closed = false;
  #pollTimer: NodeJS.Timeout | undefined;
  #debounceTimer: NodeJS.Timeout | undefined;
  readonly #dirWatches = new Map<string, DirWatch>();
  #interestingNames = new Set<string>();

  #running: Promise<void> | undefined;
  #again = false;
  /** the path probe at the last read that was applied or found nothing new (large files skip reads on it) */
  #lastProbeKey: string | undefined;
  /** what was last applied or reported: 'missing', 'ok:<hash>', 'bad:<hash or reason>' */
  #lastContentKey: string | undefined;
  /** a new state seen once, waiting to be seen again, unchanged, settleMs later */
  #pending: { readonly state: string; readonly since: number; readonly settleMs: number } | undefined;
  /** identity, timestamps and content of the last complete read */
  #lastRead: { readonly file: string; readonly times: string; readonly content: string } | undefined;

  private constructor(opts: PropertiesWatcherOptions) {
    this.path = resolve(opts.path);
    this.#log = opts.logger;
    this.#pollMs = Math.max(10, opts.pollMs);
    this.#debounceMs = Math.max(0, opts.debounceMs ?? Math.min(100, this.#pollMs));
    this.#fsEvents = opts.fsEvents ?? true;
    this.#lookMs = Math.max(1, Math.min(this.#debounceMs, EVENT_LOOK_MS));
  }

  /** Loads the file (never fails because of it) and starts watching. */
  static async open(opts: PropertiesWatcherOptions): Promise<PropertiesWatcher> {
    const w = new PropertiesWatcher(opts);
    await w.#guarded(() => w.#check(true));
    w.#pollTimer = setInterval(() => void w.#runCheck(), w.#pollMs);
    w.#pollTimer.unref();
    return w;
  }

  get current(): TimeoutSettings {
    return this.#current;
  }

  /** true once the current settings came from the file (false while running on defaults) */
  get loadedFromFile(): boolean {
    return this.#loadedFromFile;
  }

  get stats(): WatcherStats {
    return Object.freeze({ reloads: this.#reloads, reloadErrors: this.#reloadErrors });
  }

  onChange(listener: ChangeListener): () => void {
    this.#changeListeners.add(listener);
    return () => void this.#changeListeners.delete(listener);
  }

  onReloadError(listener: ReloadErrorListener): () => void {
    this.#errorListeners.add(listener);
    return () => void this.#errorListeners.delete(listener);
  }

  /** Looks at the file now instead of waiting for the next event or poll (a change found is applied once it has rested). */
  async refresh(): Promise<void> {
    await this.#runCheck();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#pollTimer);
    clearTimeout(this.#debounceTimer);
    for (const dir of [...this.#dirWatches.keys()]) this.#unwatchDir(dir);
    await this.#running;
  }

  async #guarded(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.#log.error({ event: 'settings-watch-failed', path: this.path, err }, 'checking the properties file failed; will try again');
    }
  }

  /** One check at a time; a request during a check runs another one right after it. */
  #runCheck(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#guarded(() => this.#check(false));
      } while (this.#again && !this.#closed);
      this.#running = undefined;
    })();
    return this.#running;
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    clearTimeout(this.#debounceTimer);
    this.#debounceTimer = setTimeout(() => {
      this.#debounceTimer = undefined;
      void this.#runCheck();
    }, delayMs);
    this.#debounceTimer.unref();
  }

  async #check(initial: boolean): Promise<void> {
    const probe = await probeSettingsFile(this.path);
    if (this.#closed) return;
    await this.#armWatches(probe);
    const key = probeKey(probe);
    const isSmallFile = probe.kind === 'present' && probe.isFile && probe.size <= HASH_EVERY_POLL_MAX_BYTES;
    if (!initial && key === this.#lastProbeKey && !isSmallFile && this.#pending === undefined) return;

    let { read, state } = await readSettingsFileWithState(this.path);
    for (let tries = 1; initial && state?.consistent === false && tries < INITIAL_READ_TRIES && !this.#closed; tries++) {
      await new Promise((r) => setTimeout(r, INITIAL_RETRY_MS));
      ({ read, state } = await readSettingsFileWithState(this.path));
    }
    if (this.#closed) return;
    const contentKey = this.#contentKey(read);
    // The probe describes the file the bytes came from only if it matches the handle's fstat.
    const probeMatches = state === undefined || (probe.kind === 'present' && probe.statKey === state.key);

    if (state !== undefined && !state.consistent && !initial) {
      // changed while being read: the bytes may be half old, half new
      this.#pending = undefined;
      this.#schedule(this.#lookMs);
      return;
    }
    // Content that changed while identity and timestamps stayed put is not explained by them: a
    // truncate still inside the kernel (the new size is visible before the new mtime/ctime), or a
    // rewrite within one timestamp tick. An empty file is what every in-place rewrite looks like
    // until its write lands. Both must rest longer than an ordinary change before they count.
    const previous = this.#lastRead;
    let settleMs = this.#debounceMs;
    if (state !== undefined) {
      if (state.size === 0) settleMs = Math.max(settleMs, EMPTY_SETTLE_MS);
      const unexplained = previous !== undefined && previous.file === state.file && previous.times === state.times && previous.content !== contentKey;
      if (unexplained) settleMs = Math.max(settleMs, UNEXPLAINED_SETTLE_MS);
      this.#lastRead = { file: state.file, times: state.times, content: contentKey };
    }

    if (initial) {
      this.#lastProbeKey = probeMatches ? key : undefined;
      this.#apply(read, contentKey, true);
      return;
    }
    if (contentKey === this.#lastContentKey) {
      this.#pending = undefined;
      this.#lastProbeKey = probeMatches ? key : undefined;
      return;
    }
    // New content (or a new problem). Apply it only once a later read found exactly the same
    // state (identity, size, timestamps, content) at least settleMs after the first one.
    const seen = `${state?.key ?? key}\n${contentKey}`;
    const now = performance.now();
    if (this.#pending?.state !== seen) {
      this.#pending = { state: seen, since: now, settleMs };
      this.#schedule(settleMs);
      return;
    }
    const restedMs = now - this.#pending.since;
    if (restedMs < this.#pending.settleMs) {
      this.#schedule(Math.max(1, Math.ceil(this.#pending.settleMs - restedMs)));
      return;
    }
    this.#pending = undefined;
    this.#lastProbeKey = probeMatches ? key : undefined;
    this.#apply(read, contentKey, false);
  }

  #contentKey(read: SettingsFileRead): string {
    if (read.missing) return 'missing';
    if (read.contentHash !== undefined) return `${read.ok ? 'ok' : 'bad'}:${read.contentHash}`;
    return `bad:${read.ok ? '' : read.problems.map(describeProblem).join('\n')}`;
  }

  #apply(read: SettingsFileRead, contentKey: string, initial: boolean): void {
    if (contentKey === this.#lastContentKey) return;
    const wasBad = this.#lastContentKey?.startsWith('bad:') ?? false;
    this.#lastContentKey = contentKey;
    const log = this.#log;
    const path = this.path;
    log.debug({ event: 'settings-file-read', path, contentKey }, 'properties file read');

    if (read.missing) {
      if (initial) log.warn({ event: 'settings-file-missing', path }, `properties file ${path} not found; using the default timeout settings`);
      else log.warn({ event: 'settings-file-missing', path }, `properties file ${path} is gone; keeping the last good timeout settings`);
      return;
    }
    for (const warning of read.warnings) log.warn({ event: 'settings-warning', path, warning }, warning);
    if (!read.ok) {
      this.#reloadErrors++;
      const outcome = this.#loadedFromFile ? 'keeping the last good timeout settings' : 'using the default timeout settings';
      for (const p of read.problems) {
        log.error({ event: 'settings-invalid', path, key: p.key, value: p.value, rule: p.rule }, `${describeProblem(p)}; ${outcome}`);
      }
      for (const listener of this.#errorListeners) this.#callSafely(() => listener(read.problems), 'reload-error');
      return;
    }

    const previous = this.#current;
    const next = freezeSettings(read.settings);
    this.#loadedFromFile = true;
    if (initial) {
      this.#current = next;
      log.info({ event: 'settings-loaded', path, settings: summary(next) }, `timeout settings loaded from ${path}`);
      return;
    }
    this.#reloads++;
    if (settingsEqual(previous, next)) {
      const msg = wasBad ? 'properties file is valid again; timeout settings unchanged' : 'properties file changed; timeout settings unchanged';
      log.info({ event: 'settings-unchanged', path }, msg);
      return;
    }
    this.#current = next;
    log.info({ event: 'settings-changed', path, changes: settingsDiff(previous, next) }, 'timeout settings changed');
    for (const listener of this.#changeListeners) this.#callSafely(() => listener(next, previous), 'change');
  }

  #callSafely(fn: () => void, kind: string): void {
    try {
      fn();
    } catch (err) {
      this.#log.error({ event: 'settings-listener-failed', listener: kind, err }, `a timeout settings ${kind} listener threw`);
    }
  }

  /** Watches the path's directory and the directory its target resolves to. */
  async #armWatches(probe: FileProbe): Promise<void> {
    if (!this.#fsEvents) return;
    const names = new Set([basename(this.path)]);
    const dirs = new Set([dirname(this.path)]);
    if (probe.kind === 'present') {
      names.add(basename(probe.realPath));
      if (probe.linkFirstName !== undefined) names.add(probe.linkFirstName);
      dirs.add(dirname(probe.realPath));
    }
    this.#interestingNames = names;
    for (const dir of [...this.#dirWatches.keys()]) if (!dirs.has(dir)) this.#unwatchDir(dir);
    for (const dir of dirs) {
      const ino = await stat(dir).then((s) => s.ino, () => undefined);
      if (this.#closed) return;
      const existing = this.#dirWatches.get(dir);
      if (existing !== undefined && existing.ino === ino) continue;
      if (existing !== undefined) this.#unwatchDir(dir); // the directory was replaced
      if (ino !== undefined) this.#watchDir(dir, ino);
    }
  }

  #watchDir(dir: string, ino: number): void {
    try {
      const watcher = watch(dir, { persistent: false }, (_event, name) => {
        try {
          if (name === null || this.#interestingNames.has(String(name))) this.#schedule(this.#lookMs);
        } catch {
          // never let a watcher callback throw; the poll still runs
        }
      });
      watcher.on('error', () => this.#unwatchDir(dir)); // re-armed by the next check
      this.#dirWatches.set(dir, { watcher, ino });
    } catch (err) {
      this.#log.debug({ event: 'settings-watch-unavailable', dir, err }, 'fs.watch unavailable; relying on polling');
    }
  }

  #unwatchDir(dir: string): void {
    const w = this.#dirWatches.get(dir);
    this.#dirWatches.delete(dir);
    try {
      w?.watcher.close();
    } catch {
      // already closed
    }
  }
}

function summary(s: TimeoutSettings): Record<string, unknown> {
  return {
    enabled: s.enabled,
    minutes: s.timeoutMinutes,
    notificationMinutes: s.notifyBeforeMinutes,
    delimiter: s.exemptDelimiter,
    exemptUsers: [...s.exemptUsers],
  };
}
