// TEMPORARY until issue9-framing lands: same signatures as src/notifications/framing/{stomp,sockjs,policy}.ts
export interface StompFrame { readonly command: string; readonly headers: ReadonlyMap<string, string> }
export function parseFrames(text: string, _version: '1.0' | '1.1' | '1.2'): StompFrame[] {
  return text.split('\0').map((f) => f.replace(/^[\r\n]+/, '')).filter((f) => f.includes('\n\n')).map((f) => {
    const [command = '', ...lines] = f.slice(0, f.indexOf('\n\n')).split('\n');
    const headers = new Map<string, string>();
    for (const l of lines) { const c = l.indexOf(':'); if (c > 0 && !headers.has(l.slice(0, c))) headers.set(l.slice(0, c), l.slice(c + 1)); }
    return { command, headers };
  });
}
function arr(t: string): string[] | undefined { try { const v = JSON.parse(t); return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined; } catch { return undefined; } }
export function serverMessages(text: string): string[] | undefined { return text.startsWith('a') ? arr(text.slice(1)) : undefined; }
export function clientMessages(text: string): string[] | undefined { if (text.startsWith('"')) { try { const v = JSON.parse(text); return typeof v === 'string' ? [v] : undefined; } catch { return undefined; } } return arr(text); }
export function isSessionPath(path: string): boolean { return /\/[^/.]+\/[^/.]+\/websocket$/.test(path); }
export function notificationDestinationRule(_globs: readonly string[]): (d: string) => boolean { return (d) => d.toLowerCase().includes('notification'); }
