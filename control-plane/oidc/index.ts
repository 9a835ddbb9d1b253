/**
 * control-plane/oidc/: the control plane as an OIDC issuer for running jobs.
 * Signing keys shared through the store and rotated with an overlap
 * (signing-keys.ts), ID tokens and the discovery and JWKS documents
 * (issuer.ts), and their rate-limited HTTP routes (routes.ts).
 */
export { SigningKeys, keyTimes, MAX_TOKEN_LIFETIME_MS, type KeyTimes } from './signing-keys.js';
export { Issuer, DISCOVERY_PATH, JWKS_PATH, type JobIdentity } from './issuer.js';
export { oidcRoutes, OIDC_ROUTE_RATE } from './routes.js';
