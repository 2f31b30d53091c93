/** How the upstream's "who am I" endpoint has been answering, for the admin view. Nothing secret. */
import type { WhoamiObserver } from './whoami.js';

export interface WhoamiReport {
  readonly calls: number;
  /** calls that got no answer (network error, timeout) */
  readonly failures: number;
  /** answers 5xx/429 */
  readonly serverErrors: number;
  readonly lastStatus: number | null;
  readonly lastLatencyMs: number | null;
  readonly lastAtMs: number | null;
  readonly lastError: string | null;
  readonly lastErrorAtMs: number | null;
}

export class WhoamiHealth implements WhoamiObserver {
  readonly #nowMs: () => number;
  #calls = 0;
  #failures = 0;
  #serverErrors = 0;
  #lastStatus: number | null = null;
  #lastLatencyMs: number | null = null;
  #lastAtMs: number | null = null;
  #lastError: string | null = null;
  #lastErrorAtMs: number | null = null;

  constructor(nowMs: () => number) {
    this.#nowMs = nowMs;
  }

  answered(status: number, latencyMs: number): void {
    this.#note(latencyMs);
    this.#lastStatus = status;
    if (status >= 500 || status === 429) {
      this.#serverErrors++;
      this.#noteError(`answered ${status}`);
    }
  }

  failed(error: string, latencyMs: number): void {
    this.#note(latencyMs);
    this.#failures++;
    this.#lastStatus = null;
    this.#noteError(error);
  }

  report(): WhoamiReport {
    return {
      calls: this.#calls, failures: this.#failures, serverErrors: this.#serverErrors,
      lastStatus: this.#lastStatus, lastLatencyMs: this.#lastLatencyMs, lastAtMs: this.#lastAtMs,
      lastError: this.#lastError, lastErrorAtMs: this.#lastErrorAtMs,
    };
  }

  #note(latencyMs: number): void {
    this.#calls++;
    this.#lastLatencyMs = Math.round(latencyMs * 10) / 10;
    this.#lastAtMs = this.#nowMs();
  }

  #noteError(error: string): void {
    this.#lastError = error;
    this.#lastErrorAtMs = this.#nowMs();
  }
}
