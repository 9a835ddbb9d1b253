/**
 * Signed jobs: the canonical form of a JobSpec that a submitter signs and an
 * agent checks, and the Ed25519 sign and verify over it. Shared by the CLI
 * (runmesh submit --sign-key) and the agent (--trusted-keys); the control
 * plane only carries the signature.
 *
 * The canonical form (docs/protocol.md, "Signed jobs"): the UTF-8 bytes of
 * "runmesh.v1.JobSpec\n" followed by the spec's proto3 JSON without its
 * `signature` field (field names in lowerCamelCase, enums by name, fields at
 * their default value left out, as ts-proto's toJSON writes it), with every
 * object's keys sorted (UTF-16 code unit order) and no whitespace. The spec
 * signed is the resolved one, every default applied as the control plane
 * applies them at submit, so storing it changes nothing signed.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { JobSpec } from './gen/runmesh/v1/job.js';

const DOMAIN = 'runmesh.v1.JobSpec\n';

/** The bytes a JobSpec's signature covers. */
export function canonicalSpec(spec: JobSpec): Buffer {
  const json = JobSpec.toJSON({ ...spec, signature: undefined });
  return Buffer.from(DOMAIN + JSON.stringify(sorted(json)), 'utf8');
}

function sorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted);
  if (v === null || typeof v !== 'object') return v;
  const o = v as Record<string, unknown>;
  return Object.fromEntries(
    Object.keys(o)
      .sort()
      .map((k) => [k, sorted(o[k])]),
  );
}

/** An Ed25519 public key as a JWK, with its key id: its `kid`, else its RFC 7638 thumbprint. */
export interface TrustedKey {
  kid: string;
  key: KeyObject;
}

/** RFC 7638 thumbprint of an Ed25519 public key (base64url SHA-256 of its canonical JWK). */
export function thumbprint(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || !jwk.x) throw new Error('not an Ed25519 key');
  return createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${jwk.x}"}`).digest('base64url');
}

/** A signing key from a file's text: a PEM private key, or a private JWK (`d` present); its kid is the JWK's, else the thumbprint. */
export function signingKeyOf(text: string): { kid: string; key: KeyObject } {
  const trimmed = text.trim();
  const jwk = trimmed.startsWith('{') ? (JSON.parse(trimmed) as { kid?: string; kty?: string }) : undefined;
  const key = jwk ? createPrivateKey({ key: jwk as never, format: 'jwk' }) : createPrivateKey(trimmed);
  if (key.asymmetricKeyType !== 'ed25519')
    throw new Error(`an Ed25519 private key is needed, not ${key.asymmetricKeyType ?? 'a secret key'}`);
  return { kid: jwk?.kid || thumbprint(createPublicKey(key)), key };
}

/** The spec with its signature by `signer`. */
export function signSpec(spec: JobSpec, signer: { kid: string; key: KeyObject }): JobSpec {
  return { ...spec, signature: { keyId: signer.kid, signature: sign(null, canonicalSpec(spec), signer.key) } };
}

/** The Ed25519 public keys of a JWKS (others are skipped), by key id. */
export function trustedKeysOf(jwks: { keys?: unknown[] }): Map<string, KeyObject> {
  const out = new Map<string, KeyObject>();
  for (const k of jwks.keys ?? []) {
    const j = k as { kty?: string; crv?: string; kid?: string; d?: unknown };
    if (j.kty !== 'OKP' || j.crv !== 'Ed25519') continue;
    const { d: _private, ...pub } = j;
    const key = createPublicKey({ key: pub as never, format: 'jwk' });
    out.set(j.kid || thumbprint(key), key);
  }
  return out;
}

/** Why `spec` is not trusted by `keys` (unsigned, unknown key, or changed after signing), or undefined when it is. */
export function untrusted(spec: JobSpec, keys: ReadonlyMap<string, KeyObject>): string | undefined {
  const sig = spec.signature;
  if (!sig || sig.signature.length === 0) return 'the job is not signed, and this agent runs only signed jobs (--trusted-keys)';
  const key = keys.get(sig.keyId);
  if (!key) return `the job is signed by key ${sig.keyId.slice(0, 64)}, which this agent does not trust`;
  if (!verify(null, canonicalSpec(spec), key, Buffer.from(sig.signature)))
    return `the job's signature by key ${sig.keyId.slice(0, 64)} does not match its spec: it was changed after signing`;
  return undefined;
}
