/**
 * control-plane/secrets/: tenants' secrets at rest and on their way to an
 * attempt. keyring.ts seals values (AES-256-GCM, a key id per value, the
 * secret's place as associated data); secret-store.ts keeps them in the job
 * store and resolves them; names.ts is the grammar of names and references;
 * resolve.ts turns a job's references into its Assign's values.
 */
export * from './errors.js';
export { KeyRing, keyId, loadKeyRing, newKeyText, parseKey, readKeyFile, type KeySources, type Sealed } from './keyring.js';
export { SecretStore, SECRETS_PREFIX, type SecretMeta } from './secret-store.js';
export { SECRET_LIMITS, SECRET_NAME, RESERVED_ENV_PREFIX } from './names.js';
export { resolveSecrets, NO_SECRETS, type AssignSecrets } from './resolve.js';
