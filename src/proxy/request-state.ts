/**
 * Per-request facts the proxy needs after the handler returned (for the access log line and
 * for hooks.onHttpResponse). They live on the raw IncomingMessage under private symbols, which
 * costs nothing beyond the values themselves: no side table, no per-request closure.
 */
import type { IncomingMessage } from 'node:http';

export const kStartMs = Symbol('stp.startMs');
export const kPath = Symbol('stp.path');
export const kUser = Symbol('stp.user');
export const kReason = Symbol('stp.reason');
/** the activity rule that decided the request (for the access log) */
export const kActivity = Symbol('stp.activity');
export const kHookContext = Symbol('stp.hookContext');
/** set when the WebSocket relay writes this request's log line itself */
export const kOwnLine = Symbol('stp.ownLine');

export interface ProxyRequestState {
  [kStartMs]?: number;
  [kPath]?: string;
  [kUser]?: string;
  [kReason]?: string;
  [kActivity]?: string;
  [kHookContext]?: unknown;
  [kOwnLine]?: true;
}

export type TrackedRequest = IncomingMessage & ProxyRequestState;
