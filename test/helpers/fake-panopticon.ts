/**
 * A tiny stand-in upstream for logout tests: it knows users only by `Authorization: Bearer
 * user:<name>`, and its logout endpoint can fail on purpose, per credential and per attempt.
 *
 *   GET  <context>/server/rest/server/myself   {"username": name} for a known bearer, else 401
 *                                              (a bearer whose logout answered 2xx is unknown)
 *   POST <context>/server/rest/auth/logout     behaviour(credential, attempt, clockMs) decides:
 *                                              a status, 'hang' (no answer until the caller gives
 *                                              up) or 'close' (connection destroyed unanswered);
 *                                              answers come logoutAnswerDelayMs late (default 0)
 *   any other request                          200 "ok" for a known bearer, else 401
 *   WebSocket upgrade on any path              accepted; the socket stays open, silent
 *
 * Every logout call is recorded (credential, attempt, real and clock time, outcome), with calls
 * per credential, calls in flight and the most ever in flight at once.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { WebSocketServer } from 'ws';

export type LogoutOutcome = number | 'hang' | 'close';
export type LogoutBehaviour = (credential: string, attempt: number, clockMs: number) => LogoutOutcome;

export interface LogoutCall {
  readonly credential: string;
  readonly attempt: number;
  /** performance.now() when the call arrived */
  readonly atRealMs: number;
  /** the injected clock's time when the call arrived */
  readonly atClockMs: number;
  readonly outcome: LogoutOutcome;
  /** credentials whose logout calls were still unanswered when this one arrived */
  readonly inFlightWith: readonly string[];
}

export interface FakePanopticon {
  readonly url: string;
  readonly calls: LogoutCall[];
  readonly callsByCredential: Map<string, number>;
  /** credentials whose logout was answered 2xx */
  readonly released: Set<string>;
  readonly inFlight: number;
  readonly maxInFlight: number;
  behaviour: LogoutBehaviour;
  close(): Promise<void>;
}

export const bearerOf = (user: string) => `Bearer user:${user}`;

export interface FakePanopticonOptions {
  /** records the clock time of each logout call */
  clock?: { now(): number };
  contextPath?: string;
  /** answers logout calls this much later (so that concurrent calls overlap); default 0 */
  logoutAnswerDelayMs?: number;
}

export async function startFakePanopticon(opts: FakePanopticonOptions = {}): Promise<FakePanopticon> {
  const context = opts.contextPath ?? '/panopticon';
  const logoutPath = `${context}/server/rest/auth/logout`;
  const whoamiPath = `${context}/server/rest/server/myself`;
  const nowClock = () => opts.clock?.now() ?? Date.now();
  const open = new Map<object, string>();
  let maxInFlight = 0;
  const state = {
    calls: [] as LogoutCall[],
    callsByCredential: new Map<string, number>(),
    released: new Set<string>(),
    behaviour: (() => 200) as LogoutBehaviour,
  };

  // a credential whose logout was answered 2xx is gone: the server no longer knows it
  const userOf = (req: http.IncomingMessage) => state.released.has(req.headers.authorization ?? '') ? undefined : /^Bearer user:(\S+)$/.exec(req.headers.authorization ?? '')?.[1];

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method === 'POST' && path === logoutPath) {
      const credential = req.headers.authorization ?? req.headers.cookie ?? '(none)';
      const attempt = (state.callsByCredential.get(credential) ?? 0) + 1;
      state.callsByCredential.set(credential, attempt);
      const outcome = state.behaviour(credential, attempt, nowClock());
      state.calls.push({ credential, attempt, atRealMs: performance.now(), atClockMs: nowClock(), outcome, inFlightWith: [...open.values()] });
      open.set(res, credential);
      maxInFlight = Math.max(maxInFlight, open.size);
      res.once('close', () => open.delete(res));
      req.resume();
      if (outcome === 'close') {
        req.socket.destroy();
      } else if (outcome !== 'hang') {
        const answer = () => {
          if (outcome >= 200 && outcome < 300) state.released.add(credential);
          res.writeHead(outcome, { 'content-type': 'application/json' }).end('{}');
        };
        if (opts.logoutAnswerDelayMs) setTimeout(answer, opts.logoutAnswerDelayMs);
        else answer();
      }
      return;
    }
    const user = userOf(req);
    req.resume();
    if (user === undefined) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
    } else if (path === whoamiPath) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ username: user }));
    } else {
      res.end('ok');
    }
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    if (userOf(req) === undefined) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('error', () => undefined));
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');

  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get calls() { return state.calls; },
    get callsByCredential() { return state.callsByCredential; },
    get released() { return state.released; },
    get inFlight() { return open.size; },
    get maxInFlight() { return maxInFlight; },
    get behaviour() { return state.behaviour; },
    set behaviour(b: LogoutBehaviour) { state.behaviour = b; },
    async close() {
      for (const ws of wss.clients) ws.terminate();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
