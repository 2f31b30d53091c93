/**
 * Signature checks for tokens when the deployment knows the server's token secret.
 * Only HMAC algorithms are accepted: `alg: none` and every asymmetric alg are refused.
 */
import { readFileSync } from 'node:fs';
import { jwtVerify, type JWTPayload } from 'jose';
import { ConfigError } from '../config/deployment.js';
import type { IdentityConfig } from './types.js';

export const ACCEPTED_ALGORITHMS: readonly string[] = ['HS256', 'HS384', 'HS512'];

/**
 * The secret as bytes, from PROXY_TOKEN_SECRET or (trimmed) from PROXY_TOKEN_SECRET_FILE, read
 * once. Undefined when neither is set. Throws ConfigError for an unreadable or empty file.
 */
export function loadTokenSecret(config: Pick<IdentityConfig, 'tokenSecret' | 'tokenSecretFile'>): Uint8Array | undefined {
  if (config.tokenSecret && config.tokenSecretFile) {
    throw new ConfigError('set PROXY_TOKEN_SECRET or PROXY_TOKEN_SECRET_FILE, not both');
  }
  if (config.tokenSecret) return new TextEncoder().encode(config.tokenSecret);
  const file = config.tokenSecretFile;
  if (!file) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new ConfigError(`PROXY_TOKEN_SECRET_FILE=${JSON.stringify(file)} cannot be read (${typeof code === 'string' ? code : String(err)})`);
  }
  const secret = text.trim();
  if (secret === '') throw new ConfigError(`PROXY_TOKEN_SECRET_FILE=${JSON.stringify(file)} is empty`);
  return new TextEncoder().encode(secret);
}

export type VerifyOutcome =
  | { readonly ok: true; readonly payload: JWTPayload }
  | { readonly ok: false; readonly reason: string };

/** Checks signature, algorithm, `exp` and `nbf` against `nowMs`. Never throws. */
export async function verifyToken(token: string, secret: Uint8Array, nowMs: number): Promise<VerifyOutcome> {
  try {
    const { payload } = await jwtVerify(token, secret, {
      algorithms: ACCEPTED_ALGORITHMS as string[],
      currentDate: new Date(nowMs),
    });
    return { ok: true, payload };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return { ok: false, reason: typeof code === 'string' ? code : 'ERR_JWT_INVALID' };
  }
}
