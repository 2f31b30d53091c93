/**
 * Plain JSON framing: the notification object as the text of one WebSocket message, as the
 * Panopticon help page documents it. Used for sockets that speak neither STOMP nor SockJS, and
 * inside a SockJS `a[...]` frame when the SockJS session does not speak STOMP.
 */
import type { Notification } from '../messages.js';

export function jsonText(notification: Notification): string {
  return JSON.stringify(notification);
}
