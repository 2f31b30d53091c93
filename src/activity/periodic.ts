/**
 * Timers told apart from people by the traffic itself. Per user, requests of one method and path
 * shape are remembered (the last few times of each); a request that ends a chain of `repeats`
 * steady gaps (each within the tolerance of the chain's mean interval, the interval between
 * `minIntervalMs` and the longest considered) is a timer's.
 *
 * Requests that counted while a chain was being learned are taken back: the hit carries the user's
 * last request that was not a timer's, and the caller moves the session's idle start back to it.
 *
 * Cost: O(requestsPerPattern) per request (two passes over one ring), plus O(patternsPerUser ×
 * requestsPerPattern) when activity is taken back or a pattern is evicted; memory is bounded per
 * user (the least recently seen pattern is evicted) and quiet users are swept a few per request.
 */
import type { RequestNote } from '../sessions/store.js';
import type { DeploymentConfig } from '../config/deployment.js';
import { pathShape } from './path-shape.js';
import { COUNTED, Pattern, TIMER, hashPath } from './request-ring.js';

export interface PeriodicOptions {
  /** steady gaps needed before a request shape is a timer (a chain of repeats + 1 requests) */
  readonly repeats: number;
  /** how far a gap may be from the chain's mean interval, in percent of it */
  readonly tolerancePercent: number;
  /** gaps shorter than this never make a timer (a person clicking quickly) */
  readonly minIntervalMs: number;
  /** the longest interval considered; a function, so it can follow the session timeout */
  readonly maxIntervalMs: () => number;
  /** a pattern not seen for this long (or twice its interval / while learning the longest interval, if longer) is forgotten */
  readonly forgetAfterMs: number;
  readonly patternsPerUser?: number;
  readonly requestsPerPattern?: number;
}

/** The detector's options from the deployment settings; `timeoutMs` follows the properties file. */
export function periodicOptions(config: DeploymentConfig, timeoutMs: () => number): PeriodicOptions {
  const max = config.periodicMaxInterval;
  return {
    repeats: config.periodicRepeats,
    tolerancePercent: config.periodicTolerancePercent,
    minIntervalMs: config.periodicMinIntervalMs,
    maxIntervalMs: 'ms' in max ? () => max.ms : () => (timeoutMs() * max.percentOfTimeout) / 100,
    forgetAfterMs: config.periodicForgetAfterMs,
  };
}

export interface PeriodicHit {
  /** `periodic:<METHOD shape>@<interval>` */
  readonly rule: string;
  readonly intervalMs: number;
  /** the first hit of this pattern (since it was last forgotten) */
  readonly newlyRecognised: boolean;
  /** set when requests that counted turned out to be this timer's: the last request that was not */
  readonly retractTo: RequestNote | undefined;
}

export interface PatternView {
  readonly method: string;
  readonly shape: string;
  readonly state: 'timer' | 'learning';
  /** the mean interval of the last chain found */
  readonly intervalMs: number | undefined;
  /** when this pattern was recognised as a timer (undefined while learning) */
  readonly timerSinceMs: number | undefined;
  readonly seen: number;
  readonly timerRequests: number;
  readonly lastSeenMs: number;
}

export const PATTERNS_PER_USER = 8;
export const REQUESTS_PER_PATTERN = 12;
/** timers and networks are not exact to the millisecond: the tolerance is never below this */
const TOLERANCE_FLOOR_MS = 25;
/** idle users checked for forgetting: SWEEP_BATCH users every SWEEP_EVERY observed requests (amortised, 2 per request) */
const SWEEP_EVERY = 32;
const SWEEP_BATCH = 64;

interface UserPatterns {
  readonly patterns: Map<string, Pattern>;
  /** the latest genuine request the detector saw outside its patterns (or of forgotten ones) */
  other: RequestNote | undefined;
  lastMs: number;
}

interface Chain {
  readonly intervalMs: number;
  readonly earliestMs: number;
  readonly retract: boolean;
}

export class PeriodicDetector {
  readonly #opts: PeriodicOptions;
  readonly #patternsPerUser: number;
  readonly #capacity: number;
  readonly #users = new Map<string, UserPatterns>();
  /** where the round-robin sweep of quiet users continues */
  #cursor: IterableIterator<[string, UserPatterns]> | undefined;
  /** requests observed since the last sweep */
  #sinceSweep = 0;
  /** ring positions of the chain being walked (reused) */
  readonly #members: Int32Array;

  constructor(opts: PeriodicOptions) {
    this.#opts = opts;
    this.#patternsPerUser = opts.patternsPerUser ?? PATTERNS_PER_USER;
    this.#capacity = Math.max(opts.requestsPerPattern ?? REQUESTS_PER_PATTERN, opts.repeats + 1);
    this.#members = new Int32Array(this.#capacity);
  }

  /** Users with patterns in memory. */
  get userCount(): number {
    return this.#users.size;
  }

  /**
   * A request that would count if it is not a timer's. Returns the hit when it is (it then does
   * not count), or undefined (it counts, and is remembered as possibly the start of a timer).
   */
  observe(user: string, method: string, path: string, nowMs: number): PeriodicHit | undefined {
    const shape = pathShape(path);
    const pathHash = hashPath(path);
    const u = this.#touchUser(user, nowMs);
    const p = this.#touchPattern(u, method, shape, nowMs);
    p.seen++;
    p.lastMs = nowMs;
    const chain = this.#findChain(p, pathHash, nowMs);
    if (!chain) {
      p.push(nowMs, COUNTED, pathHash);
      return undefined;
    }
    p.push(nowMs, TIMER, pathHash);
    p.timerRequests++;
    p.intervalMs = chain.intervalMs;
    const newlyRecognised = p.timerSinceMs === undefined;
    if (newlyRecognised) p.timerSinceMs = nowMs;
    const retractTo = chain.retract ? (this.#lastGenuine(u) ?? note(p.method, p.shape, chain.earliestMs)) : undefined;
    const interval = intervalText(chain.intervalMs);
    if (interval !== p.ruleInterval) {
      p.ruleInterval = interval;
      p.rule = `periodic:${method} ${shape}@${interval}`;
    }
    return { rule: p.rule, intervalMs: chain.intervalMs, newlyRecognised, retractTo };
  }

  /** A request of the user that counted without being a candidate (a navigation by hand, an active path, a reset). */
  noteGenuine(user: string, genuine: RequestNote): void {
    const u = this.#touchUser(user, genuine.atMs);
    if (!u.other || u.other.atMs <= genuine.atMs) u.other = genuine;
  }

  describe(user: string, nowMs: number): PatternView[] {
    const u = this.#users.get(user);
    if (!u) return [];
    const out: PatternView[] = [];
    for (const p of u.patterns.values()) {
      if (this.#stale(p, nowMs)) continue;
      const timer = p.timerSinceMs !== undefined;
      out.push({
        method: p.method, shape: p.shape, state: timer ? 'timer' : 'learning', intervalMs: p.intervalMs,
        timerSinceMs: p.timerSinceMs, seen: p.seen, timerRequests: p.timerRequests, lastSeenMs: p.lastMs,
      });
    }
    return out.sort((a, b) => (a.state === b.state ? b.lastSeenMs - a.lastSeenMs : a.state === 'timer' ? -1 : 1));
  }

  // ---- internals -------------------------------------------------------------------------

  #touchUser(user: string, nowMs: number): UserPatterns {
    let u = this.#users.get(user);
    if (!u) this.#users.set(user, (u = { patterns: new Map(), other: undefined, lastMs: nowMs }));
    if (nowMs > u.lastMs) u.lastMs = nowMs;
    if (++this.#sinceSweep >= SWEEP_EVERY) {
      this.#sinceSweep = 0;
      this.#sweep(nowMs);
    }
    return u;
  }

  /** Looks at the next few users (round robin) and drops those quiet longer than any pattern is kept. */
  #sweep(nowMs: number): void {
    const quietMs = Math.max(this.#opts.forgetAfterMs, 2 * this.#opts.maxIntervalMs());
    for (let checked = 0; checked < SWEEP_BATCH; checked++) {
      this.#cursor ??= this.#users.entries();
      const next = this.#cursor.next();
      if (next.done) {
        this.#cursor = undefined;
        return;
      }
      const [name, u] = next.value;
      if (nowMs - u.lastMs > quietMs) this.#users.delete(name);
    }
  }

  #touchPattern(u: UserPatterns, method: string, shape: string, nowMs: number): Pattern {
    const key = method + ' ' + shape;
    const known = u.patterns.get(key);
    if (known && !this.#stale(known, nowMs)) return known;
    if (known) foldInto(u, known);
    const p = new Pattern(method, shape, this.#capacity);
    u.patterns.set(key, p);
    if (u.patterns.size > this.#patternsPerUser) this.#evictLeastRecent(u, p);
    return p;
  }

  /** Drops the pattern seen least recently (a handful: a scan costs less than keeping an order). */
  #evictLeastRecent(u: UserPatterns, keep: Pattern): void {
    let victimKey: string | undefined;
    let victim: Pattern | undefined;
    for (const [key, p] of u.patterns) {
      if (p !== keep && (!victim || p.lastMs < victim.lastMs)) {
        victimKey = key;
        victim = p;
      }
    }
    if (victimKey === undefined || !victim) return;
    u.patterns.delete(victimKey);
    foldInto(u, victim);
  }

  /** Quiet for longer than forget-after, twice its interval, and (while learning) the longest interval. */
  #stale(p: Pattern, nowMs: number): boolean {
    const keepMs = p.intervalMs === undefined ? this.#opts.maxIntervalMs() : 2 * p.intervalMs;
    return nowMs - p.lastMs > Math.max(this.#opts.forgetAfterMs, keepMs);
  }

  /**
   * Looks for a chain of `repeats` steady gaps ending at nowMs: first among every request of the
   * shape, then among those of the same exact path (two tiles refreshing /dashboards/7 and
   * /dashboards/8 interleave in the shape, not in their own paths). The chain is strict: the
   * earlier request of each gap is the one right before, except for bursts (closer than the
   * minimum interval) and requests already known as another timer's, which are stepped over, and
   * one delayed beat per chain. A person's irregular clicks therefore never line up by skipping
   * the odd ones. Marks the chain's requests as the timer's.
   */
  #findChain(p: Pattern, pathHash: number, nowMs: number): Chain | undefined {
    return this.#walk(p, undefined, nowMs) ?? this.#walk(p, pathHash, nowMs);
  }

  #walk(p: Pattern, pathHash: number | undefined, nowMs: number): Chain | undefined {
    const { repeats, minIntervalMs } = this.#opts;
    const tolerance = this.#opts.tolerancePercent / 100;
    const members = this.#members;
    let count = 0; // members found
    let gaps = 0; // intervals they span
    let anchorMs = nowMs;
    let meanMs = 0;
    let delayedBeat = false;
    for (let i = 0; i < p.size; i++) {
      const k = p.index(i);
      if (pathHash !== undefined && p.hashes[k] !== pathHash) continue;
      const t = p.times[k]!;
      const gapMs = anchorMs - t;
      if (gapMs < minIntervalMs) continue; // a burst
      let spans = 1;
      if (gaps > 0) {
        const slackMs = Math.max(meanMs * tolerance, TOLERANCE_FLOOR_MS);
        if (Math.abs(gapMs - meanMs) > slackMs) {
          // A beat sent late on a busy machine, the next one on time again: the two gaps around it
          // add up to two intervals. Tolerated once per chain, after two steady gaps. (A beat so
          // late that it comes within the minimum interval of the next one is not caught.)
          const after = delayedBeat || gaps < 2 || gapMs > meanMs ? -1 : this.#nextRelevant(p, i + 1, pathHash);
          if (after !== -1 && Math.abs(anchorMs - p.times[p.index(after)]! - 2 * meanMs) <= slackMs) {
            members[count++] = k;
            i = after;
            delayedBeat = true;
            spans = 2;
          } else if ((p.flags[k]! & TIMER) !== 0 && gapMs < meanMs) {
            continue; // another timer's beat in between
          } else {
            break;
          }
        }
      }
      if (gaps === 0 && gapMs > this.#opts.maxIntervalMs()) return undefined;
      members[count++] = p.index(i);
      anchorMs = p.times[p.index(i)]!;
      gaps += spans;
      meanMs = (nowMs - anchorMs) / gaps;
    }
    if (gaps < repeats) return undefined;
    let retract = false;
    for (let m = 0; m < count; m++) {
      const k = members[m]!;
      if ((p.flags[k]! & (COUNTED | TIMER)) === COUNTED) retract = true;
      p.flags[k] = p.flags[k]! | TIMER;
    }
    return { intervalMs: meanMs, earliestMs: anchorMs, retract };
  }

  /** Position of the next (older) request of the ring on the path, or -1. */
  #nextRelevant(p: Pattern, from: number, pathHash: number | undefined): number {
    for (let i = from; i < p.size; i++) {
      if (pathHash === undefined || p.hashes[p.index(i)] === pathHash) return i;
    }
    return -1;
  }

  #lastGenuine(u: UserPatterns): RequestNote | undefined {
    let best = u.other;
    for (const p of u.patterns.values()) {
      const atMs = p.lastGenuineMs();
      if (atMs > (best?.atMs ?? Number.NEGATIVE_INFINITY)) best = note(p.method, p.shape, atMs);
    }
    return best;
  }
}

function foldInto(u: UserPatterns, p: Pattern): void {
  const atMs = p.lastGenuineMs();
  if (atMs > (u.other?.atMs ?? Number.NEGATIVE_INFINITY)) u.other = note(p.method, p.shape, atMs);
}

function note(method: string, path: string, atMs: number): RequestNote {
  return { atMs, method, path, counted: true, rule: 'counted' };
}

/** `800ms`, `7s`, `2.5s`, `1m`, `1.5h` */
export function intervalText(ms: number): string {
  if (ms < 950) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${round1(ms / 1000)}s`;
  if (ms < 3_600_000) return `${round1(ms / 60_000)}m`;
  return `${round1(ms / 3_600_000)}h`;
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
