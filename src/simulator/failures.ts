/**
 * Panopticon simulator: switches that make the simulated server misbehave, for tests and demos.
 */

export interface FailureSwitches {
  /** The next `times` logout calls answer `status` (default 500) without logging anyone out. */
  failLogout(times: number, status?: number): void;
  /** While on, logout calls get no answer (they continue once switched off). */
  hangLogout(on: boolean): void;
  /** Every response (except /__simulator/*) is held back this long. */
  setDelayMs(ms: number): void;
  /**
   * While down, every request except /__simulator/* has its connection destroyed without an answer
   * and open WebSockets are dropped. `forMs` switches it back up automatically.
   */
  setDown(down: boolean, forMs?: number): void;
  /** Everything back to normal (pending hung logouts continue). */
  reset(): void;
}

export interface FailureState {
  failLogoutRemaining: number;
  failLogoutStatus: number;
  hangLogout: boolean;
  delayMs: number;
  down: boolean;
}

function wholeNumber(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be a whole number from ${min} to ${max}, got ${value}`);
  }
  return value;
}

export class FailureControl implements FailureSwitches {
  private failRemaining = 0;
  private failStatus = 500;
  private hanging = false;
  private delay = 0;
  private isDown = false;
  private upTimer: NodeJS.Timeout | undefined;
  private readonly hangWaiters = new Set<(proceed: boolean) => void>();

  /** Called when the server goes down (the server drops its open sockets). */
  onDown: () => void = () => {};

  failLogout(times: number, status = 500): void {
    const checkedStatus = wholeNumber('failLogout status', status, 100, 599);
    this.failRemaining = wholeNumber('failLogout times', times, 0);
    this.failStatus = checkedStatus;
  }

  hangLogout(on: boolean): void {
    this.hanging = on;
    if (!on) this.releaseHung();
  }

  setDelayMs(ms: number): void {
    this.delay = wholeNumber('delayMs', ms, 0);
  }

  setDown(down: boolean, forMs?: number): void {
    clearTimeout(this.upTimer);
    this.upTimer = undefined;
    this.isDown = down;
    if (!down) return;
    if (forMs !== undefined) {
      this.upTimer = setTimeout(() => this.setDown(false), wholeNumber('downMs', forMs, 1));
      this.upTimer.unref();
    }
    this.onDown();
  }

  reset(): void {
    this.failLogout(0);
    this.hangLogout(false);
    this.setDelayMs(0);
    this.setDown(false);
  }

  get delayMs(): number {
    return this.delay;
  }

  get down(): boolean {
    return this.isDown;
  }

  /** Status for this logout call when it is to fail; counts the failure down. */
  takeLogoutFailure(): number | undefined {
    if (this.failRemaining <= 0) return undefined;
    this.failRemaining -= 1;
    return this.failStatus;
  }

  /**
   * Resolves true at once when logouts do not hang; otherwise true when the hang is switched off,
   * or false when the simulator closes (the call is then abandoned).
   */
  waitWhileHung(): Promise<boolean> {
    if (!this.hanging) return Promise.resolve(true);
    return new Promise((resolve) => this.hangWaiters.add(resolve));
  }

  private releaseHung(proceed = true): void {
    for (const wake of this.hangWaiters) wake(proceed);
    this.hangWaiters.clear();
  }

  /** Stops the automatic "up again" timer and abandons hung logouts (on close). */
  dispose(): void {
    clearTimeout(this.upTimer);
    this.releaseHung(false);
  }

  snapshot(): FailureState {
    return {
      failLogoutRemaining: this.failRemaining,
      failLogoutStatus: this.failStatus,
      hangLogout: this.hanging,
      delayMs: this.delay,
      down: this.isDown,
    };
  }
}
