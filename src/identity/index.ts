/** The identity module: who a request belongs to, and which credentials it carries. */
export type { Credential, CredentialKind, Identity, IdentityConfig, IdentityLogger, WhoamiFn } from './types.js';
export { CredentialExtractor, fingerprintOf } from './credentials.js';
export type { CredentialExtractorOptions, ExtractorConfig } from './credentials.js';
export { IdentityResolver } from './resolver.js';
export type { IdentityResolverOptions, IdentityStats } from './resolver.js';
export { isJwtLike, decodeJwtClaims, jwtExpiryMs, usernameFromClaims, bearerToken, MAX_TOKEN_CHARS } from './jwt.js';
export { UpstreamWhoami, WhoamiUnavailableError, userFromWhoamiBody } from './whoami.js';
export { trustedSourceChecker, canonicalAddress } from './trusted-sources.js';
export { pickCookies } from './cookies.js';
export type { PickedCookies } from './cookies.js';
export { loadTokenSecret } from './verify.js';
