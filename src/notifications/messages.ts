/**
 * The two notifications the Panopticon help page documents. The public record gives them as bare
 * JSON objects; how they are wrapped for a given socket (plain, STOMP MESSAGE, SockJS) is decided
 * per socket in framing/.
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
