/**
 * SecretService and secret references at submit, on a real gRPC server over
 * the real gate, audit log and secrets on an embedded store: no answer, audit
 * entry or store key holds a value; tenants are the caller's; names, values
 * and references are bounded; a job may reference only its tenant's secrets,
 * and Get shows the reference only.
 */
import { credentials, type ServiceError, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobServiceClient, JobSpec, type GetResponse, type Job, type SubmitResponse } from '../../proto/gen/runmesh/v1/job.js';
import {
  SecretServiceClient,
  type ListSecretsResponse,
  type RotateSecretsKeyResponse,
  type SetSecretResponse,
} from '../../proto/gen/runmesh/v1/secret.js';
import { bearer } from '../../test/support/client.js';
import { waitUntil } from '../../test/support/wait.js';
import { startApi, type ApiHarness } from './testing/harness.js';

const VALUE = 'deploy-key-7f3a9c1e5b2d';

let api: ApiHarness;
const token: Record<'admin' | 'sub' | 'subB' | 'viewer', string> = { admin: '', sub: '', subB: '', viewer: '' };
const clients = new Map<string, { secrets: SecretServiceClient; jobs: JobServiceClient }>();

beforeAll(async () => {
  api = await startApi();
  token.admin = (await api.tokens.create({ name: 'admin', role: 'admin', tenants: [], ttlMs: 0 })).token;
  token.sub = (await api.tokens.create({ name: 'sub-a', role: 'submitter', tenants: ['a'], ttlMs: 0 })).token;
  token.subB = (await api.tokens.create({ name: 'sub-b', role: 'submitter', tenants: ['b'], ttlMs: 0 })).token;
  token.viewer = (await api.tokens.create({ name: 'viewer', role: 'viewer', tenants: ['a'], ttlMs: 0 })).token;
});
afterAll(async () => {
  for (const c of clients.values()) c.jobs.close();
  await api?.close();
});

function as(who: keyof typeof token) {
  let c = clients.get(who);
  if (!c) {
    const opts = { interceptors: [bearer(token[who])] };
    const jobs = new JobServiceClient(api.address, credentials.createInsecure(), opts);
    c = {
      jobs,
      secrets: new SecretServiceClient(api.address, credentials.createInsecure(), { ...opts, channelOverride: jobs.getChannel() }),
    };
    clients.set(who, c);
  }
  return c;
}

const call = <Res>(fn: (cb: (err: ServiceError | null, res: Res) => void) => unknown): Promise<Res> =>
  new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
const set = (who: keyof typeof token, req: { name: string; tenant: string; value: string }) =>
  call<SetSecretResponse>((cb) => as(who).secrets.setSecret(req, cb));
const submit = (who: keyof typeof token, spec: Partial<JobSpec>) =>
  call<SubmitResponse>((cb) => as(who).jobs.submit({ spec: JobSpec.fromPartial(spec) }, cb));
const refusal = (p: Promise<unknown>): Promise<ServiceError> =>
  p.then(
    () => ({ code: status.OK }) as ServiceError,
    (e: ServiceError) => e,
  );

describe('SecretService', () => {
  it('sets, lists and deletes in the caller tenant, and no answer, audit entry or store key holds the value', async () => {
    const made = await set('sub', { name: 'DEPLOY_KEY', tenant: '', value: VALUE });
    expect(made).toMatchObject({ created: true, info: { name: 'DEPLOY_KEY', tenant: 'a' } });
    const again = await set('sub', { name: 'DEPLOY_KEY', tenant: 'a', value: VALUE });
    expect(again.created).toBe(false);
    const listed = await call<ListSecretsResponse>((cb) => as('sub').secrets.listSecrets({ tenant: '' }, cb));
    expect(listed.secrets.map((s) => `${s.tenant}/${s.name}`)).toEqual(['a/DEPLOY_KEY']);
    // The audit log writes in batches: wait for the entries.
    const entries = async () => (await api.audit.list({ limit: 100 })).entries.filter((e) => e.method === 'SecretService.SetSecret');
    await waitUntil(async () => (await entries()).length >= 2, { what: 'the audit entries', timeoutMs: 5_000 });
    const audit = await entries();
    expect(audit.map((e) => e.target)).toContain('secret a/DEPLOY_KEY');
    const everything = JSON.stringify([made, again, listed, audit, (await api.store.range('/')).kvs]);
    expect(everything).not.toContain(VALUE);
  });

  it("keeps tenants apart: another tenant's secrets are neither listed nor writable", async () => {
    expect((await refusal(set('sub', { name: 'X', tenant: 'b', value: 'v' }))).code).toBe(status.PERMISSION_DENIED);
    expect((await refusal(call<ListSecretsResponse>((cb) => as('sub').secrets.listSecrets({ tenant: 'b' }, cb)))).code).toBe(
      status.PERMISSION_DENIED,
    );
    await set('subB', { name: 'DEPLOY_KEY', tenant: '', value: 'b-value' });
    const listed = await call<ListSecretsResponse>((cb) => as('sub').secrets.listSecrets({ tenant: '' }, cb));
    expect(listed.secrets.map((s) => s.tenant)).toEqual(['a']);
    expect((await refusal(set('viewer', { name: 'X', tenant: 'a', value: 'v' }))).code).toBe(status.PERMISSION_DENIED);
  });

  it('bounds names and values', async () => {
    for (const [req, field] of [
      [{ name: '1BAD', tenant: 'a', value: 'v' }, /^name: bad secret name/],
      [{ name: 'a-b', tenant: 'a', value: 'v' }, /^name: /],
      [{ name: 'OK', tenant: 'a', value: '' }, /^value: empty/],
      [{ name: 'OK', tenant: 'a', value: 'x'.repeat(64 * 1024 + 1) }, /^value: too large \(65537 bytes, limit 65536\)/],
      [{ name: 'OK', tenant: 'a', value: 'a\0b' }, /^value: contains a NUL/],
    ] as const) {
      const err = await refusal(set('sub', req));
      expect({ code: err.code, matches: field.test(err.details) }).toEqual({ code: status.INVALID_ARGUMENT, matches: true });
    }
    expect((await set('sub', { name: 'BIG', tenant: 'a', value: 'x'.repeat(64 * 1024) })).created).toBe(true);
  });

  it('re-encrypts under the current key (admin only)', async () => {
    const res = await call<RotateSecretsKeyResponse>((cb) => as('admin').secrets.rotateSecretsKey({}, cb));
    expect(res).toMatchObject({ keyId: api.secrets.currentKeyId, reencrypted: 0 });
    expect(res.total).toBeGreaterThanOrEqual(3);
  });
});

describe('secret references at submit', () => {
  it('takes a reference to a secret of the job tenant, and Get shows only the reference', async () => {
    const { job } = await submit('sub', {
      argv: ['true'],
      secrets: [
        { name: 'DEPLOY_KEY', env: 'DEPLOY_KEY', path: '' },
        { name: 'DEPLOY_KEY', env: '', path: 'keys/deploy' },
      ],
    });
    const got = await call<GetResponse>((cb) => as('sub').jobs.get({ id: (job as Job).id }, cb));
    expect(got.job?.spec?.secrets).toEqual([
      { name: 'DEPLOY_KEY', env: 'DEPLOY_KEY', path: '' },
      { name: 'DEPLOY_KEY', env: '', path: 'keys/deploy' },
    ]);
    expect(JSON.stringify([got, (await api.store.range('/runmesh/jobs')).kvs])).not.toContain(VALUE);
  });

  it("refuses a secret that is not in the job's tenant, naming the field, though another tenant has one of that name", async () => {
    await set('subB', { name: 'ONLY_IN_B', tenant: 'b', value: 'bbb-secret' });
    const err = await refusal(submit('sub', { argv: ['true'], secrets: [{ name: 'ONLY_IN_B', env: 'X', path: '' }] }));
    expect({ code: err.code, details: err.details }).toEqual({
      code: status.FAILED_PRECONDITION,
      details: 'spec.secrets[0].name: secret ONLY_IN_B does not exist in tenant a',
    });
  });

  it('refuses malformed references, naming the field', async () => {
    for (const [ref, field] of [
      [{ name: 'DEPLOY_KEY', env: '', path: '' }, 'spec.secrets[0]: give env or path'],
      [{ name: 'DEPLOY_KEY', env: 'X', path: 'p' }, 'spec.secrets[0]: give env or path'],
      [{ name: 'DEPLOY_KEY', env: 'RUNMESH_X', path: '' }, 'spec.secrets[0].env: RUNMESH_'],
      [{ name: 'DEPLOY_KEY', env: '', path: '../up' }, 'spec.secrets[0].path: must be relative'],
      [{ name: 'DEPLOY_KEY', env: '', path: '/etc/x' }, 'spec.secrets[0].path: must be relative'],
      [{ name: 'bad-name', env: 'X', path: '' }, 'spec.secrets[0].name: bad secret name'],
    ] as const) {
      const err = await refusal(submit('sub', { argv: ['true'], secrets: [ref] }));
      expect({ code: err.code, details: err.details?.startsWith(field) }).toEqual({ code: status.INVALID_ARGUMENT, details: true });
    }
    const clash = await refusal(submit('sub', { argv: ['true'], env: { X: '1' }, secrets: [{ name: 'DEPLOY_KEY', env: 'X', path: '' }] }));
    expect(clash.details).toMatch(/^spec\.secrets\[0\]\.env: X is also in env/);
  });
});
