/**
 * control-plane/auth/: who is calling and what they may do. API tokens
 * (random, prefixed `rmt_` for secret scanners, stored hashed, shown once;
 * tokens.ts), the roles and the one authorization table every JobService,
 * ClusterService and TokenService method is checked against (roles.ts,
 * table.ts), and the gate that turns call metadata into a principal or a
 * refusal (gate.ts). Tenant checks on individual jobs are the API's, through
 * `canSee`/`tenantFor` here. Each attempt's job token (role job, scoped to
 * its job; job-tokens.ts) passes the same gate.
 */
export * from './errors.js';
export * from './roles.js';
export * from './table.js';
export { TokenStore, TOKEN_PREFIX, type TokenRecord, type NewToken } from './tokens.js';
export { Gate, DEFAULT_GATE_LIMITS, type GateLimits, type GateOptions } from './gate.js';
export { JwtVerifier, type JwtOptions } from './jwt.js';
export { JobTokens, JOB_TOKEN_PREFIX, JOB_TOKEN_GRACE_MS, type AttemptFacts, type AttemptLookup } from './job-tokens.js';
export { RateLimiter, RateLimitedError, findRateLimited, type Rate } from './rate-limit.js';
export * from './audit-sink.js';
