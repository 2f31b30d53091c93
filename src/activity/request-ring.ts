/**
 * What the timer detector remembers of one request shape of one user: the times of its last few
 * requests in a ring (typed arrays, no object per request), whether each counted or was a timer's,
 * and a hash of each one's exact path.
 */

/** the request counted as activity when it came */
export const COUNTED = 1;
/** the request was found to be part of a timer's chain */
export const TIMER = 2;

export class Pattern {
  readonly times: Float64Array;
  readonly flags: Uint8Array;
  /** hash of each request's exact path (query aside) */
  readonly hashes: Int32Array;
  head = 0;
  size = 0;
  seen = 0;
  timerRequests = 0;
  lastMs = 0;
  intervalMs: number | undefined;
  timerSinceMs: number | undefined;
  /** latest request of this pattern that counted and fell out of the ring before joining a chain */
  droppedGenuineMs = Number.NEGATIVE_INFINITY;
  /** the rule text of the last hit, rebuilt only when the interval's text changes */
  ruleInterval = '';
  rule = '';

  constructor(readonly method: string, readonly shape: string, capacity: number) {
    this.times = new Float64Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.hashes = new Int32Array(capacity);
  }

  /** ring index of the i-th newest entry */
  index(i: number): number {
    const n = this.times.length;
    return (this.head - 1 - i + n) % n;
  }

  push(atMs: number, flags: number, pathHash: number): void {
    const n = this.times.length;
    if (this.size === n && (this.flags[this.head]! & (COUNTED | TIMER)) === COUNTED) {
      this.droppedGenuineMs = Math.max(this.droppedGenuineMs, this.times[this.head]!);
    }
    this.times[this.head] = atMs;
    this.flags[this.head] = flags;
    this.hashes[this.head] = pathHash;
    this.head = (this.head + 1) % n;
    if (this.size < n) this.size++;
  }

  /** the latest request that counted and is not a timer's */
  lastGenuineMs(): number {
    for (let i = 0; i < this.size; i++) {
      const k = this.index(i);
      if ((this.flags[k]! & (COUNTED | TIMER)) === COUNTED) return Math.max(this.times[k]!, this.droppedGenuineMs);
    }
    return this.droppedGenuineMs;
  }
}

/** FNV-1a over the path up to its query */
export function hashPath(path: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 63 /* ? */) break;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return h | 0;
}
