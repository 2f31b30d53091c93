/**
 * Where the notification socket might be: paths named in the dashboard page and its same-origin
 * scripts that look like socket endpoints, plus the well-known places and the configured ones.
 */
import type { DoctorSession } from './session.js';

const MAX_SCRIPTS = 20;
const MAX_SCRIPT_BYTES = 8 * 1024 * 1024;
/** quoted path-like strings that mention a socket */
const SOCKET_LITERAL = /["'`](\/[\w\-./]*(?:ws|socket|sockjs|stomp|notification|websocket)[\w\-./]*)["'`]/gi;
const SCRIPT_SRC = /<script[^>]+src=["']([^"']+)["']/gi;

/** Places Panopticon-like servers commonly put their socket endpoints (relative to the context). */
export const WELL_KNOWN_SOCKET_PATHS = ['/server/ws/notifications', '/server/ws/data', '/server/ws/stomp', '/server/ws', '/server/sockjs', '/ws', '/sockjs', '/stomp'];

export interface PageScan {
  /** the dashboard page's status (0: not reached) */
  status: number;
  /** socket-like paths named by the page or its scripts, made absolute */
  mentioned: string[];
}

function absolute(contextPath: string, path: string): string {
  return contextPath !== '' && !path.startsWith(`${contextPath}/`) ? `${contextPath}${path}` : path;
}

function socketLiterals(text: string, contextPath: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(SOCKET_LITERAL)) {
    const path = m[1]!.replace(/\/+$/, '');
    if (/\.(js|css|map|png|svg|html)$/i.test(path)) continue;
    out.push(absolute(contextPath, path));
  }
  return out;
}

export async function scanPage(session: DoctorSession, contextPath: string): Promise<PageScan> {
  let res: Response;
  try {
    res = await session.fetch(`${contextPath}/`, { headers: { accept: 'text/html' } });
  } catch {
    return { status: 0, mentioned: [] };
  }
  const html = await res.text();
  const found = socketLiterals(html, contextPath);
  const scripts = [...html.matchAll(SCRIPT_SRC)].map((m) => new URL(m[1]!, new URL(`${contextPath}/`, session.base)))
    .filter((u) => u.origin === session.base.origin)
    .slice(0, MAX_SCRIPTS);
  for (const url of scripts) {
    try {
      const script = await session.fetch(url.pathname + url.search);
      const text = await script.text();
      if (text.length <= MAX_SCRIPT_BYTES) found.push(...socketLiterals(text, contextPath));
    } catch {
      // a script that cannot be read names nothing
    }
  }
  return { status: res.status, mentioned: [...new Set(found)] };
}

/** Every path to try, the configured and mentioned ones first, without duplicates. */
export function socketCandidates(contextPath: string, configured: readonly string[], mentioned: readonly string[]): string[] {
  const wellKnown = WELL_KNOWN_SOCKET_PATHS.map((p) => `${contextPath}${p}`);
  return [...new Set([...configured.filter((p) => !/[*?[{]/.test(p)), ...mentioned, ...wellKnown])];
}
