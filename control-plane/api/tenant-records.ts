/**
 * What the schedule and template services share: the tenant a request acts
 * in, and the named records' refusals as statuses.
 */
import { status as Status } from '@grpc/grpc-js';
import { canSee, tenantFor, type Principal } from '../auth/index.js';
import { isRecordBusy, isRecordExists, isRecordNotFound, isTenantRecordsFull } from '../store/tenant-records.js';
import { ApiError, invalid, notFound } from './status.js';

/** A request naming one record of a tenant. */
export interface NamedRequest {
  name: string;
  tenant: string;
}

/**
 * The tenant a call acts in: the one it names, if the caller may act there,
 * else the caller's only one. With `absent`, a named tenant the caller may
 * not see makes the record NOT_FOUND (it does not exist for this caller);
 * without, PERMISSION_DENIED names the tenant.
 */
export function callerTenant(who: Principal, requested: string, field: string, absent?: () => string): string {
  if (requested && absent && !canSee(who, requested)) throw notFound(absent());
  const t = tenantFor(who, requested, field);
  if (typeof t !== 'string') throw invalid(field, t.pick);
  return t;
}

/** The named records' refusals as statuses; the rest is toServiceError's. */
export async function recordStatuses<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    const message = (err as Error).message;
    if (isRecordNotFound(err)) throw new ApiError(Status.NOT_FOUND, message);
    if (isRecordExists(err)) throw new ApiError(Status.ALREADY_EXISTS, message);
    if (isTenantRecordsFull(err)) throw new ApiError(Status.RESOURCE_EXHAUSTED, message);
    if (isRecordBusy(err)) throw new ApiError(Status.ABORTED, message);
    throw err;
  }
}
