/**
 * `npm run doctor` options. The doctor's own flags are read here; every other flag is a proxy
 * setting (`--context-path`, `--whoami-path`, `--logout-path`, `--csrf-cookie`, ...) and goes to
 * the proxy's own config loader, so the doctor checks exactly what the proxy would use.
 */
export interface DoctorArgs {
  upstream: string;
  user?: string;
  /** SECRET */
  password?: string;
  /** SECRET: a Cookie header value */
  cookie?: string;
  /** SECRET: a bearer token */
  token?: string;
  /** how long sockets and the page are watched */
  watchMs: number;
  /** Chromium used to watch the dashboard page; undefined: no browser */
  browserPath: string | undefined;
  /** extra socket paths to try */
  notifyPaths: string[];
  /** false: do not try the logout candidates (the session stays signed in) */
  logout: boolean;
  /** flags for the proxy's config loader */
  proxyArgs: string[];
}

export class UsageError extends Error {}

export const DEFAULT_BROWSER = '/usr/bin/chromium';
const DEFAULT_WATCH_MS = 5000;

export const USAGE = `usage: npm run doctor -- --upstream URL (--user NAME --password PW | --cookie 'a=b; c=d' | --token JWT)
       [--watch-ms 5000] [--notify-path /ctx/path ...] [--browser /usr/bin/chromium | --no-browser]
       [--no-logout] [any proxy option, e.g. --context-path /panopticon --logout-path 'POST /x']
Signs in, asks "who am I", finds and watches the notification socket(s) and the page's polling,
tries the logout candidates on that session with verification, and prints settings to paste.
The password, cookie and token may also come from DOCTOR_PASSWORD, DOCTOR_COOKIE, DOCTOR_TOKEN.
Exit status: 0 all found, 1 bad usage, 2 something the proxy needs is missing (see the messages).`;

const OWN_VALUE_FLAGS = new Set(['--upstream', '--user', '--password', '--cookie', '--token', '--watch-ms', '--browser', '--notify-path']);

export function parseDoctorArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, browserExists: (path: string) => boolean): DoctorArgs {
  const own = new Map<string, string[]>();
  const proxyArgs: string[] = [];
  let noBrowser = false;
  let logout = true;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--no-browser') { noBrowser = true; continue; }
    if (arg === '--no-logout') { logout = false; continue; }
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    if (!OWN_VALUE_FLAGS.has(flag)) {
      proxyArgs.push(arg);
      if (eq === -1 && i + 1 < argv.length) proxyArgs.push(argv[++i]!);
      continue;
    }
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined || value === '') throw new UsageError(`${flag} needs a value`);
    own.set(flag, [...(own.get(flag) ?? []), value]);
  }
  const one = (flag: string) => own.get(flag)?.at(-1);
  const upstream = one('--upstream') ?? env['PROXY_UPSTREAM'];
  if (!upstream) throw new UsageError('--upstream URL is required (the Panopticon server, e.g. http://panopticon:8080)');
  const args: DoctorArgs = {
    upstream,
    watchMs: DEFAULT_WATCH_MS,
    browserPath: undefined,
    notifyPaths: (own.get('--notify-path') ?? []).flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean),
    logout,
    proxyArgs,
  };
  const user = one('--user');
  const password = one('--password') ?? env['DOCTOR_PASSWORD'];
  const cookie = one('--cookie') ?? env['DOCTOR_COOKIE'];
  const token = one('--token') ?? env['DOCTOR_TOKEN'];
  if (user !== undefined) {
    if (password === undefined) throw new UsageError('--user needs --password (or DOCTOR_PASSWORD)');
    args.user = user;
    args.password = password;
  } else if (cookie !== undefined) {
    args.cookie = cookie;
  } else if (token !== undefined) {
    args.token = token;
  } else {
    throw new UsageError('give a way to sign in: --user and --password (form login), --cookie or --token');
  }
  const watch = one('--watch-ms');
  if (watch !== undefined) {
    const n = Number(watch);
    if (!Number.isInteger(n) || n < 100 || n > 600_000) throw new UsageError(`--watch-ms ${JSON.stringify(watch)}: expected a whole number of milliseconds from 100 to 600000`);
    args.watchMs = n;
  }
  const browser = one('--browser');
  if (noBrowser) args.browserPath = undefined;
  else if (browser !== undefined) {
    if (!browserExists(browser)) throw new UsageError(`--browser ${browser}: no such file`);
    args.browserPath = browser;
  } else if (browserExists(DEFAULT_BROWSER)) args.browserPath = DEFAULT_BROWSER;
  for (const p of args.notifyPaths) if (!p.startsWith('/')) throw new UsageError(`--notify-path ${JSON.stringify(p)} must start with "/"`);
  return args;
}
