/**
 * Answers the proxy gives by itself: a hook's refusal, an upstream failure, its own breakage.
 * Each records the reason on the request for the access log line.
 *
 * An answer is built once as plain data (status, headers, body) and then written either through
 * Fastify (`send*`, for requests Fastify routed) or straight onto Node's response (`write*`, for
 * requests the direct forwarder took), so both paths answer byte for byte alike.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import type { Refusal } from './hooks.js';
import { kReason, type TrackedRequest } from './request-state.js';
import type { UpstreamFailure } from './upstream-errors.js';

const JSON_TYPE = 'application/json; charset=utf-8';
const PROXY_FAILURE_BODY = JSON.stringify({ error: 'proxy_error', message: 'The proxy could not handle this request.' });

type AnswerHeaders = Record<string, string | string[]>;

interface Answer {
  readonly statusCode: number;
  readonly headers: AnswerHeaders;
  /** serialised body; undefined = none */
  readonly body: string | undefined;
  readonly reason: string;
}

const NO_STORE_JSON: AnswerHeaders = Object.freeze({ 'content-type': JSON_TYPE, 'cache-control': 'no-store' }) as AnswerHeaders;
const NO_STORE_JSON_CLOSE: AnswerHeaders = Object.freeze({ ...NO_STORE_JSON, connection: 'close' }) as AnswerHeaders;

/** The request's headers announce a body (chunked, or a non-zero length). */
export function announcesBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function hasUnreadBody(raw: TrackedRequest): boolean {
  return !raw.complete && announcesBody(raw);
}

function refusalAnswer(raw: TrackedRequest, refusal: Refusal): Answer {
  const headers: AnswerHeaders = { ...refusal.headers };
  // an unread request body would have to be drained before the connection is reusable; for
  // a large upload it is cheaper to drop the connection
  if (hasUnreadBody(raw)) headers.connection = 'close';
  if (refusal.body === undefined) return { statusCode: refusal.statusCode, headers, body: undefined, reason: refusal.reason };
  headers['content-type'] = JSON_TYPE;
  return { statusCode: refusal.statusCode, headers, body: JSON.stringify(refusal.body), reason: refusal.reason };
}

function upstreamFailureAnswer(raw: TrackedRequest, failure: UpstreamFailure): Answer {
  return { statusCode: failure.statusCode, headers: hasUnreadBody(raw) ? NO_STORE_JSON_CLOSE : NO_STORE_JSON, body: failure.body, reason: failure.problem };
}

function proxyFailureAnswer(reason: string): Answer {
  return { statusCode: 500, headers: NO_STORE_JSON, body: PROXY_FAILURE_BODY, reason };
}

function replyWith(reply: FastifyReply, answer: Answer): void {
  (reply.request.raw as TrackedRequest)[kReason] = answer.reason;
  reply.code(answer.statusCode).headers(answer.headers);
  if (answer.body === undefined) reply.send();
  else reply.send(answer.body);
}

function writeAnswer(req: TrackedRequest, res: ServerResponse, answer: Answer): void {
  req[kReason] = answer.reason;
  if (res.headersSent || res.destroyed) return;
  const body = answer.body ?? '';
  res.writeHead(answer.statusCode, { ...answer.headers, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Answers with a hook's refusal: its status and headers, its body as JSON (none when omitted). */
export function sendRefusal(reply: FastifyReply, refusal: Refusal): void {
  replyWith(reply, refusalAnswer(reply.request.raw, refusal));
}

export function sendUpstreamFailure(reply: FastifyReply, failure: UpstreamFailure): void {
  replyWith(reply, upstreamFailureAnswer(reply.request.raw, failure));
}

/** 500 for a failure inside the proxy itself (e.g. a hook threw); details go to the error log only */
export function sendProxyFailure(reply: FastifyReply, reason: string): void {
  if (reply.sent) {
    (reply.request.raw as TrackedRequest)[kReason] = reason;
    return;
  }
  replyWith(reply, proxyFailureAnswer(reason));
}

export function writeRefusal(req: TrackedRequest, res: ServerResponse, refusal: Refusal): void {
  writeAnswer(req, res, refusalAnswer(req, refusal));
}

export function writeUpstreamFailure(req: TrackedRequest, res: ServerResponse, failure: UpstreamFailure): void {
  writeAnswer(req, res, upstreamFailureAnswer(req, failure));
}

export function writeProxyFailure(req: TrackedRequest, res: ServerResponse, reason: string): void {
  writeAnswer(req, res, proxyFailureAnswer(reason));
}

/** 400 (or another 4xx) with a short JSON body */
export function sendBadRequest(reply: FastifyReply, problem: string, message: string, statusCode = 400): void {
  (reply.request.raw as TrackedRequest)[kReason] = problem;
  reply.code(statusCode).header('content-type', JSON_TYPE).send(JSON.stringify({ error: problem, message }));
}

export function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
