/** Saves the state periodically and on demand; never two saves at once, errors logged not thrown. */
import type { ProxyState, StateFile } from './state-file.js';

export interface PersisterOptions {
  file: StateFile;
  intervalMs: number;
  collect(): ProxyState;
  onError(err: unknown): void;
}

export class StatePersister {
  readonly #opts: PersisterOptions;
  #timer: NodeJS.Timeout | undefined;
  #saving: Promise<void> | undefined;
  #again = false;
  saves = 0;

  constructor(opts: PersisterOptions) {
    this.#opts = opts;
  }

  start(): void {
    this.#timer = setInterval(() => void this.saveNow(), this.#opts.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Saves now; a save requested while one runs is done right after it (with fresh state). */
  saveNow(): Promise<void> {
    if (this.#saving) {
      this.#again = true;
      return this.#saving;
    }
    this.#saving = (async () => {
      do {
        this.#again = false;
        try {
          await this.#opts.file.save(this.#opts.collect());
          this.saves++;
        } catch (err) {
          this.#opts.onError(err);
        }
      } while (this.#again);
      this.#saving = undefined;
    })();
    return this.#saving;
  }
}
