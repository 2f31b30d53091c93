/**
 * Shared shapes of the identity module: what a request carries (credentials) and who it belongs
 * to (identity).
 */
import type { DeploymentConfig } from '../config/deployment.js';

export type CredentialKind = 'identity-header' | 'token-cookie' | 'session-cookie' | 'authorization';

export interface Credential {
  readonly kind: CredentialKind;
  /** stable fingerprint: base64url SHA-256 of kind + raw value; safe to log/persist */
  readonly fingerprint: string;
  /** headers that replay exactly this credential to the upstream — SECRET, never log */
  readonly replay: Readonly<Record<string, string>>;
  /** JWT exp in ms when the credential is a JWT with exp */
  readonly expiresAtMs?: number;
  /**
   * fingerprint of the secret itself, whatever its spelling: the same JWT as a cookie or a Bearer
   * header, quoted or not; a session id quoted or not; an Authorization scheme in any case. A
   * logged-out credential is refused in every spelling the upstream would still accept.
   */
  readonly secretFingerprint?: string;
}

export interface Identity {
  readonly user: string;
  /** how the user was established */
  readonly via: 'identity-header' | 'verified-token' | 'token-claim' | 'whoami';
  /** the credential that established the user */
  readonly credential: Credential;
}

/** The deployment settings the identity module reads. */
export type IdentityConfig = Pick<
  DeploymentConfig,
  | 'identityHeader'
  | 'trustedSources'
  | 'tokenCookie'
  | 'sessionCookie'
  | 'usernameClaims'
  | 'tokenSecret'
  | 'tokenSecretFile'
  | 'whoamiPath'
  | 'whoamiCacheMs'
  | 'upstream'
  | 'upstreamTimeoutMs'
> &
  Partial<Pick<DeploymentConfig, 'upstreamConnectTimeoutMs' | 'backgroundHeader'>>;

/** The slice of a pino logger the identity module uses. */
export interface IdentityLogger {
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/**
 * Asks the upstream who owns a credential. Resolves to the user name, or undefined when the
 * upstream gave a definite "not a user" answer. Rejects on a transient failure (network error,
 * timeout, 5xx) so the caller can cache that for a shorter time.
 */
export type WhoamiFn = (credential: Credential) => Promise<string | undefined>;
