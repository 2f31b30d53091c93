/**
 * Panopticon simulator: the user list (demo credentials only) and license units per role.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export type SimRole = 'viewer' | 'designer' | 'administrator';

export interface SimUser {
  username: string;
  password: string;
  role: SimRole;
}

/** License units a logged-in user draws, by role. */
export const UNITS_BY_ROLE: Readonly<Record<SimRole, number>> = Object.freeze({
  viewer: 1,
  designer: 2,
  administrator: 3,
});

/**
 * `config/simulator-users.json` at the project root. This module sits two folders below the root
 * both as `src/simulator/users.ts` and as `dist/simulator/users.js`, so one relative path serves both.
 */
export const DEFAULT_USERS_FILE = fileURLToPath(new URL('../../config/simulator-users.json', import.meta.url));

/** Used when the users file is not shipped (e.g. an image holding only dist/); keep in step with the file. */
export const BUILTIN_USERS: readonly SimUser[] = Object.freeze([
  { username: 'alice', password: 'alice', role: 'designer' },
  { username: 'bob', password: 'bob', role: 'viewer' },
  { username: 'carol', password: 'carol', role: 'administrator' },
  { username: 'kiosk', password: 'kiosk', role: 'viewer' },
  { username: 'dave', password: 'dave', role: 'viewer' },
  { username: 'erin', password: 'erin', role: 'designer' },
]);

/** Checks a parsed users list; throws an Error that names the bad entry. */
export function parseUsers(value: unknown, source = 'users'): SimUser[] {
  if (!Array.isArray(value)) throw new Error(`${source}: expected a JSON array of {username, password, role}`);
  const seen = new Set<string>();
  return value.map((entry: unknown, index) => {
    const where = `${source}[${index}]`;
    if (entry === null || typeof entry !== 'object') throw new Error(`${where}: expected an object`);
    const { username, password, role } = entry as Record<string, unknown>;
    if (typeof username !== 'string' || username === '') throw new Error(`${where}: username must be a non-empty string`);
    if (typeof password !== 'string') throw new Error(`${where}: password must be a string`);
    if (role !== 'viewer' && role !== 'designer' && role !== 'administrator') {
      throw new Error(`${where}: role must be viewer, designer or administrator`);
    }
    if (seen.has(username)) throw new Error(`${where}: duplicate username ${JSON.stringify(username)}`);
    seen.add(username);
    return { username, password, role };
  });
}

/** Reads a users file. */
export function loadUsersFile(path: string): SimUser[] {
  return parseUsers(JSON.parse(readFileSync(path, 'utf8')), path);
}

/** The default users: the project's users file when present, else the built-in copy. */
export function defaultUsers(): SimUser[] {
  try {
    return loadUsersFile(DEFAULT_USERS_FILE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return BUILTIN_USERS.map((u) => ({ ...u }));
    throw err;
  }
}
