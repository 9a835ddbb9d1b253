/**
 * A job's secret references turned into what its attempt's Assign carries:
 * env secrets as variable → value, file secrets as path + content. Called
 * when the attempt is delivered, never earlier, and the result is never
 * stored or logged (it goes into the Assign and nowhere else).
 */
import type { SecretFile } from '../../proto/gen/runmesh/v1/agent.js';
import type { SecretRef } from '../../proto/gen/runmesh/v1/job.js';
import type { SecretStore } from './secret-store.js';

export interface AssignSecrets {
  secretEnv: Record<string, string>;
  secretFiles: SecretFile[];
}

export const NO_SECRETS: AssignSecrets = { secretEnv: {}, secretFiles: [] };

/** The values for `refs` in `tenant`; throws SecretMissingError (deleted since submit), SecretUnreadableError or the store's error. */
export async function resolveSecrets(store: SecretStore, tenant: string, refs: readonly SecretRef[]): Promise<AssignSecrets> {
  if (refs.length === 0) return { secretEnv: {}, secretFiles: [] };
  const values = await store.resolve(
    tenant,
    refs.map((r) => r.name),
  );
  const out: AssignSecrets = { secretEnv: {}, secretFiles: [] };
  for (const r of refs) {
    const value = values.get(r.name)!.reveal();
    if (r.env) out.secretEnv[r.env] = value;
    else out.secretFiles.push({ path: r.path, content: value });
  }
  return out;
}
