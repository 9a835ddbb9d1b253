/**
 * The gate every client-facing call passes: the bearer token in the call's
 * metadata becomes a principal, and the authorization table decides whether
 * that principal may call the method. Refusals are logged as audit lines
 * (`audit: true`), and a failed authentication is recorded in the audit trail
 * (`audit`); the token itself never is.
 */
import type { Metadata } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { NO_AUDIT, type AuditSink } from './audit-sink.js';
import { PermissionDeniedError, UnauthenticatedError } from './errors.js';
import { RateLimitedError, RateLimiter, type Rate } from './rate-limit.js';
import type { Principal } from './roles.js';
import { allowed, verbOf } from './table.js';
import { LOOKS_LIKE_JWT, type JwtVerifier } from './jwt.js';
import type { TokenStore } from './tokens.js';
import { JOB_TOKEN_PREFIX, type JobTokens } from './job-tokens.js';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** The gate's limits (see control-plane/options.ts for their defaults and flags). */
export interface GateLimits {
  /** Calls per token. */
  perToken: Rate;
  /** Jobs submitted per tenant. */
  perTenant: Rate;
  /** Failed authentications per client address; past it, that address is refused before any check. */
  authFailures: Rate;
}

export const DEFAULT_GATE_LIMITS: GateLimits = {
  perToken: { perSecond: 200, burst: 400 },
  perTenant: { perSecond: 5_000, burst: 20_000 },
  authFailures: { perSecond: 1, burst: 10 },
};

/** A caller's address without its port ("ipv4:10.0.0.5:51234" and "10.0.0.5:51234" → "10.0.0.5"), so every connection from it shares a bucket. */
const hostOf = (from: string): string => from.replace(/^ipv[46]:/, '').replace(/:\d+$/, '');

/** What the gate is built from; only `tokens` and `log` are required. */
export interface GateOptions {
  tokens: TokenStore;
  log: Logger;
  /** JWTs from an identity provider, when one is configured. */
  jwt?: JwtVerifier;
  /** Each attempt's job token (`rmj_…`, role job); without it, job tokens are refused. */
  jobTokens?: JobTokens;
  /** Default DEFAULT_GATE_LIMITS. */
  limits?: GateLimits;
  /** Where failed authentications are recorded; the API guard records mutating calls here too. Default: nowhere. */
  audit?: AuditSink;
}

export class Gate {
  private readonly perToken: RateLimiter;
  private readonly perTenant: RateLimiter;
  private readonly failures: RateLimiter;
  private readonly tokens: TokenStore;
  private readonly jwt: JwtVerifier | undefined;
  private readonly jobTokens: JobTokens | undefined;
  private readonly log: Logger;
  readonly audit: AuditSink;

  constructor(o: GateOptions) {
    this.tokens = o.tokens;
    this.jwt = o.jwt;
    this.jobTokens = o.jobTokens;
    this.log = o.log;
    this.audit = o.audit ?? NO_AUDIT;
    const limits = o.limits ?? DEFAULT_GATE_LIMITS;
    this.perToken = new RateLimiter(limits.perToken);
    this.perTenant = new RateLimiter(limits.perTenant);
    this.failures = new RateLimiter(limits.authFailures);
  }

  /** New limits for every later call (a reloaded config file); buckets keep what they hold, up to the new burst. */
  setLimits(limits: GateLimits): void {
    this.perToken.setRate(limits.perToken);
    this.perTenant.setRate(limits.perTenant);
    this.failures.setRate(limits.authFailures);
  }

  /** Spends `jobs` from `tenant`'s submit budget; throws RateLimitedError when it is spent. */
  spendTenant(tenant: string, jobs: number): void {
    const wait = this.perTenant.take(tenant, jobs);
    if (wait > 0) throw new RateLimitedError(`tenant ${tenant} submits too fast`, wait);
  }

  /**
   * The caller of `method` ("JobService.Submit"), when its token is good and
   * its role may call the method. Throws UnauthenticatedError (no, bad,
   * revoked or expired token) or PermissionDeniedError (naming the missing verb).
   */
  async check(method: string, metadata: Metadata, from: string): Promise<Principal> {
    const who = await this.identify(method, metadata, from);
    this.authorize(method, who, from);
    return who;
  }

  /** The caller, from its token; throws UnauthenticatedError, or RateLimitedError for an address that keeps failing. */
  async identify(method: string, metadata: Metadata, from: string): Promise<Principal> {
    const host = hostOf(from);
    // An address that keeps failing is refused before its token is even looked at: guessing stays slow and cheap.
    const cooling = this.failures.exhausted(host);
    if (cooling > 0) throw new RateLimitedError(`too many failed authentications from ${host}`, cooling);
    return this.authenticate(method, metadata, host);
  }

  /** Throws PermissionDeniedError when `who` may not call `method`, RateLimitedError when it calls too fast. */
  authorize(method: string, who: Principal, from = ''): void {
    if (!allowed(who.role, method)) {
      const verb = verbOf(method) ?? 'a permission nobody has';
      this.log.warn({ audit: true, method, from, token_id: who.id, role: who.role, result: 'permission denied' }, 'call refused');
      throw new PermissionDeniedError(`${method} needs ${verb}, which role ${who.role} (token ${who.name || who.id}) does not have`);
    }
    const wait = this.perToken.take(who.id);
    if (wait > 0) throw new RateLimitedError(`token ${who.name || who.id} calls too fast`, wait);
  }

  private async authenticate(method: string, metadata: Metadata, from: string): Promise<Principal> {
    const header = metadata.get('authorization')[0];
    if (typeof header !== 'string' || header === '') {
      this.refused(method, from, 'no token');
      throw new UnauthenticatedError(`${method} needs a token: send "authorization: Bearer <token>" (runmesh: --token or RUNMESH_TOKEN)`);
    }
    const bearer = BEARER.exec(header);
    const who = bearer ? await this.verify(bearer[1]!) : { refused: 'the authorization header is not "Bearer <token>"' };
    if ('refused' in who) {
      this.refused(method, from, who.refused);
      throw new UnauthenticatedError(`${method}: ${who.refused}`);
    }
    return who;
  }

  /** An API token (rmt_…) from the token store; a job token (rmj_…) against its attempt; a JWT from the identity provider, when one is configured. */
  private async verify(token: string): Promise<Principal | { refused: string }> {
    if (token.startsWith(JOB_TOKEN_PREFIX))
      return this.jobTokens ? this.jobTokens.verify(token) : { refused: 'job tokens are not accepted here' };
    if (this.jwt && LOOKS_LIKE_JWT.test(token)) return this.jwt.verify(token);
    return this.tokens.verify(token);
  }

  private refused(method: string, from: string, reason: string): void {
    this.failures.take(from);
    this.log.warn({ audit: true, method, from, reason, result: 'unauthenticated' }, 'call refused');
    this.audit.record({ actor: 'anonymous', method, target: '', from, result: 'UNAUTHENTICATED' });
  }
}
