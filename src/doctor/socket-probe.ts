/**
 * Opens each candidate socket path with the doctor's credential and works out what it speaks:
 *
 *   SockJS     GET <path>/info answers JSON with a "websocket" field; then a session WebSocket at
 *              <path>/<server>/<session>/websocket must open with `o`, and a STOMP CONNECT sent
 *              inside a["..."] shows whether STOMP runs inside (sockjs-stomp) or not (sockjs-json)
 *   STOMP      a plain WebSocket (offered v12/v11/v10.stomp) that answers CONNECT with CONNECTED
 *   JSON       a plain WebSocket whose frames are JSON text, or that sends nothing by itself
 * A path that refuses the upgrade (404, 401, ...) is no socket. The probe ends a STOMP session
 * politely (DISCONNECT) and never subscribes.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { WebSocket } from 'ws';
import { serverMessages } from '../notifications/framing/sockjs.js';

export type ProbedFraming = 'json' | 'stomp' | 'sockjs-json' | 'sockjs-stomp';

export interface SocketFinding {
  /** the endpoint (for SockJS: the prefix) */
  path: string;
  framing: ProbedFraming;
  /** for SockJS: the glob of its session sockets */
  notifyGlob: string;
  /** what was seen, for the report (no secrets): e.g. "CONNECTED version 1.2, heart-beat 10000,10000" */
  detail: string;
}

export interface ProbeMiss {
  path: string;
  /** e.g. "404", "closed at once", "no answer" */
  why: string;
}

const STOMP_SUBPROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];
const CONNECT_FRAME = 'CONNECT\naccept-version:1.2,1.1,1.0\nheart-beat:0,0\n\n\0';
const DISCONNECT_FRAME = 'DISCONNECT\n\n\0';

function wsUrl(base: URL, path: string): string {
  const url = new URL(path, base);
  url.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
}

function stompDetail(frame: string): string {
  const head = frame.slice(0, frame.indexOf('\n\n') === -1 ? frame.length : frame.indexOf('\n\n')).split('\n');
  const header = (name: string) => head.find((l) => l.startsWith(`${name}:`))?.slice(name.length + 1);
  if (head[0] === 'ERROR') return `CONNECT refused with ERROR (${header('message') ?? 'no message'})`;
  return `CONNECTED version ${header('version') ?? '1.0'}, heart-beat ${header('heart-beat') ?? '0,0'}`;
}

interface Opened {
  ws: WebSocket;
  frames: string[];
  closed: Promise<number>;
  next(timeoutMs: number): Promise<string | undefined>;
}

/** Opens a WebSocket; resolves undefined-with-reason when the upgrade is refused. */
function open(url: string, headers: Record<string, string>, protocols: string[], timeoutMs: number): Promise<Opened | { refused: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, protocols, { headers, handshakeTimeout: timeoutMs });
    const frames: string[] = [];
    const waiters: Array<(text: string | undefined) => void> = [];
    ws.on('message', (data) => {
      const text = data.toString();
      frames.push(text);
      waiters.shift()?.(text);
    });
    const closed = new Promise<number>((r) => ws.once('close', (code) => { for (const w of waiters.splice(0)) w(undefined); r(code); }));
    ws.once('unexpected-response', (_req, res) => { resolve({ refused: String(res.statusCode) }); ws.terminate(); });
    ws.once('error', (err) => resolve({ refused: err.message }));
    ws.once('open', () => {
      let read = 0;
      resolve({
        ws,
        frames,
        closed,
        next: (ms) => {
          if (read < frames.length) return Promise.resolve(frames[read++]);
          return new Promise((r) => {
            const timer = setTimeout(() => { waiters.splice(waiters.indexOf(done), 1); r(undefined); }, ms);
            const done = (text: string | undefined) => { clearTimeout(timer); read += 1; r(text); };
            waiters.push(done);
          });
        },
      });
    });
  });
}

async function sockJsInfo(base: URL, path: string, headers: Record<string, string>): Promise<boolean> {
  try {
    const res = await fetch(new URL(`${path}/info`, base), { headers: { ...headers, accept: 'application/json' }, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
    if (res.status !== 200) return false;
    const body = await res.json() as unknown;
    return typeof body === 'object' && body !== null && 'websocket' in body;
  } catch {
    return false;
  }
}

async function probeSockJs(base: URL, path: string, headers: Record<string, string>, watchMs: number): Promise<SocketFinding | ProbeMiss> {
  const sessionPath = `${path}/${randomInt(1000).toString().padStart(3, '0')}/${randomBytes(6).toString('hex')}/websocket`;
  const opened = await open(wsUrl(base, sessionPath), headers, [], watchMs);
  if ('refused' in opened) return { path, why: `SockJS /info answered but the session socket was refused (${opened.refused})` };
  try {
    if ((await opened.next(watchMs)) !== 'o') return { path, why: 'SockJS session socket did not open with "o"' };
    opened.ws.send(JSON.stringify([CONNECT_FRAME]));
    for (;;) {
      const frame = await opened.next(watchMs);
      if (frame === undefined) return { path, framing: 'sockjs-json', notifyGlob: `${path}/*/*/websocket`, detail: 'SockJS; no STOMP answer to CONNECT' };
      if (frame === 'h') continue;
      const inner = serverMessages(frame)?.[0];
      if (inner === undefined) continue;
      if (/^(CONNECTED|ERROR)\r?\n/.test(inner)) {
        if (inner.startsWith('CONNECTED')) opened.ws.send(JSON.stringify([DISCONNECT_FRAME]));
        return { path, framing: 'sockjs-stomp', notifyGlob: `${path}/*/*/websocket`, detail: `SockJS websocket transport; ${stompDetail(inner)}` };
      }
      return { path, framing: 'sockjs-json', notifyGlob: `${path}/*/*/websocket`, detail: 'SockJS with non-STOMP messages' };
    }
  } finally {
    opened.ws.close();
  }
}

async function probePlain(base: URL, path: string, headers: Record<string, string>, watchMs: number): Promise<SocketFinding | ProbeMiss> {
  const opened = await open(wsUrl(base, path), headers, STOMP_SUBPROTOCOLS, watchMs);
  if ('refused' in opened) return { path, why: opened.refused };
  try {
    opened.ws.send(CONNECT_FRAME);
    const deadline = Date.now() + watchMs;
    for (;;) {
      const frame = await opened.next(Math.max(0, deadline - Date.now()));
      if (frame === undefined) {
        const closedEarly = opened.ws.readyState !== opened.ws.OPEN;
        return closedEarly
          ? { path, why: 'the socket closed after a STOMP CONNECT and sent nothing' }
          : { path, framing: 'json', notifyGlob: path, detail: `plain WebSocket; sent nothing in ${watchMs} ms (no STOMP answer)` };
      }
      if (/^(CONNECTED|ERROR)\r?\n/.test(frame)) {
        if (frame.startsWith('CONNECTED')) opened.ws.send(DISCONNECT_FRAME);
        return { path, framing: 'stomp', notifyGlob: path, detail: `sub-protocol ${opened.ws.protocol || '(none)'}; ${stompDetail(frame)}` };
      }
      if (frame.trim() === '') continue;
      try {
        JSON.parse(frame);
        return { path, framing: 'json', notifyGlob: path, detail: 'plain WebSocket with JSON text frames' };
      } catch {
        return { path, why: `frames are neither STOMP nor JSON (first: ${JSON.stringify(frame.slice(0, 40))})` };
      }
    }
  } finally {
    opened.ws.close();
  }
}

/** Probes one path: SockJS when its /info answers, a plain WebSocket otherwise. */
export async function probeSocket(base: URL, path: string, headers: Record<string, string>, watchMs: number): Promise<SocketFinding | ProbeMiss> {
  if (await sockJsInfo(base, path, headers)) return probeSockJs(base, path, headers, watchMs);
  return probePlain(base, path, headers, watchMs);
}

export function isFinding(x: SocketFinding | ProbeMiss): x is SocketFinding {
  return 'framing' in x;
}
