/**
 * `--help`: every row of the SETTINGS table (environment variable, flag, default, meaning),
 * generated from the table itself so it cannot drift from what the proxy accepts.
 */
import { SETTINGS, flagOf } from './deployment.js';

/** README markdown in the table (`code`) reads as plain text on a terminal. */
const plain = (text: string): string => text.replace(/`/g, '');

export function helpText(): string {
  const lines = [
    'Usage: node dist/main.js [--flag value | --flag=value ...]      (or: npm start -- --flag value)',
    '',
    'session-timeout-proxy logs idle Panopticon users out. The timeout itself comes from the',
    "server's Panopticon.properties (timeout.session.*); the settings below are the deployment's.",
    'Each is an environment variable or the matching flag; a flag wins over the variable.',
    '',
  ];
  for (const row of SETTINGS) {
    lines.push(`  ${row.env}  ${flagOf(row.env)}`);
    lines.push(`      default: ${plain(row.doc)}`);
    lines.push(`      ${plain(row.meaning)}`);
  }
  lines.push('', '  --help, -h      this text', '');
  return lines.join('\n');
}

/** true when the command line asks for help */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}
