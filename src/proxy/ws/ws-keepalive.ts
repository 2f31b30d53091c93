/**
 * One interval for the keep-alive of every relayed WebSocket pair (not a timer per socket).
 * Each round calls heartbeat() on every pair: a side that did not answer the previous round's
 * ping is dropped (ws-relay.ts). With intervalMs = 0 nothing is scheduled.
 */
export interface Heartbeating {
  heartbeat(): void;
}

export class KeepAlive<T extends Heartbeating> {
  readonly #members = new Set<T>();
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }

  add(member: T): void {
    if (this.#intervalMs <= 0) return;
    this.#members.add(member);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#round(), this.#intervalMs);
      this.#timer.unref();
    }
  }

  delete(member: T): void {
    this.#members.delete(member);
    if (this.#members.size === 0) this.stop();
  }

  /** One keep-alive round over every member (a heartbeat may end a pair and delete it). */
  #round(): void {
    for (const member of [...this.#members]) member.heartbeat();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
