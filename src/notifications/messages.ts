/**
 * The two notifications the Panopticon help page documents, and how they are framed on the wire.
 * The public record gives them as bare JSON objects, so the default framing sends the JSON text as
 * one text frame. Another envelope (for example a STOMP MESSAGE frame) can be added as a Framing.
 */
export const LOGOUT_REASON_TIMEOUT = 'Logged out due to session timeout';

export type Notification =
  | { readonly TimeoutNotification: { readonly minutesUntilTimeout: number } }
  | { readonly LogoutNotification: { readonly reason: string } };

export function timeoutNotification(minutesUntilTimeout: number): Notification {
  return { TimeoutNotification: { minutesUntilTimeout } };
}

export function logoutNotification(reason = LOGOUT_REASON_TIMEOUT): Notification {
  return { LogoutNotification: { reason } };
}

/** Turns a notification into the text of one WebSocket frame for a given socket path. */
export interface Framing {
  readonly name: string;
  encode(notification: Notification, socketPath: string): string;
}

export const plainJsonFraming: Framing = {
  name: 'plain-json',
  encode: (notification) => JSON.stringify(notification),
};
