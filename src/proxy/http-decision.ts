/**
 * Running hooks.onHttpRequest for one plain HTTP request and acting on its decision, the same
 * way for both forwarders: the request is forwarded, refused with the hook's answer, or answered
 * 500 when the hook failed. A plain (non-promise) decision is acted on at once.
 */
import type { HttpDecision, ProxyHooks, Refusal } from './hooks.js';
import { isPromiseLike } from './answers.js';
import { kHookContext, kPath, kUser, type TrackedRequest } from './request-state.js';

/** What a forwarder does with a decision; `target` is whatever it needs to answer (reply, response). */
export interface DecisionOutcome<T> {
  forward(raw: TrackedRequest, target: T): void;
  refuse(raw: TrackedRequest, target: T, refusal: Refusal): void;
  failed(raw: TrackedRequest, target: T, err: unknown): void;
}

export type HttpRequestHook = NonNullable<ProxyHooks['onHttpRequest']>;

function settle<T>(raw: TrackedRequest, target: T, decision: HttpDecision, outcome: DecisionOutcome<T>): void {
  if (decision.user !== undefined) raw[kUser] = decision.user;
  if (decision.refuse !== undefined) {
    outcome.refuse(raw, target, decision.refuse);
    return;
  }
  if (decision.context !== undefined) raw[kHookContext] = decision.context;
  outcome.forward(raw, target);
}

export function decideHttpRequest<T>(raw: TrackedRequest, path: string, target: T, hook: HttpRequestHook | undefined, outcome: DecisionOutcome<T>): void {
  raw[kPath] = path;
  if (hook === undefined) {
    outcome.forward(raw, target);
    return;
  }
  let decision: HttpDecision | Promise<HttpDecision>;
  try {
    decision = hook(raw, path);
  } catch (err) {
    outcome.failed(raw, target, err);
    return;
  }
  if (!isPromiseLike(decision)) {
    settle(raw, target, decision, outcome);
    return;
  }
  decision.then(
    (settled) => settle(raw, target, settled, outcome),
    (err: unknown) => outcome.failed(raw, target, err),
  );
}
