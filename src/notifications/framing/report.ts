/**
 * What the proxy learned about the upstream's notification sockets, per WebSocket path shape:
 * the framing detected, the STOMP destinations subscribed (names and counts only), the
 * notifications injected and the sockets that could not be warned. Paths are reduced to their
 * shape (SockJS server/session ids and id-like segments replaced), so no session id or secret
 * appears; the number of paths and destinations kept is bounded.
 */
import type { FramingName, FramingObserver } from './inspector.js';
import { sessionPathShape } from './sockjs.js';

export interface WebSocketPathReport {
  /** the path shape, e.g. `/panopticon/server/sockjs/{server}/{session}/websocket` */
  readonly path: string;
  /** sockets whose framing was settled, by framing */
  readonly framing: Readonly<Partial<Record<FramingName, number>>>;
  /** STOMP SUBSCRIBE frames seen, by destination */
  readonly destinations: ReadonlyArray<{ readonly destination: string; readonly subscriptions: number }>;
  /** notification messages written (one per STOMP notification subscription) */
  readonly notificationsInjected: number;
  /** sockets that had a notification due and no way to receive it */
  readonly unwarnableSockets: number;
}

export type FramingReportSnapshot = readonly WebSocketPathReport[];

const MAX_PATHS = 200;
const MAX_DESTINATIONS_PER_PATH = 100;
const OTHER = '(other)';
/** a segment that is an id rather than a name: digits, a UUID, or a long token */
const ID_SEGMENT = /^(\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[A-Za-z0-9_-]{20,})$/i;

class PathEntry {
  readonly framing = new Map<FramingName, number>();
  readonly destinations = new Map<string, number>();
  injected = 0;
  unwarnable = 0;
}

export class FramingReport {
  readonly #paths = new Map<string, PathEntry>();

  /** The observer for one socket on `path` (the path without its query). */
  forPath(path: string): FramingObserver {
    const entry = this.#entry(pathShape(path));
    return {
      detected: (framing) => entry.framing.set(framing, (entry.framing.get(framing) ?? 0) + 1),
      subscribed: (destination) => {
        const key = entry.destinations.has(destination) || entry.destinations.size < MAX_DESTINATIONS_PER_PATH ? destination : OTHER;
        entry.destinations.set(key, (entry.destinations.get(key) ?? 0) + 1);
      },
      injected: (messages) => { entry.injected += messages; },
      unwarnable: () => { entry.unwarnable++; },
    };
  }

  snapshot(): FramingReportSnapshot {
    return [...this.#paths].map(([path, e]) => ({
      path,
      framing: Object.fromEntries(e.framing),
      destinations: [...e.destinations].map(([destination, subscriptions]) => ({ destination, subscriptions })),
      notificationsInjected: e.injected,
      unwarnableSockets: e.unwarnable,
    }));
  }

  #entry(shape: string): PathEntry {
    let entry = this.#paths.get(shape);
    if (entry === undefined) {
      const key = this.#paths.size < MAX_PATHS ? shape : OTHER;
      entry = this.#paths.get(key) ?? new PathEntry();
      this.#paths.set(key, entry);
    }
    return entry;
  }
}

/** `/ws/123/abc/websocket` -> `/ws/{server}/{session}/websocket`; id-like segments -> `{id}` */
export function pathShape(path: string): string {
  return sessionPathShape(path) ?? path.split('/').map((s) => (ID_SEGMENT.test(s) ? '{id}' : s)).join('/');
}
