/**
 * The state key (PROXY_STATE_KEY or PROXY_STATE_KEY_FILE): 32 bytes for AES-256-GCM. A value
 * that is exactly 32 bytes in hex or base64 is used as it is; any other value of at least 32
 * characters is stretched to 32 bytes with HKDF-SHA256. Read and checked once, at start-up.
 */
import { hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from './deployment.js';

export const STATE_KEY_MIN_CHARS = 32;
const KEY_BYTES = 32;

export function loadStateKey(config: { readonly stateKey: string | undefined; readonly stateKeyFile: string | undefined }): Buffer | undefined {
  if (config.stateKey && config.stateKeyFile) throw new ConfigError('set PROXY_STATE_KEY or PROXY_STATE_KEY_FILE, not both');
  let text = config.stateKey;
  let from = 'PROXY_STATE_KEY';
  if (!text && config.stateKeyFile) {
    from = `PROXY_STATE_KEY_FILE=${JSON.stringify(config.stateKeyFile)}`;
    try {
      text = readFileSync(config.stateKeyFile, 'utf8').trim();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      throw new ConfigError(`${from} cannot be read (${typeof code === 'string' ? code : String(err)})`);
    }
  }
  if (!text) {
    if (config.stateKeyFile) throw new ConfigError(`${from} is empty`);
    return undefined;
  }
  return stateKeyBytes(text, from);
}

/** The 32 key bytes a key text stands for; throws a ConfigError naming `from` (never the key). */
export function stateKeyBytes(text: string, from = 'PROXY_STATE_KEY'): Buffer {
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) {
    const raw = Buffer.from(text, 'base64');
    if (raw.length === KEY_BYTES) return raw;
  }
  if (text.length < STATE_KEY_MIN_CHARS) {
    throw new ConfigError(`${from} is too short (${text.length} characters): use at least ${STATE_KEY_MIN_CHARS} random characters, e.g. the output of \`openssl rand -base64 32\``);
  }
  return Buffer.from(hkdfSync('sha256', Buffer.from(text, 'utf8'), 'session-timeout-proxy', 'state-key v1', KEY_BYTES));
}
