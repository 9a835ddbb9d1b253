/**
 * The control plane as an OIDC issuer: ID tokens for running jobs, and the
 * two documents a relying party reads to check them (discovery and JWKS).
 * A token says which job it is (`sub` = `<tenant>/<job name>`, the job id
 * when it has no name) and carries the job id, attempt, agent, tenant and the
 * agent's labels; it lives at most 10 minutes and never past the attempt's
 * deadline.
 */
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { ALG, MAX_TOKEN_LIFETIME_MS, type SigningKeys } from './signing-keys.js';

export const DISCOVERY_PATH = '/.well-known/openid-configuration';
export const JWKS_PATH = '/.well-known/jwks.json';

/** What an ID token says about its job. */
export interface JobIdentity {
  jobId: string;
  name: string;
  tenant: string;
  attempt: number;
  agent: string;
  /** The agent's labels. */
  labels: Record<string, string>;
  /** The attempt's deadline (ms since the epoch): no token outlives it. */
  deadline: number;
}

export class Issuer {
  constructor(
    /** The `iss` of every token, and where the discovery document is served (`<issuer>/.well-known/openid-configuration`). */
    readonly url: string,
    private readonly keys: SigningKeys,
  ) {}

  async issue(job: JobIdentity, audience: string, now = Date.now()): Promise<{ token: string; expiresAt: number }> {
    const { kid, key } = await this.keys.signer(now);
    const iat = Math.floor(now / 1000);
    const exp = Math.floor(Math.min(now + MAX_TOKEN_LIFETIME_MS, Math.max(job.deadline, now + 1000)) / 1000);
    const token = await new SignJWT({
      job_id: job.jobId,
      attempt: job.attempt,
      agent: job.agent,
      tenant: job.tenant,
      labels: job.labels,
    })
      .setProtectedHeader({ alg: ALG, kid, typ: 'JWT' })
      .setIssuer(this.url)
      .setSubject(`${job.tenant}/${job.name || job.jobId}`)
      .setAudience(audience)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(exp)
      .setJti(randomBytes(12).toString('base64url'))
      .sign(key);
    return { token, expiresAt: exp * 1000 };
  }

  discovery(): Record<string, unknown> {
    return {
      issuer: this.url,
      jwks_uri: `${this.url}${JWKS_PATH}`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: [ALG],
      scopes_supported: ['openid'],
      claims_supported: ['sub', 'aud', 'iss', 'iat', 'nbf', 'exp', 'jti', 'job_id', 'attempt', 'agent', 'tenant', 'labels'],
    };
  }

  jwks(): unknown {
    return this.keys.jwks();
  }
}
