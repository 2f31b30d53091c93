/**
 * Picks two named cookies out of a Cookie header in one pass, without building an object of
 * every cookie. Same reading as the `cookie` package's parse with a pass-through decoder:
 * pairs split on ";", name and value trimmed of spaces and tabs, the first occurrence of a name
 * wins (browsers send the most specific path first), pairs without "=" are skipped, values are
 * kept exactly as sent (no percent-decoding, quotes kept).
 */

export interface PickedCookies {
  first: string | undefined;
  second: string | undefined;
}

const isBlank = (code: number) => code === 0x20 || code === 0x09;

export function pickCookies(header: string, firstName: string, secondName: string): PickedCookies {
  const out: PickedCookies = { first: undefined, second: undefined };
  const len = header.length;
  let start = 0;
  let eq = -1;
  while (start < len) {
    let end = header.indexOf(';', start);
    if (end === -1) end = len;
    // remember the next "=" so a run of pairs without one stays linear
    if (eq < start) eq = header.indexOf('=', start);
    if (eq === -1) break;
    if (eq < end) {
      let nameStart = start;
      let nameEnd = eq;
      while (nameStart < nameEnd && isBlank(header.charCodeAt(nameStart))) nameStart++;
      while (nameEnd > nameStart && isBlank(header.charCodeAt(nameEnd - 1))) nameEnd--;
      const nameLen = nameEnd - nameStart;
      if (out.first === undefined && nameLen === firstName.length && header.startsWith(firstName, nameStart)) {
        out.first = trimmedSlice(header, eq + 1, end);
      } else if (out.second === undefined && nameLen === secondName.length && header.startsWith(secondName, nameStart)) {
        out.second = trimmedSlice(header, eq + 1, end);
      }
      if (out.first !== undefined && out.second !== undefined) break;
    }
    start = end + 1;
  }
  return out;
}

function trimmedSlice(s: string, from: number, to: number): string {
  while (from < to && isBlank(s.charCodeAt(from))) from++;
  while (to > from && isBlank(s.charCodeAt(to - 1))) to--;
  return s.slice(from, to);
}

