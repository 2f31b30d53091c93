/**
 * Reads `.properties` text the way java.util.Properties.load does.
 *
 * Why a reader of our own: measured against the JDK (README, "Dependency notes"), the
 * `java-properties` package (named in the design card) is wrong or throws on 7 of 13 small files
 * and on about two thirds of the 1 600 generated ones; `properties-file`, the closest, still differs
 * on lone continuation backslashes (JDK 9+ comment rule, empty logical lines) and throws for the
 * whole text at the first malformed \uXXXX, where we need to know which key carried it.
 * test/properties-fuzz.test.ts compares this reader with java.util.Properties.load on every run.
 */

export interface PropertyEntry {
  readonly key: string;
  readonly value: string;
  /** 1-based line where the logical line starts */
  readonly line: number;
  /** a `\u` not followed by four hex digits: Java's load() throws IllegalArgumentException */
  readonly malformedEscape: boolean;
}

const isBlank = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\f';
const isEol = (c: string | undefined): boolean => c === '\n' || c === '\r';

interface LogicalLine {
  readonly text: string;
  readonly line: number;
}

/** Splits text into logical lines: comments and blank lines dropped, continuations joined. */
function logicalLines(text: string): LogicalLine[] {
  const out: LogicalLine[] = [];
  const n = text.length;
  let i = 0;
  let line = 1;
  while (i < n) {
    const c = text[i];
    if (isBlank(c)) { i++; continue; }
    if (c === '\n') { i++; line++; continue; }
    if (c === '\r') { i += text[i + 1] === '\n' ? 2 : 1; line++; continue; }
    const startLine = line;
    if (c === '#' || c === '!') {
      // A comment runs to the end of its natural line; a trailing backslash does not continue it.
      while (i < n && !isEol(text[i])) i++;
      continue;
    }
    let buf = '';
    let keepEmpty = false;
    for (;;) {
      const from = i;
      while (i < n && !isEol(text[i])) i++;
      let segment = text.slice(from, i);
      let backslashes = 0;
      for (let k = segment.length - 1; k >= 0 && segment[k] === '\\'; k--) backslashes++;
      const continues = backslashes % 2 === 1;
      if (continues) segment = segment.slice(0, -1);
      buf += segment;
      if (!continues) break;
      // JDK quirk: a continuation that meets the end of input (directly, or after one LF or CR
      // but not CRLF) still returns the line, even when it is empty: "\\" alone is the entry "" = "".
      if (i >= n) { keepEmpty = true; break; }
      const crlf = text[i] === '\r' && text[i + 1] === '\n';
      if (!crlf && i + 1 >= n) { keepEmpty = true; i++; break; }
      i += crlf ? 2 : 1;
      line++;
      while (i < n && isBlank(text[i])) i++; // leading blanks of a continuation line are skipped
      if (buf === '' && (text[i] === '#' || text[i] === '!')) {
        // JDK 9+: nothing collected yet, so this is still the start of a logical line: a comment.
        // (JDK 8 read it as content; we follow the current JDKs, checked against JDK 17.)
        while (i < n && !isEol(text[i])) i++;
        break;
      }
    }
    // Like Java, a line that is empty once its continuation backslashes are gone is no entry.
    if (buf !== '' || keepEmpty) out.push({ text: buf, line: startLine });
  }
  return out;
}

const HEX4 = /^[0-9a-fA-F]{4}$/;

/** Decodes Java escapes: \uXXXX, \t \n \r \f, and `\x` -> `x` for anything else. */
function unescapeJava(s: string): { text: string; malformed: boolean } {
  if (!s.includes('\\')) return { text: s, malformed: false };
  let out = '';
  let malformed = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\\' || i + 1 >= s.length) { out += c; continue; }
    const e = s[++i]!;
    if (e === 'u') {
      const hex = s.slice(i + 1, i + 5);
      if (HEX4.test(hex)) {
        out += String.fromCharCode(parseInt(hex, 16));
        i += 4;
      } else {
        malformed = true; // keep the text as written so it can be shown in messages
        out += '\\u';
      }
    } else if (e === 't') out += '\t';
    else if (e === 'n') out += '\n';
    else if (e === 'r') out += '\r';
    else if (e === 'f') out += '\f';
    else out += e;
  }
  return { text: out, malformed };
}

/** Splits one logical line into key and value (JDK load0). */
function splitEntry(l: LogicalLine): PropertyEntry {
  const s = l.text;
  let keyEnd = 0;
  let valueStart = s.length;
  let hasSeparator = false;
  let escaped = false;
  for (; keyEnd < s.length; keyEnd++) {
    const c = s[keyEnd];
    if (!escaped && (c === '=' || c === ':')) { valueStart = keyEnd + 1; hasSeparator = true; break; }
    if (!escaped && isBlank(c)) { valueStart = keyEnd + 1; break; }
    escaped = c === '\\' ? !escaped : false;
  }
  // Blanks, then at most one `=` or `:` if the key ended on a blank, then blanks again.
  while (valueStart < s.length) {
    const c = s[valueStart];
    if (!isBlank(c)) {
      if (hasSeparator || (c !== '=' && c !== ':')) break;
      hasSeparator = true;
    }
    valueStart++;
  }
  const key = unescapeJava(s.slice(0, keyEnd));
  const value = unescapeJava(s.slice(valueStart));
  return { key: key.text, value: value.text, line: l.line, malformedEscape: key.malformed || value.malformed };
}

/** Every property line of the text in file order (duplicates included; the caller picks the last). */
export function readPropertyEntries(text: string): PropertyEntry[] {
  return logicalLines(text).map(splitEntry);
}
