/**
 * Watches the real dashboard page in headless Chromium (playwright-core, when installed) with the
 * doctor's session: which sockets it opens, what framing they carry, which STOMP destinations it
 * subscribes to, and which requests it repeats on its own (polling). Without playwright-core or a
 * browser the doctor says it could not watch the page.
 */
import { clientMessages } from '../notifications/framing/sockjs.js';
import { parseFrames } from '../notifications/framing/stomp.js';
import type { DoctorSession } from './session.js';

export interface WatchedSocket {
  path: string;
  /** 'sockjs' when the first frame was `o` */
  envelope: 'sockjs' | 'plain';
  /** the client sent CONNECT/STOMP */
  stomp: boolean;
  /** destinations of the client's SUBSCRIBE frames, in order */
  subscriptions: string[];
  framesReceived: number;
}

export interface PageWatch {
  sockets: WatchedSocket[];
  /** method + path of xhr/fetch/eventsource requests made after the page loaded, with counts */
  repeated: Array<{ method: string; path: string; count: number }>;
  /** console errors of the page (text only) */
  consoleErrors: string[];
}

type Playwright = typeof import('playwright-core');

async function loadPlaywright(): Promise<Playwright | undefined> {
  try {
    return await import('playwright-core');
  } catch {
    return undefined;
  }
}

/** Client frames as STOMP text: unwraps SockJS arrays. */
function clientTexts(payload: string, envelope: WatchedSocket['envelope']): string[] {
  if (envelope === 'sockjs') return clientMessages(payload) ?? [];
  return [payload];
}

function noteClientFrame(socket: WatchedSocket, payload: string): void {
  for (const text of clientTexts(payload, socket.envelope)) {
    for (const frame of parseFrames(text, '1.2')) {
      if (frame.command === 'CONNECT' || frame.command === 'STOMP') socket.stomp = true;
      if (frame.command === 'SUBSCRIBE') {
        const destination = frame.headers.get('destination');
        if (destination !== undefined) socket.subscriptions.push(destination);
      }
    }
  }
}

/**
 * Loads <context>/ and watches it for watchMs. Returns a reason string when the page could not be
 * watched (no playwright-core, the browser did not start, the page did not load).
 */
export async function watchPage(session: DoctorSession, paths: { contextPath: string; loginPath: string }, browserPath: string, watchMs: number): Promise<PageWatch | string> {
  const playwright = await loadPlaywright();
  if (!playwright) return 'playwright-core is not installed (npm install playwright-core), so the page could not be watched';
  let browser: import('playwright-core').Browser;
  try {
    browser = await playwright.chromium.launch({ executablePath: browserPath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
  } catch (err) {
    return `Chromium at ${browserPath} did not start: ${(err as Error).message.split('\n')[0]}`;
  }
  try {
    const headers = session.replay();
    const context = await browser.newContext({ extraHTTPHeaders: headers['authorization'] ? { authorization: headers['authorization'] } : {} });
    const url = session.base;
    await context.addCookies(session.jar.entries().map(([name, value]) => ({ name, value, url: url.origin })));
    const page = await context.newPage();
    const sockets: WatchedSocket[] = [];
    const consoleErrors: string[] = [];
    const counts = new Map<string, number>();
    let loaded = false;
    // failed loads are reported by URL below (the console text does not name them)
    page.on('console', (msg) => { if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) consoleErrors.push(msg.text().slice(0, 200)); });
    page.on('response', (r) => {
      const path = new URL(r.url()).pathname;
      if (r.status() >= 400 && path !== '/favicon.ico') consoleErrors.push(`${r.request().method()} ${path} answered ${r.status()}`);
    });
    page.on('request', (req) => {
      if (!loaded || !['xhr', 'fetch', 'eventsource'].includes(req.resourceType())) return;
      const key = `${req.method()} ${new URL(req.url()).pathname}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    });
    page.on('websocket', (ws) => {
      const socket: WatchedSocket = { path: new URL(ws.url()).pathname, envelope: 'plain', stomp: false, subscriptions: [], framesReceived: 0 };
      sockets.push(socket);
      ws.on('framereceived', ({ payload }) => {
        const text = String(payload);
        if (socket.framesReceived === 0 && text === 'o') socket.envelope = 'sockjs';
        socket.framesReceived += 1;
      });
      ws.on('framesent', ({ payload }) => noteClientFrame(socket, String(payload)));
    });
    const { contextPath, loginPath } = paths;
    const res = await page.goto(new URL(`${contextPath}/`, url).toString(), { waitUntil: 'load', timeout: 30_000 });
    if (!res || res.status() >= 400) return `the dashboard page ${contextPath}/ answered ${res?.status() ?? 'nothing'} in the browser`;
    if (new URL(page.url()).pathname === loginPath) return 'the browser was sent to the login page: the session is not accepted there';
    loaded = true;
    await page.waitForTimeout(watchMs);
    const repeated = [...counts].filter(([, n]) => n >= 2).map(([key, count]) => {
      const [method = 'GET', path = ''] = key.split(' ');
      return { method, path, count };
    });
    return { sockets, repeated, consoleErrors };
  } catch (err) {
    return `watching the page failed: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    await browser.close().catch(() => undefined);
  }
}
