/**
 * Strings kept for hours (credentials for their logout, CSRF tokens, request paths in the
 * session notes) must not keep alive the request they were cut from. Shared by identity/ and
 * sessions/, so it lives beside neither.
 */

/**
 * A string that holds only its own characters. A value picked from a header is a slice of it,
 * and `name=${value}` a concatenation over that slice: V8 keeps such strings as views, so a
 * value kept for hours (a credential for its logout, a CSRF token) would keep the whole header it
 * came from alive. Short strings are always copied by V8 itself.
 */
export function detached(value: string): string {
  if (value.length < 13) return value;
  const copy = Buffer.from(value, 'utf8').toString('utf8');
  return copy === value ? copy : value; // (a lone surrogate does not survive UTF-8: keep the view)
}
