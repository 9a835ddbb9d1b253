/**
 * JWTs from an identity provider the operator already runs, verified with
 * jose against a JWKS (a file, or a URL jose fetches and caches). Issuer,
 * audience and expiry are checked with bounded clock skew; which claims give
 * the role and the tenants is configurable. Only asymmetric algorithms are
 * accepted: a shared-secret JWT would let anyone holding the secret mint admins.
 */
import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { isRole, type Principal } from './roles.js';

export interface JwtOptions {
  /** A JWKS file (JSON), or '' when `jwksUrl` is given. */
  jwksFile: string;
  /** A JWKS URL, or ''. */
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** The claim holding the role (admin, operator, submitter, viewer). Default "runmesh_role". */
  roleClaim: string;
  /** The claim holding the tenants: an array of strings, or one string of names separated by spaces or commas. Default "runmesh_tenants". */
  tenantsClaim: string;
}

/** How far a token's times may be off ours. */
const CLOCK_SKEW_S = 60;
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
/** Three base64url parts: what a compact JWS looks like. */
export const LOOKS_LIKE_JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export class JwtVerifier {
  private constructor(
    private readonly keys: JWTVerifyGetKey,
    private readonly o: JwtOptions,
  ) {}

  /** Loads the key set (a file is read now; a URL is fetched on first use and cached by jose). */
  static async open(o: JwtOptions): Promise<JwtVerifier> {
    if (!o.issuer || !o.audience) throw new Error('JWT verification needs an issuer and an audience (--jwt-issuer, --jwt-audience)');
    const keys = o.jwksFile
      ? createLocalJWKSet(JSON.parse(await readFile(o.jwksFile, 'utf8')) as Parameters<typeof createLocalJWKSet>[0])
      : createRemoteJWKSet(new URL(o.jwksUrl));
    return new JwtVerifier(keys, o);
  }

  /** The principal a JWT stands for, or why it stands for nobody (never repeating the token). */
  async verify(token: string): Promise<Principal | { refused: string }> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        issuer: this.o.issuer,
        audience: this.o.audience,
        clockTolerance: CLOCK_SKEW_S,
        algorithms: ALGORITHMS,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      return { refused: `JWT refused: ${reason(err)}` };
    }
    const role = payload[this.o.roleClaim];
    if (typeof role !== 'string' || !isRole(role) || role === 'agent' || role === 'job') {
      return { refused: `JWT refused: claim ${this.o.roleClaim} must be admin, operator, submitter or viewer` };
    }
    const tenants = tenantsOf(payload[this.o.tenantsClaim]);
    const sub = String(payload.sub);
    return { id: `jwt:${sub}`.slice(0, 128), name: sub.slice(0, 64), role, tenants: role === 'admin' ? 'all' : tenants };
  }
}

function tenantsOf(claim: unknown): string[] {
  if (Array.isArray(claim)) return claim.filter((t): t is string => typeof t === 'string' && t !== '');
  if (typeof claim === 'string') return claim.split(/[\s,]+/).filter(Boolean);
  return [];
}

/** Why jose refused, in words that name no key material or token. */
function reason(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'expired';
  if (err instanceof errors.JWTClaimValidationFailed) return `claim ${err.claim} ${err.reason}`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad signature';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no key in the JWKS matches it';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (err instanceof errors.JOSEError) return err.code;
  return 'malformed';
}
