/**
 * Real-browser helpers: Debian's Chromium driven by playwright-core (no downloaded browser).
 *
 *   launchBrowser()        one headless Chromium; throws (so the test FAILS) when it is not installed
 *   newContext(t, b)       a fresh profile per test, closed in teardown
 *   openPage(ctx)          a page that records the WebSocket frames it receives and when the
 *                          timeout dialog became visible (browser and test share the wall clock)
 *   signIn(page, url, u)   the login form, as a person fills it in
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { Test } from 'tap';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

export const VIEWPORT = { width: 1000, height: 700 } as const;

/** The repository root (screenshots are saved relative to it, whatever the working directory). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Where screenshots of test runs go (gitignored). */
export const ARTIFACTS_DIR = join(REPO_ROOT, 'test-artifacts', 'browser');

export function chromiumMissingMessage(path = CHROMIUM_PATH): string {
  return `Chromium not found at ${path}: install it with \`apt-get install -y chromium\` (or set CHROMIUM_PATH)`;
}

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) throw new Error(chromiumMissingMessage());
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS] });
}

/** A fresh context (fresh profile: no cookies, no storage), closed when the test ends. */
export async function newContext(t: Test, browser: Browser): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: VIEWPORT, locale: 'en-GB', timezoneId: 'UTC' });
  t.teardown(() => context.close().catch(() => undefined));
  return context;
}

export interface ReceivedFrame {
  /** Date.now() in the test process when the frame arrived */
  at: number;
  /** path of the socket, e.g. /panopticon/server/ws/notifications */
  path: string;
  payload: string;
}

export interface RecordedPage {
  page: Page;
  /** every WebSocket frame the page received, oldest first */
  frames: ReceivedFrame[];
  /** frames whose text contains the needle */
  framesWith(needle: string): ReceivedFrame[];
  /** Date.now() (in the page) of every moment the timeout dialog went from hidden to shown */
  dialogShownAt(): Promise<number[]>;
}

/** Installed before any page script runs; watches the dialog from DOMContentLoaded on. */
const DIALOG_WATCH = `
(() => {
  window.__stpDialogShownAt = [];
  document.addEventListener('DOMContentLoaded', () => {
    const dialog = document.getElementById('timeout-dialog');
    const backdrop = document.getElementById('timeout-backdrop');
    if (!dialog || !backdrop) return;
    let shown = !dialog.hidden && !backdrop.hidden;
    const check = () => {
      const now = !dialog.hidden && !backdrop.hidden;
      if (now && !shown) window.__stpDialogShownAt.push(Date.now());
      shown = now;
    };
    const observer = new MutationObserver(check);
    observer.observe(dialog, { attributes: true, attributeFilter: ['hidden'] });
    observer.observe(backdrop, { attributes: true, attributeFilter: ['hidden'] });
  });
})();
`;

export async function openPage(context: BrowserContext): Promise<RecordedPage> {
  const page = await context.newPage();
  await page.addInitScript({ content: DIALOG_WATCH });
  const frames: ReceivedFrame[] = [];
  page.on('websocket', (ws) => {
    const path = new URL(ws.url()).pathname;
    ws.on('framereceived', ({ payload }) => frames.push({ at: Date.now(), path, payload: String(payload) }));
  });
  return {
    page,
    frames,
    framesWith: (needle) => frames.filter((f) => f.payload.includes(needle)),
    dialogShownAt: () => page.evaluate(() => [...((window as unknown as { __stpDialogShownAt?: number[] }).__stpDialogShownAt ?? [])]),
  };
}

/** Fills in and submits the login form; resolves once the dashboard page has loaded. */
export async function signIn(page: Page, baseUrl: string, user: string, password = user, contextPath = '/panopticon'): Promise<void> {
  await page.goto(`${baseUrl}${contextPath}/login`);
  await page.locator('#username').fill(user);
  await page.locator('#password').fill(password);
  await Promise.all([
    page.waitForURL(`${baseUrl}${contextPath}/`, { timeout: 15_000 }),
    page.locator('#login-submit').click(),
  ]);
  await page.locator('#current-user').waitFor({ state: 'visible' });
}

/** Waits until the dashboard's notification and data sockets are both open. */
export async function waitForSockets(page: Page, timeoutMs = 15_000): Promise<void> {
  await page.waitForFunction(
    () => document.getElementById('notify-status')?.textContent === 'connected' && document.getElementById('data-status')?.textContent === 'connected',
    undefined,
    { timeout: timeoutMs, polling: 50 },
  );
}

/**
 * Saves a screenshot under test-artifacts/browser/ and copies it to a committed path (relative to
 * the repository root) when that file is missing or UPDATE_SCREENSHOTS=1. Returns the artifact's path.
 */
export async function screenshot(page: Page, name: string, copyTo?: string): Promise<string> {
  const path = join(ARTIFACTS_DIR, name);
  await mkdir(dirname(path), { recursive: true });
  await page.screenshot({ path, type: 'png' });
  if (copyTo) {
    const target = resolve(REPO_ROOT, copyTo);
    // committed pictures change on every run (clock, live value): refresh them only when asked
    if (existsSync(target) && process.env.UPDATE_SCREENSHOTS !== '1') return path;
    await mkdir(dirname(target), { recursive: true });
    await copyFile(path, target);
  }
  return path;
}

/** Sleeps; only for "nothing may happen during this period" checks. */
export function idle(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
