/**
 * Submit's check of a job's secret references: each must exist in the job's
 * tenant (the one the caller may act in), or the job is refused with
 * FAILED_PRECONDITION naming the reference. Another tenant's secret of the
 * same name is not looked at: references resolve in the job's tenant only.
 */
import { status as Status } from '@grpc/grpc-js';
import type { ResolvedSpec } from '../jobs/record.js';
import type { SecretStore } from '../secrets/index.js';
import { ApiError } from './status.js';

export async function checkSecretRefs(secrets: SecretStore, spec: ResolvedSpec, field: string): Promise<void> {
  if (spec.secrets.length === 0) return;
  if (!secrets.enabled)
    throw new ApiError(
      Status.FAILED_PRECONDITION,
      `${field}.secrets: this server has no secrets key (--secrets-key-file), so it keeps no secrets`,
    );
  for (const [i, r] of spec.secrets.entries()) {
    // A store error propagates (UNAVAILABLE): it is never taken for a missing secret.
    if (!(await secrets.exists(spec.tenant, r.name)))
      throw new ApiError(
        Status.FAILED_PRECONDITION,
        `${field}.secrets[${i}].name: secret ${r.name} does not exist in tenant ${spec.tenant}`,
      );
  }
}
