/** The signed form of a JobSpec survives what the control plane does to a spec: store it as JSON and read it back. */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Job, JobSpec } from './gen/runmesh/v1/job.js';
import { canonicalSpec, signSpec, thumbprint, trustedKeysOf, untrusted } from './job-signature.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = { kid: thumbprint(publicKey), key: privateKey };
const trusted = trustedKeysOf({ keys: [publicKey.export({ format: 'jwk' })] });

describe('job signatures', () => {
  it('verify after a round trip through the stored JSON, whatever the order of env and key insertion', () => {
    const spec = signSpec(
      JobSpec.fromPartial({ argv: ['make', 'test'], env: { B: '2', A: '1' }, resources: { slots: 1 }, tenant: 't' }),
      signer,
    );
    const stored = Job.fromJSON(JSON.parse(JSON.stringify(Job.toJSON(Job.fromPartial({ id: 'j', spec })))) as unknown).spec!;
    expect(untrusted(stored, trusted)).toBeUndefined();
    const reordered = { ...stored, env: { A: '1', B: '2' } };
    expect(canonicalSpec(reordered).equals(canonicalSpec(stored))).toBe(true);
    expect(canonicalSpec(stored).toString()).toBe(
      'runmesh.v1.JobSpec\n{"argv":["make","test"],"env":{"A":"1","B":"2"},"resources":{"slots":1},"tenant":"t"}',
    );
  });

  it('refuse a change to any field, an unknown key, and no signature', () => {
    const spec = signSpec(JobSpec.fromPartial({ script: 'deploy', selector: 'env=prod' }), signer);
    expect(untrusted({ ...spec, selector: 'env=dev' }, trusted)).toMatch(/changed after signing/);
    expect(untrusted({ ...spec, env: { X: '1' } }, trusted)).toMatch(/changed after signing/);
    expect(untrusted({ ...spec, signature: { keyId: 'other', signature: spec.signature!.signature } }, trusted)).toMatch(/does not trust/);
    expect(untrusted({ ...spec, signature: undefined }, trusted)).toMatch(/not signed/);
  });
});
