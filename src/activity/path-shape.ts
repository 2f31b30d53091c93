/**
 * The shape of a request path: what stays the same when a client repeats "the same" request.
 * Numbers, UUIDs and hex ids become placeholders and query values are dropped (names are kept),
 * so `/dashboards/7/refresh?_=1712` and `/dashboards/7/refresh?_=1713` are one shape.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** at least 8 hex digits with at least one digit: a hash or object id, not a word like "deadbeef"… mostly */
const HEX_ID = /^(?=[a-f]*\d)[0-9a-f]{8,}$/i;
const DIGITS = /\d+/g;

export function pathShape(path: string): string {
  const q = path.indexOf('?');
  if (q === -1 && !hasDigit(path)) return path; // most paths: nothing to replace
  const pathPart = q === -1 ? path : path.slice(0, q);
  let out = '';
  let start = 0;
  // segment by segment, without allocating an array of segments
  for (let i = 0; i <= pathPart.length; i++) {
    if (i < pathPart.length && pathPart.charCodeAt(i) !== 47 /* / */) continue;
    if (i > start) out += segmentShape(pathPart.slice(start, i));
    if (i < pathPart.length) out += '/';
    start = i + 1;
  }
  return q === -1 ? out : out + '?' + queryShape(path.slice(q + 1));
}

function segmentShape(segment: string): string {
  if (!hasDigit(segment)) return segment;
  if (UUID.test(segment)) return ':uuid';
  if (HEX_ID.test(segment)) return ':hex';
  return segment.replace(DIGITS, ':n');
}

/** `b=2&a=1&a=3` → `a&b`: the names, sorted and once each. */
function queryShape(query: string): string {
  if (query === '') return '';
  const names = new Set<string>();
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    names.add(eq === -1 ? pair : pair.slice(0, eq));
  }
  return [...names].sort().join('&');
}

function hasDigit(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) return true;
  }
  return false;
}
