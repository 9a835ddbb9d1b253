/**
 * JWTs from an identity provider, beside API tokens: a JWT signed by a key of
 * the configured JWKS, for the right issuer and audience and not expired,
 * acts with its role and tenants claims; anything else is UNAUTHENTICATED.
 */
import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobServiceService, JobSpec, type Job } from '../../proto/gen/runmesh/v1/job.js';
import { tempDir } from '../../test/support/processes.js';
import { JwtVerifier } from '../auth/index.js';
import { startApi, type ApiHarness } from './testing/harness.js';

const ISSUER = 'https://idp.example';
const AUDIENCE = 'runmesh';

let api: ApiHarness;
let client: Client;
let key: CryptoKey;
let stranger: CryptoKey;

beforeAll(async () => {
  const dir = await tempDir('runmesh-jwt-');
  const pair = await generateKeyPair('ES256');
  key = pair.privateKey;
  stranger = (await generateKeyPair('ES256')).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const jwksFile = join(dir, 'jwks.json');
  await writeFile(jwksFile, JSON.stringify({ keys: [jwk] }));
  const jwt = await JwtVerifier.open({
    jwksFile,
    jwksUrl: '',
    issuer: ISSUER,
    audience: AUDIENCE,
    roleClaim: 'runmesh_role',
    tenantsClaim: 'runmesh_tenants',
  });
  api = await startApi({ jwt });
  client = new Client(api.address, credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await api?.close();
});

function sign(
  claims: JWTPayload,
  o: { key?: CryptoKey; issuer?: string; audience?: string; expires?: string | number } = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setSubject('ci@example')
    .setIssuer(o.issuer ?? ISSUER)
    .setAudience(o.audience ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(o.expires ?? '10m')
    .sign(o.key ?? key);
}

function submit(bearer: string, spec: Partial<JobSpec>): Promise<Job | ServiceError> {
  const md = new Metadata();
  md.set('authorization', `Bearer ${bearer}`);
  return new Promise((resolve) =>
    client.makeUnaryRequest(
      JobServiceService.submit.path,
      JobServiceService.submit.requestSerialize,
      JobServiceService.submit.responseDeserialize,
      { spec: JobSpec.fromPartial(spec) },
      md,
      (err, res) => resolve(err ?? res!.job!),
    ),
  );
}

describe('JWTs', () => {
  it('act with the role and tenants their claims give', async () => {
    const token = await sign({ runmesh_role: 'submitter', runmesh_tenants: ['team-a'] });
    const job = (await submit(token, { argv: ['true'] })) as Job;
    expect(job.spec?.tenant).toBe('team-a');
    const other = (await submit(token, { argv: ['true'], tenant: 'team-b' })) as ServiceError;
    expect(other.code).toBe(status.PERMISSION_DENIED);
    const viewer = (await submit(await sign({ runmesh_role: 'viewer', runmesh_tenants: 'team-a team-b' }), {
      argv: ['true'],
    })) as ServiceError;
    expect(viewer.code).toBe(status.PERMISSION_DENIED);
  });

  it('are refused when signed by another key, for another issuer or audience, expired, or without a usable role', async () => {
    const claims = { runmesh_role: 'submitter', runmesh_tenants: ['team-a'] };
    const refused = [
      ['another key', await sign(claims, { key: stranger })],
      ['another issuer', await sign(claims, { issuer: 'https://evil.example' })],
      ['another audience', await sign(claims, { audience: 'someone-else' })],
      ['expired', await sign(claims, { expires: Math.floor(Date.now() / 1000) - 600 })],
      ['no role', await sign({ runmesh_tenants: ['team-a'] })],
      ['agent role', await sign({ runmesh_role: 'agent' })],
      ['unsigned', `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"x"}').toString('base64url')}.x`],
    ] as const;
    for (const [why, token] of refused) {
      const res = (await submit(token, { argv: ['true'] })) as ServiceError;
      expect({ why, code: res.code }).toEqual({ why, code: status.UNAUTHENTICATED });
      expect(res.details).not.toContain(token);
    }
  });
});
