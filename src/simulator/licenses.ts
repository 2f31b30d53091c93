/**
 * Panopticon simulator: logins held in memory (the stand-in for Panopticon's token files) and the
 * license units they check out. Units are per logged-in user: a user with two logins holds the
 * units of their role once; the units come back when the last login of that user ends.
 */
import { UNITS_BY_ROLE, type SimRole } from './users.js';

export interface Login {
  /** the token id (`jti`); also the login's id */
  readonly id: string;
  readonly username: string;
  readonly role: SimRole;
  /** opaque SESSION cookie value, when one was issued */
  readonly sessionId: string | undefined;
  readonly createdAtMs: number;
}

/** What may be shown about a login (no token ids, no session ids). */
export interface LoginSummary {
  username: string;
  role: SimRole;
  hasSession: boolean;
  createdAt: string;
}

export class LoginRegistry {
  private readonly byId = new Map<string, Login>();
  private readonly idBySession = new Map<string, string>();

  add(login: Login): void {
    this.byId.set(login.id, login);
    if (login.sessionId !== undefined) this.idBySession.set(login.sessionId, login.id);
  }

  get(id: string): Login | undefined {
    return this.byId.get(id);
  }

  bySession(sessionId: string): Login | undefined {
    const id = this.idBySession.get(sessionId);
    return id === undefined ? undefined : this.byId.get(id);
  }

  /** Ends one login; true when that was the user's last one (their units came back). */
  remove(id: string): boolean {
    const login = this.byId.get(id);
    if (!login) return false;
    this.byId.delete(id);
    if (login.sessionId !== undefined) this.idBySession.delete(login.sessionId);
    return !this.hasLogin(login.username);
  }

  /** Ends every login of a user; returns the ids that were ended. */
  removeAllOf(username: string): string[] {
    const ids = [...this.byId.values()].filter((l) => l.username === username).map((l) => l.id);
    for (const id of ids) this.remove(id);
    return ids;
  }

  hasLogin(username: string): boolean {
    for (const login of this.byId.values()) if (login.username === username) return true;
    return false;
  }

  /** Units checked out, per user (users without a login are absent). */
  licensesInUse(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const login of this.byId.values()) out[login.username] = UNITS_BY_ROLE[login.role];
    return out;
  }

  totalUnits(): number {
    return Object.values(this.licensesInUse()).reduce((sum, units) => sum + units, 0);
  }

  summaries(): LoginSummary[] {
    return [...this.byId.values()].map((l) => ({
      username: l.username,
      role: l.role,
      hasSession: l.sessionId !== undefined,
      createdAt: new Date(l.createdAtMs).toISOString(),
    }));
  }

  clear(): void {
    this.byId.clear();
    this.idBySession.clear();
  }
}
