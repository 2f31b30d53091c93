/**
 * Answers the proxy gives by itself: a hook's refusal, an upstream failure, its own breakage.
 * Each records the reason on the request for the access log line.
 */
import type { FastifyReply } from 'fastify';
import type { Refusal } from './hooks.js';
import { kReason, type TrackedRequest } from './request-state.js';
import type { UpstreamFailure } from './upstream-errors.js';

const JSON_TYPE = 'application/json; charset=utf-8';
const PROXY_FAILURE_BODY = JSON.stringify({ error: 'proxy_error', message: 'The proxy could not handle this request.' });

/** Answers with a hook's refusal: its status and headers, its body as JSON (none when omitted). */
export function sendRefusal(reply: FastifyReply, refusal: Refusal): void {
  const raw = reply.request.raw as TrackedRequest;
  raw[kReason] = refusal.reason;
  reply.code(refusal.statusCode);
  if (refusal.headers !== undefined) reply.headers(refusal.headers);
  // an unread request body would have to be drained before the connection is reusable; for
  // a large upload it is cheaper to drop the connection
  if (hasUnreadBody(raw)) reply.header('connection', 'close');
  if (refusal.body === undefined) {
    reply.send();
  } else {
    reply.header('content-type', JSON_TYPE).send(JSON.stringify(refusal.body));
  }
}

function hasUnreadBody(raw: TrackedRequest): boolean {
  if (raw.complete) return false;
  const length = raw.headers['content-length'];
  return raw.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

export function sendUpstreamFailure(reply: FastifyReply, failure: UpstreamFailure): void {
  const raw = reply.request.raw as TrackedRequest;
  raw[kReason] = failure.problem;
  if (hasUnreadBody(raw)) reply.header('connection', 'close');
  reply.code(failure.statusCode).header('content-type', JSON_TYPE).header('cache-control', 'no-store').send(failure.body);
}

/** 500 for a failure inside the proxy itself (e.g. a hook threw); details go to the error log only */
export function sendProxyFailure(reply: FastifyReply, reason: string): void {
  (reply.request.raw as TrackedRequest)[kReason] = reason;
  if (reply.sent) return;
  reply.code(500).header('content-type', JSON_TYPE).header('cache-control', 'no-store').send(PROXY_FAILURE_BODY);
}

/** 400 (or another 4xx) with a short JSON body */
export function sendBadRequest(reply: FastifyReply, problem: string, message: string, statusCode = 400): void {
  (reply.request.raw as TrackedRequest)[kReason] = problem;
  reply.code(statusCode).header('content-type', JSON_TYPE).send(JSON.stringify({ error: problem, message }));
}

export function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
