/**
 * SockJS over its WebSocket transport, as far as an injecting proxy needs it.
 *
 * Session URLs are `<prefix>/<server-id>/<session-id>/websocket`; the server opens with `o`,
 * then sends `h` (heartbeat), `a[...]` (a JSON array of message strings) and `c[code,"reason"]`.
 * The client sends a JSON array of strings (or one JSON string) per WebSocket message.
 */

/** `<prefix>/<server-id>/<session-id>/websocket`: ids are single segments without dots */
const SESSION_PATH = /\/[^/.]+\/[^/.]+\/websocket$/;

/** True when the WebSocket path has the shape of a SockJS session (confirmed by the `o` frame). */
export function isSessionPath(path: string): boolean {
  return SESSION_PATH.test(path);
}

/** `<prefix>/{server}/{session}/websocket`: a session path without its per-session ids */
export function sessionPathShape(path: string): string | undefined {
  return isSessionPath(path) ? path.replace(SESSION_PATH, '/{server}/{session}/websocket') : undefined;
}

/** True when a server message is the SockJS open frame. */
export function isOpenFrame(data: Buffer): boolean {
  return data.length === 1 && data[0] === 0x6f; /* "o" */
}

/** The strings of a server `a[...]` frame, or undefined for any other frame. */
export function serverMessages(text: string): string[] | undefined {
  if (text.charCodeAt(0) !== 0x61 /* "a" */) return undefined;
  return stringArray(text.slice(1));
}

/** The strings of a client message (a JSON array of strings, or one JSON string). */
export function clientMessages(text: string): string[] | undefined {
  if (text.charCodeAt(0) === 0x22 /* '"' */) {
    const one = parseJson(text);
    return typeof one === 'string' ? [one] : undefined;
  }
  return stringArray(text);
}

/** A client message holding `messages` (the inverse of clientMessages). */
export function encodeClientMessages(messages: readonly string[]): string {
  return JSON.stringify(messages);
}

/** One `a[...]` frame carrying `messages` in order. */
export function encodeServerMessages(messages: readonly string[]): string {
  return 'a' + JSON.stringify(messages);
}

function stringArray(text: string): string[] | undefined {
  const value = parseJson(text);
  return Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value as string[]) : undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
