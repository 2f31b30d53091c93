import t from 'tap';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { decodePropertiesBytes, describeProblem, parseTimeoutProperties, MAX_TIMEOUT_MINUTES, TIMEOUT_KEYS } from '../src/properties/parse.js';
import { readPropertyEntries } from '../src/properties/java-format.js';
import { DEFAULT_SETTINGS, MINUTE_MS, PROPERTY_KEYS, type TimeoutSettings } from '../src/properties/settings.js';
import { PropertiesWatcher } from '../src/properties/watcher.js';
import { sameSettings } from './helpers/settings.js';

// ---------------------------------------------------------------- arbitraries

const EOLS = ['\n', '\r\n', '\r'] as const;
const eol = fc.constantFrom(...EOLS);

/** Lines that use the five keys with nasty values, separators and escapes. */
const structuredLine = fc
  .tuple(
    fc.constantFrom('', '  ', '\t', '#', '!', ' # '),
    fc.oneof(
      fc.constantFrom(...TIMEOUT_KEYS),
      fc.mixedCase(fc.constantFrom(...TIMEOUT_KEYS)),
      fc.constantFrom('timeout.session.minut\\u0065s', 'timeout.session\\.enabled', 'timeout.\\\n   session.minutes', 'server.port', 'a\\=b', 'C:\\\\x'),
      fc.string({ maxLength: 8 }),
    ),
    fc.constantFrom('=', ':', ' ', '\t', '\f', ' = ', ' : ', '  =  ', '=\\\n   ', ' \\\r\n ', ''),
    fc.oneof(
      fc.constantFrom(
        'true', 'FALSE', ' True ', 'yes', '0', '1', '480', '0.1', '-5', 'NaN', '1e309', 'Infinity', '480min', '', '0x1E',
        '5256000', '5256001', '.5', '5.', '+3', ' 7 ', ';', '|', '.', '.*', '\\u002c', '\\u12', '\\=', '\\:', '\\ ',
        'a,b,c', 'a|b', 'x\\\n  y', ' , , ', 'al ice;bob', '\\', '\\\\', '\\u0000', '%41', '${x}',
      ),
      fc.double().map(String),
      fc.nat().map(String),
      fc.string({ unit: 'binary', maxLength: 12 }),
    ),
    eol,
  )
  .map(([prefix, key, sep, value, end]) => `${prefix}${key}${sep}${value}${end}`);

const structuredFile = fc.array(structuredLine, { maxLength: 12 }).map((lines) => lines.join(''));
const randomText = fc.string({ unit: 'binary', maxLength: 300 });
const randomBytesText = fc.uint8Array({ maxLength: 300 }).map((b) => decodePropertiesBytes(Buffer.from(b)).text);
const anyText = fc.oneof(structuredFile, randomText, randomBytesText);

/** Valid settings as an operator would write them. */
interface Model {
  enabled: boolean;
  enabledText: string;
  minutes: string;
  notify: string | undefined;
  delimiter: string | undefined;
  users: string[];
}
const tenths = (n: number) => (n / 10).toString();
const delimiterArb = fc.option(fc.constantFrom(',', ';', '|', '.', '.*', ' ', '||', '::', '\t', '=', ':', '#', '!', '\\', 'é', '\u2028', '𝄞'), { nil: undefined });
const usersArb = fc.array(fc.stringMatching(/^[a-z0-9_-]{1,8}$/), { maxLength: 5 });
const model: fc.Arbitrary<Model> = fc
  .tuple(fc.boolean(), fc.boolean(), fc.integer({ min: 1, max: MAX_TIMEOUT_MINUTES * 10 }), fc.option(fc.double({ min: 0, max: 1, noNaN: true })), delimiterArb, usersArb)
  .map(([enabled, upper, minutesTenths, notifyShare, delimiter, users]) => ({
    enabled,
    enabledText: upper ? String(enabled).toUpperCase() : String(enabled),
    minutes: tenths(minutesTenths),
    notify: notifyShare === null ? undefined : tenths(Math.floor(notifyShare * (minutesTenths - 1))),
    delimiter,
    users,
  }));

function expectedSettings(m: Model): TimeoutSettings {
  const minutes = Number(m.minutes);
  let notify = m.notify === undefined ? 1 : Number(m.notify);
  if (m.notify === undefined && notify >= minutes) notify = 0;
  return {
    enabled: m.enabled,
    timeoutMinutes: minutes,
    timeoutMs: minutes * MINUTE_MS,
    notifyBeforeMinutes: notify,
    notifyBeforeMs: notify * MINUTE_MS,
    exemptDelimiter: m.delimiter ?? ',',
    exemptUsers: new Set(m.users),
  };
}

/** One Java encoding of a character, chosen at random: raw where allowed, escaped, or \uXXXX. */
function encodeChar(c: string, pick: number): string {
  // an astral character is two UTF-16 units; Java wants one \uXXXX per unit
  const u = c.split('').map((unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
  const named: Record<string, string> = { ' ': '\\ ', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\f': '\\f', '\\': '\\\\' };
  if (c in named) return pick % 2 === 0 ? named[c]! : u;
  if ('=:#!'.includes(c)) return pick % 2 === 0 ? `\\${c}` : u;
  return pick % 3 === 0 ? u : c;
}

/** Serialises text with random escapes and random line continuations. */
const javaEncoded = (s: string) => {
  const chars = Array.from(s); // code points
  return fc
    .tuple(
      fc.array(fc.nat(5), { minLength: chars.length, maxLength: chars.length }),
      fc.array(fc.tuple(fc.boolean(), fc.constantFrom(...EOLS), fc.constantFrom('', ' ', '\t  ')), { minLength: chars.length, maxLength: chars.length }),
    )
    .map(([picks, breaks]) =>
      chars
        .map((c, i) => {
          const [brk, end, indent] = breaks[i]!;
          const continuation = brk && i > 0 && picks[i]! < 2 ? `\\${end}${indent}` : '';
          return continuation + encodeChar(c, picks[i]!);
        })
        .join(''),
    );
};

const line = (key: string, value: string) =>
  fc.tuple(javaEncoded(key), fc.constantFrom('=', ':', ' ', ' = ', '\t:\t'), javaEncoded(value), fc.constantFrom('', ' ', '\t'), fc.constantFrom(...EOLS)).map(
    ([k, sep, v, indent, end]) => `${indent}${k}${sep}${v}${end}`,
  );

const noise = fc.constantFrom(
  '# comment\n', '! timeout.session.enabled=maybe\n', '\n', '   \n', 'server.port=8080\n', 'Timeout.Session.Minutes=abc\n',
  'timeout.session.minutes=garbage\n', // overridden later: the last value wins
  'path=C:\\\\Program Files\\\\Altair\n',
);

/** A whole valid file for a model: noise, an optional earlier bad value, the real lines in random order. */
const validFile = (m: Model) => {
  const pairs: Array<[string, string]> = [
    [PROPERTY_KEYS.enabled, m.enabledText],
    [PROPERTY_KEYS.minutes, m.minutes],
    [PROPERTY_KEYS.usernames, m.users.join(m.delimiter ?? ',')],
  ];
  if (m.notify !== undefined) pairs.push([PROPERTY_KEYS.notificationMinutes, m.notify]);
  if (m.delimiter !== undefined) pairs.push([PROPERTY_KEYS.delimiter, m.delimiter]);
  return fc
    .tuple(fc.tuple(...pairs.map(([k, v]) => line(k, v))), fc.array(noise, { maxLength: 4 }), fc.nat())
    .map(([lines, before, seed]) => {
      const shuffled = [...lines].sort((a, b) => (createHash('md5').update(a + seed).digest()[0]! - createHash('md5').update(b + seed).digest()[0]!));
      return before.join('') + shuffled.join('');
    });
};

const modelAndFile = model.chain((m) => validFile(m).map((text) => ({ m, text })));

// ---------------------------------------------------------------- properties

function checkInvariants(text: string): void {
  const r = parseTimeoutProperties(text);
  if (r.ok) {
    const s = r.settings;
    if (!(s.timeoutMs > 0 && Number.isFinite(s.timeoutMs))) throw new Error(`bad timeoutMs ${s.timeoutMs}`);
    if (!(s.timeoutMinutes <= MAX_TIMEOUT_MINUTES)) throw new Error(`too long ${s.timeoutMinutes}`);
    if (!(s.notifyBeforeMs >= 0 && s.notifyBeforeMs < s.timeoutMs)) throw new Error(`bad notifyBeforeMs ${s.notifyBeforeMs}`);
    if (s.exemptDelimiter === '') throw new Error('empty delimiter');
    for (const u of s.exemptUsers) if (u === '' || u !== u.trim()) throw new Error(`bad user ${JSON.stringify(u)}`);
    if (!Object.isFrozen(s)) throw new Error('not frozen');
  } else {
    if (r.problems.length === 0) throw new Error('ok:false without problems');
    for (const p of r.problems) {
      if (p.key !== '(file)' && !TIMEOUT_KEYS.includes(p.key)) throw new Error(`problem for foreign key ${p.key}`);
      if (typeof describeProblem(p) !== 'string') throw new Error('describeProblem');
    }
  }
}

t.test('parseTimeoutProperties never throws and keeps its invariants', async (t) => {
  let tried = 0;
  fc.assert(
    fc.property(anyText, (text) => {
      tried++;
      checkInvariants(text);
    }),
    { numRuns: 3000 },
  );
  t.equal(tried, 3000, 'every generated input was checked (fc.assert throws on the first broken invariant)');
});

t.test('valid files, however they are escaped, give exactly their settings', async (t) => {
  let tried = 0;
  fc.assert(
    fc.property(modelAndFile, fc.boolean(), ({ m, text }, bom) => {
      tried++;
      const bytes = Buffer.concat([bom ? Buffer.from([0xef, 0xbb, 0xbf]) : Buffer.alloc(0), Buffer.from(text, 'utf8')]);
      const r = parseTimeoutProperties(decodePropertiesBytes(bytes).text);
      if (!r.ok) throw new Error(`rejected: ${r.problems.map(describeProblem).join('; ')}\n${JSON.stringify(text)}`);
      const want = expectedSettings(m);
      if (!sameSettings(r.settings, want)) {
        throw new Error(`got ${JSON.stringify({ ...r.settings, exemptUsers: [...r.settings.exemptUsers] })}\nwant ${JSON.stringify({ ...want, exemptUsers: [...want.exemptUsers] })}\n${JSON.stringify(text)}`);
      }
    }),
    { numRuns: 1500 },
  );
  t.equal(tried, 1500, 'every generated model was checked (fc.assert throws on the first mismatch)');
});

// ---------------------------------------------------------------- differential test against the JDK

const JAVA_DUMP = `
import java.io.*; import java.nio.charset.StandardCharsets; import java.util.*;
public class Dump {
  static String hex(String s) { StringBuilder b = new StringBuilder(); for (char c : s.toCharArray()) b.append(String.format("%04x", (int) c)); return b.toString(); }
  public static void main(String[] files) throws Exception {
    for (String f : files) {
      Properties p = new Properties();
      try (Reader r = new InputStreamReader(new FileInputStream(f), StandardCharsets.UTF_8)) {
        p.load(r);
        StringBuilder out = new StringBuilder("OK");
        for (String k : p.stringPropertyNames()) out.append(' ').append(hex(k)).append('=').append(hex(p.getProperty(k)));
        System.out.println(out);
      } catch (IllegalArgumentException e) { System.out.println("MALFORMED"); }
    }
  }
}`;

function javaAvailable(): boolean {
  try {
    execFileSync('java', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const hex = (s: string) => s.split('').map((c) => c.charCodeAt(0).toString(16).padStart(4, '0')).join('');

// CI installs a headless JRE (.ci/run): there a missing `java` is a failure, not a reason to skip.
const javaMissing = javaAvailable() ? false : process.env.CI === 'true' ? 'fail' : 'no java on PATH';

t.test('the reader agrees with java.util.Properties.load', { skip: javaMissing === 'fail' ? false : javaMissing }, async (t) => {
  if (javaMissing === 'fail') {
    t.fail('CI=true but `java` is not on PATH: .ci/run should have installed default-jre-headless');
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'props-java-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'Dump.java'), JAVA_DUMP);
  const seed = Number(process.env.PROPS_FUZZ_SEED ?? Date.now() % 1_000_000);
  const texts = [
    ...fc.sample(structuredFile, { numRuns: 800, seed }),
    ...fc.sample(randomText, { numRuns: 400, seed: seed + 1 }),
    ...fc.sample(modelAndFile.map((x) => x.text), { numRuns: 400, seed: seed + 2 }),
  ];
  const files: string[] = [];
  const sent: string[] = [];
  for (const [i, text] of texts.entries()) {
    const file = join(dir, `${i}.properties`);
    const bytes = Buffer.from(text, 'utf8'); // lone surrogates become U+FFFD on both sides
    await writeFile(file, bytes);
    files.push(file);
    sent.push(bytes.toString('utf8'));
  }
  const out = execFileSync('java', [join(dir, 'Dump.java'), ...files], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).trim().split('\n');
  t.equal(out.length, texts.length, 'one answer per file');
  let mismatches = 0;
  for (const [i, text] of sent.entries()) {
    const entries = readPropertyEntries(text);
    const ours = entries.some((e) => e.malformedEscape)
      ? 'MALFORMED'
      : [...new Map(entries.map((e) => [e.key, e.value])).entries()].map(([k, v]) => `${hex(k)}=${hex(v)}`).sort().join(' ');
    const java = out[i] === 'MALFORMED' ? 'MALFORMED' : out[i]!.replace(/^OK ?/, '').split(' ').filter(Boolean).sort().join(' ');
    if (ours !== java && mismatches++ < 5) t.fail(`differs from Java (PROPS_FUZZ_SEED=${seed}) for ${JSON.stringify(text)}:\n ours ${ours}\n java ${java}`);
  }
  t.equal(mismatches, 0, 'no differences');
  t.comment(`java differential: ${texts.length} files compared with the JDK's Properties.load (PROPS_FUZZ_SEED=${seed})`);
});

// ---------------------------------------------------------------- watcher-level property

t.test('the watcher survives any sequence of contents and keeps the last valid one', async (t) => {
  const content = fc.oneof(
    { weight: 3, arbitrary: modelAndFile.map(({ text }) => Buffer.from(text, 'utf8')) },
    { weight: 2, arbitrary: structuredFile.map((s) => Buffer.from(s, 'utf8')) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
  );
  let writes = 0;
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(content, { minLength: 1, maxLength: 6 }), modelAndFile, async (sequence, final) => {
      runs++;
      const dir = await mkdtemp(join(tmpdir(), 'props-fuzzw-'));
      const file = join(dir, 'Panopticon.properties');
      const lines: Array<Record<string, unknown>> = [];
      const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
      const w = await PropertiesWatcher.open({ path: file, pollMs: 50, debounceMs: 15, logger });
      try {
        let expected: TimeoutSettings = DEFAULT_SETTINGS;
        let lastHash = 'none';
        const step = async (bytes: Buffer) => {
          writes++;
          const hash = createHash('sha256').update(bytes).digest('hex');
          const seenBefore = lines.length;
          await writeFile(file, bytes);
          const r = parseTimeoutProperties(decodePropertiesBytes(bytes).text);
          if (r.ok) expected = r.settings;
          if (hash !== lastHash) await waitForRead(lines, seenBefore, hash);
          lastHash = hash;
          if (!sameSettings(w.current, expected)) throw new Error(`current differs after writing ${JSON.stringify(bytes.toString('latin1'))}`);
        };
        for (const bytes of sequence) await step(bytes);
        await step(Buffer.from(final.text, 'utf8'));
        if (!sameSettings(w.current, expectedSettings(final.m))) throw new Error('the final valid write was not applied');
        if (lines.some((l) => l.event === 'settings-watch-failed')) throw new Error('an internal check failed');
      } finally {
        await w.close();
        await rm(dir, { recursive: true, force: true });
      }
    }),
    { numRuns: 15 },
  );
  t.comment(`watcher property: ${runs} sequences, ${writes} writes`);
  t.equal(runs, 15, 'every generated sequence was played (fc.assert throws on the first failure)');
});

/** Waits until the watcher logs that it read content with this hash. */
async function waitForRead(lines: Array<Record<string, unknown>>, from: number, hash: string, timeoutMs = 3000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (lines.slice(from).some((l) => l.event === 'settings-file-read' && String(l.contentKey).endsWith(hash))) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`the watcher did not read content ${hash.slice(0, 8)} within ${timeoutMs} ms`);
}
