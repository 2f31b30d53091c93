/**
 * Keeps the timeout settings in step with Panopticon.properties while the proxy runs.
 *
 * Two ways of noticing a change, because fs.watch alone misses some (network file systems,
 * replaced directories, symlink swaps):
 *   - fs.watch on the file's directory and on the directory the path resolves to (so a
 *     Kubernetes ConfigMap `..data` symlink swap is seen), debounced;
 *   - a poll every pollMs comparing (realpath, dev, ino, size, mtime, ctime), and, for files of
 *     at most 1 MiB, the content hash as well (catches same-size writes within one mtime tick).
 * A file modified moments ago is read only once it has been quiet for debounceMs, so a half
 * written file is not applied. Bad content never replaces the last good settings.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { DEFAULT_SETTINGS, type SettingsSource, type TimeoutSettings } from './settings.js';
import { freezeSettings } from './frozen.js';
import { describeProblem, settingsDiff, settingsEqual, type SettingsProblem } from './parse.js';
import { probeKey, probeSettingsFile, readSettingsFile, type FileProbe, type SettingsFileRead } from './read-file.js';

export { readSettingsFile, type SettingsFileRead } from './read-file.js';

export interface PropertiesWatcherOptions {
  readonly path: string;
  readonly pollMs: number;
  readonly logger: Logger;
  /** quiet time before an fs event, or a fresh mtime, leads to a read (default: min(100, pollMs)) */
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
/** A file whose mtime stays "just now" (clock skew, endless writer) is read anyway after this. */
const MAX_SETTLE_MS = 1000;

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
  #lastProbeKey: string | undefined;
  /** what was last applied or reported: 'missing', 'ok:<hash>', 'bad:<hash or reason>' */
  #lastContentKey: string | undefined;
  #unsettledSince: number | undefined;

  private constructor(opts: PropertiesWatcherOptions) {
    this.path = resolve(opts.path);
    this.#log = opts.logger;
    this.#pollMs = Math.max(10, opts.pollMs);
    this.#debounceMs = Math.max(0, opts.debounceMs ?? Math.min(100, this.#pollMs));
    this.#fsEvents = opts.fsEvents ?? true;
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

  /** Looks at the file now instead of waiting for the next event or poll. */
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
    if (key === this.#lastProbeKey && !isSmallFile) return;

    if (!initial && probe.kind === 'present' && probe.isFile && this.#mustSettle(probe)) return;

    const read = await readSettingsFile(this.path);
    const after = probeKey(await probeSettingsFile(this.path));
    if (this.#closed) return;
    if (!initial && after !== key && this.#unsettledFor() < MAX_SETTLE_MS) {
      this.#unsettledSince ??= Date.now();
      this.#schedule(this.#debounceMs); // changed while being read: look again
      return;
    }
    this.#unsettledSince = undefined;
    this.#lastProbeKey = key;
    this.#apply(read, initial);
  }

  #unsettledFor(): number {
    return this.#unsettledSince === undefined ? 0 : Date.now() - this.#unsettledSince;
  }

  /** True (and a later check scheduled) when the file was written too recently to trust. */
  #mustSettle(probe: Extract<FileProbe, { kind: 'present' }>): boolean {
    const ageMs = Date.now() - probe.mtimeMs;
    if (ageMs >= this.#debounceMs || this.#unsettledFor() >= MAX_SETTLE_MS) return false;
    this.#unsettledSince ??= Date.now();
    this.#schedule(Math.max(1, this.#debounceMs - Math.max(0, ageMs)));
    return true;
  }

  #contentKey(read: SettingsFileRead): string {
    if (read.missing) return 'missing';
    if (read.contentHash !== undefined) return `${read.ok ? 'ok' : 'bad'}:${read.contentHash}`;
    return `bad:${read.ok ? '' : read.problems.map(describeProblem).join('\n')}`;
  }

  #apply(read: SettingsFileRead, initial: boolean): void {
    const contentKey = this.#contentKey(read);
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
          if (name === null || this.#interestingNames.has(String(name))) this.#schedule(this.#debounceMs);
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
